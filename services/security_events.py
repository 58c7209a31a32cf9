"""Security events, the one way to report them: a log line, and the owner's security log.

`log_event` writes the `genmb.security` line every event gets (key=value, control characters
escaped, so a client cannot forge a second line). `record` appends the event to the account's
own log (a capped Redis stream the owner reads on Settings): best effort, because the action
it describes has already happened (a key was created, revoked...), so a Redis hiccup while
recording is logged and the action's answer stands. Neither is ever given a raw key: a key
is named by its id and display prefix.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, has_request_context, request

from extensions import storage
from logs import escape_controls
from store import security_log
from store.errors import UNAVAILABLE

log = logging.getLogger("genmb.security")

# Who did it.
USER, OPERATOR, SCANNER = "user", "operator", "github_secret_scanning"


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log `event key=value ...` on one line; empty fields are left out, values escaped."""
    shown = {name: escape_controls(str(v)) for name, v in fields.items() if v not in (None, "")}
    detail = "".join(f" {name}={value}" for name, value in shown.items())
    # LOG_FORMAT=json takes the event and its fields from here, never from the text (logs.py).
    log.log(level, "%s%s", event, detail, extra={"genmb_event": event, "genmb_fields": shown})


def policy() -> security_log.Policy:
    """The app's retention settings."""
    config = current_app.config
    return security_log.Policy(config["SECURITY_LOG_MAX_EVENTS"], config["SECURITY_LOG_MAX_DAYS"])


def record(
    user_id: str, event_type: str, actor: str, alert: bool = False, **fields: Any
) -> str | None:
    """Append an event to the user's log (the client IP taken from the request, if any)."""
    if "ip" not in fields and has_request_context():
        fields["ip"] = request.remote_addr
    try:
        return security_log.record(
            storage(),
            policy(),
            user_id,
            {"type": event_type, "actor": actor, **fields},
            alert=alert,
        )
    except UNAVAILABLE as exc:
        log_event(
            "security_log.unrecorded",
            logging.WARNING,
            type=event_type,
            user_id=user_id,
            error=exc.__class__.__name__,
        )
        return None


def record_throttled(user_id: str, what: str, event_type: str, actor: str, **fields: Any) -> None:
    """Record an event at most once a minute per user and `what` (noisy kinds: failed logins,
    a downgraded account's key hammering the API)."""
    try:
        if not security_log.claim(storage(), user_id, what):
            return
    except UNAVAILABLE:
        return
    record(user_id, event_type, actor, **fields)
