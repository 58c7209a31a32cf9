"""The monthly credit allowance as the API reports it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from config import Plan
from store.clock import iso, start_of_next_month, utcnow


def allowance(plans: Mapping[str, Plan], plan: str) -> int:
    """Monthly credits of a plan among the app's PLANS (an unknown plan gets none)."""
    known = plans.get(plan)
    return known.monthly_credits if known else 0


@lru_cache(maxsize=2)
def resets_at(year: int, month: int) -> str:
    """When a month's credits reset, as the API writes it: formatted once per month (every
    GET /api/me reports it; issue #15)."""
    return iso(start_of_next_month(datetime(year, month, 1, tzinfo=UTC)))


def summary(plans: Mapping[str, Plan], plan: str, used: int) -> dict[str, Any]:
    """{"limit", "used", "remaining", "resets_at"} for a plan (of the app's PLANS) and this
    month's use."""
    limit = allowance(plans, plan)
    now = utcnow()
    return {
        "limit": limit,
        "used": used,
        "remaining": max(0, limit - used),
        "resets_at": resets_at(now.year, now.month),
    }
