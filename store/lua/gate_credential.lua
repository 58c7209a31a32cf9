-- uses: usage credential
-- gate_credential.lua: the credential alone (Redis Cluster: the owner's slot).
-- KEYS[1] the key's or session's record, KEYS[2] the owner's hash, KEYS[3] the credits
-- counter, KEYS[4] (an API key, usage counting on) the key's usage hash; ARGV[1] kind ("key"
-- or "session"), ARGV[2] now (ISO 8601 UTC), ARGV[3] plans allowed to use keys.
-- Returns {"ok", user_id, email, plan, key_id, credits_used, counted} or {"unknown"}.
-- This script does not know the window's answer (gate_window.lua runs on another node in the
-- same round): it counts a key's request by the plan alone, and returns the usage field it
-- counted, so that a request the window refused is moved to "rate limited" afterwards
-- (usage_refused.lua, one more round trip on that path only: store/gate.py).

return resolve_credential(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], KEYS[4], ARGV[3])
