"""The security log: one Redis stream per account, capped by count and age; and its banners.

An event is a flat mapping of short strings (type, actor, ip, key id, display prefix, key
name, a URL...): never a key, a digest, a password or a session token. Its time is the
stream id's (Redis's clock, milliseconds). Each XADD trims the stream to the newest
`max_events` and drops what is older than `max_days`, and the stream expires `max_days`
after the last event, so an idle account's log disappears by itself.

A leaked-key revocation also leaves a banner in the account's alerts hash (event id -> JSON
event), shown on Settings until the user dismisses it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from store.client import Storage
from store.clock import iso

DAY_MS = 24 * 3600 * 1000
MAX_ID_PART = 2**64 - 1  # each half of a stream id is an unsigned 64-bit number
EVENT_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
# What an event may carry, and nothing else (a caller's typo cannot smuggle a field in).
FIELDS = (
    "type",
    "actor",
    "ip",
    "key_id",
    "key_prefix",
    "key_name",
    "url",
    "source",
    "plan",
    "count",
)
LEAKED = "api_key.leaked"


@dataclass(frozen=True)
class Policy:
    """How much of the log is kept (SECURITY_LOG_MAX_EVENTS, SECURITY_LOG_MAX_DAYS)."""

    max_events: int = 1000
    max_days: int = 90


def record(
    storage: Storage, policy: Policy, user_id: str, event: dict[str, Any], alert: bool = False
) -> str:
    """Append an event (and, with alert, its banner); returns the event id. One round trip."""
    fields = {k: str(event[k]) for k in FIELDS if event.get(k) not in (None, "")}
    names = storage.names
    stream = names.security_log(user_id)
    oldest_kept = max(0, int(time.time() * 1000) - policy.max_days * DAY_MS)
    ttl = policy.max_days * 24 * 3600
    with storage.redis.pipeline(transaction=False) as pipe:
        pipe.xadd(stream, fields, maxlen=policy.max_events, approximate=False)
        pipe.xtrim(stream, minid=oldest_kept, approximate=False)
        pipe.expire(stream, ttl)
        event_id = pipe.execute()[0]
    if alert:
        alerts = names.security_alerts(user_id)
        with storage.redis.pipeline(transaction=False) as pipe:
            pipe.hset(alerts, event_id, json.dumps(fields, separators=(",", ":")))
            pipe.expire(alerts, ttl)
            pipe.execute()
    return event_id


def _shown(event_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """An event as the API shows it: id, time, and its fields."""
    millis = int(event_id.split("-", 1)[0])
    return {"id": event_id, "at": iso(datetime.fromtimestamp(millis / 1000, UTC)), **fields}


def page(
    storage: Storage, policy: Policy, user_id: str, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Events newest first, at most `limit`, after `cursor` (an event id); and the next cursor.

    Events older than max_days are never shown, even before a trim has removed them.
    """
    oldest_kept = max(0, int(time.time() * 1000) - policy.max_days * DAY_MS)
    newest = _before(cursor) if cursor else "+"
    if newest is None:
        return [], None
    entries = storage.redis.xrevrange(
        storage.names.security_log(user_id), newest, f"{oldest_kept}-0", count=limit + 1
    )
    events = [_shown(event_id, fields) for event_id, fields in entries[:limit]]
    following = events[-1]["id"] if len(entries) > limit else None
    return events, following


def _before(cursor: str) -> str | None:
    """The newest stream id older than `cursor`, or None when there is none (0-0).

    Any cursor of the documented shape is a position (parts past 2^64-1 count as the most).
    """
    millis, seq = (min(int(part), MAX_ID_PART) for part in cursor.split("-", 1))
    if seq > 0:
        return f"{millis}-{seq - 1}"
    if millis > 0:
        return f"{millis - 1}-{MAX_ID_PART}"
    return None


def alerts(storage: Storage, user_id: str) -> list[dict[str, Any]]:
    """The banners not yet dismissed, newest first."""
    stored = storage.redis.hgetall(storage.names.security_alerts(user_id))
    shown = [_shown(event_id, json.loads(raw)) for event_id, raw in stored.items()]
    return sorted(shown, key=lambda e: tuple(int(p) for p in e["id"].split("-")), reverse=True)


def dismiss(storage: Storage, user_id: str, event_id: str) -> bool:
    """Remove a banner; False when the account has no such banner."""
    if not EVENT_ID.fullmatch(event_id):
        return False
    return bool(storage.redis.hdel(storage.names.security_alerts(user_id), event_id))


def claim(storage: Storage, user_id: str, what: str, seconds: int = 60) -> bool:
    """True at most once per `seconds` per user and `what` (throttles noisy events)."""
    return bool(
        storage.redis.set(storage.names.security_throttle(user_id, what), "1", nx=True, ex=seconds)
    )
