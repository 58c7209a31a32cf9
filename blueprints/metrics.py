"""GET /metrics on the app's own address: only with `Authorization: Bearer $METRICS_TOKEN`.

Outside the gate's prefixes, so a scrape is never counted in any window. Without a token
configured (or with METRICS=off) the path does not exist: 404, as any unknown path. The
other way to scrape, METRICS_BIND, is a listener of its own (deploy/metrics_listener.py).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

import metrics
from deploy.metrics_listener import CONTENT_TYPE, scrape
from errors import api_error

bp = Blueprint("metrics", __name__)


@bp.route("/metrics", methods=["GET"])
def metrics_view() -> Response:
    """The instance's metrics, for a scraper holding METRICS_TOKEN."""
    token = current_app.config["METRICS_TOKEN"]
    if not token or not metrics.enabled():
        raise api_error("not_found")
    sent = request.headers.get("Authorization", "").encode("utf-8", "replace")
    # Constant time: how much of a guess matched must not show in the answer's timing.
    if not hmac.compare_digest(sent, f"Bearer {token}".encode()):
        raise api_error(
            "missing_credentials", "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>."
        )
    response = Response(scrape(), content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
