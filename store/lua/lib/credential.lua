-- lib/credential.lua: who a presented credential belongs to, shared by gate.lua and
-- gate_credential.lua. Every key it touches is in the owner's slot (names.py).
-- resolve_credential(record, user, credits, kind, now_iso): record is the API key's or the
-- session's hash, user the owner's hash, credits this month's counter; kind is "key" or
-- "session". Returns {"ok", user_id, email, plan, key_id, credits_used} or {"unknown"}.

local function resolve_credential(record, user, credits, kind, now_iso)
  local user_id
  local key_id = ''
  if kind == 'key' then
    local rec = redis.call('HMGET', record, 'user_id', 'id')
    if not rec[1] then
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
  local used = redis.call('GET', credits) or '0'
  return {'ok', user_id, owner[1], owner[2], key_id, tonumber(used)}
end
