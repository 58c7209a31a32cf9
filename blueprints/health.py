"""Liveness and readiness of the service and its store; not rate limited, no credentials.

/healthz: the process serves requests (liveness). It never touches Redis: during a Redis
outage every instance is equally stuck, and an orchestrator restarting them would only add
cold starts to the outage.
/readyz: Redis takes a write now (reachable, a primary, not out of memory) and holds every
Lua script the gate and the store run (loaded here when missing, e.g. after a Redis restart):
readiness, for a load balancer that should send traffic elsewhere meanwhile.
"""

from __future__ import annotations

from flask import Response, jsonify
from marshmallow import Schema, fields

from errors import api_error
from extensions import Blueprint, storage
from schemas.common import ErrorSchema
from store.errors import UNAVAILABLE

bp = Blueprint(
    "health", __name__, description="Liveness and readiness (no credentials, not rate limited)."
)

READINESS_TTL_MS = 10_000  # the probe key expires by itself


class HealthSchema(Schema):
    """{"status": "ok"}."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


@bp.route("/healthz", methods=["GET"])
@bp.response(200, HealthSchema)
@bp.doc(security=[])
def healthz() -> tuple[Response, int]:
    """Liveness: 200 while the process serves; Redis is not asked (see /readyz)."""
    return jsonify(status="ok"), 200


@bp.route("/readyz", methods=["GET"])
@bp.response(200, HealthSchema)
@bp.alt_response(
    503,
    schema=ErrorSchema,
    description="Redis refuses a write now (unreachable, out of memory, or a "
    "replica during a failover), or the scripts cannot be loaded.",
)
@bp.doc(security=[])
def readyz() -> tuple[Response, int]:
    """Readiness: 200 when Redis takes a write now and holds the scripts, else 503.

    Writes one small key under REDIS_KEY_PREFIX (`<prefix>:readyz`, expiring after 10 s)."""
    store = storage()
    try:
        store.redis.set(store.names.readiness(), "1", px=READINESS_TTL_MS)
        if not store.scripts_loaded():
            raise api_error("service_unavailable", "Redis does not hold the service's scripts.")
    except UNAVAILABLE:
        raise api_error(
            "service_unavailable",
            "Redis refuses writes (unreachable, out of memory, or read-only).",
        ) from None
    return jsonify(status="ok"), 200
