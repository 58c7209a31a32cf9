"""Field helpers shared by the resource schemas."""

from __future__ import annotations

import unicodedata
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

# Bidirectional overrides and line separators let a name masquerade as another on screen.
_FORBIDDEN = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)}


def _no_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" or ch in _FORBIDDEN for ch in value):
        raise ValidationError("Must not contain control characters.")


class TrimmedName(fields.String):
    """A display name: trimmed, 1..max characters, no control characters."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(
            required=True,
            validate=[validate.Length(min=1, max=max_length), _no_control_characters],
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class ErrorBodySchema(Schema):
    """The inside of the error envelope."""

    code = fields.String(required=True)
    message = fields.String(required=True)
    field_errors = fields.Dict(data_key="fields")


class ErrorSchema(Schema):
    """{"error": {"code", "message"[, "fields"]}}."""

    error = fields.Nested(ErrorBodySchema, required=True)
