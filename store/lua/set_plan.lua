-- set_plan.lua: change a user's plan, only if the user exists.
-- KEYS[1]  the user's hash
-- ARGV[1]  the new plan
-- Returns 1, or 0 when there is no such user.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'plan', ARGV[1])
return 1
