"""The X-RateLimit-* headers (and Retry-After) on every counted response: an after_request hook."""

from __future__ import annotations

import math
import time

from flask import Response, g

from extensions import limiter
from store.gate import RateState


def _binding_limit(rate: RateState) -> tuple[int, int, float]:
    """(limit, remaining, reset seconds) of the limit closest to refusing this client.

    Every counted request has the global per-IP window; codegen and deploy also have a
    per-user limit. The headers describe whichever has fewer requests left (on a tie, the
    one that frees up later), so a client that obeys them is never refused by the other.
    """
    best = (rate.limit, rate.remaining, rate.reset_seconds)
    endpoint = limiter.current_limit if g.get("endpoint_limited") else None
    if endpoint is not None:
        remaining = 0 if endpoint.breached else endpoint.remaining
        reset = max(0.0, endpoint.reset_at - time.time())
        if (remaining, -reset) < (best[1], -best[2]):
            best = (endpoint.limit.amount, remaining, reset)
    return best


def reset_header(remaining: int, reset_seconds: float) -> int:
    """X-RateLimit-Reset: whole seconds until the spent limit admits again; 0 until spent."""
    return max(1, math.ceil(reset_seconds)) if remaining == 0 else 0


def rate_header_items(limit: int, remaining: int, reset_seconds: float) -> list[tuple[str, str]]:
    """The three X-RateLimit-* headers for a limit's state."""
    reset = reset_header(remaining, reset_seconds)
    return [
        ("X-RateLimit-Limit", str(limit)),
        ("X-RateLimit-Remaining", str(remaining)),
        ("X-RateLimit-Reset", str(reset)),
    ]


def add_rate_headers(response: Response) -> Response:
    """Attach the X-RateLimit-* headers (and Retry-After on a 429) to counted responses."""
    rate: RateState | None = g.get("rate")  # set by the gate on every counted request
    if rate is None:
        return response
    binding = _binding_limit(rate)
    headers = response.headers
    # Only this hook writes these three: add, without set()'s search for an earlier value.
    for name, value in rate_header_items(*binding):
        headers.add(name, value)
    if response.status_code == 429:
        headers["Retry-After"] = str(max(1, reset_header(*binding[1:])))
    if rate.scope is not None:  # another window than the client IP's (store/rescue.py)
        headers["X-RateLimit-Scope"] = rate.scope
    headers["Cache-Control"] = "no-store"
    return response
