"""POST /mcp: the MCP server (Streamable HTTP), behind the same gate as the API.

The gate (security/gate.py) has already counted the request against the client IP's window
and authenticated it exactly as for /api (X-MCP-API-Key preferred, Bearer accepted, plan and
revocation checked, last_used_at stamped) before this view runs; its refusals are rendered as
JSON-RPC error objects by errors.error_response. The view hands the authenticated request to
the official SDK (mcp_server.runtime), which implements the protocol, and returns its answer
through Flask, so the gate's X-RateLimit-* headers apply to MCP answers too.
"""

from __future__ import annotations

import io
import json
import re
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, current_app, request

from errors import api_error, error_response
from http_names import MCP_HEADER, MCP_PATH
from logs import remove_keys
from mcp_server import PRINCIPAL_ENVIRON_KEY
from security.principal import current_principal

bp = Blueprint("mcp", __name__)

# The gate has used the credentials; the SDK never sees them (tools get the Principal).
CREDENTIAL_ENVIRON_KEYS = frozenset(
    {"HTTP_AUTHORIZATION", "HTTP_" + MCP_HEADER.upper().replace("-", "_"), "HTTP_COOKIE"}
)

# Refusals the SDK answers in plain text, given our snake_case codes.
SDK_REFUSAL_CODES = {
    400: "bad_request",
    403: "origin_not_allowed",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    421: "host_not_allowed",
}
SDK_REFUSAL_MESSAGES = {
    403: "Origin not allowed: the request's Origin header is not in MCP_ALLOWED_ORIGINS.",
    406: "Not acceptable: send Accept: application/json, text/event-stream.",
    421: "Host not allowed: the request's Host header is not in MCP_ALLOWED_HOSTS.",
}

KEY_MARKER = "genmb"  # cheap pre-check before the redaction regex
NO_STREAM = (
    "This MCP server is stateless and answers every POST with JSON: there is no "
    "event stream to GET and no session to DELETE."
)


@bp.route(MCP_PATH, methods=["GET", "DELETE"])
def no_stream() -> Response:
    """405: an endless event stream would pin a sync worker, and there are no sessions."""
    raise api_error("method_not_allowed", NO_STREAM, {"Allow": "POST"})


@bp.route(MCP_PATH, methods=["POST"])
def endpoint() -> Response:
    """Hand one authenticated JSON-RPC POST to the SDK and return its answer."""
    from mcp_server.runtime import runtime_for  # the SDK loads on the first /mcp request

    principal = current_principal()
    body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413, before the SDK
    environ = {k: v for k, v in request.environ.items() if k not in CREDENTIAL_ENVIRON_KEYS}
    environ.pop("HTTP_TRANSFER_ENCODING", None)  # the body is read: a plain, sized one follows
    environ.update(
        {
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            PRINCIPAL_ENVIRON_KEY: principal,
        }
    )
    runtime = runtime_for(current_app._get_current_object())  # type: ignore[attr-defined]
    response = current_app.response_class.from_app(runtime, environ, buffered=True)
    if response.status_code >= 400 and not response.is_json:
        return _json_rpc_refusal(response)
    response.set_data(scrub_body(response.get_data(as_text=True)))
    return response


# pydantic's rendering of one error: "[type=string_too_long, input_value='Deploy bot ...
# ...w4KhAtJukbqKbDQI5dnGYtj', input_type=str]". The shortened input keeps the end of the
# value, so a key pasted into an argument is not even recognisable as one any more: the
# input never goes back, only the field (the line above it) and the rule. Greedy to the end
# of the line: repr() escapes newlines, so the value cannot reach the next line.
_INPUT_ECHO = re.compile(r"(\[type=[\w.]+), input_value=.*, input_type=[\w.]+\]$", re.M)


def scrub_text(text: str) -> str:
    """An SDK message without echoed input values, and without any key, not even its prefix."""
    return remove_keys(_INPUT_ECHO.sub(r"\1]", text))


def _scrub(value: Any) -> Any:
    """Every string inside a JSON value, scrubbed."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    return value


def scrub_body(body: str) -> str:
    """The SDK's JSON answer with validation errors reduced to fields and rules, keys removed.

    No answer but POST /api/keys may carry any part of a key (CONTRACT §8). The SDK quotes
    invalid arguments and malformed params in its errors (shortened, so that only the tail of
    a key shows), and echoes ids, method and tool names. Every string is scrubbed: the input
    quotes dropped, anything key-shaped removed whole.
    """
    if "input_value=" not in body and KEY_MARKER not in body:
        return body  # the common case, untouched
    try:
        message = json.loads(body)
    except ValueError:
        return scrub_text(body)
    return json.dumps(_scrub(message), separators=(",", ":"))


def _json_rpc_refusal(response: Response) -> Response:
    """An SDK refusal in plain text (Host, Origin, Accept...) as our JSON-RPC error body."""
    status = response.status_code
    code = SDK_REFUSAL_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
    text = response.get_data(as_text=True).strip()
    if status >= 500:
        message = "Internal server error."
    else:
        message = (
            SDK_REFUSAL_MESSAGES.get(status) or scrub_text(text)[:200] or HTTPStatus(status).phrase
        )
    headers = {"Allow": response.headers["Allow"]} if "Allow" in response.headers else None
    return error_response(status, code, message, headers)
