"""Apps, jobs and the account summary."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import STORED_TEXT, TrimmedName


class AppSchema(Schema):
    """{"id", "name", "created_at"}."""

    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    created_at = fields.String(dump_only=True)


class AppCreateSchema(Schema):
    """{"name"}."""

    name = TrimmedName(100)


class AppListSchema(Schema):
    """{"apps": [App]}."""

    apps = fields.List(fields.Nested(AppSchema), dump_only=True)


class CodegenSchema(Schema):
    """{"prompt"}."""

    prompt = fields.String(required=True,
                           validate=[validate.Length(min=1, max=20000), *STORED_TEXT])


class JobSchema(Schema):
    """A recorded codegen or deploy job."""

    id = fields.String(dump_only=True)
    app_id = fields.String(dump_only=True)
    kind = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    credits = fields.Integer(dump_only=True)
    created_at = fields.String(dump_only=True)


class JobEnvelopeSchema(Schema):
    """{"job"}."""

    job = fields.Nested(JobSchema, dump_only=True)


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
