-- lib/window.lua: the per-IP rolling window, shared by gate.lua and gate_window.lua.
-- count_request(key, limit, window_ms, member) counts one request in the sorted set `key` of
-- admitted request stamps (microseconds, Redis's clock) and returns
-- {admitted (1|0), remaining, reset_us}: reset_us is how long until the next request would be
-- admitted (0 while some are left).

local function count_request(key, limit, window_ms, member)
  local window_us = window_ms * 1000
  -- Redis's clock, not the caller's: every worker and instance shares one time line.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  -- Stamps newer than this are inside the window. (Formatted with %.0f: Lua's own number to
  -- string conversion keeps only 14 digits, and microsecond stamps have 16.)
  local inside = string.format('(%.0f', now - window_us)
  local count = redis.call('ZCOUNT', key, inside, '+inf')
  if count >= limit then
    -- Refused without writing anything. The next admission comes when enough stamps leave
    -- the window to bring the count below the limit.
    local entry = redis.call('ZRANGEBYSCORE', key, inside, '+inf', 'WITHSCORES',
      'LIMIT', count - limit, 1)
    return {0, 0, tonumber(entry[2]) + window_us - now}
  end
  -- The first write is the ZADD: with Redis out of memory (maxmemory + noeviction) it fails
  -- before anything changed, and the app answers 503 instead of admitting the request.
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - window_us))
  redis.call('PEXPIRE', key, window_ms)
  local remaining = limit - count - 1
  local reset_us = 0
  if remaining == 0 then
    local oldest = redis.call('ZRANGEBYSCORE', key, inside, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    reset_us = tonumber(oldest[2]) + window_us - now
  end
  return {1, remaining, reset_us}
end
