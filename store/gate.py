"""The data side of the request gate: one Lua call counts, authenticates and attributes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from store.client import Storage
from store.clock import iso, utcnow
from store.errors import UNAVAILABLE

log = logging.getLogger("genmb.store")

# The rolling window is counted in this many sub-windows (lib/window.lua): its Redis key is one
# hash of at most WINDOW_SLICES + 1 counters, and a request may be refused at most
# window / WINDOW_SLICES earlier than an exact window would allow, never admitted over the limit.
WINDOW_SLICES = 60


@dataclass(frozen=True)
class RateState:
    """Where the client stands in its rolling window after this request."""

    limit: int
    remaining: int
    reset_seconds: float  # until the next request would be admitted
    admitted: bool
    # Whose window: None for the client IP's; a name (X-RateLimit-Scope) for another.
    scope: str | None = None


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
    key_plans: str,
    usage: bool,
) -> GateResult:
    """Count the request for client_ip and resolve the credential: ("key"|"session", digest).

    Steady state, one round trip: the credential's owner comes from the process's cache, and
    one script counts, authenticates and attributes (on Cluster: two scripts, one per slot,
    sent together). A digest not cached yet costs one GET of its owner index first.
    key_plans: the plans allowed to use keys, space separated; usage: count the key's request
    in its usage hash (same script, no extra round trip; on Cluster, a key's request the
    window refuses costs one more, to count it as rate limited).
    """
    names = storage.names
    # One formatted stamp per request: last_used_at, and its first 7 characters are the
    # month (YYYY-MM, as clock.month_of writes it) whose credits the script reads.
    stamp = iso(utcnow())
    window_args: list[object] = [limit, window_ms, WINDOW_SLICES]
    kind, owner, credential_keys = "none", None, []
    if credential is not None:
        kind, digest = credential
        owner = storage.owner_of(kind, digest)
        if owner is not None:
            credential_keys = [
                names.credential(kind, owner, digest),
                names.user(owner),
                names.credits(owner, stamp[:7]),
            ]
            if usage and kind == "key":
                credential_keys.append(names.key_usage(owner, digest))
    if storage.cluster:
        calls = [("gate_window", [names.ip_window(client_ip)], window_args)]
        if credential_keys:
            calls.append(("gate_credential", credential_keys, [kind, stamp, key_plans]))
        replies = storage.run_together(calls)
        window = replies[0]
        who = replies[1] if credential_keys else ["none" if credential is None else "unknown"]
        if not window[0] and len(who) > 6 and who[6]:
            _recount_as_refused(storage, credential_keys[3], who[6])
    else:
        reply = storage.run(
            "gate",
            [names.ip_window(client_ip), *credential_keys],
            [*window_args, kind if credential_keys else "none", stamp, key_plans],
        )
        window, who = reply[:3], reply[3:]
        if who[0] == "none" and credential is not None:
            who = ["unknown"]  # a credential nobody owns
    return gate_result(limit, window, who)


def _recount_as_refused(storage: Storage, usage_key: str, counted: str) -> None:
    """The window refused what the credential script counted by the plan alone: move the
    count to "rate limited" (a second round trip, on this refusal path only). Bookkeeping:
    if Redis fails here, the request is still answered by the window (429), not 503."""
    try:
        storage.run("usage_refused", [usage_key], [counted])
    except UNAVAILABLE:
        log.warning("usage.recount_failed field=%s", counted)


def gate_result(
    limit: int, window: list[Any], who: list[Any], scope: str | None = None
) -> GateResult:
    """A gate script's reply read: the window's {admitted, remaining, reset_us} and, when
    admitted with status "ok", the credential's {status, user_id, email, plan, key_id,
    credits_used} as the identity."""
    admitted, remaining, reset_us = window[:3]
    rate = RateState(limit, int(remaining), int(reset_us) / 1_000_000, bool(admitted), scope)
    identity = None
    if admitted and who[0] == "ok":
        user_id, email, plan, key_id, used = who[1:6]
        identity = Identity(user_id, email, plan, key_id or None, int(used))
    return GateResult(rate, identity)
