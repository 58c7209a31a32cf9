"""Issue #15: the small per-request savings keep their meaning (one ISO stamp for both uses,
resets_at formatted once per month, ensure_sync, the rate headers written once)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app import App
from services.credits import resets_at
from store.clock import iso, month_of, start_of_next_month

MOMENTS = [
    datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(2027, 2, 28, 12, 0, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # still December in UTC
    datetime(9999, 12, 1, tzinfo=UTC).replace(month=11),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_the_stamps_month_is_month_of(moment):
    """store/gate.py reads the credits month off the ISO stamp."""
    assert iso(moment)[:7] == month_of(moment)


@pytest.mark.parametrize("moment", MOMENTS)
def test_resets_at_is_the_start_of_next_month(moment):
    """The cached value is what summary() computed on every request before."""
    utc = moment.astimezone(UTC)
    assert resets_at(utc.year, utc.month) == iso(start_of_next_month(moment))


def test_ensure_sync_returns_plain_functions_and_wraps_coroutines():
    """A plain function is called as is; an `async def` still runs to completion."""
    app = App(__name__)

    def plain() -> str:
        return "plain"

    async def coroutine() -> str:
        return "async"

    assert app.ensure_sync(plain) is plain
    if importlib.util.find_spec("asgiref") is None:  # Flask without its async extra says so
        with pytest.raises(RuntimeError, match="async"):
            app.ensure_sync(coroutine)
    else:
        assert app.ensure_sync(coroutine)() == "async"


def test_rate_headers_once_each(client):
    """A counted answer carries each X-RateLimit-* header exactly once."""
    response = client.get("/api/me")
    assert response.status_code == 401
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert len(response.headers.getlist(name)) == 1, name
