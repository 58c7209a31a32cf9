-- uses: credential
-- gate_credential.lua: the credential alone (Redis Cluster: the owner's slot).
-- KEYS[1] the key's or session's record, KEYS[2] the owner's hash, KEYS[3] the credits
-- counter; ARGV[1] kind ("key" or "session"), ARGV[2] now (ISO 8601 UTC).
-- Returns {"ok", user_id, email, plan, key_id, credits_used} or {"unknown"}.

return resolve_credential(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
