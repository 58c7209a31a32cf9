-- lib/credential.lua: who a presented credential belongs to, shared by gate.lua and
-- gate_credential.lua. Every key it touches is in the owner's slot (names.py). Needs
-- lib/usage.lua (redis_now, count_usage).
-- resolve_credential(record, user, credits, kind, now_iso, usage, key_plans): record is the
-- API key's or the session's hash, user the owner's hash, credits this month's counter; kind
-- is "key" or "session"; usage (or nil: counting off) the key's usage hash; key_plans the
-- plans allowed to use keys, space separated. Returns
-- {"ok", user_id, email, plan, key_id, credits_used, counted} or {"unknown"}, where counted is
-- the usage field this request was counted in ("<YYYYMMDD>:<outcome>"), or "" when not counted.

-- Whether a rolled key's overlap is over (expires_ms: its record's field, or nil), on
-- Redis's clock: the record's own TTL removes it at the same moment, this refuses it even if
-- the expiry has not been carried out yet.
local function rolled_out(expires_ms)
  if not expires_ms then
    return false
  end
  local _, now_ms = redis_now()
  return now_ms >= tonumber(expires_ms)
end

local function plan_allows_keys(plan, key_plans)
  return string.find(' ' .. key_plans .. ' ', ' ' .. plan .. ' ', 1, true) ~= nil
end

-- A request the window refused, made with a key: counted as rate limited when the key is
-- live (its record is read, nothing else is written). pcall: a Redis out of memory still
-- answers this request 429, uncounted, instead of an error.
local function count_limited(record, usage)
  local rec = redis.call('HMGET', record, 'user_id', 'expires_ms')
  if rec[1] and not rolled_out(rec[2]) then
    pcall(count_usage, usage, 'l', (redis_now()))
  end
end

local function resolve_credential(record, user, credits, kind, now_iso, usage, key_plans)
  local user_id
  local key_id = ''
  if kind == 'key' then
    local rec = redis.call('HMGET', record, 'user_id', 'id', 'expires_ms')
    if not rec[1] or rolled_out(rec[3]) then
      return {'unknown'}
    end
    -- Same script as the existence check: a revoked key can never be brought back by this.
    redis.call('HSET', record, 'last_used_at', now_iso)
    user_id = rec[1]
    key_id = rec[2]
  else
    user_id = redis.call('HGET', record, 'user_id')
    if not user_id then
      return {'unknown'}
    end
  end
  local owner = redis.call('HMGET', user, 'email', 'plan')
  if not owner[1] then
    return {'unknown'}
  end
  local counted = ''
  if usage then
    local outcome = plan_allows_keys(owner[2], key_plans) and 'a' or 'p'
    counted = count_usage(usage, outcome, (redis_now()))
  end
  local used = redis.call('GET', credits) or '0'
  return {'ok', user_id, owner[1], owner[2], key_id, tonumber(used), counted}
end
