"""The application factory: settings, extensions, blueprints, error handlers, commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import cli
from blueprints import account, apps, auth, health, keys, mcp, web
from config import load_settings
from errors import register_error_handlers
from extensions import STORAGE_EXTENSION, api, limiter
from logs import configure_logging
from security import gate
from store.client import Storage, connect
from store.names import KeyNames


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings read from the environment."""
    configure_logging()
    app = Flask(__name__)
    app.config.update(load_settings(config))
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    cli.init_app(app)
    return app


def register_extensions(app: Flask) -> None:
    """Storage (one Redis client per process), proxy trust, the gate, the API."""
    client = connect(app.config["REDIS_URL"], app.config["REDIS_TIMEOUT"])
    app.extensions[STORAGE_EXTENSION] = Storage(client, KeyNames(app.config["REDIS_KEY_PREFIX"]))
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    gate.init_app(app)  # before the limiter: its before_request needs the gate's principal
    limiter.init_app(app)
    api.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount every blueprint; API ones through flask-smorest so they appear in /openapi.json."""
    for module in (auth, keys, account, apps):
        api.register_blueprint(module.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(mcp.bp)  # POST /mcp; not in /openapi.json (JSON-RPC, not REST)
    app.register_blueprint(web.bp)
