-- set_plan.lua: change a user's plan, found by email, only if the user exists.
-- KEYS[1]  the email index (string: email -> user id)
-- ARGV[1]  user hash key prefix (the user id is appended)
-- ARGV[2]  the new plan
-- Returns the user id, or false when no user has that email.

local user_id = redis.call('GET', KEYS[1])
if not user_id then
  return false
end
redis.call('HSET', ARGV[1] .. user_id, 'plan', ARGV[2])
return user_id
