"""The one JSON error envelope, and the one place that maps every failure to HTTP."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Response, current_app, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

import metrics
from config import key_plans_text
from http_names import MCP_PATH
from logs import remove_keys
from store import errors as domain

log = logging.getLogger(__name__)
security_log = logging.getLogger("genmb.security")

REALM = 'Bearer realm="genmb"'


class ApiError(Exception):
    """An error answer: HTTP status, snake_case code, a human sentence, extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        fields: Any = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.fields = fields


@dataclass(frozen=True)
class ErrorKind:
    """One error the API can answer with: its status, code and message (the message may hold
    {placeholders} filled when raised), fixed headers, and when it happens (for /openapi.json);
    `also`: other statuses the same code answers with, and when."""

    status: int
    code: str
    message: str
    when: str
    headers: tuple[tuple[str, str], ...] = ()
    also: tuple[tuple[int, str], ...] = ()

    def occasions(self) -> tuple[tuple[int, str], ...]:
        """Every (status, when) of this code, its own status first."""
        return ((self.status, self.when), *self.also)


RETRY_SOON = (("Retry-After", "1"),)

# Every error code the service answers with, once. Raise one with api_error("<code>").
CATALOGUE: dict[str, ErrorKind] = {
    kind.code: kind
    for kind in (
        ErrorKind(
            400, "bad_request", "The request could not be understood.", "a malformed request"
        ),
        ErrorKind(
            400,
            "validation_error",
            "The request body is invalid.",
            "the body is not valid JSON",
            also=((422, "`fields` says which field (or query parameter) is wrong and why"),),
        ),
        ErrorKind(
            400,
            "oauth_not_supported",
            "This server uses API keys, not OAuth: the key in your configuration is missing, "
            "invalid or revoked — create one in Settings → API Keys.",
            "an OAuth client registration (POST /register): an MCP client that took a 401 "
            "for an OAuth challenge",
        ),
        ErrorKind(
            401,
            "missing_credentials",
            "Authentication required: send an API key or log in.",
            "no key, no session",
            (("WWW-Authenticate", REALM),),
        ),
        ErrorKind(
            401,
            "invalid_api_key",
            "The API key is invalid or has been revoked.",
            "a malformed, unknown or revoked key: one body for all",
            (("WWW-Authenticate", f'{REALM}, error="invalid_token"'),),
        ),
        ErrorKind(401, "invalid_credentials", "Wrong email or password.", "a failed login"),
        ErrorKind(401, "not_logged_in", "No active session.", "a session action without one"),
        ErrorKind(
            401,
            "invalid_signature",
            "The GitHub secret-scanning signature is missing or does not verify.",
            "a secret-scanning report GitHub did not sign",
        ),
        ErrorKind(
            402,
            "insufficient_credits",
            "Not enough credits left this month for this action.",
            "not enough credits left this month",
        ),
        ErrorKind(
            403,
            "plan_required",
            "API keys require a {plans} plan.",
            "the key's owner is on a plan without API keys",
        ),
        ErrorKind(
            403,
            "csrf_failed",
            "Missing or invalid X-CSRF-Token header.",
            "a session write without the session's X-CSRF-Token",
        ),
        ErrorKind(
            403,
            "session_required",
            "{action} from a logged-in session.",
            "key management or the security log with an API key",
        ),
        ErrorKind(
            403,
            "cross_site_request",
            "Cross-site requests to /auth are refused: use this site's own pages.",
            "an /auth write whose Origin or Sec-Fetch-Site names another site",
        ),
        ErrorKind(404, "not_found", "Not found.", "unknown, or someone else's"),
        ErrorKind(405, "method_not_allowed", "Method not allowed.", "a method the path lacks"),
        ErrorKind(
            409, "email_taken", "An account with this email already exists.", "the email is taken"
        ),
        ErrorKind(
            409,
            "key_limit_reached",
            "You already have the maximum number of API keys; delete one to create another.",
            "the user holds MAX_KEYS_PER_USER keys",
        ),
        ErrorKind(
            409,
            "key_rolling",
            "This key is already being rolled, or the key it replaced still works: "
            "wait for that overlap to end, or delete the old key, then roll again.",
            "a roll of a key already in an overlap",
        ),
        ErrorKind(
            409,
            "app_limit_reached",
            "You already have the most apps your plan allows; "
            "delete one to create another, or upgrade.",
            "the plan's app cap, MAX_APPS_<PLAN>",
        ),
        ErrorKind(
            413,
            "payload_too_large",
            "Request body is larger than {limit} bytes.",
            "the body is over {limit} bytes (MAX_CONTENT_LENGTH)",
        ),
        ErrorKind(
            415,
            "unsupported_media_type",
            "Send the request body as JSON with Content-Type: application/json.",
            "a body that is not `application/json`",
        ),
        ErrorKind(
            421,
            "host_not_allowed",
            "Host not allowed: this service answers only to its public host name.",
            "the Host is neither PUBLIC_URL's host nor in MCP_ALLOWED_HOSTS (production only)",
        ),
        ErrorKind(
            429,
            "rate_limited",
            "Too many requests; slow down and retry later.",
            "the client IP's rolling window (or, for codegen and deploy, the user's "
            "per-endpoint limit) is used up; retry after `Retry-After` seconds",
        ),
        ErrorKind(500, "internal_error", "Internal server error.", "a bug"),
        ErrorKind(
            503,
            "service_unavailable",
            "The service is temporarily unavailable; retry shortly.",
            "Redis is unreachable (or a failover is under way); nothing is authenticated "
            "without it",
            RETRY_SOON,
        ),
        ErrorKind(
            503,
            "revocation_unconfirmed",
            "The key is revoked, but the revocation is not yet safely stored; "
            "repeat the request to confirm it.",
            "the key is refused already, but too few replicas confirmed the revocation in "
            "time; repeating the DELETE is safe and answers 204",
            RETRY_SOON,
        ),
    )
}


def api_error(
    code: str,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    fields: Any = None,
    *,
    status: int | None = None,
    **values: object,
) -> ApiError:
    """The ApiError for a catalogued code: its status (or `status`, one of those it has), its
    message (formatted with `values`, or replaced by `message`), its headers plus `headers`."""
    kind = CATALOGUE[code]
    if status is None:
        status = kind.status
    elif status not in dict(kind.occasions()):
        raise ValueError(f"{code} is never answered with {status}")
    text = message if message is not None else kind.message.format(**values)
    return ApiError(status, code, text, {**dict(kind.headers), **(headers or {})}, fields)


def plan_required() -> ApiError:
    """403 for an action the user's plan does not include ("... a Pro or Business plan.")."""
    return api_error("plan_required", plans=key_plans_text(current_app.config["PLANS"]))


def payload_too_large(limit: int | None = None) -> ApiError:
    """413 for a body over `limit` bytes (by default the app's MAX_CONTENT_LENGTH)."""
    if limit is None:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
    return api_error("payload_too_large", limit=limit)


# The domain's refusals (store/errors.py), by the catalogued code each answers with.
DOMAIN_CODES: dict[type[Exception], str] = {
    domain.NotFound: "not_found",
    domain.EmailTaken: "email_taken",
    domain.PlanRequired: "plan_required",
    domain.KeyLimitReached: "key_limit_reached",
    domain.KeyRolling: "key_rolling",
    domain.AppLimitReached: "app_limit_reached",
    domain.InsufficientCredits: "insufficient_credits",
}


def domain_error(exc: Exception) -> ApiError | None:
    """The ApiError a domain refusal answers with; None for anything else."""
    for kind, code in DOMAIN_CODES.items():
        if isinstance(exc, kind):
            return plan_required() if code == "plan_required" else api_error(code)
    return None


# werkzeug's HTTP errors whose code differs from its snake-cased exception name, or whose
# message is ours; any other status keeps werkzeug's name and description.
HTTP_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
}


def _http_error(status: int, name: str, description: str | None) -> ApiError:
    """A werkzeug HTTP error as the catalogue's ApiError (or werkzeug's words if uncatalogued)."""
    code = HTTP_STATUS_CODES.get(status)
    if code == "payload_too_large":
        return payload_too_large()
    if code is not None:
        return api_error(code)
    # werkzeug's descriptions carry HTML markup (<code>...</code>); a message is plain text.
    return ApiError(status, _snake(name), _TAG.sub("", description or name))


# /mcp speaks JSON-RPC: an MCP client shows the message of a JSON-RPC error object, so a refusal
# there (401/403/429/503 from the gate, 405, 413, ...) keeps the API's HTTP status and headers
# but carries {"jsonrpc", "id": null, "error": {"code", "message", "data": {"code", ...}}}.
# JSON-RPC codes from the implementation-defined range the MCP SDK leaves free (-32003..-32019).
MCP_JSONRPC_CODES = {401: -32010, 403: -32011, 429: -32012, 503: -32013}


def _json_rpc_error(error: ApiError) -> Response:
    """An error on /mcp as a JSON-RPC error object (our code and status in "data")."""
    data: dict[str, Any] = {"code": error.code, "status": error.status}
    if error.fields is not None:
        data["fields"] = error.fields
    rpc_code = MCP_JSONRPC_CODES.get(error.status, -32603 if error.status >= 500 else -32600)
    return jsonify(
        jsonrpc="2.0", id=None, error={"code": rpc_code, "message": error.message, "data": data}
    )


def _envelope(error: ApiError) -> Response:
    """{"error": {"code", "message"[, "fields"]}}."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields is not None:
        body["fields"] = error.fields
    return jsonify(error=body)


def render(error: ApiError) -> Response:
    """The response for an ApiError: the envelope (JSON-RPC on /mcp), its status and headers."""
    if error.status == 401 and has_request_context() and g.get("credential_hint"):
        # security/credentials.py: a key sent with the wrong scheme says how to send it.
        hinted = f"{error.message} {g.credential_hint}"
        error = ApiError(error.status, error.code, hinted, error.headers, error.fields)
    on_mcp = has_request_context() and request.path == MCP_PATH
    response = _json_rpc_error(error) if on_mcp else _envelope(error)
    response.status_code = error.status
    response.headers.extend(error.headers)
    if not on_mcp and error.status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = REALM  # every 401 names its scheme (RFC 9110)
    return response


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    fields: Any = None,
) -> Response:
    """Render an error that is not (only) the catalogue's: an SDK refusal, werkzeug's words."""
    return render(ApiError(status, code, message, headers, fields))


_TAG = re.compile(r"<[^>]+>")


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _without_keys(fields: Any) -> Any:
    """Field errors as sent: an unknown field's name is the client's text, and may be a key."""
    if isinstance(fields, dict):
        return {remove_keys(str(name)): _without_keys(value) for name, value in fields.items()}
    if isinstance(fields, list):
        return [_without_keys(item) for item in fields]
    return remove_keys(fields) if isinstance(fields, str) else fields


def http_exception_response(exc: HTTPException) -> Response:
    """Any werkzeug HTTPException (and flask-smorest/webargs validation errors) as JSON."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages is not None and status in (400, 422):
        # webargs nests errors by location ({"json": {...}}); a view reads one location.
        fields = (
            messages.get("json", messages.get("query", messages))
            if isinstance(messages, dict)
            else messages
        )
        if not isinstance(fields, dict):  # not JSON at all: no field to blame, marshmallow's key
            fields = {"_schema": fields if isinstance(fields, list) else [fields]}
        fields = _without_keys(fields)
        where = (
            "query parameters are"
            if isinstance(messages, dict) and "query" in messages
            else "request body is"
        )
        return render(
            api_error("validation_error", f"The {where} invalid.", fields=fields, status=status)
        )
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    error = _http_error(status, exc.name, exc.description)
    return error_response(status, error.code, error.message, {**error.headers, **headers})


def register_error_handlers(app: Flask) -> None:
    """Route every failure through the envelope: ours, the domain's, werkzeug's, Redis's."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return render(exc)

    @app.errorhandler(domain.RevocationUnconfirmed)
    def _revocation_unconfirmed(exc: domain.RevocationUnconfirmed) -> Response:
        security_log.warning(
            "api_key.revocation_unconfirmed replicas=%d/%d", exc.confirmed, exc.needed
        )
        return render(api_error("revocation_unconfirmed"))

    @app.errorhandler(domain.StoreError)
    def _domain_error(exc: domain.StoreError) -> Response:
        error = domain_error(exc)
        if error is None:
            raise exc
        return render(error)

    def _storage_down(exc: redis.RedisError) -> Response:
        # No traceback: the cause is outside the app, and the message says all there is.
        log.error("storage unavailable: %s", exc.__class__.__name__)
        metrics.redis_error(exc)
        return render(api_error("service_unavailable"))

    for kind in domain.UNAVAILABLE:  # one list, shared with /healthz and the MCP tools
        app.register_error_handler(kind, _storage_down)
