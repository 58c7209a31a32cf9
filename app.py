"""The application factory: settings, extensions, blueprints, error handlers, commands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from inspect import CO_COROUTINE
from types import FunctionType
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface

import cli
import metrics
from blueprints import (
    account,
    apps,
    auth,
    health,
    keys,
    mcp,
    oauth,
    secret_scanning,
    security_log,
    web,
)
from blueprints import metrics as metrics_bp
from config import load_settings
from errors import register_error_handlers
from extensions import STORAGE_EXTENSION, api, limiter
from logs import configure_logging
from openapi import fill_settings
from security import edge, gate, hot_path
from store.client import Storage, connect
from store.durability import ReplicaWait
from store.names import KeyNames


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings read from the environment."""
    configure_logging()
    app = App(__name__)
    app.config.update(load_settings(config))
    configure_logging(log_format=app.config["LOG_FORMAT"])
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    cli.init_app(app)
    # The WSGI layers around Flask, innermost first: the hot path answers an admitted
    # GET /api/me by key without Flask; the proxy checks, outermost, serve both.
    hot_path.init_app(app)
    edge.trust_proxies(app)
    return app


def register_extensions(app: Flask) -> None:
    """Storage (one Redis client per process), the edge checks, the gate, the API."""
    config = app.config
    metrics.init_app(app)  # the METRICS switch, before the gate's hooks are installed
    client = connect(
        config["REDIS_URL"], config["REDIS_TIMEOUT"], config["REDIS_SENTINEL_PASSWORD"] or None
    )
    wait = ReplicaWait(config["REVOKE_MIN_REPLICAS"], config["REVOKE_WAIT_MS"])
    app.extensions[STORAGE_EXTENSION] = Storage(
        client, KeyNames(config["REDIS_KEY_PREFIX"]), wait=wait
    )
    edge.init_app(app)  # the Host check, security headers
    gate.init_app(app)
    register_endpoint_limiter(app)
    api.init_app(app)
    # Sessions are server-side (store/sessions.py); Flask's signed-cookie session is unused,
    # so do not build its serializer on every request.
    app.session_interface = NoCookieSession()


class App(Flask):
    """Flask, answering ensure_sync (asked of every hook and view on every request) cheaply."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """A plain `def` function as is, told by its code flags (what iscoroutinefunction
        checks for one, without the unwrapping around it); anything else as Flask decides."""
        if type(func) is FunctionType and not func.__code__.co_flags & CO_COROUTINE:
            return func
        return super().ensure_sync(func)


class NoCookieSession(SessionInterface):
    """Flask's session turned off: every request gets the (empty, read-only) null session."""

    def open_session(self, app: Flask, request: Any) -> None:
        """No cookie session: Flask falls back to its null session."""
        return None

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        """Nothing to save."""


def register_endpoint_limiter(app: Flask) -> None:
    """flask-limiter for the per-user codegen/deploy limits, without app-wide hooks.

    Its decorators check a limit when the decorated view runs (after the gate has set the
    principal). Its before/after_request hooks only serve default and application limits,
    which this app does not have (the gate owns the global per-IP limit), so they are removed:
    every other request would otherwise pay for them (measured in docs/performance.md).
    """
    hooks = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    saved = [list(funcs[None]) for funcs in hooks]
    # flask-limiter merges each app's RATELIMIT_STORAGE_OPTIONS into what earlier apps of the
    # process left (one Limiter serves every app): start from this app's options alone.
    limiter._storage_options.clear()
    limiter.init_app(app)
    # Its teardown only resets a context that lives on the request context, which dies with
    # the request anyway: it goes too.
    for funcs, before in zip(hooks, saved, strict=True):
        funcs[None] = before


def register_blueprints(app: Flask) -> None:
    """Mount every blueprint; API ones through flask-smorest so they appear in /openapi.json."""
    for module in (auth, keys, account, apps, security_log, health):
        api.register_blueprint(module.bp)
    fill_settings(api.spec, app.config)  # this app's MAX_CONTENT_LENGTH in /openapi.json
    # GitHub's signed reports: a partner webhook outside the gate and /openapi.json.
    app.register_blueprint(secret_scanning.bp)
    app.register_blueprint(mcp.bp)  # POST /mcp; not in /openapi.json (JSON-RPC, not REST)
    # What OAuth clients probe after a 401 from /mcp: refused, saying why (no OAuth here).
    app.register_blueprint(oauth.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(metrics_bp.bp)  # GET /metrics with METRICS_TOKEN; not in /openapi.json
