"""Liveness and readiness of the service and its store; not rate limited, no credentials.

/healthz: Redis answers a PING in time (a Redis out of memory still does: liveness).
/readyz: Redis takes a write now (reachable, a primary, not out of memory): readiness, for a
load balancer that should send traffic elsewhere while this instance cannot serve writes.
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
@bp.alt_response(503, schema=ErrorSchema, description="Redis does not answer a PING in time.")
@bp.doc(security=[])
def healthz() -> tuple[Response, int]:
    """Liveness: 200 when Redis answers a PING in time, else 503.

    A Redis out of memory (maxmemory with noeviction) still answers: see /readyz."""
    try:
        storage().redis.ping()
    except UNAVAILABLE:
        raise api_error("service_unavailable", "Redis is unreachable.") from None
    return jsonify(status="ok"), 200


@bp.route("/readyz", methods=["GET"])
@bp.response(200, HealthSchema)
@bp.alt_response(
    503,
    schema=ErrorSchema,
    description="Redis refuses a write now: unreachable, out of memory, or a "
    "replica during a failover.",
)
@bp.doc(security=[])
def readyz() -> tuple[Response, int]:
    """Readiness: 200 when Redis takes a write now, else 503.

    Writes one small key under REDIS_KEY_PREFIX (`<prefix>:readyz`, expiring after 10 s)."""
    store = storage()
    try:
        store.redis.set(store.names.readiness(), "1", px=READINESS_TTL_MS)
    except UNAVAILABLE:
        raise api_error(
            "service_unavailable",
            "Redis refuses writes (unreachable, out of memory, or read-only).",
        ) from None
    return jsonify(status="ok"), 200
