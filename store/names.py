"""Every Redis key name the service uses, defined once.

Records are hashes; indexes are explicit sets or hashes (the service never runs KEYS or SCAN).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyNames:
    """Builds key names under one prefix, so tests and tenants can share a server safely."""

    prefix: str = "genmb"

    def user(self, user_id: str) -> str:
        """Hash: id, email, plan, password_hash, created_at."""
        return f"{self.prefix}:user:{user_id}"

    @property
    def user_prefix(self) -> str:
        """Prefix the gate script appends a user id to (it learns the id from the key record)."""
        return f"{self.prefix}:user:"

    def user_by_email(self, email: str) -> str:
        """String: the user id owning this (lower-cased) email."""
        return f"{self.prefix}:email:{email}"

    def user_keys(self, user_id: str) -> str:
        """Hash: key id -> key digest, the user's live API keys (its length is the cap)."""
        return f"{self.prefix}:user:{user_id}:keys"

    def user_revoked_keys(self, user_id: str) -> str:
        """Hash: key id -> display prefix of keys revoked lately (a retried revoke answers 204)."""
        return f"{self.prefix}:user:{user_id}:revoked"

    def api_key(self, digest: str) -> str:
        """Hash: id, user_id, name, prefix, created_at, last_used_at; found by SHA-256 digest."""
        return f"{self.prefix}:apikey:{digest}"

    @property
    def api_key_prefix(self) -> str:
        """Prefix the delete script appends a digest to."""
        return f"{self.prefix}:apikey:"

    def session(self, token_digest: str) -> str:
        """Hash: user_id, created_at; found by the SHA-256 digest of the cookie token."""
        return f"{self.prefix}:session:{token_digest}"

    def user_apps(self, user_id: str) -> str:
        """Hash: app id -> JSON app record."""
        return f"{self.prefix}:user:{user_id}:apps"

    def app_jobs(self, user_id: str, app_id: str) -> str:
        """List: JSON job records of one app, newest last."""
        return f"{self.prefix}:user:{user_id}:app:{app_id}:jobs"

    def credits(self, user_id: str, month: str) -> str:
        """String counter: credits used by the user in a calendar month (YYYY-MM, UTC)."""
        return f"{self.prefix}:credits:{user_id}:{month}"

    @property
    def credits_prefix(self) -> str:
        """Prefix the gate script appends "<user id>:<month>" to."""
        return f"{self.prefix}:credits:"

    def ip_window(self, client_ip: str) -> str:
        """Sorted set: admitted request stamps of one client IP in the rolling window."""
        return f"{self.prefix}:rl:ip:{client_ip}"

    @property
    def limiter_prefix(self) -> str:
        """Key prefix handed to flask-limiter for the per-endpoint limits."""
        return f"{self.prefix}:limiter"
