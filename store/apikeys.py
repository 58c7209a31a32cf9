"""API keys: records found by the SHA-256 digest of the key, and a per-user index."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

from store.client import Storage
from store.clock import is_id, iso, new_id, utcnow
from store.durability import run_replicated
from store.errors import KeyLimitReached, NotFound, PlanRequired, RevocationUnconfirmed

log = logging.getLogger("genmb.security")
KEY_PREFIX = "genmb_sk_"
RANDOM_LENGTH = 32
# How long a revocation is remembered, so that a retried DELETE (after a 503) answers 204.
REVOCATION_MEMORY_SECONDS = 7 * 24 * 3600


class KeyCollision(Exception):
    """Marker: the new key's digest is taken (create retries with another key)."""


# What create_key.lua answers instead of "ok", and what each means.
REFUSALS: dict[str, type[Exception]] = {
    "plan_required": PlanRequired,
    "key_limit_reached": KeyLimitReached,
    "no_user": NotFound,
    "collision": KeyCollision,
}
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}[A-Za-z0-9_-]{{{RANDOM_LENGTH}}}$")


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the key, never its digest."""

    id: str
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None


def digest(raw_key: str) -> str:
    """The SHA-256 hex digest of a raw key: the only form of it Redis ever sees."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def is_well_formed(raw_key: str) -> bool:
    """Whether a presented key has the shape of one of ours (checked before any lookup)."""
    return KEY_PATTERN.fullmatch(raw_key) is not None


def generate() -> str:
    """A new raw key: the prefix and 32 URL-safe random characters (192 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def create(
    storage: Storage, user_id: str, name: str, max_keys: int, key_plans: list[str]
) -> tuple[KeyInfo, str]:
    """Create a key within the cap; returns its info and the raw key, which is never stored.

    It waits for replicas like a revocation, but a shortfall is only logged: a new key lost
    in a failover fails closed (it stops working), it never lets anyone in.
    """
    names = storage.names
    for _ in range(3):  # a digest collision is astronomically unlikely; retry anyway
        raw = generate()
        info = KeyInfo(new_id("key"), name, raw[: len(KEY_PREFIX) + 4], iso(utcnow()), None)
        key_digest = digest(raw)
        # The owner index is claimed first (its own slot on Cluster): the claim is the
        # uniqueness check, and a claim left behind by a refused create points at no record.
        if not storage.redis.set(names.key_owner(key_digest), user_id, nx=True):
            continue
        outcome, replication = run_replicated(
            storage,
            "create_key",
            [names.user(user_id), names.user_keys(user_id), names.api_key(user_id, key_digest)],
            [
                max_keys,
                info.id,
                user_id,
                name,
                info.prefix,
                info.created_at,
                key_digest,
                " ".join(key_plans),
            ],
        )
        if outcome == "ok":
            if not replication.confirmed_enough:
                log.warning(
                    "api_key.created_unreplicated key_id=%s user_id=%s replicas=%d/%d",
                    info.id,
                    user_id,
                    replication.confirmed,
                    replication.needed,
                )
            return info, raw
        storage.redis.delete(names.key_owner(key_digest))
        refusal = REFUSALS.get(outcome)
        if refusal is None:  # only a collision may be retried: anything else is a bug
            raise RuntimeError(f"create_key.lua answered {outcome!r}")
        if refusal is not KeyCollision:
            raise refusal(user_id)
    raise RuntimeError("could not allocate a unique key")


def list_for_user(storage: Storage, user_id: str) -> list[KeyInfo]:
    """The user's live keys, oldest first."""
    digests = storage.redis.hgetall(storage.names.user_keys(user_id))
    if not digests:
        return []
    with storage.redis.pipeline(transaction=False) as pipe:
        for key_digest in digests.values():
            pipe.hgetall(storage.names.api_key(user_id, key_digest))
        records = pipe.execute()
    keys = [
        KeyInfo(r["id"], r["name"], r["prefix"], r["created_at"], r.get("last_used_at"))
        for r in records
        if r  # revoked between the two reads
    ]
    return sorted(keys, key=lambda k: (k.created_at, k.id))


def revoke(storage: Storage, user_id: str, key_id: str) -> str:
    """Delete one of the user's keys, wait for replicas, and return its display prefix.

    NotFound when the user has no such key; RevocationUnconfirmed when the primary refuses
    the key already but too few replicas confirmed it (repeating the call is safe, and a
    repeat of a revocation the user made lately succeeds again).
    """
    if not is_id("key", key_id):
        raise NotFound(key_id)
    names = storage.names
    # The record is named by the digest, which only the index knows: read it, then revoke in
    # one script that checks the index still says the same (nothing derived inside a script).
    key_digest = storage.redis.hget(names.user_keys(user_id), key_id) or ""
    keys = [names.user_keys(user_id), names.user_revoked_keys(user_id)]
    if key_digest:
        keys.append(names.api_key(user_id, key_digest))
    reply, replication = run_replicated(
        storage, "delete_key", keys, [key_id, key_digest, REVOCATION_MEMORY_SECONDS]
    )
    if not reply:
        raise NotFound(key_id)
    if not replication.confirmed_enough:
        raise RevocationUnconfirmed(replication.needed, replication.confirmed)
    if reply[0] == "revoked":
        # Tidy only: a dangling owner index names no record, so nothing depends on this.
        storage.redis.delete(names.key_owner(key_digest))
    return str(reply[1])


@dataclass(frozen=True)
class OwnedKey:
    """A live key with its owner, as the operator and the leak receiver find it."""

    user_id: str
    id: str
    name: str
    prefix: str
    created_at: str


def live_key_for_token(storage: Storage, raw_key: str) -> OwnedKey | None:
    """The live key a raw token is, whoever owns it; None for junk, unknown or revoked."""
    if not is_well_formed(raw_key):
        return None
    key_digest = digest(raw_key)
    owner = storage.redis.get(storage.names.key_owner(key_digest))
    if not owner:
        return None
    record = storage.redis.hgetall(storage.names.api_key(owner, key_digest))
    if not record:
        return None
    return OwnedKey(owner, record["id"], record["name"], record["prefix"], record["created_at"])


def reconfirm_revoked_token(storage: Storage, raw_key: str) -> None:
    """Confirm again a revocation of this token whose replica wait fell short earlier.

    A revoke that raised RevocationUnconfirmed leaves the owner index behind (it is tidied
    only after a confirmed revoke), but the record, and with it the key id, is gone. The
    owner's recent revocations name the key id by display prefix: every one with this
    token's prefix is revoked again (written and waited for again; harmless for any other
    key, which is revoked already). Raises RevocationUnconfirmed when replicas still lag.
    """
    if not is_well_formed(raw_key):
        return
    key_digest = digest(raw_key)
    names = storage.names
    owner = storage.redis.get(names.key_owner(key_digest))
    if not owner or storage.redis.exists(names.api_key(owner, key_digest)):
        return
    display = raw_key[: len(KEY_PREFIX) + 4]
    recent = storage.redis.hgetall(names.user_revoked_keys(owner))
    for key_id in sorted(k for k, prefix in recent.items() if prefix == display):
        revoke(storage, owner, key_id)
    storage.redis.delete(names.key_owner(key_digest))


def scan_keys(
    storage: Storage, key_id: str | None = None, prefix: str | None = None
) -> list[OwnedKey]:
    """Every live key with this id or whose display prefix starts with `prefix`.

    An operator command only: it SCANs every key record (on Cluster, every primary), which a
    request never does. Keys are found by digest, never by prefix or id, on the hot path.
    """
    found: list[OwnedKey] = []
    batch: list[str] = []

    def flush() -> None:
        with storage.redis.pipeline(transaction=False) as pipe:
            for name in batch:
                pipe.hmget(name, "id", "user_id", "name", "prefix", "created_at")
            for values in pipe.execute():
                ident, owner, name, shown, created = values
                if not ident or not owner:
                    continue  # revoked between the scan and the read
                if (key_id and ident == key_id) or (prefix and (shown or "").startswith(prefix)):
                    found.append(OwnedKey(owner, ident, name or "", shown or "", created or ""))
        batch.clear()

    for name in storage.redis.scan_iter(match=storage.names.api_key_pattern(), count=1000):
        batch.append(name)
        if len(batch) >= 500:
            flush()
    if batch:
        flush()
    return sorted(found, key=lambda k: (k.created_at, k.id))
