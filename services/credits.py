"""The monthly credit allowance as the API reports it."""

from __future__ import annotations

from typing import Any

from flask import current_app

from store.clock import iso, start_of_next_month, utcnow


def allowance(plan: str) -> int:
    """Monthly credits of a plan (an unknown plan gets none)."""
    known = current_app.config["PLANS"].get(plan)
    return known.monthly_credits if known else 0


def summary(plan: str, used: int) -> dict[str, Any]:
    """{"limit", "used", "remaining", "resets_at"} for a plan and this month's use."""
    limit = allowance(plan)
    return {
        "limit": limit,
        "used": used,
        "remaining": max(0, limit - used),
        "resets_at": iso(start_of_next_month(utcnow())),
    }
