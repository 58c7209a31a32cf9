-- delete_key.lua: revoke one of a user's keys; the record and the index entry go together.
-- KEYS[1]  the user's key index (hash: key id -> digest)
-- KEYS[2]  the user's recent revocations (hash: key id -> display prefix)
-- KEYS[3]  the user's rolling keys (hash: key id -> "<digest> <expires_ms>")
-- KEYS[4]  (when the caller found the key in either index) the key's record
-- KEYS[5]  (with KEYS[4]) the key's usage counters, which go with it
-- ARGV[1]  key id
-- ARGV[2]  the digest the caller read from the index ("" when it found none)
-- ARGV[3]  how long a revocation is remembered, in seconds
-- Returns {"revoked", prefix} or {"already", prefix} (a repeated revoke of a key the user
-- held), or false when the user never had such a key (or revoked it too long ago).
-- A rolling key (in its overlap) is revoked like any other: the rest of its overlap is lost.

local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then
  local entry = redis.call('HGET', KEYS[3], ARGV[1])
  if entry and KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then
    digest = string.match(entry, '^(%S+)')
  end
end
if not digest or digest ~= ARGV[2] or not KEYS[4] then
  local prefix = redis.call('HGET', KEYS[2], ARGV[1])
  if not prefix then
    return false
  end
  -- Written again, unchanged: the caller's WAIT counts only its own connection's writes, so
  -- a retried revoke must write for its WAIT to cover the revocation (docs/deploy.md).
  redis.call('HSET', KEYS[2], ARGV[1], prefix)
  return {'already', prefix}
end
local prefix = redis.call('HGET', KEYS[4], 'prefix') or ''
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], prefix)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {'revoked', prefix}
