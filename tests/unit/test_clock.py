"""store/clock.py: the start of next month (in UTC) and the one timestamp format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from store.clock import iso, start_of_next_month


def test_start_of_next_month_december_rolls_year():
    """December's credits reset at midnight UTC on 1 January of the next year."""
    moment = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert start_of_next_month(moment) == datetime(2026, 1, 1, tzinfo=UTC)
    assert start_of_next_month(datetime(2025, 12, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, tzinfo=UTC
    )


def test_start_of_next_month_ordinary_month():
    """A mid-year moment resets on the first of the following month."""
    assert start_of_next_month(datetime(2024, 2, 29, 12, tzinfo=UTC)) == datetime(
        2024, 3, 1, tzinfo=UTC
    )


def test_start_of_next_month_converts_to_utc_first():
    """The month is the UTC month: 20:00 on 31 Dec at UTC-5 is already January in UTC."""
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2025, 12, 31, 20, 0, tzinfo=eastern)
    assert start_of_next_month(moment) == datetime(2026, 2, 1, tzinfo=UTC)


def test_iso_is_utc_with_z_and_milliseconds():
    """Timestamps render as ISO 8601 UTC with milliseconds and a Z suffix."""
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2025, 6, 1, 2, 3, 4, 567891, tzinfo=plus_two)) == "2025-06-01T00:03:04.567Z"
