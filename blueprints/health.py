"""Liveness of the service and its store; not rate limited."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from extensions import storage
from store.errors import UNAVAILABLE

bp = Blueprint("health", __name__)


@bp.route("/healthz", methods=["GET"])
def healthz() -> tuple[Response, int]:
    """200 when Redis answers a PING in time, else 503."""
    try:
        storage().redis.ping()
    except UNAVAILABLE:
        error = {"code": "service_unavailable", "message": "Redis is unreachable."}
        return jsonify(status="unavailable", error=error), 503
    return jsonify(status="ok"), 200
