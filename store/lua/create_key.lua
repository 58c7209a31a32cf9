-- create_key.lua: the plan check, the 5-key cap and the write, as one atomic step.
-- KEYS[1]  the user's hash
-- KEYS[2]  the user's key index (hash: key id -> digest)
-- KEYS[3]  the new key's record (hash, named by the key's SHA-256 digest)
-- ARGV[1]  most keys a user may hold
-- ARGV[2]  key id
-- ARGV[3]  user id
-- ARGV[4]  name
-- ARGV[5]  display prefix (genmb_sk_ + 4 characters)
-- ARGV[6]  created_at, ISO 8601 UTC
-- ARGV[7]  digest
-- ARGV[8]  plans allowed to hold keys, space separated
-- Returns "ok", "no_user", "plan_required", "key_limit_reached" or "collision".

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
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 'collision'
end
redis.call('HSET', KEYS[3], 'id', ARGV[2], 'user_id', ARGV[3], 'name', ARGV[4],
  'prefix', ARGV[5], 'created_at', ARGV[6])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[7])
return 'ok'
