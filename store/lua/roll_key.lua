-- uses: usage
-- roll_key.lua: replace a key with a new one of the same name; the old one keeps working for
-- the overlap (then its record expires by itself), as one atomic step.
-- KEYS[1]  the user's hash
-- KEYS[2]  the user's key index (hash: key id -> digest; the cap counts it)
-- KEYS[3]  the user's rolling keys (hash: key id -> "<digest> <expires_ms>")
-- KEYS[4]  the old key's record
-- KEYS[5]  the new key's record
-- KEYS[6]  the user's recent revocations (an overlap of 0 revokes the old key at once)
-- KEYS[7]  the old key's usage counters (deleted with it when the overlap is 0; after an
--          overlap they expire by their own TTL)
-- ARGV[1]  old key id          ARGV[2] old digest (read by the caller from the index)
-- ARGV[3]  new key id          ARGV[4] user id
-- ARGV[5]  new display prefix  ARGV[6] created_at, ISO 8601 UTC
-- ARGV[7]  new digest          ARGV[8] plans allowed to hold keys, space separated
-- ARGV[9]  overlap in seconds (0 = the old key is refused now)
-- ARGV[10] how long a revocation is remembered, in seconds
-- Returns {"ok", name, expires_ms} (expires_ms 0 for no overlap), or {refusal}: "no_user",
-- "plan_required", "not_found", "rolling" (the key is in an overlap already),
-- "predecessor_rolling" (the key's own predecessor is still in its overlap) or "collision".
-- The cap is not checked: the new key takes the old one's place in the index, so a roll at
-- the cap works, and a rolling key is out of the index (it does not count).

local plan = redis.call('HGET', KEYS[1], 'plan')
if not plan then
  return {'no_user'}
end
if not string.find(' ' .. ARGV[8] .. ' ', ' ' .. plan .. ' ', 1, true) then
  return {'plan_required'}
end
local _, now_ms = redis_now()
local digest = redis.call('HGET', KEYS[2], ARGV[1])
if not digest or digest ~= ARGV[2] then
  local entry = redis.call('HGET', KEYS[3], ARGV[1])
  if entry and tonumber(string.match(entry, ' (%d+)$')) > now_ms then
    return {'rolling'}
  end
  return {'not_found'}
end
local old = redis.call('HMGET', KEYS[4], 'name', 'prefix', 'rolled_from')
if not old[1] then
  return {'not_found'}
end
-- At most one rolling key per key: a key rolled from another may be rolled again only once
-- its predecessor's overlap is over (or it was revoked).
if old[3] then
  local entry = redis.call('HGET', KEYS[3], old[3])
  if entry and tonumber(string.match(entry, ' (%d+)$')) > now_ms then
    return {'predecessor_rolling'}
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {'collision'}
end
redis.call('HSET', KEYS[5], 'id', ARGV[3], 'user_id', ARGV[4], 'name', old[1],
  'prefix', ARGV[5], 'created_at', ARGV[6], 'rolled_from', ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[7])
-- Entries of keys whose overlap is over go (their records expired by themselves).
local rolling = redis.call('HGETALL', KEYS[3])
for i = 1, #rolling, 2 do
  if tonumber(string.match(rolling[i + 1], ' (%d+)$')) <= now_ms then
    redis.call('HDEL', KEYS[3], rolling[i])
  end
end
local overlap_ms = tonumber(ARGV[9]) * 1000
if overlap_ms == 0 then
  redis.call('DEL', KEYS[4], KEYS[7])
  redis.call('HSET', KEYS[6], ARGV[1], old[2] or '')
  redis.call('EXPIRE', KEYS[6], ARGV[10])
  return {'ok', old[1], 0}
end
local expires_ms = string.format('%.0f', now_ms + overlap_ms)
redis.call('HSET', KEYS[4], 'expires_ms', expires_ms)
redis.call('PEXPIREAT', KEYS[4], expires_ms)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. ' ' .. expires_ms)
-- Overlaps are at most 7 days: the index of rolling keys outlives every one of them.
redis.call('EXPIRE', KEYS[3], 8 * 86400)
return {'ok', old[1], expires_ms}
