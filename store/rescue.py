"""The data side of the session rescue: a live session's own allowance once its IP is spent."""

from __future__ import annotations

from store.client import Storage
from store.clock import iso, month_of, utcnow
from store.gate import WINDOW_SLICES, GateResult, Identity, RateState


def check(
    storage: Storage, session_digest: str, limit: int, window_ms: int, key_plans: str
) -> GateResult | None:
    """Count one rescue request for a session; None when the session is not live.

    A second round trip, paid only by a logged-in page whose client IP's window is spent.
    The GateResult's rate is the rescue allowance's, not the IP window's.
    """
    owner = storage.owner_of("session", session_digest)
    if owner is None:
        return None
    names = storage.names
    now = utcnow()
    reply = storage.run(
        "session_rescue",
        [
            names.session_rescue(owner, session_digest),
            names.session(owner, session_digest),
            names.user(owner),
            names.credits(owner, month_of(now)),
        ],
        [limit, window_ms, WINDOW_SLICES, iso(now), key_plans],
    )
    if reply[3] == "unknown":
        return None
    admitted, remaining, reset_us = reply[:3]
    rate = RateState(limit, int(remaining), int(reset_us) / 1_000_000, bool(admitted))
    identity = None
    if admitted:
        user_id, email, plan, key_id, used = reply[4:9]
        identity = Identity(user_id, email, plan, key_id or None, int(used))
    return GateResult(rate, identity)
