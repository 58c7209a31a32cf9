"""API key management: list, create (the raw key shown once), revoke. Session only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import current_app, request

import metrics
from config import plans_with_keys
from errors import api_error
from extensions import Blueprint, storage
from openapi import JSON_BODY, SESSION, SESSION_ONLY, SESSION_ONLY_WRITE, SESSION_WRITE, errors
from schemas.keys import (
    CreatedKeySchema,
    KeyCreateSchema,
    KeyListSchema,
    KeyRollSchema,
    KeyUsageSchema,
    UsageQuerySchema,
)
from security.principal import current_principal
from services import security_events
from store import apikeys

bp = Blueprint("keys", __name__, url_prefix="/api/keys", description="API keys")


@bp.before_request
@metrics.access_refusal
def require_session() -> None:
    """Keys are managed from a logged-in session, never with a key."""
    if current_principal().method != "session":
        raise api_error("session_required", action="Manage API keys")


def _key_plans() -> list[str]:
    """The plans whose users may hold keys, as the key scripts check them."""
    return plans_with_keys(current_app.config["PLANS"])


def _handed_out(user_id: str, info: apikeys.KeyInfo, raw: str) -> dict[str, Any]:
    """Record a new key in the owner's security log; the body that shows it, the one time."""
    security_events.record(
        user_id,
        "api_key.created",
        security_events.USER,
        key_id=info.id,
        key_prefix=info.prefix,
        key_name=info.name,
    )
    return {**asdict(info), "key": raw}


@bp.route("", methods=["GET"])
@errors(bp, SESSION_ONLY, security=SESSION)
@bp.response(200, KeyListSchema)
def list_keys() -> dict[str, Any]:
    """The user's keys, oldest first."""
    return {"keys": apikeys.list_for_user(storage(), current_principal().user_id)}


@bp.route("", methods=["POST"])
@errors(
    bp,
    SESSION_ONLY_WRITE,
    JSON_BODY,
    "key_limit_reached",
    security=SESSION_WRITE,
)
@bp.arguments(KeyCreateSchema)
@bp.response(201, CreatedKeySchema)
def create_key(body: dict[str, Any]) -> dict[str, Any]:
    """Create a key; the response is the only place the raw key ever appears."""
    principal = current_principal()
    info, raw = apikeys.create(
        storage(),
        principal.user_id,
        body["name"],
        current_app.config["MAX_KEYS_PER_USER"],
        _key_plans(),
    )
    security_events.log_event(
        "api_key.created",
        key_id=info.id,
        prefix=info.prefix,
        user_id=principal.user_id,
        ip=request.remote_addr,
    )
    metrics.key_created()
    return _handed_out(principal.user_id, info, raw)


@bp.route("/<key_id>", methods=["DELETE"])
@errors(
    bp,
    SESSION_ONLY_WRITE,
    "not_found",
    "revocation_unconfirmed",
    security=SESSION_WRITE,
)
@bp.response(204)
def revoke_key(key_id: str) -> tuple[str, int]:
    """Revoke a key: its next request fails on every worker."""
    principal = current_principal()
    prefix = apikeys.revoke(storage(), principal.user_id, key_id)
    security_events.log_event(
        "api_key.revoked",
        key_id=key_id,
        prefix=prefix,
        user_id=principal.user_id,
        ip=request.remote_addr,
    )
    metrics.key_revoked("user")
    security_events.record(
        principal.user_id, "api_key.revoked", security_events.USER, key_id=key_id, key_prefix=prefix
    )
    return "", 204


@bp.route("/<key_id>/roll", methods=["POST"])
@errors(
    bp,
    SESSION_ONLY_WRITE,
    JSON_BODY,
    "not_found",
    "key_rolling",
    security=SESSION_WRITE,
)
@bp.arguments(KeyRollSchema)
@bp.response(201, CreatedKeySchema)
def roll_key(body: dict[str, Any], key_id: str) -> dict[str, Any]:
    """Replace a key with a new one of the same name (shown once, as at creation); the old one
    keeps working for `overlap_seconds`, then gets 401 like a revoked key."""
    principal = current_principal()
    overlap = body["overlap_seconds"]
    info, raw = apikeys.roll(storage(), principal.user_id, key_id, overlap, _key_plans())
    security_events.log_event(
        "api_key.rolled",
        key_id=key_id,
        new_key_id=info.id,
        prefix=info.prefix,
        overlap=overlap,
        user_id=principal.user_id,
        ip=request.remote_addr,
    )
    metrics.key_rolled()
    return _handed_out(principal.user_id, info, raw)


@bp.route("/<key_id>/usage", methods=["GET"])
@errors(bp, SESSION_ONLY, "not_found", security=SESSION)
@bp.arguments(UsageQuerySchema, location="query")
@bp.response(200, KeyUsageSchema)
def key_usage(query: dict[str, Any], key_id: str) -> dict[str, Any]:
    """A key's requests per UTC day, by outcome (admitted, rate limited, refused for plan),
    the last `days` days (today included), oldest first."""
    series = apikeys.usage(storage(), current_principal().user_id, key_id, query["days"])
    return {"key_id": key_id, "days": series}
