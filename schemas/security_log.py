"""The security log: events as shown (never a secret), the page query, and the banners."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

MAX_PAGE = 100
DEFAULT_PAGE = 50
# A cursor is an event id: "<milliseconds>-<sequence>", as next_cursor returns it.
CURSOR_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"


class SecurityEventSchema(Schema):
    """One event: id, time, type, who did it, from where, and which key (display prefix)."""

    id = fields.String(dump_only=True, metadata={"description": "The event's id."})
    at = fields.String(dump_only=True, metadata={"description": "ISO 8601 UTC."})
    type = fields.String(
        dump_only=True,
        metadata={
            "description": "api_key.created, api_key.revoked, api_key.leaked, "
            "api_key.refused_plan, plan.changed, auth.login, "
            "auth.failed_login_burst."
        },
    )
    actor = fields.String(
        dump_only=True,
        metadata={"description": "user, operator, github_secret_scanning or api_key."},
    )
    ip = fields.String(
        dump_only=True,
        metadata={"description": "The client IP as the service saw it (absent for the operator)."},
    )
    key_id = fields.String(dump_only=True)
    key_prefix = fields.String(
        dump_only=True, metadata={"description": "genmb_sk_ and 4 characters: never the key."}
    )
    key_name = fields.String(dump_only=True)
    url = fields.String(dump_only=True, metadata={"description": "Where a leaked key was found."})
    source = fields.String(dump_only=True)
    plan = fields.String(dump_only=True)


class SecurityLogQuerySchema(Schema):
    """?limit=1..100 (default 50)&cursor=<next_cursor of the previous page>."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(
        load_default=DEFAULT_PAGE,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"Events per page, 1-{MAX_PAGE}."},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Regexp(
            CURSOR_PATTERN, error="Not a cursor this API returned (use next_cursor as is)."
        ),
        metadata={
            "pattern": CURSOR_PATTERN,
            "description": "next_cursor from the previous page; absent for the first.",
        },
    )


class SecurityLogSchema(Schema):
    """{"events": [Event], "next_cursor"}: newest first; no next_cursor on the last page."""

    events = fields.List(fields.Nested(SecurityEventSchema), dump_only=True)
    next_cursor = fields.String(
        dump_only=True,
        metadata={"description": "Present when older events follow: pass it as ?cursor=."},
    )


class SecurityAlertsSchema(Schema):
    """{"alerts": [Event]}: leaked-key revocations whose banner is not dismissed yet."""

    alerts = fields.List(fields.Nested(SecurityEventSchema), dump_only=True)
