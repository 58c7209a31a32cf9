-- lib/window.lua: the per-IP rolling window, shared by gate.lua and gate_window.lua.
-- The window is cut into `slices` sub-windows of equal width, aligned on Redis's clock. A
-- sub-window counts in full until it lies wholly outside the rolling window, so the count is
-- never below the exact one: no rolling window ever admits more than the limit, and a request
-- is refused at most one sub-window (window / slices) earlier than an exact window would
-- allow it. The client's key is one small hash (docs/storage.md):
--   "<sub-window index>" -> requests admitted in it (at most slices + 1 of these),
--   "t" -> their total, "o" -> the cursor: the oldest sub-window kept.
-- With the total and the cursor, a request reads three fields (those two and its own
-- sub-window) instead of every sub-window, and a sub-window that leaves the window is taken
-- out of the total and the hash by the next admission.

local TOTAL, CURSOR = 't', 'o'
local CHUNK = 8 -- sub-windows read per HMGET when walking them oldest first

-- Redis's clock, in microseconds. Redis's, not the caller's: every worker and instance
-- shares one time line.
local function redis_now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A sub-window's field name. (%.0f: Lua's own number to string conversion keeps only 14
-- digits, and with short windows an index can have 15.)
local function sub_window(index)
  return string.format('%.0f', index)
end

-- The counts of sub-windows lo..hi (false where none), and their field names.
local function read_range(key, lo, hi)
  local names = {}
  for i = lo, hi do
    names[#names + 1] = sub_window(i)
  end
  return redis.call('HMGET', key, unpack(names)), names
end

-- The first sub-window in lo..hi at which the counts, summed oldest first, reach `need`
-- (nil if they never do); lo is a sub-window kept. Usually lo itself (one HGET), else read a
-- chunk at a time.
local function reached_at(key, lo, hi, need)
  need = need - (tonumber(redis.call('HGET', key, sub_window(lo))) or 0)
  if need <= 0 then
    return lo
  end
  for start = lo + 1, hi, CHUNK do
    local counts = read_range(key, start, math.min(start + CHUNK - 1, hi))
    for j = 1, #counts do
      if counts[j] then
        need = need - tonumber(counts[j])
        if need <= 0 then
          return start + j - 1
        end
      end
    end
  end
  return nil
end

-- From the cursor (the oldest sub-window kept) up: the sub-windows that have left the window
-- (below `first`), their total, and the oldest that still counts (nil if none). Each index
-- is passed over once as the cursor moves on, so this reads little per request. After a gap
-- longer than the key's TTL allows (a clock that jumped), every field is looked at instead.
local function sweep(key, cursor, first, current, slices)
  local stale, dropped = {}, 0
  if first - cursor > slices + 1 then
    local fields = redis.call('HGETALL', key)
    local oldest = nil
    for j = 1, #fields, 2 do
      local index = tonumber(fields[j])
      if index and index < first then
        stale[#stale + 1] = fields[j]
        dropped = dropped + tonumber(fields[j + 1])
      elseif index then
        oldest = math.min(oldest or index, index)
      end
    end
    return stale, dropped, oldest
  end
  for start = cursor, current, CHUNK do
    local counts, names = read_range(key, start, math.min(start + CHUNK - 1, current))
    for j = 1, #names do
      if counts[j] then
        if start + j - 1 >= first then
          return stale, dropped, start + j - 1
        end
        stale[#stale + 1] = names[j]
        dropped = dropped + tonumber(counts[j])
      end
    end
  end
  return stale, dropped, nil
end

-- The sorted set of admission stamps an earlier version kept under the same name: turned
-- into sub-windows (each stamp still inside the window counted in its own), so an upgrade
-- never forgets an admission.
local function convert_sorted_set(key, width, window_us, now_us)
  local stamps = redis.call('ZRANGEBYSCORE', key, string.format('(%.0f', now_us - window_us),
    '+inf', 'WITHSCORES')
  local counts, total, oldest, newest = {}, 0, nil, nil
  for j = 2, #stamps, 2 do
    local index = math.floor(tonumber(stamps[j]) / width)
    counts[index] = (counts[index] or 0) + 1
    total = total + 1
    oldest = math.min(oldest or index, index)
    newest = math.max(newest or index, index)
  end
  redis.call('DEL', key)
  if total > 0 then
    local fields = {TOTAL, total, CURSOR, sub_window(oldest)}
    for index, n in pairs(counts) do
      fields[#fields + 1] = sub_window(index)
      fields[#fields + 1] = n
    end
    redis.call('HSET', key, unpack(fields))
    redis.call('PEXPIRE', key, math.ceil(((newest + 1) * width + window_us - now_us) / 1000))
  end
end

-- count_request(key, limit, window_ms, slices, now_us) counts one request at now_us and
-- returns {admitted (1|0), remaining, reset_us}: reset_us is how long until the next request
-- would be admitted (0 while some are left).
local function count_request(key, limit, window_ms, slices, now_us)
  local window_us = window_ms * 1000
  local width = math.ceil(window_us / slices)
  local current = math.floor(now_us / width)
  -- Sub-window i spans [i * width, (i + 1) * width): it counts while any instant of it is
  -- inside the window (now - window, now], i.e. while i >= first, and leaves at
  -- (i + 1) * width + window.
  local first = math.floor((now_us - window_us) / width)
  local field = sub_window(current)
  local ok, meta = pcall(redis.call, 'HMGET', key, TOTAL, CURSOR, field)
  if not ok then
    convert_sorted_set(key, width, window_us, now_us)
    meta = redis.call('HMGET', key, TOTAL, CURSOR, field)
  end
  local total = tonumber(meta[1]) or 0
  local cursor = tonumber(meta[2])
  local stale, oldest = {}, cursor
  if cursor and cursor < first then
    local dropped
    stale, dropped, oldest = sweep(key, cursor, first, current, slices)
    total = total - dropped
  end
  if total >= limit then
    -- Refused without writing anything. The next admission comes when enough of the oldest
    -- sub-windows leave to bring the total below the limit. (Not found: sub-windows ahead of
    -- a clock that went back; they leave within a window and a sub-window.)
    local at = oldest and reached_at(key, oldest, math.max(oldest, current), total - limit + 1)
    return {0, 0, at and (at + 1) * width + window_us - now_us or window_us + width}
  end
  -- The new cursor is the oldest sub-window that still counts. (min: a clock that went back,
  -- as after a failover to a server behind, puts the new one below the others.)
  cursor = oldest and math.min(oldest, current) or current
  -- The first write is this HSET: with Redis out of memory (maxmemory + noeviction) it fails
  -- before anything changed, and the app answers 503 instead of admitting the request.
  -- (Redis checks memory on a script's first write only.)
  redis.call('HSET', key, field, (tonumber(meta[3]) or 0) + 1, TOTAL, total + 1,
    CURSOR, sub_window(cursor))
  if #stale > 0 then
    redis.call('HDEL', key, unpack(stale))
  end
  -- The key lives as long as its newest sub-window counts.
  redis.call('PEXPIRE', key, math.ceil(((current + 1) * width + window_us - now_us) / 1000))
  local remaining = limit - total - 1
  local reset_us = 0
  if remaining == 0 then -- the oldest sub-window's leaving frees one
    reset_us = (cursor + 1) * width + window_us - now_us
  end
  return {1, remaining, reset_us}
end
