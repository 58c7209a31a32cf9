-- create_user.lua: claim an email and write the user, or do nothing.
-- KEYS[1]  the email index (string: email -> user id)
-- KEYS[2]  the new user's hash
-- ARGV     id, email, plan, password_hash, created_at
-- Returns 1 when created, 0 when the email is taken.

if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then
  return 0
end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'email', ARGV[2], 'plan', ARGV[3],
  'password_hash', ARGV[4], 'created_at', ARGV[5])
return 1
