"""Timestamps and ids in the formats the API promises."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_ID = re.compile(r"^[a-z]{3}_[0-9a-f]{16}$")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def month_of(moment: datetime) -> str:
    """The calendar month (UTC) a moment falls in, as YYYY-MM."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def start_of_next_month(moment: datetime) -> datetime:
    """Midnight UTC on the first day of the following month: when credits reset."""
    m = moment.astimezone(UTC)
    year, month = (m.year + 1, 1) if m.month == 12 else (m.year, m.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def new_id(kind: str) -> str:
    """A random, URL-safe identifier such as key_3f9a1c0e5b7d2a64."""
    return f"{kind}_{secrets.token_hex(8)}"


def is_id(kind: str, value: str) -> bool:
    """Whether value has the shape of an id made by new_id(kind).

    Ids come from URLs; anything else (a pasted key, say) is refused before it reaches Redis.
    """
    return value.startswith(f"{kind}_") and _ID.fullmatch(value) is not None
