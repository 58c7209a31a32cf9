"""The user's apps, and the codegen and deploy jobs that cost credits."""

from __future__ import annotations

from typing import Any

from flask import current_app

from config import app_caps
from extensions import Blueprint, storage
from openapi import (
    API_WRITE,
    COUNTED,
    JOB,
    JSON_BODY,
    KEY_OR_SESSION,
    KEY_OR_SESSION_WRITE,
    errors,
)
from schemas.apps import (
    AppCreateSchema,
    AppListQuerySchema,
    AppListSchema,
    AppSchema,
    CodegenSchema,
    JobEnvelopeSchema,
    encode_cursor,
)
from security.principal import current_principal
from services import jobs, limits
from store import apps

bp = Blueprint("apps", __name__, url_prefix="/api/apps", description="Apps and jobs")


@bp.route("", methods=["GET"])
@errors(bp, COUNTED, 422, security=KEY_OR_SESSION)
@bp.arguments(AppListQuerySchema, location="query")
@bp.response(200, AppListSchema)
def list_apps(query: dict[str, Any]) -> dict[str, Any]:
    """The user's apps, oldest first, a page at a time (follow next_cursor until null)."""
    page, last = apps.page_for_user(
        storage(), current_principal().user_id, query["limit"], query["cursor"]
    )
    if last is None:
        return {"apps": page}  # the last page: {"apps": [...]} as before pagination
    return {"apps": page, "next_cursor": encode_cursor(last.created_at, last.id)}


@bp.route("", methods=["POST"])
@errors(bp, API_WRITE, JSON_BODY, "app_limit_reached", security=KEY_OR_SESSION_WRITE)
@bp.arguments(AppCreateSchema)
@bp.response(201, AppSchema)
def create_app_record(body: dict[str, Any]) -> apps.App:
    """Create an app, within the plan's app cap (409 app_limit_reached)."""
    return apps.create(
        storage(), current_principal().user_id, body["name"], app_caps(current_app.config["PLANS"])
    )


@bp.route("/<app_id>", methods=["GET"])
@errors(bp, COUNTED, "not_found", security=KEY_OR_SESSION)
@bp.response(200, AppSchema)
def get_app(app_id: str) -> apps.App:
    """One app; someone else's is a 404."""
    return apps.get(storage(), current_principal().user_id, app_id)


@bp.route("/<app_id>", methods=["DELETE"])
@errors(bp, API_WRITE, "not_found", security=KEY_OR_SESSION_WRITE)
@bp.response(204)
def delete_app(app_id: str) -> tuple[str, int]:
    """Delete an app and its job history."""
    apps.delete(storage(), current_principal().user_id, app_id)
    return "", 204


@bp.route("/<app_id>/codegen", methods=["POST"])
@errors(bp, API_WRITE, JSON_BODY, JOB, security=KEY_OR_SESSION_WRITE)
@bp.arguments(CodegenSchema)
@bp.response(202, JobEnvelopeSchema)
# Innermost, so the body is validated first: a rejected body never uses up the limit.
@limits.route_limit("codegen")
def codegen(body: dict[str, Any], app_id: str) -> dict[str, Any]:
    """Start a generation job: checks the per-user limit, charges credits, records the job."""
    return {"job": jobs.start(current_principal(), app_id, "codegen", prompt=body["prompt"])}


@bp.route("/<app_id>/deploy", methods=["POST"])
@errors(bp, API_WRITE, JOB, security=KEY_OR_SESSION_WRITE)
@bp.response(202, JobEnvelopeSchema)
@limits.route_limit("deploy")
def deploy(app_id: str) -> dict[str, Any]:
    """Start a deploy job: checks the per-user limit, charges credits, records the job."""
    return {"job": jobs.start(current_principal(), app_id, "deploy")}
