"""The one JSON error envelope, and the one place that maps every failure to HTTP."""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

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


def missing_credentials() -> ApiError:
    """401 for a request without any credential (RFC 6750: no error attribute)."""
    return ApiError(
        401,
        "missing_credentials",
        "Authentication required: send an API key or log in.",
        {"WWW-Authenticate": REALM},
    )


def invalid_api_key() -> ApiError:
    """401 for a malformed, unknown or revoked key: one body for all, to reveal nothing."""
    return ApiError(
        401,
        "invalid_api_key",
        "The API key is invalid or has been revoked.",
        {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
    )


def plan_required() -> ApiError:
    """403 for an action the user's plan does not include."""
    return ApiError(403, "plan_required", "API keys require a Pro or Business plan.")


DOMAIN_ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    domain.NotFound: (404, "not_found", "Not found."),
    domain.EmailTaken: (409, "email_taken", "An account with this email already exists."),
    domain.PlanRequired: (403, "plan_required", "API keys require a Pro or Business plan."),
    domain.KeyLimitReached: (
        409,
        "key_limit_reached",
        "You already have the maximum number of API keys; delete one to create another.",
    ),
    domain.KeyRolling: (
        409,
        "key_rolling",
        "This key is already being rolled, or the key it replaced still works: "
        "wait for that overlap to end, or delete the old key, then roll again.",
    ),
    domain.AppLimitReached: (
        409,
        "app_limit_reached",
        "You already have the most apps your plan allows; "
        "delete one to create another, or upgrade.",
    ),
    domain.InsufficientCredits: (
        402,
        "insufficient_credits",
        "Not enough credits left this month for this action.",
    ),
}

# Codes that differ from werkzeug's snake-cased exception name.
HTTP_CODES = {
    400: "bad_request",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
}
HTTP_MESSAGES = {
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body is larger than 1 MiB.",
    500: "Internal server error.",
}


# /mcp speaks JSON-RPC: an MCP client shows the message of a JSON-RPC error object, so a refusal
# there (401/403/429/503 from the gate, 405, 413, ...) keeps the API's HTTP status and headers
# but carries {"jsonrpc", "id": null, "error": {"code", "message", "data": {"code", ...}}}.
MCP_PATH = "/mcp"
# JSON-RPC codes from the implementation-defined range the MCP SDK leaves free (-32003..-32019).
MCP_JSONRPC_CODES = {401: -32010, 403: -32011, 429: -32012, 503: -32013}


def mcp_error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    fields: Any = None,
) -> Response:
    """Render an error on /mcp as a JSON-RPC error object (our code and status in "data")."""
    data: dict[str, Any] = {"code": code, "status": status}
    if fields is not None:
        data["fields"] = fields
    rpc_code = MCP_JSONRPC_CODES.get(status, -32603 if status >= 500 else -32600)
    response = jsonify(
        jsonrpc="2.0", id=None, error={"code": rpc_code, "message": message, "data": data}
    )
    response.status_code = status
    response.headers.extend(headers or {})
    return response


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    fields: Any = None,
) -> Response:
    """Render {"error": {"code", "message"[, "fields"]}} with a status and headers."""
    if has_request_context() and request.path == MCP_PATH:
        return mcp_error_response(status, code, message, headers, fields)
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    response = jsonify(error=body)
    response.status_code = status
    response.headers.extend(headers or {})
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = REALM  # every 401 names its scheme (RFC 9110)
    return response


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
        return error_response(status, "validation_error", f"The {where} invalid.", fields=fields)
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    code = HTTP_CODES.get(status, _snake(exc.name))
    # werkzeug's descriptions carry HTML markup (<code>...</code>); a message is plain text.
    message = HTTP_MESSAGES.get(status) or _TAG.sub("", exc.description or exc.name)
    return error_response(status, code, message, headers)


def register_error_handlers(app: Flask) -> None:
    """Route every failure through the envelope: ours, the domain's, werkzeug's, Redis's."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.fields)

    @app.errorhandler(domain.RevocationUnconfirmed)
    def _revocation_unconfirmed(exc: domain.RevocationUnconfirmed) -> Response:
        security_log.warning(
            "api_key.revocation_unconfirmed replicas=%d/%d", exc.confirmed, exc.needed
        )
        return error_response(
            503,
            "revocation_unconfirmed",
            "The key is revoked, but the revocation is not yet safely stored; "
            "repeat the request to confirm it.",
            {"Retry-After": "1"},
        )

    @app.errorhandler(domain.StoreError)
    def _domain_error(exc: domain.StoreError) -> Response:
        for kind, (status, code, message) in DOMAIN_ERRORS.items():
            if isinstance(exc, kind):
                return error_response(status, code, message)
        raise exc

    def _storage_down(exc: redis.RedisError) -> Response:
        # No traceback: the cause is outside the app, and the message says all there is.
        log.error("storage unavailable: %s", exc.__class__.__name__)
        return error_response(
            503,
            "service_unavailable",
            "The service is temporarily unavailable; retry shortly.",
            {"Retry-After": "1"},
        )

    for kind in domain.UNAVAILABLE:  # one list, shared with /healthz and the MCP tools
        app.register_error_handler(kind, _storage_down)
