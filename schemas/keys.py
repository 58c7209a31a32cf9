"""API keys: what is shown about a key, and the one response that carries the raw key."""

from __future__ import annotations

from marshmallow import Schema, fields

from schemas.common import TrimmedName


class KeyInfoSchema(Schema):
    """{"id", "name", "prefix", "created_at", "last_used_at"}: never the key or its hash."""

    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    prefix = fields.String(dump_only=True)
    created_at = fields.String(dump_only=True)
    last_used_at = fields.String(dump_only=True, allow_none=True)


class CreatedKeySchema(KeyInfoSchema):
    """KeyInfo plus the raw key, sent exactly once."""

    key = fields.String(dump_only=True)


class KeyCreateSchema(Schema):
    """{"name"}: 1-64 characters after trimming, no control characters."""

    name = TrimmedName(64)


class KeyListSchema(Schema):
    """{"keys": [KeyInfo]}, oldest first."""

    keys = fields.List(fields.Nested(KeyInfoSchema), dump_only=True)
