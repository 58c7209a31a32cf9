"""The before_request gate: count, authenticate, attribute, all in one Redis round trip.

One hook of three, installed in this order by init_app: the gate (this module), then the
body check (security/body.py); the rate headers go on every counted answer after the view
(security/rate_headers.py). Which paths are counted and authenticated: security/paths.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, current_app, g, request

import metrics
from config import plans_with_keys
from errors import api_error, plan_required
from extensions import storage
from security import csrf
from security.body import check_request_body
from security.credentials import Presented, presented
from security.paths import UNSAFE_METHODS, authenticated, counted, rescue_route
from security.principal import Principal
from security.rate_headers import add_rate_headers
from security.rate_subject import rate_limit_subject
from services.security_events import log_event, record_throttled
from store import gate as gate_store
from store import rescue as rescue_store
from store.client import Storage
from store.gate import GateResult, Identity

Lookup = tuple[str, str] | None  # ("key" or "session", digest), as Presented.lookup() gives


# Where the hot path (security/hot_path.py) leaves the gate's answer, a GateResult or the
# exception the gate call raised, when it hands a request on to Flask after counting it: the
# request is counted once. A WSGI environ key no client header can produce (those are HTTP_*).
GATE_ANSWER = "genmb.gate_answer"


def run_gate(
    store: Storage, config: Mapping[str, Any], client_ip: str | None, looked_up: Lookup
) -> GateResult:
    """The one gate call with the app's settings (store/gate.py), its duration observed."""
    started = time.perf_counter()
    result = gate_store.check(
        store,
        rate_limit_subject(client_ip),
        config["GLOBAL_LIMIT"],
        config["GLOBAL_WINDOW_MS"],
        looked_up,
        config["KEY_PLANS_ARG"],
        config["KEY_USAGE"] == "on",
    )
    metrics.gate_seconds(started)
    return result


def before_request() -> None:
    """Gate every counted request; raise an ApiError to refuse it."""
    # The request itself, not its context-local proxy: this runs on every request, and each
    # attribute read through the proxy costs a context lookup.
    req = request._get_current_object()  # type: ignore[attr-defined]
    if not counted(req.path):
        return
    config = current_app.config
    credential = presented(req, config["SESSION_COOKIE_NAME"])
    looked_up = credential.lookup()
    answer = req.environ.pop(GATE_ANSWER, None)
    if answer is None:
        answer = run_gate(storage(), config, req.remote_addr, looked_up)
    elif isinstance(answer, Exception):
        raise answer
    result: GateResult = answer
    g.rate = result.rate
    if not result.rate.admitted:  # Retry-After is set with the other headers, after_request
        result = _rescue(req, looked_up, result)
    _attribute(req, credential, result.identity)


def plan_allows_keys(config: Mapping[str, Any], identity: Identity) -> bool:
    """Whether the identity's plan (of the app's PLANS) may use API keys."""
    plan = config["PLANS"].get(identity.plan)
    return plan is not None and plan.api_keys


def _rescue(req: Request, looked_up: Lookup, refused: GateResult) -> GateResult:
    """The IP window is spent: a live session's rescue route may still pass, within the
    session's own allowance (a second round trip, on this path only); else 429."""
    if (
        looked_up is None
        or looked_up[0] != "session"
        or not rescue_route(req.method, req.path)
        # The rescue is for the logged-in page: a script that happens to hold a session
        # cookie (it sends no Sec-Fetch-Site) stays with its IP window, exact as before.
        or req.headers.get("Sec-Fetch-Site") != "same-origin"
    ):
        raise api_error("rate_limited")
    config = current_app.config
    rescued = rescue_store.check(
        storage(),
        looked_up[1],
        config["RESCUE_LIMIT"],
        config["RESCUE_WINDOW_MS"],
        config["KEY_PLANS_ARG"],
    )
    if rescued is None:  # not a live session: the IP window's 429
        raise api_error("rate_limited")
    if not rescued.rate.admitted:
        # Both spent: the headers tell the wait until either admits again.
        if rescued.rate.reset_seconds < refused.rate.reset_seconds:
            g.rate = rescued.rate
        raise api_error("rate_limited")
    g.rate = rescued.rate
    return rescued


def _attribute(req: Request, credential: Presented, identity: Identity | None) -> None:
    """Turn the gate's answer into g.principal, or refuse the request."""
    ip = req.remote_addr
    if credential.kind == "malformed" or (credential.kind == "key" and identity is None):
        log_event(
            "auth.failed",
            reason="invalid_api_key",
            prefix=credential.display_prefix,
            ip=ip,
            path=req.path,
        )
        raise api_error("invalid_api_key")
    if credential.kind == "key" and identity is not None:
        if not plan_allows_keys(current_app.config, identity):
            log_event(
                "auth.failed",
                reason="plan_required",
                key_id=identity.key_id,
                user_id=identity.user_id,
                ip=ip,
            )
            # Rare (a downgraded account), so it may cost Redis calls; at most once a minute
            # per key, so a CI job hammering with the key cannot flood the owner's log.
            record_throttled(
                identity.user_id,
                f"plan_refused:{identity.key_id}",
                "api_key.refused_plan",
                "api_key",
                key_id=identity.key_id,
                key_prefix=credential.display_prefix,
                plan=identity.plan,
            )
            raise plan_required()
        g.principal = Principal(identity, "api_key")
    elif credential.kind == "session" and identity is not None:
        g.principal = Principal(identity, "session", credential.secret)

    if not authenticated(req.path):
        return
    principal = g.get("principal")
    if principal is None:
        raise api_error("missing_credentials")
    if principal.method == "session" and req.method in UNSAFE_METHODS:
        csrf.require_valid(principal.session_token)


def init_app(app: Flask) -> None:
    """Install the gate, then the body check (so a refused request is never read), and the
    rate headers."""
    # The plans whose keys the gate admits, as the gate scripts take them (computed once).
    app.config["KEY_PLANS_ARG"] = " ".join(plans_with_keys(app.config["PLANS"]))
    app.before_request(metrics.gate_outcomes(before_request))  # each decision counted once
    app.before_request(metrics.access_refusal(check_request_body))  # 413/415 its outcome
    app.after_request(add_rate_headers)
