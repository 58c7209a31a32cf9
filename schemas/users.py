"""Users and sessions."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import STORED_TEXT, refuse_surrogates


class UserSchema(Schema):
    """{"id", "email", "plan"}."""

    id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    plan = fields.String(dump_only=True)


class CredentialsSchema(Schema):
    """Signup and login body."""

    email = fields.Email(
        required=True,
        validate=[validate.Length(max=254), *STORED_TEXT],
        error_messages={"invalid": "Enter an email address like name@example.com."},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=8, max=1024), refuse_surrogates],
    )


class LoginSchema(CredentialsSchema):
    """Login takes any password up to the bound: old rules never lock a user out, and a
    password no account can have (a lone surrogate) is a wrong password like any other."""

    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )


class UserEnvelopeSchema(Schema):
    """{"user"}."""

    user = fields.Nested(UserSchema, dump_only=True)


class SessionSchema(UserEnvelopeSchema):
    """{"user", "csrf_token"}."""

    csrf_token = fields.String(dump_only=True)
