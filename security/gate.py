"""The before_request gate: count, authenticate, attribute, all in one Redis round trip."""

from __future__ import annotations

import io
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request

import metrics
from config import plans_with_keys
from errors import ApiError, invalid_api_key, missing_credentials, plan_required
from extensions import limiter, storage
from logs import escape_controls
from security import csrf
from security.credentials import Presented, presented
from services import security_events
from store import gate as gate_store
from store.gate import Identity, RateState

log = logging.getLogger("genmb.security")

COUNTED_PREFIXES = ("/api", "/auth", "/mcp")
# Under a counted prefix but outside the gate: GitHub's signed secret-scanning reports are
# neither authenticated by key or session nor counted in the sender's IP window (the view
# has its own limit and body cap: blueprints/secret_scanning.py).
UNCOUNTED_PATHS = frozenset({"/api/secret-scanning/github"})
AUTHENTICATED_PREFIXES = ("/api", "/mcp")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    """Who the request acts for, and how it proved it."""

    identity: Identity
    method: str  # "api_key" or "session"
    session_token: str | None = None

    @property
    def user_id(self) -> str:
        """The acting user's id."""
        return self.identity.user_id

    @property
    def key_id(self) -> str | None:
        """The API key's id, when one was used."""
        return self.identity.key_id


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def rate_limit_subject(client_ip: str | None) -> str:
    """The address a request is counted under: the IPv4 address, or an IPv6 /64 network.

    One IPv6 subscriber usually holds a whole /64 (2^64 addresses); counting each address
    alone would let one client multiply its limit at will.
    """
    if not client_ip:
        return "unknown"
    if ":" not in client_ip:
        return client_ip
    try:
        address = ipaddress.IPv6Address(client_ip)
    except ValueError:
        return client_ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def current_principal() -> Principal:
    """The authenticated principal of this request (the gate guarantees one under /api)."""
    principal = g.get("principal")
    if principal is None:
        raise missing_credentials()
    return principal


def optional_principal() -> Principal | None:
    """The principal, if the request carried a valid credential."""
    return g.get("principal")


def _security_event(event: str, **fields: object) -> None:
    """Log a security event as key=value pairs (values never contain a raw key).

    Control characters in values (a decoded path can hold a newline) are escaped, so a
    client cannot forge a second log line.
    """
    shown = {k: escape_controls(str(v)) for k, v in fields.items() if v not in (None, "")}
    # One %s per field: LOG_FORMAT=json takes the field names from this format (logs.py).
    log.info(" ".join([event, *(f"{k}=%s" for k in shown)]), *shown.values())


def counted(path: str) -> bool:
    """Whether the gate counts (and authenticates) a request to this path."""
    return _under(path, COUNTED_PREFIXES) and path not in UNCOUNTED_PATHS


def before_request() -> None:
    """Gate every counted request; raise an ApiError to refuse it."""
    if not counted(request.path):
        return
    config = current_app.config
    credential = presented(request, config["SESSION_COOKIE_NAME"])
    started = time.perf_counter()
    result = gate_store.check(
        storage(),
        rate_limit_subject(request.remote_addr),
        config["GLOBAL_LIMIT"],
        config["GLOBAL_WINDOW_MS"],
        credential.lookup(),
        config["KEY_PLANS_ARG"],
        config["KEY_USAGE"] == "on",
    )
    metrics.gate_seconds(started)
    g.rate = result.rate
    if not result.rate.admitted:  # Retry-After is set with the other headers, after_request
        raise ApiError(429, "rate_limited", "Too many requests; slow down and retry later.")
    _attribute(credential, result.identity)
    check_request_body()


def _attribute(credential: Presented, identity: Identity | None) -> None:
    """Turn the gate's answer into g.principal, or refuse the request."""
    ip = request.remote_addr
    if credential.kind == "malformed" or (credential.kind == "key" and identity is None):
        _security_event(
            "auth.failed",
            reason="invalid_api_key",
            prefix=credential.display_prefix,
            ip=ip,
            path=request.path,
        )
        raise invalid_api_key()
    if credential.kind == "key" and identity is not None:
        plan = current_app.config["PLANS"].get(identity.plan)
        if plan is None or not plan.api_keys:
            _security_event(
                "auth.failed",
                reason="plan_required",
                key_id=identity.key_id,
                user_id=identity.user_id,
                ip=ip,
            )
            # Rare (a downgraded account), so it may cost Redis calls; at most once a minute
            # per key, so a CI job hammering with the key cannot flood the owner's log.
            security_events.record_throttled(
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

    if not _under(request.path, AUTHENTICATED_PREFIXES):
        return
    principal = g.get("principal")
    if principal is None:
        raise missing_credentials()
    if principal.method == "session" and request.method in UNSAFE_METHODS:
        csrf.require_valid(principal.session_token)


def _binding_limit(rate: RateState) -> tuple[int, int, float]:
    """(limit, remaining, reset seconds) of the limit closest to refusing this client.

    Every counted request has the global per-IP window; codegen and deploy also have a
    per-user limit. The headers describe whichever has fewer requests left (on a tie, the
    one that frees up later), so a client that obeys them is never refused by the other.
    """
    best = (rate.limit, rate.remaining, rate.reset_seconds)
    endpoint = limiter.current_limit if g.get("endpoint_limited") else None
    if endpoint is not None:
        remaining = 0 if endpoint.breached else endpoint.remaining
        reset = max(0.0, endpoint.reset_at - time.time())
        if (remaining, -reset) < (best[1], -best[2]):
            best = (endpoint.limit.amount, remaining, reset)
    return best


def after_request(response: Response) -> Response:
    """Attach the X-RateLimit-* headers (and Retry-After on a 429) to counted responses."""
    rate: RateState | None = g.get("rate")
    if rate is None:
        return response
    limit, remaining, reset_seconds = _binding_limit(rate)
    reset = max(1, math.ceil(reset_seconds)) if remaining == 0 else 0
    response.headers["X-RateLimit-Limit"] = str(limit)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, reset))
    response.headers["Cache-Control"] = "no-store"
    return response


def check_request_body() -> None:
    """Refuse bodies over MAX_CONTENT_LENGTH (413) and bodies that are not JSON (415).

    Checked up front for every counted route, so a view that never reads its body (deploy)
    cannot accept an oversized one, and a chunked body without Content-Length is measured
    instead of being silently cut at the limit.
    """
    if request.method not in UNSAFE_METHODS or not counted(request.path):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is None and request.environ.get("wsgi.input_terminated"):
        body = request.environ["wsgi.input"].read(limit + 1)
        length = len(body)
        # Hand the measured body on to the view as an ordinary sized body.
        request.environ["wsgi.input"] = io.BytesIO(body)
        request.environ["CONTENT_LENGTH"] = str(length)
        request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    if length and length > limit:
        raise ApiError(413, "payload_too_large", "Request body is larger than 1 MiB.")
    if length and not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the request body as JSON with Content-Type: application/json.",
        )


def init_app(app: Flask) -> None:
    """Install the gate on the app (authentication first, then the body check)."""
    # The plans whose keys the gate admits, as the gate scripts take them (computed once).
    app.config["KEY_PLANS_ARG"] = " ".join(plans_with_keys(app.config["PLANS"]))
    app.before_request(metrics.gate_outcomes(before_request))  # ends with check_request_body()
    app.after_request(after_request)
