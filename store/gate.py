"""The data side of the request gate: one Lua call counts, authenticates and attributes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from store.client import Storage
from store.clock import iso, month_of, utcnow


@dataclass(frozen=True)
class RateState:
    """Where the client IP stands in its rolling window after this request."""

    limit: int
    remaining: int
    reset_seconds: float  # until the next request would be admitted
    admitted: bool


@dataclass(frozen=True)
class Identity:
    """Who a credential belongs to, read in the same round trip as the rate check."""

    user_id: str
    email: str
    plan: str
    key_id: str | None
    credits_used: int


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate call: the rate state and, when found, the identity."""

    rate: RateState
    identity: Identity | None


def check(
    storage: Storage,
    client_ip: str,
    limit: int,
    window_ms: int,
    credential: tuple[str, str] | None,
) -> GateResult:
    """Count the request for client_ip and resolve the credential: ("key"|"session", digest)."""
    names = storage.names
    keys = [names.ip_window(client_ip)]
    kind = "none"
    if credential is not None:
        kind, cred_digest = credential
        keys.append(names.api_key(cred_digest) if kind == "key" else names.session(cred_digest))
    now = utcnow()
    reply = storage.run(
        "gate",
        keys,
        [limit, window_ms, secrets.token_hex(8), kind, iso(now), names.user_prefix,
         names.credits_prefix, month_of(now)],
    )
    admitted, remaining, reset_us, status = reply[:4]
    rate = RateState(limit, int(remaining), int(reset_us) / 1_000_000, bool(admitted))
    identity = None
    if status == "ok":
        user_id, email, plan, key_id, used = reply[4:9]
        identity = Identity(user_id, email, plan, key_id or None, int(used))
    return GateResult(rate, identity)
