-- uses: window usage credential
-- session_rescue.lua: a logged-in session's small allowance of its own, asked only after the
-- client IP's window refused a request to one of the rescue routes (load the account, list
-- the keys, revoke one), so a runaway script cannot lock its owner out of the key page.
-- Every key is in the session owner's slot.
-- KEYS[1]  the session's rescue window (a hash of sub-window counters, lib/window.lua)
-- KEYS[2]  the session's record
-- KEYS[3]  the owner's user hash
-- KEYS[4]  the owner's credits counter for this month
-- ARGV[1]  limit: rescue requests admitted in any window
-- ARGV[2]  window length in milliseconds
-- ARGV[3]  sub-windows per window (store/gate.py WINDOW_SLICES)
-- ARGV[4]  now, ISO 8601 UTC
-- ARGV[5]  plans allowed to use API keys, space separated
-- Returns {admitted, remaining, reset_us, status, user_id, email, plan, key_id, credits_used,
-- counted} (counted: the usage field this request was counted in, or ""; lib/credential.lua)
-- as gate.lua does; status "unknown" (a session that is not live) counts nothing.

local who = resolve_credential(KEYS[2], KEYS[3], KEYS[4], 'session', ARGV[4], nil, ARGV[5])
if who[1] ~= 'ok' then
  return {0, 0, 0, 'unknown'}
end
local rate = count_request(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  redis_now_us())
if rate[1] == 0 then
  return {0, 0, rate[3], 'limited'}
end
return {1, rate[2], rate[3], unpack(who)}
