-- delete_key.lua: revoke one of a user's keys; the record and the index entry go together.
-- KEYS[1]  the user's key index (hash: key id -> digest)
-- ARGV[1]  key id
-- ARGV[2]  key record prefix (the digest read from the index is appended)
-- Returns the revoked key's display prefix, or false when the user has no such key.

local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then
  return false
end
local record = ARGV[2] .. digest
local prefix = redis.call('HGET', record, 'prefix') or ''
redis.call('DEL', record)
redis.call('HDEL', KEYS[1], ARGV[1])
return prefix
