"""Users: a hash per user and an email index; passwords only as scrypt hashes."""

from __future__ import annotations

from dataclasses import dataclass

from store.client import Storage
from store.clock import iso, new_id, utcnow
from store.durability import Replication, run_replicated
from store.errors import EmailTaken, NotFound
from store.passwords import hash_password, verify_password


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
    """Create a user, or raise EmailTaken.

    The record is written first under a fresh id, then the email is claimed (SET NX): the
    claim is the commit point, and it is a separate step because on Redis Cluster the email
    index and the user's slot differ. A refused claim removes the record again; a record
    whose claim never happened is unreachable, never a second owner of the email.
    """
    email = normalize_email(email)
    user_id = new_id("usr")
    names = storage.names
    storage.redis.hset(
        names.user(user_id),
        mapping={
            "id": user_id,
            "email": email,
            "plan": plan,
            "password_hash": hash_password(password, scrypt_n),
            "created_at": iso(utcnow()),
        },
    )
    if not storage.redis.set(names.user_by_email(email), user_id, nx=True):
        storage.redis.delete(names.user(user_id))
        raise EmailTaken(email)
    return User(user_id, email, plan)


def id_for_email(storage: Storage, email: str) -> str | None:
    """The id of the account with this email, or None."""
    return storage.redis.get(storage.names.user_by_email(normalize_email(email)))


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
    user_id = storage.redis.get(storage.names.user_by_email(email))
    if not user_id:
        raise NotFound(email)
    changed, replication = run_replicated(
        storage, "set_plan", [storage.names.user(user_id)], [plan]
    )
    if not changed:
        raise NotFound(email)
    return User(user_id, email, plan), replication
