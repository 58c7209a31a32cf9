-- create_app.lua: the per-plan app cap and the write, as one atomic step.
-- KEYS[1]  the user's hash
-- KEYS[2]  the user's apps (hash: app id -> JSON)
-- ARGV[1]  app id
-- ARGV[2]  the app record, JSON
-- ARGV[3..] pairs: plan name, most apps a user on that plan may hold
-- Returns "ok", "no_user" or "app_limit_reached" (also for a plan missing from the pairs).

local plan = redis.call('HGET', KEYS[1], 'plan')
if not plan then
  return 'no_user'
end
local cap = 0
for i = 3, #ARGV - 1, 2 do
  if ARGV[i] == plan then
    cap = tonumber(ARGV[i + 1])
  end
end
if redis.call('HLEN', KEYS[2]) >= cap then
  return 'app_limit_reached'
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'ok'
