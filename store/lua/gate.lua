-- uses: window usage credential
-- gate.lua: the one round trip behind every counted request on a single Redis or Sentinel.
-- KEYS[1]  the client IP's rolling window (hash: sub-window -> requests admitted)
-- KEYS[2]  (when a credential's owner is known) the API key's or session's record
-- KEYS[3]  the owner's user hash
-- KEYS[4]  the owner's credits counter for this month
-- KEYS[5]  (an API key, with usage counting on) the key's usage hash
-- ARGV[1]  limit: requests admitted in any window
-- ARGV[2]  window length in milliseconds
-- ARGV[3]  sub-windows per window (lib/window.lua)
-- ARGV[4]  credential kind: "none", "key" or "session"
-- ARGV[5]  now, ISO 8601 UTC, written as the key's last_used_at
-- ARGV[6]  plans allowed to use API keys, space separated (a key of any other plan is
--          counted as refused for plan)
-- Returns {admitted, remaining, reset_us, status, user_id, email, plan, key_id, credits_used,
-- counted} (counted: the usage field this request was counted in, or ""; lib/credential.lua)
-- where status is "limited", "none", "unknown" or "ok". (On Redis Cluster the window and the
-- credential live in different slots: gate_window.lua and gate_credential.lua, sent together.)

local rate = count_request(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  redis_now_us())
if rate[1] == 0 then
  if ARGV[4] == 'key' and KEYS[5] then
    count_limited(KEYS[2], KEYS[5])
  end
  return {0, 0, rate[3], 'limited'}
end
if ARGV[4] == 'none' then
  return {1, rate[2], rate[3], 'none'}
end
local who = resolve_credential(KEYS[2], KEYS[3], KEYS[4], ARGV[4], ARGV[5], KEYS[5], ARGV[6])
return {1, rate[2], rate[3], unpack(who)}
