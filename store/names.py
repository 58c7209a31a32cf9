"""Every Redis key name the service uses, defined once; docs/storage.md is the table of them.

One layout for a single Redis, Sentinel and Cluster. Everything that must change together is
under the user's hash tag `{<user id>}`, so it lives in one cluster slot and one Lua script can
touch it atomically: the user's record, key index, key records, sessions, apps, job lists,
credits counters and recent revocations. What is found by something other than the user id
(an email, a key or session digest, a client IP) has a small index or record of its own, in
its own slot. Records are hashes; indexes are explicit hashes or strings (no request ever runs
KEYS or SCAN; only the operator's `keys revoke --prefix/--id` scans the key records).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyNames:
    """Builds key names under one prefix, so tests and tenants can share a server safely."""

    prefix: str = "genmb"

    def _user_tagged(self, user_id: str, *rest: str) -> str:
        """A name in the user's slot: prefix:user:{<user id>}[:rest...]."""
        return ":".join((f"{self.prefix}:user:{{{user_id}}}", *rest))

    def user(self, user_id: str) -> str:
        """Hash: id, email, plan, password_hash, created_at."""
        return self._user_tagged(user_id)

    def user_by_email(self, email: str) -> str:
        """String: the user id owning this (lower-cased) email. Written last at signup."""
        return f"{self.prefix}:email:{email}"

    def user_keys(self, user_id: str) -> str:
        """Hash: key id -> key digest, the user's live API keys (its length is the cap)."""
        return self._user_tagged(user_id, "keys")

    def api_key(self, user_id: str, digest: str) -> str:
        """Hash: id, user_id, name, prefix, created_at, last_used_at; named by SHA-256 digest."""
        return self._user_tagged(user_id, "apikey", digest)

    def key_owner(self, digest: str) -> str:
        """String: the user id a key digest belongs to (never changes; may outlive the key)."""
        return f"{self.prefix}:keyowner:{digest}"

    def user_rolling_keys(self, user_id: str) -> str:
        """Hash: key id -> "<digest> <expires_ms>", keys rolled and still in their overlap
        (out of the cap's index; entries whose record expired are dropped by the next roll)."""
        return self._user_tagged(user_id, "rolling")

    def key_usage(self, user_id: str, digest: str) -> str:
        """Hash: "<YYYYMMDD>:a|l|p" -> requests of one key that UTC day (admitted, rate
        limited, refused for plan); named by the key's digest, which the gate's caller knows."""
        return self._user_tagged(user_id, "usage", digest)

    def user_revoked_keys(self, user_id: str) -> str:
        """Hash: key id -> display prefix of keys revoked lately (a retried revoke answers 204)."""
        return self._user_tagged(user_id, "revoked")

    def session(self, user_id: str, token_digest: str) -> str:
        """Hash: user_id, created_at; named by the SHA-256 digest of the cookie token."""
        return self._user_tagged(user_id, "session", token_digest)

    def session_rescue(self, user_id: str, token_digest: str) -> str:
        """The session's own small rolling window for the rescue routes (same structure as
        ip_window), used only once the client IP's window is spent."""
        return self._user_tagged(user_id, "rescue", token_digest)

    def session_owner(self, token_digest: str) -> str:
        """String: the user id a session digest belongs to (expires with the session)."""
        return f"{self.prefix}:sessionowner:{token_digest}"

    def credential(self, kind: str, user_id: str, digest: str) -> str:
        """The record a presented credential names: an API key's or a session's."""
        return self.api_key(user_id, digest) if kind == "key" else self.session(user_id, digest)

    def credential_owner(self, kind: str, digest: str) -> str:
        """The owner index of a presented credential."""
        return self.key_owner(digest) if kind == "key" else self.session_owner(digest)

    def user_apps(self, user_id: str) -> str:
        """Hash: app id -> JSON app record."""
        return self._user_tagged(user_id, "apps")

    def app_jobs(self, user_id: str, app_id: str) -> str:
        """List: JSON job records of one app, newest last."""
        return self._user_tagged(user_id, "app", app_id, "jobs")

    def credits(self, user_id: str, month: str) -> str:
        """String counter: credits used by the user in a calendar month (YYYY-MM, UTC)."""
        return self._user_tagged(user_id, "credits", month)

    def security_log(self, user_id: str) -> str:
        """Stream: the account's security events, oldest first (capped by count and age)."""
        return self._user_tagged(user_id, "security_log")

    def security_alerts(self, user_id: str) -> str:
        """Hash: stream event id -> JSON event, the leaked-key banners not yet dismissed."""
        return self._user_tagged(user_id, "security_alerts")

    def security_throttle(self, user_id: str, what: str) -> str:
        """String with a short TTL: one security event of this kind was recorded lately."""
        return self._user_tagged(user_id, "throttle", what)

    def api_key_pattern(self) -> str:
        """SCAN pattern of every key record (operator commands only, never a request)."""
        return f"{self.prefix}:user:{{*}}:apikey:*"

    def readiness(self) -> str:
        """String: /readyz's probe write (expires after 10 s)."""
        return f"{self.prefix}:readyz"

    def ip_window(self, client_ip: str) -> str:
        """Hash: sub-window index -> requests of one client IP admitted in it (lib/window.lua)."""
        return f"{self.prefix}:rl:ip:{client_ip}"
