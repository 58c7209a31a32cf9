"""Users: a hash per user and an email index; passwords only as scrypt hashes."""

from __future__ import annotations

from dataclasses import dataclass

from security.passwords import hash_password, verify_password
from store.client import Storage
from store.clock import iso, new_id, utcnow
from store.durability import Replication, run_replicated
from store.errors import EmailTaken, NotFound

PLANS = ("free", "pro", "business")


@dataclass(frozen=True)
class User:
    """The public face of a user."""

    id: str
    email: str
    plan: str


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively."""
    return email.strip().lower()


def create(storage: Storage, email: str, password: str, plan: str, scrypt_n: int) -> User:
    """Create a user, or raise EmailTaken; the email claim and the write are one script."""
    email = normalize_email(email)
    user_id = new_id("usr")
    created = storage.run(
        "create_user",
        [storage.names.user_by_email(email), storage.names.user(user_id)],
        [user_id, email, plan, hash_password(password, scrypt_n), iso(utcnow())],
    )
    if not created:
        raise EmailTaken(email)
    return User(user_id, email, plan)


def authenticate(storage: Storage, email: str, password: str, scrypt_n: int) -> User | None:
    """The user for these credentials, or None; as slow for an unknown email as a wrong one."""
    email = normalize_email(email)
    user_id = storage.redis.get(storage.names.user_by_email(email))
    record = storage.redis.hgetall(storage.names.user(user_id)) if user_id else {}
    stored_hash = record.get("password_hash")
    if not verify_password(password, stored_hash, scrypt_n):
        return None
    return User(record["id"], record["email"], record["plan"])


def set_plan(storage: Storage, email: str, plan: str) -> tuple[User, Replication]:
    """Move a user to another plan (from their next request); waits for replicas like a
    revocation, and reports how many confirmed it (a downgrade must survive a failover)."""
    email = normalize_email(email)
    user_id, replication = run_replicated(
        storage, "set_plan", [storage.names.user_by_email(email)],
        [storage.names.user_prefix, plan],
    )
    if not user_id:
        raise NotFound(email)
    return User(user_id, email, plan), replication
