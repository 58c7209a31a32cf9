"""API keys: what is shown about a key, and the one response that carries the raw key."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import TrimmedName


class KeyInfoSchema(Schema):
    """{"id", "name", "prefix", "created_at", "last_used_at", "expires_at", "requests_today",
    "requests_30d"}: never the key or its hash."""

    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    prefix = fields.String(dump_only=True)
    created_at = fields.String(dump_only=True)
    last_used_at = fields.String(dump_only=True, allow_none=True)
    expires_at = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "A rolled key in its overlap: when it stops working; else null."},
    )
    requests_today = fields.Integer(
        dump_only=True, metadata={"description": "Requests made with the key today (UTC)."}
    )
    requests_30d = fields.Integer(
        dump_only=True,
        metadata={
            "description": "Requests made with the key in the last 30 UTC days, today included."
        },
    )


class CreatedKeySchema(KeyInfoSchema):
    """KeyInfo plus the raw key, sent exactly once."""

    key = fields.String(dump_only=True)


class KeyCreateSchema(Schema):
    """{"name"}: 1-64 characters after trimming, no control characters."""

    name = TrimmedName(64)


class KeyRollSchema(Schema):
    """{"overlap_seconds"}: how long the old key keeps working, 0 (not at all) to 7 days."""

    overlap_seconds = fields.Integer(
        required=True, strict=True, validate=validate.Range(0, 7 * 24 * 3600)
    )


class UsageQuerySchema(Schema):
    """?days=N: the last N UTC days, today included (1-90, default 30)."""

    days = fields.Integer(load_default=30, validate=validate.Range(1, 90))


class UsageDaySchema(Schema):
    """One UTC day of a key's requests, by the gate's outcome."""

    date = fields.String(dump_only=True, metadata={"description": "YYYY-MM-DD (UTC)"})
    admitted = fields.Integer(dump_only=True)
    rate_limited = fields.Integer(dump_only=True)
    plan_refused = fields.Integer(dump_only=True)


class KeyUsageSchema(Schema):
    """{"key_id", "days": [UsageDay]}, oldest first."""

    key_id = fields.String(dump_only=True)
    days = fields.List(fields.Nested(UsageDaySchema), dump_only=True)


class KeyListSchema(Schema):
    """{"keys": [KeyInfo]}, oldest first."""

    keys = fields.List(fields.Nested(KeyInfoSchema), dump_only=True)
