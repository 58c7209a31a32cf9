-- lib/usage.lua: per-key request counters by UTC day and outcome, and Redis's clock.
-- One hash per key, named by the key's digest (names.py: usage), fields "<YYYYMMDD>:<o>" where
-- <o> is a (admitted), l (rate limited) or p (refused for plan). The day comes from Redis's
-- clock (TIME), so every worker and instance agrees where a day ends.

local USAGE_KEEP_DAYS = 91 -- days of fields kept (the API shows at most 90)
local USAGE_TTL_SECONDS = USAGE_KEEP_DAYS * 86400

-- Redis's clock as {seconds, milliseconds since the epoch}.
local function redis_now()
  local t = redis.call('TIME')
  local seconds = tonumber(t[1])
  return seconds, seconds * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The UTC calendar day of an epoch second, as YYYYMMDD (H. Hinnant's civil_from_days).
local function utc_day(seconds)
  local z = math.floor(seconds / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then
    y = y + 1
  end
  return string.format('%04d%02d%02d', y, m, d)
end

-- Count one request of `outcome` for the key whose usage hash is `key`, on the day of
-- `seconds`. The first count of a day and outcome renews the TTL (so counters outlive the
-- key's last use by USAGE_KEEP_DAYS) and drops every field older than USAGE_KEEP_DAYS days,
-- whatever the hash's length: it never holds more than USAGE_KEEP_DAYS days (3 fields a day),
-- however long the key lives. That walk (at most 3 x USAGE_KEEP_DAYS + 1 fields) runs at most
-- three times a day per key: a field is created once a day and never deleted before it is
-- old (usage_refused.lua moves a count without deleting its field); every other request is
-- HEXISTS + HINCRBY. Returns the field counted ("<YYYYMMDD>:<outcome>").
local function count_usage(key, outcome, seconds)
  local day = utc_day(seconds)
  local field = day .. ':' .. outcome
  local created = redis.call('HEXISTS', key, field) == 0
  redis.call('HINCRBY', key, field, 1)
  if created then
    redis.call('EXPIRE', key, USAGE_TTL_SECONDS)
    local oldest = utc_day(seconds - (USAGE_KEEP_DAYS - 1) * 86400)
    local stale = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if string.sub(field, 1, 8) < oldest then
        stale[#stale + 1] = field
      end
    end
    if #stale > 0 then
      redis.call('HDEL', key, unpack(stale))
    end
  end
  return field
end
