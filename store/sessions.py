"""Server-side sessions: the cookie holds a random token, Redis holds only its digest."""

from __future__ import annotations

import secrets

from store.client import Storage
from store.clock import iso, utcnow
from store.digest import digest


def create(storage: Storage, user_id: str, lifetime_seconds: int) -> str:
    """Start a session for a user and return its cookie token."""
    token = secrets.token_urlsafe(32)
    token_digest = digest(token)
    names = storage.names
    with storage.redis.pipeline(transaction=True) as pipe:  # one slot: the user's
        pipe.hset(
            names.session(user_id, token_digest),
            mapping={"user_id": user_id, "created_at": iso(utcnow())},
        )
        pipe.expire(names.session(user_id, token_digest), lifetime_seconds)
        pipe.execute()
    # The owner index (its own slot) is written last, and dies with the session.
    storage.redis.set(names.session_owner(token_digest), user_id, ex=lifetime_seconds)
    return token


def exists(storage: Storage, token: str) -> bool:
    """Whether the token names a live session (the gate does this itself on /api)."""
    token_digest = digest(token)
    owner = storage.owner_of("session", token_digest)
    return bool(owner and storage.redis.exists(storage.names.session(owner, token_digest)))


def destroy(storage: Storage, token: str) -> None:
    """End a session everywhere: every worker reads the same record, now gone."""
    token_digest = digest(token)
    owner = storage.owner_of("session", token_digest)
    if owner:
        storage.redis.delete(storage.names.session(owner, token_digest))
    storage.redis.delete(storage.names.session_owner(token_digest))
