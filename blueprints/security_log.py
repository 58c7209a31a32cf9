"""The account's security log and its leaked-key banners. Session only."""

from __future__ import annotations

from typing import Any

import metrics
from errors import api_error
from extensions import Blueprint, storage
from openapi import SESSION, SESSION_ONLY, SESSION_ONLY_WRITE, SESSION_WRITE, errors
from schemas.security_log import SecurityAlertsSchema, SecurityLogQuerySchema, SecurityLogSchema
from security.principal import current_principal
from services.security_events import policy
from store import security_log
from store.errors import NotFound

bp = Blueprint(
    "security_log",
    __name__,
    url_prefix="/api/security-log",
    description="The account's security log",
)


@bp.before_request
@metrics.access_refusal
def require_session() -> None:
    """Like key management: from a logged-in session, never with a key."""
    if current_principal().method != "session":
        raise api_error("session_required", action="Read the security log")


@bp.route("", methods=["GET"])
@errors(bp, SESSION_ONLY, 422, security=SESSION)
@bp.arguments(SecurityLogQuerySchema, location="query")
@bp.response(200, SecurityLogSchema)
def list_events(query: dict[str, Any]) -> dict[str, Any]:
    """The account's security events, newest first, a page at a time."""
    events, following = security_log.page(
        storage(), policy(), current_principal().user_id, query["limit"], query["cursor"]
    )
    return {"events": events} if following is None else {"events": events, "next_cursor": following}


@bp.route("/alerts", methods=["GET"])
@errors(bp, SESSION_ONLY, security=SESSION)
@bp.response(200, SecurityAlertsSchema)
def list_alerts() -> dict[str, Any]:
    """Leaked-key revocations the user has not dismissed yet (the Settings banners)."""
    return {"alerts": security_log.alerts(storage(), current_principal().user_id)}


@bp.route("/<event_id>/dismiss", methods=["POST"])
@errors(bp, SESSION_ONLY_WRITE, "not_found", security=SESSION_WRITE)
@bp.response(204)
def dismiss_alert(event_id: str) -> tuple[str, int]:
    """Hide a leaked-key banner (the event stays in the log)."""
    if not security_log.dismiss(storage(), current_principal().user_id, event_id):
        raise NotFound(event_id)
    return "", 204
