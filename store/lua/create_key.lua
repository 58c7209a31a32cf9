-- create_key.lua: the plan check, the 5-key cap, the unique name and the write, as one
-- atomic step.
-- KEYS[1]  the user's hash
-- KEYS[2]  the user's key index (hash: key id -> digest)
-- KEYS[3]  the new key's record (hash, named by the key's SHA-256 digest)
-- KEYS[4]  the user's rolling keys (hash: key id -> "<digest> <expires_ms>")
-- KEYS[5..] the records of the user's keys as the caller read both indexes (live, then
--           rolling, in ARGV[9]'s order): their names are compared with the new one
-- ARGV[1]  most keys a user may hold
-- ARGV[2]  key id
-- ARGV[3]  user id
-- ARGV[4]  name
-- ARGV[5]  display prefix (genmb_sk_ + 4 characters)
-- ARGV[6]  created_at, ISO 8601 UTC
-- ARGV[7]  digest
-- ARGV[8]  plans allowed to hold keys, space separated
-- ARGV[9]  the digests the caller read (KEYS[5..]'s), space separated
-- Returns "ok", "no_user", "plan_required", "key_limit_reached", "stale" (a key was added
-- since the caller read the indexes: read again), "duplicate_name" or "collision".

local plan = redis.call('HGET', KEYS[1], 'plan')
if not plan then
  return 'no_user'
end
if not string.find(' ' .. ARGV[8] .. ' ', ' ' .. plan .. ' ', 1, true) then
  return 'plan_required'
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[1]) then
  return 'key_limit_reached'
end
-- The records to compare are named by digests only the indexes know: the caller read them
-- and passed the records in KEYS. A key added since (a racing create or roll) is one the
-- caller did not pass: it reads again. A key gone since only has no record any more.
local read = {}
for digest in string.gmatch(ARGV[9], '%S+') do
  read[digest] = true
end
for _, digest in ipairs(redis.call('HVALS', KEYS[2])) do
  if not read[digest] then
    return 'stale'
  end
end
for _, entry in ipairs(redis.call('HVALS', KEYS[4])) do
  if not read[string.match(entry, '^(%S+)')] then
    return 'stale'
  end
end
for i = 5, #KEYS do
  if redis.call('HGET', KEYS[i], 'name') == ARGV[4] then
    return 'duplicate_name'
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 'collision'
end
redis.call('HSET', KEYS[3], 'id', ARGV[2], 'user_id', ARGV[3], 'name', ARGV[4],
  'prefix', ARGV[5], 'created_at', ARGV[6])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[7])
return 'ok'
