"""Server-side sessions: the cookie holds a random token, Redis holds only its digest."""

from __future__ import annotations

import hashlib
import secrets

from store.client import Storage
from store.clock import iso, utcnow


def token_digest(token: str) -> str:
    """The SHA-256 hex digest that names a session in Redis."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(storage: Storage, user_id: str, lifetime_seconds: int) -> str:
    """Start a session for a user and return its cookie token."""
    token = secrets.token_urlsafe(32)
    key = storage.names.session(token_digest(token))
    with storage.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"user_id": user_id, "created_at": iso(utcnow())})
        pipe.expire(key, lifetime_seconds)
        pipe.execute()
    return token


def destroy(storage: Storage, token: str) -> None:
    """End a session everywhere: every worker reads the same record, now gone."""
    storage.redis.delete(storage.names.session(token_digest(token)))
