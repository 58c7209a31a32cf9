"""API keys: records found by the SHA-256 digest of the key, and a per-user index."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from store import clock
from store.client import Storage
from store.clock import is_id, iso, new_id, utcnow
from store.digest import KEY_PREFIX, digest, display_prefix, is_well_formed
from store.durability import Replication, run_replicated
from store.errors import (
    KeyLimitReached,
    KeyRolling,
    NotFound,
    PlanRequired,
    RevocationUnconfirmed,
)

log = logging.getLogger("genmb.security")
# How long a revocation is remembered, so that a retried DELETE (after a 503) answers 204.
REVOCATION_MEMORY_SECONDS = 7 * 24 * 3600


# What create_key.lua and roll_key.lua answer instead of "ok", and the domain error each
# means. "collision" (the new key's digest is taken) is the one answer that is retried.
COLLISION = "collision"
REFUSALS: dict[str, type[Exception]] = {
    "plan_required": PlanRequired,
    "not_found": NotFound,
    "key_limit_reached": KeyLimitReached,
    "no_user": NotFound,
    "rolling": KeyRolling,
    "predecessor_rolling": KeyRolling,
}
NEW_KEY_DRAWS = 3  # a digest collision is astronomically unlikely; draw again anyway


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the key, never its digest."""

    id: str
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None = None  # a rolled key in its overlap: when it stops working
    requests_today: int = 0
    requests_30d: int = 0


# A rolled key's overlap, in seconds: 0 (refused at once) to 7 days.
MAX_OVERLAP_SECONDS = 7 * 24 * 3600
# Days of usage the API shows at most (the counters keep one more: lib/usage.lua).
USAGE_MAX_DAYS = 90
OUTCOMES = {"a": "admitted", "l": "rate_limited", "p": "plan_refused"}


def generate() -> str:
    """A new raw key: the prefix and 32 URL-safe random characters (192 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def _claim_new_key(storage: Storage, user_id: str, name: str) -> tuple[str, KeyInfo, str] | None:
    """A new raw key, its info and digest, with the digest's owner index claimed for the user;
    None when the digest is taken (the caller draws again).

    The owner index is claimed first (its own slot on Cluster): the claim is the uniqueness
    check, and a claim left behind by a refused create points at no record.
    """
    raw = generate()
    info = KeyInfo(new_id("key"), name, display_prefix(raw), iso(utcnow()), None)
    key_digest = digest(raw)
    if not storage.redis.set(storage.names.key_owner(key_digest), user_id, nx=True):
        return None
    return raw, info, key_digest


def _refuse(script: str, outcome: str, user_id: str) -> NoReturn:
    """Raise the domain error a script's refusal means; a RuntimeError for any answer the
    script is not documented to give (a bug, never retried as if it were a collision)."""
    refusal = REFUSALS.get(outcome)
    if refusal is None:
        raise RuntimeError(f"{script}.lua answered {outcome!r}")
    raise refusal(user_id)


def _warn_if_unreplicated(event: str, key_id: str, user_id: str, replication: Replication) -> None:
    """Log a new key too few replicas confirmed (it fails closed if lost: never an error)."""
    if not replication.confirmed_enough:
        log.warning(
            "%s key_id=%s user_id=%s replicas=%d/%d",
            event,
            key_id,
            user_id,
            replication.confirmed,
            replication.needed,
        )


def create(
    storage: Storage, user_id: str, name: str, max_keys: int, key_plans: list[str]
) -> tuple[KeyInfo, str]:
    """Create a key within the cap; returns its info and the raw key, which is never stored.

    It waits for replicas like a revocation, but a shortfall is only logged: a new key lost
    in a failover fails closed (it stops working), it never lets anyone in.
    """
    names = storage.names
    for _ in range(NEW_KEY_DRAWS):
        claimed = _claim_new_key(storage, user_id, name)
        if claimed is None:
            continue
        raw, info, key_digest = claimed
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
            _warn_if_unreplicated("api_key.created_unreplicated", info.id, user_id, replication)
            return info, raw
        storage.redis.delete(names.key_owner(key_digest))
        if outcome != COLLISION:
            _refuse("create_key", outcome, user_id)
    raise RuntimeError("could not allocate a unique key")


def _index(storage: Storage, user_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The user's live keys (id -> digest) and rolling keys (id -> digest), read together."""
    names = storage.names
    with storage.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(names.user_keys(user_id))
        pipe.hgetall(names.user_rolling_keys(user_id))
        live, rolling = pipe.execute()
    return live, {key_id: entry.split(" ")[0] for key_id, entry in rolling.items()}


def _digest_of(storage: Storage, user_id: str, key_id: str) -> str | None:
    """The digest of one of the user's keys, live or rolling; None when there is none."""
    if not is_id("key", key_id):
        return None
    live, rolling = _index(storage, user_id)
    return live.get(key_id) or rolling.get(key_id)


def _day(moment: datetime) -> str:
    """A moment's UTC day as the usage fields name it (YYYYMMDD)."""
    return moment.strftime("%Y%m%d")


def usage_totals(counters: dict[str, str], today: datetime) -> tuple[int, int]:
    """(requests today, requests in the last 30 days including today) from a usage hash."""
    first = _day(today - timedelta(days=29))
    now = _day(today)
    day_total = month_total = 0
    for field, count in counters.items():
        day = field[:8]
        if first <= day <= now:
            month_total += int(count)
            if day == now:
                day_total += int(count)
    return day_total, month_total


def list_for_user(storage: Storage, user_id: str) -> list[KeyInfo]:
    """The user's keys, oldest first: live ones and rolled ones still in their overlap, each
    with its request counts (today, and the last 30 days, by the UTC calendar)."""
    live, rolling = _index(storage, user_id)
    digests = [*live.values(), *rolling.values()]
    if not digests:
        return []
    names = storage.names
    with storage.redis.pipeline(transaction=False) as pipe:
        for key_digest in digests:
            pipe.hgetall(names.api_key(user_id, key_digest))
            pipe.hgetall(names.key_usage(user_id, key_digest))
        replies = pipe.execute()
    today = clock.utcnow()
    keys = []
    for record, counters in zip(replies[0::2], replies[1::2], strict=True):
        if not record:  # revoked between the two reads, or a rolled key's overlap is over
            continue
        expires = record.get("expires_ms")
        expires_at = iso(datetime.fromtimestamp(int(expires) / 1000, UTC)) if expires else None
        if expires and int(expires) <= today.timestamp() * 1000:
            continue  # over, and about to be removed by its TTL
        requests_today, requests_30d = usage_totals(counters, today)
        keys.append(
            KeyInfo(
                record["id"],
                record["name"],
                record["prefix"],
                record["created_at"],
                record.get("last_used_at"),
                expires_at,
                requests_today,
                requests_30d,
            )
        )
    return sorted(keys, key=lambda k: (k.created_at, k.id))


def usage(storage: Storage, user_id: str, key_id: str, days: int) -> list[dict[str, object]]:
    """One of the user's keys' daily request counts by outcome, the last `days` UTC days
    (today included), oldest first. NotFound when the user has no such key (live or rolling)."""
    key_digest = _digest_of(storage, user_id, key_id)
    if key_digest is None:
        raise NotFound(key_id)
    counters = storage.redis.hgetall(storage.names.key_usage(user_id, key_digest))
    today = clock.utcnow()
    series = []
    for back in range(days - 1, -1, -1):
        moment = today - timedelta(days=back)
        day = _day(moment)
        counts = {name: int(counters.get(f"{day}:{code}", 0)) for code, name in OUTCOMES.items()}
        series.append({"date": moment.strftime("%Y-%m-%d"), **counts})
    return series


def revoke(storage: Storage, user_id: str, key_id: str) -> str:
    """Delete one of the user's keys, wait for replicas, and return its display prefix.

    NotFound when the user has no such key; RevocationUnconfirmed when the primary refuses
    the key already but too few replicas confirmed it (repeating the call is safe, and a
    repeat of a revocation the user made lately succeeds again).
    """
    if not is_id("key", key_id):
        raise NotFound(key_id)
    names = storage.names
    # The record is named by the digest, which only the index knows (or, for a rolled key in
    # its overlap, the rolling index): read it, then revoke in one script that checks the
    # index still says the same (nothing derived inside a script).
    key_digest = _digest_of(storage, user_id, key_id) or ""
    keys = [
        names.user_keys(user_id),
        names.user_revoked_keys(user_id),
        names.user_rolling_keys(user_id),
    ]
    if key_digest:
        # The record, and the usage counters, which go with it (nothing named by the digest
        # of a revoked key stays behind but the owner index, tidied below).
        keys += [names.api_key(user_id, key_digest), names.key_usage(user_id, key_digest)]
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


def roll(
    storage: Storage,
    user_id: str,
    key_id: str,
    overlap_seconds: int,
    key_plans: list[str],
) -> tuple[KeyInfo, str]:
    """Replace a key with a new one of the same name; returns the new key's info and the raw
    key (shown once). The old key works `overlap_seconds` more (on Redis's clock), then is
    refused like a revoked one and its record expires by itself; 0 refuses it now.

    NotFound for no such key; KeyRolling when it is in an overlap already, or its own
    predecessor still is (at most one rolling key per key). Waits for replicas like creation.
    """
    if not is_id("key", key_id):
        raise NotFound(key_id)
    names = storage.names
    old_digest = storage.redis.hget(names.user_keys(user_id), key_id) or ""
    for _ in range(NEW_KEY_DRAWS):
        claimed = _claim_new_key(storage, user_id, "")
        if claimed is None:
            continue
        raw, new, key_digest = claimed
        reply, replication = run_replicated(
            storage,
            "roll_key",
            [
                names.user(user_id),
                names.user_keys(user_id),
                names.user_rolling_keys(user_id),
                names.api_key(user_id, old_digest or "none"),
                names.api_key(user_id, key_digest),
                names.user_revoked_keys(user_id),
                names.key_usage(user_id, old_digest or "none"),
            ],
            [
                key_id,
                old_digest,
                new.id,
                user_id,
                new.prefix,
                new.created_at,
                key_digest,
                " ".join(key_plans),
                overlap_seconds,
                REVOCATION_MEMORY_SECONDS,
            ],
        )
        outcome = reply[0]
        if outcome == "ok":
            _warn_if_unreplicated("api_key.rolled_unreplicated", new.id, user_id, replication)
            return KeyInfo(new.id, reply[1], new.prefix, new.created_at, None), raw
        storage.redis.delete(names.key_owner(key_digest))
        if outcome != COLLISION:
            _refuse("roll_key", outcome, user_id)
    raise RuntimeError("could not allocate a unique key")


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
    owner = storage.owner_of("key", key_digest)
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
    display = display_prefix(raw_key)
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
