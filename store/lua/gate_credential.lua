-- uses: usage credential
-- gate_credential.lua: the credential alone (Redis Cluster: the owner's slot).
-- KEYS[1] the key's or session's record, KEYS[2] the owner's hash, KEYS[3] the credits
-- counter, KEYS[4] (an API key, usage counting on) the key's usage hash; ARGV[1] kind ("key"
-- or "session"), ARGV[2] now (ISO 8601 UTC), ARGV[3] plans allowed to use keys.
-- Returns {"ok", user_id, email, plan, key_id, credits_used} or {"unknown"}.
-- This script does not know the window's answer (gate_window.lua runs on another node in the
-- same round): a key's request the window refuses is counted here as admitted (the total
-- per day is exact; the split between admitted and rate limited is not, on Cluster only).

return resolve_credential(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], KEYS[4], ARGV[3])
