"""The monthly credit allowance as the API reports it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flask import current_app

from store.clock import iso, start_of_next_month, utcnow


def allowance(plan: str) -> int:
    """Monthly credits of a plan (an unknown plan gets none)."""
    known = current_app.config["PLANS"].get(plan)
    return known.monthly_credits if known else 0


@lru_cache(maxsize=2)
def resets_at(year: int, month: int) -> str:
    """When a month's credits reset, as the API writes it: formatted once per month (every
    GET /api/me reports it; issue #15)."""
    return iso(start_of_next_month(datetime(year, month, 1, tzinfo=UTC)))


def summary(plan: str, used: int) -> dict[str, Any]:
    """{"limit", "used", "remaining", "resets_at"} for a plan and this month's use."""
    limit = allowance(plan)
    now = utcnow()
    return {
        "limit": limit,
        "used": used,
        "remaining": max(0, limit - used),
        "resets_at": resets_at(now.year, now.month),
    }
