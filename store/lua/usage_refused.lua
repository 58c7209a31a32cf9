-- usage_refused.lua: Redis Cluster only. The window refused a request (429) whose key the
-- credential script had already counted by the plan alone (gate_credential.lua runs on
-- another node in the same round, without the window's answer): move that one count to
-- "rate limited", on the same day, as gate.lua counts it on a single Redis.
-- KEYS[1] the key's usage hash; ARGV[1] the field counted ("<YYYYMMDD>:<outcome>").
-- Returns 1 when moved, 0 when the field held nothing to move (the hash expired meanwhile).
-- The moved-from field stays, at 0 if it must: deleting it would empty the hash (losing its
-- TTL) or make the next count look like the day's first (lib/usage.lua's walk).

if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') < 1 then
  return 0
end
redis.call('HINCRBY', KEYS[1], string.sub(ARGV[1], 1, 8) .. ':l', 1)
redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
return 1
