"""Apps and their jobs."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from schemas.common import STORED_TEXT, TrimmedName


class AppSchema(Schema):
    """{"id", "name", "created_at"}."""

    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    created_at = fields.String(dump_only=True)


class AppCreateSchema(Schema):
    """{"name"}."""

    name = TrimmedName(100)


MAX_PAGE = 100
# A cursor is the position after an app: "<created_at>~<app id>" (apps are ordered by both).
# Any value of this shape is a position, so every documented cursor is accepted.
CURSOR_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z~app_[0-9a-f]{16}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(created_at: str, app_id: str) -> str:
    """The cursor of the position after an app."""
    return f"{created_at}~{app_id}"


class Cursor(fields.String):
    """A cursor from next_cursor, loaded as the (created_at, app id) position it names."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            metadata={
                "pattern": CURSOR_PATTERN,
                "description": "next_cursor from the previous page; absent for the first page.",
            },
            **kwargs,
        )

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[str, str]:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _CURSOR.match(text):
            raise ValidationError("Not a cursor this API returned (use next_cursor as is).")
        created_at, _, app_id = text.partition("~")
        return created_at, app_id


class AppListQuerySchema(Schema):
    """?limit=1..100 (default 100)&cursor=<next_cursor of the previous page>."""

    class Meta:
        unknown = EXCLUDE  # a cache-buster or tracking parameter is not an error

    limit = fields.Integer(
        load_default=MAX_PAGE,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"Apps per page, 1-{MAX_PAGE}."},
    )
    cursor = Cursor(load_default=None)


class AppListSchema(Schema):
    """{"apps": [App], "next_cursor"}: oldest first; no next_cursor on the last page."""

    apps = fields.List(fields.Nested(AppSchema), dump_only=True)
    next_cursor = fields.String(
        dump_only=True,
        metadata={
            "description": "Present when more apps follow: pass it as ?cursor= for the next page.",
        },
    )


class CodegenSchema(Schema):
    """{"prompt"}."""

    prompt = fields.String(
        required=True, validate=[validate.Length(min=1, max=20000), *STORED_TEXT]
    )


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
