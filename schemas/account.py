"""The account summary: GET /api/me."""

from __future__ import annotations

from marshmallow import Schema, fields


class AuthInfoSchema(Schema):
    """How the request authenticated."""

    method = fields.String(dump_only=True)
    key_id = fields.String(dump_only=True, allow_none=True)


class CreditsSchema(Schema):
    """The monthly credit allowance and its use."""

    limit = fields.Integer(dump_only=True)
    used = fields.Integer(dump_only=True)
    remaining = fields.Integer(dump_only=True)
    resets_at = fields.String(dump_only=True)


class MeSchema(Schema):
    """GET /api/me."""

    id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    plan = fields.String(dump_only=True)
    auth = fields.Nested(AuthInfoSchema, dump_only=True)
    credits = fields.Nested(CreditsSchema, dump_only=True)
