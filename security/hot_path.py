"""GET /api/me by API key, answered before Flask: the request every client makes most.

Scripts, CI jobs and MCP clients check their key with GET /api/me far more often than they
do anything else, and for that request Flask's request context, routing, hooks and response
object cost more of a worker's CPU than the Python of the one Redis round trip (issue #15,
docs/performance.md). This WSGI layer, inside the proxy checks (security/edge.py), answers
exactly that request when the gate admits it: GET /api/me, a well-formed key in
X-MCP-API-Key or Authorization: Bearer, a Host the service answers to. It uses the same
parts as the Flask path (the gate call, the plan check, the body, the header values) and
answers the same status, headers and bytes (tests/live/test_hot_path.py compares the two).
A check or limit added to that view's own code must be added here too: init_app refuses a
view replaced or wrapped when registered, but cannot see inside the view.

Everything else goes to Flask untouched. A request whose gate call refused it, found no
identity, or failed (Redis down) goes to Flask with the gate's answer in the environ
(security/gate.GATE_ANSWER): Flask's gate takes it instead of counting the request again,
and answers the refusal or the 503 as it answers every other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

import metrics
from blueprints.account import ME_PATH, me, me_body, me_bytes
from extensions import STORAGE_EXTENSION
from http_names import MCP_HEADER
from security.credentials import header_secret
from security.edge import HOST_RULE_EXTENSION, security_header_items
from security.gate import GATE_ANSWER, plan_allows_keys, run_gate
from security.principal import Principal
from security.rate_headers import rate_header_items
from store.digest import digest, is_well_formed

log = logging.getLogger("genmb.security")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

ME_ENDPOINT = "account.me"
# The environ key a WSGI server gives the X-MCP-API-Key header.
MCP_ENVIRON = "HTTP_" + MCP_HEADER.upper().replace("-", "_")


class HotPath:
    """The WSGI layer answering an admitted GET /api/me by API key; all else goes to `app`."""

    def __init__(self, app: WSGIApp, flask_app: Flask) -> None:
        config = flask_app.config
        self.app = app
        self.config = config
        self.storage = flask_app.extensions[STORAGE_EXTENSION]
        self.hosts = flask_app.extensions[HOST_RULE_EXTENSION]  # None: any Host (dev, tests)
        self.trusted_proxy = bool(config["TRUSTED_PROXY_COUNT"])

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != ME_PATH
            or environ.get("REQUEST_METHOD") != "GET"
            # Werkzeug's routing refuses a websocket upgrade to this route (400), after the
            # gate: Flask answers any upgrade, so that refusal stays Flask's.
            or "HTTP_UPGRADE" in environ
        ):
            return self.app(environ, start_response)
        secret = header_secret(environ.get(MCP_ENVIRON, ""), environ.get("HTTP_AUTHORIZATION", ""))
        if not (secret and is_well_formed(secret)):
            return self.app(environ, start_response)  # a session, or a refusal to explain
        if self.hosts is not None and not self.hosts.allows(environ.get("HTTP_HOST", "")):
            return self.app(environ, start_response)  # 421, before anything is counted
        try:
            looked_up = ("key", digest(secret))
            result = run_gate(self.storage, self.config, environ.get("REMOTE_ADDR"), looked_up)
        except Exception as exc:  # noqa: BLE001 - Flask's gate raises it, and answers it
            environ[GATE_ANSWER] = exc
            return self.app(environ, start_response)
        identity = result.identity
        if identity is None or not plan_allows_keys(self.config, identity):
            environ[GATE_ANSWER] = result  # refused (429, 401, 403): Flask says why
            return self.app(environ, start_response)
        try:
            body = me_bytes(me_body(Principal(identity, "api_key"), self.config["PLANS"]))
            rate = result.rate
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *rate_header_items(rate.limit, rate.remaining, rate.reset_seconds),
                ("Cache-Control", "no-store"),
                *security_header_items(self.trusted_proxy, environ.get("wsgi.url_scheme", "")),
            ]
        except Exception:  # a bug: Flask runs the same code, and answers 500 in its envelope
            log.exception("the hot path could not build GET %s", ME_PATH)
            environ[GATE_ANSWER] = result
            return self.app(environ, start_response)
        start_response("200 OK", headers)
        metrics.admitted()
        return [body]


def init_app(app: Flask) -> None:
    """Put the hot path in front of Flask (after edge.init_app, whose Host rule it shares;
    before the proxy checks wrap both)."""
    # It stands in for one view: GET /api/me must still route to account.me, with no
    # arguments, and that view must be blueprints.account.me itself, not one replaced or
    # wrapped when registered. (A check added to the view's own code must be added here too.)
    route = app.url_map.bind("").match(ME_PATH, method="GET")
    if route != (ME_ENDPOINT, {}) or app.view_functions[ME_ENDPOINT] is not me:
        raise RuntimeError(f"the hot path answers GET {ME_PATH}, now routed to {route}")
    app.wsgi_app = HotPath(app.wsgi_app, app)  # type: ignore[method-assign]
