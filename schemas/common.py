"""Field helpers shared by the resource schemas."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from logs import KEY_SHAPE

# What a display name may not hold: Unicode control (Cc), format (Cf: zero-width spaces and
# joiners, bidirectional marks and overrides, soft hyphen, BOM, tags...), surrogate (Cs),
# private-use (Co) characters and the line/paragraph separators (Zl, Zp). They are invisible
# or look like something else ("CI\u200bdeploy" shows as "CIdeploy"), or cannot be stored.
# Written out once, from Unicode 14 (Python 3.11's unicodedata; tests/stack/test_hardening.py checks
# it against the running Python), and documented in /openapi.json as the validator applies it.
# The document's regexes must read the same in ECMA-262, Python and the fuzzers' regex tools,
# which rewrite a pattern that sits beside a maxLength (and spell astral characters in a way
# ECMA-262 refuses): so the part below U+10000 is the name's pattern, and the astral part a
# separate "not" pattern with astral characters written literally. Surrogates cannot occur in
# a JSON string a validator sees, so only the validator refuses them.
_REFUSED_BMP = (
    r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    r"\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ue000-\uf8ff\ufeff\ufff9-\ufffb"
)
_REFUSED_ASTRAL = (
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)
_REFUSED = _REFUSED_BMP + _REFUSED_ASTRAL + r"\ud800-\udfff"
# ASCII white space at either end, then at least one character that is not white space and
# none of the refused ones.
_ASCII_SPACE = " \t\n\x0b\x0c\r"
NAME_PATTERN = (
    rf"^[\t\n\x0b\x0c\r ]*[^{_REFUSED_BMP}]*[^\s{_REFUSED_BMP}][^{_REFUSED_BMP}]*"
    rf"[\t\n\x0b\x0c\r ]*$"
)
NAME_NOT_ASTRAL = {"pattern": f"[{_REFUSED_ASTRAL}]"}
_REFUSED_CHARACTER = re.compile(f"[{_REFUSED}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_invisible_characters(value: str) -> None:
    """Refuse Unicode control, format, surrogate and private-use characters in a name."""
    if _REFUSED_CHARACTER.search(value):  # one message for all of them, as before
        raise ValidationError("Must not contain control characters.")


def refuse_surrogates(value: str) -> None:
    """Refuse unpaired surrogates: not text, and neither Redis nor a log line can store them."""
    if _SURROGATE.search(value):
        raise ValidationError("Must be valid Unicode text (no unpaired surrogates).")


def refuse_key_material(value: str) -> None:
    """Refuse an API key pasted into a stored field: Redis never holds one (CONTRACT §8)."""
    if KEY_SHAPE.search(value):
        raise ValidationError("Must not contain an API key.")


# Every stored free-text field (prompts, emails): storable text, and no key in it.
STORED_TEXT = [refuse_surrogates, refuse_key_material]


class TrimmedName(fields.String):
    """A display name: trimmed, NFC-normalized, 1..max characters, nothing invisible.

    The one validator for names, used by the REST schemas and (through them) the MCP tools.
    """

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(
            required=True,
            validate=[
                validate.Length(min=1, max=max_length),
                refuse_invisible_characters,
                refuse_key_material,
            ],
            metadata={
                "pattern": NAME_PATTERN,
                "not": NAME_NOT_ASTRAL,
                "description": f"1-{max_length} characters after trimming white space, "
                "normalized to NFC; no control, format (invisible), "
                "surrogate or private-use characters, no API key.",
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        # ASCII white space around the name is trimmed (as the pattern allows); anything else
        # refused is refused wherever it is, before Unicode white space is trimmed too.
        text = super()._deserialize(value, attr, data, **kwargs).strip(_ASCII_SPACE)
        refuse_invisible_characters(text)
        return unicodedata.normalize("NFC", text.strip())


class ErrorBodySchema(Schema):
    """The inside of the error envelope."""

    code = fields.String(required=True)
    message = fields.String(required=True)
    field_errors = fields.Dict(data_key="fields")


class ErrorSchema(Schema):
    """{"error": {"code", "message"[, "fields"]}}."""

    error = fields.Nested(ErrorBodySchema, required=True)
