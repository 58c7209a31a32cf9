"""The baseline apps the benchmark compares ours with; gunicorn loads them by factory.

    gunicorn "bench.baseline_apps:bare_app()"    the ceiling: Flask answering the same JSON
    gunicorn "bench.baseline_apps:common_app()"  the usual guard: flask-limiter + one HGETALL
    gunicorn "bench.baseline_apps:floor_app()"   the floor: bare Flask + ours' one gate call

They read their settings from the environment, as the service does: REDIS_URL (the floor:
all of ours' settings), and for the bare app BENCH_ME_JSON (the exact body of our GET
/api/me, captured by bench.run).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from config import load_settings, plans_with_keys
from services.credits import allowance
from store import gate
from store.client import Storage, connect
from store.digest import digest
from store.names import KeyNames

# Where bench.run seeds the common app's key record: the SHA-256 hex digest is appended.
COMMON_KEY_PREFIX = "bench:common:apikey:"
GLOBAL_LIMIT = "200 per minute"
ROUTE_LIMIT = "200 per minute"
MONTHLY_CREDITS = {"free": 50, "pro": 1000, "business": 10000}  # config.py's defaults


def bare_app() -> Flask:
    """Flask returning our GET /api/me body (same shape, same size), and nothing else."""
    app = Flask(__name__)
    body: dict[str, Any] = json.loads(os.environ["BENCH_ME_JSON"])

    @app.get("/api/me")
    def me() -> Response:
        """The same JSON our service answers, serialised per request as ours is."""
        return jsonify(body)

    return app


def _next_month_iso(now: datetime) -> str:
    """Midnight UTC on the first of next month, in our ISO format."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _unauthorized() -> tuple[Response, int]:
    """The 401 a typical app answers for a missing or unknown key."""
    return jsonify(error={"code": "invalid_api_key", "message": "Invalid API key."}), 401


def _bearer_token() -> str | None:
    """The key of an `Authorization: Bearer <key>` header, else None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _me(user_id: str, email: str, plan: str, key_id: str | None, limit: int, used: int) -> Response:
    """Our GET /api/me body, from what a baseline looked up."""
    return jsonify(
        {
            "id": user_id,
            "email": email,
            "plan": plan,
            "auth": {"method": "api_key", "key_id": key_id},
            "credits": {
                "limit": limit,
                "used": used,
                "remaining": max(0, limit - used),
                "resets_at": _next_month_iso(datetime.now(UTC)),
            },
        }
    )


def common_app() -> Flask:
    """The bare app guarded the usual way: flask-limiter on Redis and a key lookup."""
    app = Flask(__name__)
    url = os.environ["REDIS_URL"]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    client = redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
    )
    limiter = Limiter(
        get_remote_address, app=app, storage_uri=url, application_limits=[GLOBAL_LIMIT]
    )

    @app.get("/api/me")
    @limiter.limit(ROUTE_LIMIT)
    def me() -> Response | tuple[Response, int]:
        """Look the key record up by the digest of the bearer key, then answer like ours."""
        token = _bearer_token()
        if token is None:
            return _unauthorized()
        record = client.hgetall(COMMON_KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest())
        if not record:
            return _unauthorized()
        limit = MONTHLY_CREDITS.get(record["plan"], 0)
        used = int(record.get("credits_used", 0))
        return _me(record["user_id"], record["email"], record["plan"], record["id"], limit, used)

    return app


def floor_app() -> Flask:
    """Bare Flask plus exactly ours' data path: the one gate EVALSHA (IP window, key record,
    user, credits, last_used_at, usage) through store/gate.py, and the same body. No
    ProxyFix, hooks, headers, metrics or logging of ours: what one round trip to Redis costs
    a Flask app at the least, on this machine (issue #15's "minimal Flask app")."""
    app = Flask(__name__)
    # The settings ours is given (bench.run passes both rows the same environment), so the
    # two do the same Redis work: the window, the plans that may use keys, usage counting.
    settings = load_settings()
    storage = Storage(connect(settings["REDIS_URL"], 1.0), KeyNames(settings["REDIS_KEY_PREFIX"]))
    limit, window_ms = settings["GLOBAL_LIMIT"], settings["GLOBAL_WINDOW_MS"]
    key_plans = " ".join(plans_with_keys(settings["PLANS"]))
    usage = settings["KEY_USAGE"] == "on"

    @app.get("/api/me")
    def me() -> Response | tuple[Response, int]:
        """Gate the bearer key in one round trip, then answer like ours."""
        token = _bearer_token()
        if token is None:
            return _unauthorized()
        # The load sends one X-Forwarded-For entry per request; a bench app, so unchecked.
        client = request.headers.get("X-Forwarded-For") or request.remote_addr or "unknown"
        result = gate.check(
            storage, client, limit, window_ms, ("key", digest(token)), key_plans, usage
        )
        if not result.rate.admitted:
            return jsonify(error={"code": "rate_limited", "message": "Too many requests."}), 429
        ident = result.identity
        if ident is None:
            return _unauthorized()
        credits = allowance(settings["PLANS"], ident.plan)
        return _me(
            ident.user_id, ident.email, ident.plan, ident.key_id, credits, ident.credits_used
        )

    return app
