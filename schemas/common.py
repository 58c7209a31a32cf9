"""Field helpers shared by the resource schemas."""

from __future__ import annotations

import unicodedata
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

# Bidirectional overrides and line separators let a name masquerade as another on screen.
_FORBIDDEN = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)}


# The same rule for /openapi.json (documentation only: the validators below decide): at least
# one character that is not white space, and none of the characters refused above nor any
# control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F).
_REFUSED = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
NAME_PATTERN = rf"^[^{_REFUSED}]*[^\s{_REFUSED}][^{_REFUSED}]*$"


def _no_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" or ch in _FORBIDDEN for ch in value):
        raise ValidationError("Must not contain control characters.")


class TrimmedName(fields.String):
    """A display name: trimmed, 1..max characters, no control characters."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(
            required=True,
            validate=[validate.Length(min=1, max=max_length), _no_control_characters],
            metadata={"pattern": NAME_PATTERN,
                      "description": f"1-{max_length} characters after trimming white space; "
                                     "no control characters, bidirectional overrides or line "
                                     "separators."},
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
