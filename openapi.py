"""What /openapi.json says about errors and credentials, shared by the API blueprints.

Documentation only: the behaviour lives in security/gate.py and errors.py. Every error answer
is the {"error": {"code", "message"}} envelope (schemas/common.py: ErrorSchema); each view lists
the statuses it can answer with, so a client (and the fuzz tests) can rely on the document.
The text of each status is generated from errors.CATALOGUE (each code's `when`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apispec import APISpec
from flask_smorest import Blueprint

from errors import CATALOGUE
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

# What a view can answer, by error code (errors.CATALOGUE); errors() documents each under its
# status. Every route under /api and /auth passes the gate: counted per client IP, Redis
# needed, and a presented key checked (a bad one is 401, a free plan's 403) even where none
# is required.
COUNTED = (
    "missing_credentials",
    "invalid_api_key",
    "plan_required",
    "host_not_allowed",
    "rate_limited",
    "service_unavailable",
)
# Every POST/DELETE there has its body checked up front (size, then JSON).
BODY_CHECKED = ("payload_too_large", "unsupported_media_type")
# A view that reads a JSON body: malformed JSON (400), invalid fields (422).
JSON_BODY = ("validation_error",)
# A write to /auth from another site is refused whatever it carries.
AUTH_WRITE = ("cross_site_request",)
# A write under /api: counted, its body checked, and a session's carries its CSRF token.
API_WRITE = (*COUNTED, *BODY_CHECKED, "csrf_failed")
# Key management and the security log: from a session, never with a key.
SESSION_ONLY = (*COUNTED, "session_required")
SESSION_ONLY_WRITE = (*API_WRITE, "session_required")
# Starting a job: the app must be the user's, the month's credits must cover it.
JOB = ("insufficient_credits", "not_found")

# Codes that only routes outside /openapi.json answer with (GitHub's signed reports).
UNDOCUMENTED_CODES = frozenset({"invalid_signature"})


def describe(status: int, codes: Iterable[str]) -> str:
    """The description of one error status: each code with when it happens (errors.CATALOGUE)."""
    lines = [
        f"`{code}`: {when}"
        for code in codes
        for answered, when in CATALOGUE[code].occasions()
        if answered == status
    ]
    return lines[0] + "." if len(lines) == 1 else "\n".join(f"- {line}." for line in lines)


def _codes_by_status() -> dict[int, list[str]]:
    """Every documented code under each status it answers with, in catalogue order."""
    grouped: dict[int, list[str]] = {}
    for code, kind in CATALOGUE.items():
        if code not in UNDOCUMENTED_CODES:
            for status, _ in kind.occasions():
                grouped.setdefault(status, []).append(code)
    return grouped


# A status's description where a view names no code of it: every code it can mean.
DESCRIPTIONS = {status: describe(status, codes) for status, codes in _codes_by_status().items()}

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
Errors = int | str | tuple[int | str, ...]


def _statuses_and_texts(
    groups: tuple[Errors, ...], descriptions: dict[int, str] | None
) -> tuple[list[int], dict[int, str]]:
    """The statuses a view documents and each one's text.

    A status stands for every code of it (DESCRIPTIONS); a code stands for its status(es)
    and, there, for itself alone. `descriptions` replaces any text outright.
    """
    items = [item for g in groups for item in (g if isinstance(g, tuple) else (g,))]
    named: dict[int, list[str]] = {}
    statuses: set[int] = set()
    for item in items:
        if isinstance(item, str):
            for status, _ in CATALOGUE[item].occasions():
                named.setdefault(status, []).append(item)
                statuses.add(status)
        else:
            statuses.add(item)
    order = list(CATALOGUE)  # each code once, in catalogue order
    texts = {
        status: describe(status, sorted(set(named[status]), key=order.index))
        if status in named
        else DESCRIPTIONS[status]
        for status in statuses
    }
    return sorted(statuses), {**texts, **(descriptions or {})}


def errors(
    bp: Blueprint,
    *groups: Errors,
    security: Security | None = None,
    descriptions: dict[int, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a view: document its error answers (and who may call it) in /openapi.json.

    Each group is a status (every code of it may answer), a code (only that code, under its
    status), or a tuple of them; `descriptions` overrides a status's text for this view.
    """
    statuses, texts = _statuses_and_texts(groups, descriptions)

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


def fill_settings(spec: APISpec, config: Mapping[str, Any]) -> None:
    """Put the app's own values into the error descriptions of its /openapi.json: a `when`
    may name a setting's value as the message does ("{limit}" bytes: MAX_CONTENT_LENGTH).

    The views' documentation is shared by every app of the process, so the app's document
    gets new dicts rather than edited ones."""
    values = {"{limit}": str(config["MAX_CONTENT_LENGTH"])}

    def filled(text: str) -> str:
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        return text

    paths = spec._paths  # apispec keeps no public setter; this is the document's own copy
    for path, operations in paths.items():
        paths[path] = {
            method: {
                **operation,
                "responses": {
                    status: {**response, "description": filled(response["description"])}
                    if "description" in response
                    else response
                    for status, response in operation["responses"].items()
                },
            }
            if isinstance(operation, dict) and "responses" in operation
            else operation
            for method, operation in operations.items()
        }
