"""What /openapi.json says about errors and credentials, shared by the API blueprints.

Documentation only: the behaviour lives in security/gate.py and errors.py. Every error answer
is the {"error": {"code", "message"}} envelope (schemas/common.py: ErrorSchema); each view lists
the statuses it can answer with, so a client (and the fuzz tests) can rely on the document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_smorest import Blueprint

from extensions import SCHEME_BEARER, SCHEME_CSRF, SCHEME_MCP_KEY, SCHEME_SESSION
from schemas.common import ErrorSchema

# Who may call a view (OpenAPI security requirements: any one entry of the list suffices).
KEY_OR_SESSION = [{SCHEME_BEARER: []}, {SCHEME_MCP_KEY: []}, {SCHEME_SESSION: []}]
KEY_OR_SESSION_WRITE = [
    {SCHEME_BEARER: []},
    {SCHEME_MCP_KEY: []},
    {SCHEME_SESSION: [], SCHEME_CSRF: []},
]
SESSION = [{SCHEME_SESSION: []}]
SESSION_WRITE = [{SCHEME_SESSION: [], SCHEME_CSRF: []}]
OPTIONAL_SESSION_WRITE = [{}, {SCHEME_SESSION: [], SCHEME_CSRF: []}]
ANONYMOUS: list[dict[str, list[str]]] = []  # none needed

# Every route under /api and /auth passes the gate: counted per client IP, Redis needed, and a
# presented key checked (a bad one is 401, a free plan's 403) even where none is required.
COUNTED = (401, 403, 421, 429, 503)
# Every POST/DELETE there has its body checked up front (size, then JSON).
BODY_CHECKED = (413, 415)
# A view that reads a JSON body: malformed JSON (400), invalid fields (422).
JSON_BODY = (400, 422)

DESCRIPTIONS = {
    400: "`validation_error`: the body is not valid JSON.",
    401: "`missing_credentials` (no key, no session) or `invalid_api_key` (malformed, unknown "
    "or revoked key: one body for all); on /auth: `invalid_credentials`, "
    "`not_logged_in`.",
    402: "`insufficient_credits`: not enough credits left this month.",
    403: "`plan_required` (the key's owner is on the free plan), `csrf_failed` (a session "
    "write without the session's X-CSRF-Token), `session_required` (key management "
    "or the security log with an API key) or, on /auth, `cross_site_request` (a write "
    "whose Origin or Sec-Fetch-Site names another site).",
    404: "`not_found`: unknown, or someone else's.",
    409: "`email_taken`, `key_limit_reached` or `app_limit_reached` (the plan's app cap, "
    "MAX_APPS_<PLAN>).",
    413: "`payload_too_large`: the body is over 1 MiB.",
    415: "`unsupported_media_type`: a body that is not `application/json`.",
    421: "`host_not_allowed` (production only): the Host header is neither PUBLIC_URL's host "
    "nor in MCP_ALLOWED_HOSTS.",
    422: "`validation_error`: `fields` says which field (or query parameter) is wrong and why.",
    429: "`rate_limited`: the client IP's rolling window (or, for codegen and deploy, the "
    "user's per-endpoint limit) is used up; retry after `Retry-After` seconds.",
    503: "`service_unavailable`: Redis is unreachable (or a failover is under way); nothing "
    "is authenticated without it. On `DELETE /api/keys/{key_id}` also "
    "`revocation_unconfirmed`: the key is refused already, but too few replicas "
    "confirmed the revocation in time; repeating the DELETE is safe and answers 204.",
}

_WWW_AUTHENTICATE = {
    "description": 'Bearer realm="genmb" (with error="invalid_token" for a bad key)',
    "schema": {"type": "string"},
    "required": True,
}
_RETRY_AFTER = {
    "description": "Whole seconds to wait, at least 1.",
    "schema": {"type": "integer", "minimum": 1},
    "required": True,
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": _WWW_AUTHENTICATE},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


Security = list[dict[str, list[str]]]


def errors(
    bp: Blueprint,
    *groups: int | tuple[int, ...],
    security: Security | None = None,
    descriptions: dict[int, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a view: document these error statuses (and who may call it) in /openapi.json;
    `descriptions` replaces the shared text of a status where the view says more exactly."""
    statuses = sorted({s for g in groups for s in (g if isinstance(g, tuple) else (g,))})
    texts = {**DESCRIPTIONS, **(descriptions or {})}

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        documented = view
        for status in reversed(statuses):
            documented = bp.alt_response(
                status, schema=ErrorSchema, description=texts[status], headers=HEADERS.get(status)
            )(documented)
        # alt_response only adds documentation, but it wraps the view in one more call layer
        # per status, paid on every request (a few µs each on the hot path): keep the
        # documentation it built, on the view itself, and drop the layers.
        view._apidoc = documented._apidoc  # type: ignore[attr-defined]
        if security is not None:
            view = documentation_only(bp.doc(security=security))(view)
        return view

    return decorate


def documentation_only(
    decorator: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A flask-smorest decorator (doc, response) kept for what it writes into /openapi.json,
    without the call layer it wraps around the view (paid on every request, issue #15).

    With `bp.response`, the view must then return a complete Response itself: nothing dumps
    its result through the schema any more (blueprints/account.py does, for GET /api/me).
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        view._apidoc = decorator(view)._apidoc  # type: ignore[attr-defined]
        return view

    return decorate
