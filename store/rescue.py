"""The data side of the session rescue: a live session's own allowance once its IP is spent."""

from __future__ import annotations

from store.client import Storage
from store.clock import iso, utcnow
from store.gate import WINDOW_SLICES, GateResult, gate_result

# The rescue allowance's name in its answers' X-RateLimit-Scope header.
SCOPE = "session-rescue"


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
    stamp = iso(utcnow())  # its first 7 characters are the month, as in store/gate.py
    reply = storage.run(
        "session_rescue",
        [
            names.session_rescue(owner, session_digest),
            names.session(owner, session_digest),
            names.user(owner),
            names.credits(owner, stamp[:7]),
        ],
        [limit, window_ms, WINDOW_SLICES, stamp, key_plans],
    )
    if reply[3] == "unknown":
        return None
    return gate_result(limit, reply[:3], reply[3:], SCOPE)
