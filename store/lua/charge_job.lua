-- charge_job.lua: check the app, check and charge credits, record the job: all or nothing.
-- KEYS[1]  the user's credits counter for this month
-- KEYS[2]  the user's apps (hash: app id -> JSON)
-- KEYS[3]  the app's job list
-- ARGV[1]  cost in credits
-- ARGV[2]  the plan's monthly allowance
-- ARGV[3]  app id
-- ARGV[4]  the job record, JSON
-- ARGV[5]  counter lifetime in seconds (past the end of the month)
-- ARGV[6]  how many job records to keep per app
-- Returns {"ok", used} or {"not_found", 0} or {"insufficient_credits", used}.

if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 0 then
  return {'not_found', 0}
end
local cost = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + cost > tonumber(ARGV[2]) then
  return {'insufficient_credits', used}
end
used = redis.call('INCRBY', KEYS[1], cost)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
return {'ok', used}
