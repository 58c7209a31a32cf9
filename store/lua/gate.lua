-- gate.lua: the one round trip behind every counted request.
-- KEYS[1]  sorted set of the client IP's admitted request stamps (the rolling window)
-- KEYS[2]  (optional) the credential record: an API key hash or a session hash
-- ARGV[1]  limit: requests admitted in any window
-- ARGV[2]  window length in milliseconds
-- ARGV[3]  a unique member for this request (random, chosen by the caller)
-- ARGV[4]  credential kind: "none", "key" or "session"
-- ARGV[5]  now, ISO 8601 UTC, written as the key's last_used_at
-- ARGV[6]  user hash key prefix (the user id read from the record is appended)
-- ARGV[7]  credits counter prefix ("<user id>:<month>" is appended)
-- ARGV[8]  the current month, YYYY-MM (UTC)
-- Returns {admitted, remaining, reset_us, status, user_id, email, plan, key_id, credits_used}
-- where status is "limited", "none", "unknown" or "ok"; reset_us is how long until the next
-- request would be admitted.
-- The user and credits keys are derived from the record, so this script needs a single
-- Redis (or Sentinel), not Redis Cluster.

local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2]) * 1000
-- Redis's clock, not the caller's: every worker and instance shares one time line.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- Stamps newer than this are inside the window. (Formatted with %.0f: Lua's own number to
-- string conversion keeps only 14 digits, and microsecond stamps have 16.)
local inside = string.format('(%.0f', now - window_us)
local count = redis.call('ZCOUNT', KEYS[1], inside, '+inf')
if count >= limit then
  -- Refused without writing anything. The next admission comes when enough stamps leave the
  -- window to bring the count below the limit.
  local entry = redis.call('ZRANGEBYSCORE', KEYS[1], inside, '+inf', 'WITHSCORES',
    'LIMIT', count - limit, 1)
  return {0, 0, tonumber(entry[2]) + window_us - now, 'limited'}
end
-- The first write is the ZADD: with Redis out of memory (maxmemory + noeviction) it fails
-- before anything changed, and the app answers 503 instead of admitting the request.
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window_us))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local remaining = limit - count - 1
local reset_us = 0
if remaining == 0 then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], inside, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  reset_us = tonumber(oldest[2]) + window_us - now
end

local kind = ARGV[4]
if kind == 'none' then
  return {1, remaining, reset_us, 'none'}
end

local user_id
local key_id = ''
if kind == 'key' then
  local rec = redis.call('HMGET', KEYS[2], 'user_id', 'id')
  if not rec[1] then
    return {1, remaining, reset_us, 'unknown'}
  end
  -- Same script as the existence check: a revoked key can never be brought back by this write.
  redis.call('HSET', KEYS[2], 'last_used_at', ARGV[5])
  user_id = rec[1]
  key_id = rec[2]
else
  user_id = redis.call('HGET', KEYS[2], 'user_id')
  if not user_id then
    return {1, remaining, reset_us, 'unknown'}
  end
end

local user = redis.call('HMGET', ARGV[6] .. user_id, 'email', 'plan')
if not user[1] then
  return {1, remaining, reset_us, 'unknown'}
end
local used = redis.call('GET', ARGV[7] .. user_id .. ':' .. ARGV[8]) or '0'
return {1, remaining, reset_us, 'ok', user_id, user[1], user[2], key_id, tonumber(used)}
