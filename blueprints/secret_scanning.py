"""POST /api/secret-scanning/github: GitHub's secret-scanning partner endpoint.

GitHub posts a signed JSON array of {"token", "type", "url", "source"} when one of our keys
turns up in public. Every live key reported is revoked through the owner's revoke path
(replica wait included) and recorded in the owner's security log with a banner. The answer
is GitHub's feedback array, one entry per reported token: its SHA-256 (never the token) and
"true_positive" for a live key revoked now, "false_positive" for anything else (unknown,
malformed or already revoked: one label, so the answer tells nothing more).

Not authenticated by key or session and not counted in the gate's per-IP window (see
security/paths.py, UNCOUNTED_PATHS): the signature is the authentication. It has its own
per-IP limit (SECRET_SCANNING_RATELIMIT) and body cap (SECRET_SCANNING_MAX_BYTES). A missing
or bad signature is 401 and changes nothing. Repeating a report is safe (GitHub retries):
the keys are revoked already. When too few replicas confirmed a revocation the answer is
503, so GitHub retries, and the retry confirms it again. Not in /openapi.json: it is a
partner's webhook, not a client API (docs/secret-scanning.md documents it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from errors import api_error, payload_too_large
from extensions import limiter
from security.github_signature import PublicKeys, verify
from security.rate_subject import rate_limit_subject
from services import security_events
from services.revocation import revoke_leaked

bp = Blueprint("secret_scanning", __name__)

PATH = "/api/secret-scanning/github"
KEYS_EXTENSION = "genmb_github_keys"
MAX_FIELD = 2048  # characters of url/source/type kept (a longer value is cut)


def public_keys() -> PublicKeys:
    """This process's copy of GitHub's keys document (one per app)."""
    extensions = current_app.extensions
    if KEYS_EXTENSION not in extensions:
        extensions[KEYS_EXTENSION] = PublicKeys(current_app.config["SECRET_SCANNING_KEYS_URL"])
    return extensions[KEYS_EXTENSION]


def _limit_key() -> str:
    """The receiver's own limit counts per client IP (a forger cannot use GitHub's up)."""
    return f"secret-scanning:{rate_limit_subject(request.remote_addr)}"


def _raw_body() -> bytes:
    """The exact bytes sent (the signature covers them), at most SECRET_SCANNING_MAX_BYTES."""
    cap = current_app.config["SECRET_SCANNING_MAX_BYTES"]
    if request.content_length is not None and request.content_length > cap:
        raise payload_too_large(cap)
    body = request.stream.read(cap + 1)
    if len(body) > cap:
        raise payload_too_large(cap)
    return body


def _matches(body: bytes) -> list[dict[str, Any]]:
    """The reported matches, or 400 for a body that is not the documented array."""
    try:
        items = json.loads(body)
    except (ValueError, RecursionError):
        items = None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise api_error(
            "validation_error",
            "The body must be a JSON array of {token, type, url, source} objects.",
        )
    return items


def _text(value: object) -> str:
    return value[:MAX_FIELD] if isinstance(value, str) else ""


@bp.route(PATH, methods=["POST"])
@limiter.limit(
    lambda: current_app.config["SECRET_SCANNING_RATELIMIT"],
    key_func=_limit_key,
    scope="secret-scanning",
)
def github_report() -> Response:
    """Verify GitHub's signature, revoke every live key reported, answer with feedback."""
    body = _raw_body()
    if not verify(
        public_keys(),
        body,
        request.headers.get("Github-Public-Key-Identifier"),
        request.headers.get("Github-Public-Key-Signature"),
    ):
        security_events.log_event(
            "secret_scanning.refused",
            reason="bad_signature",
            ip=request.remote_addr,
            bytes=len(body),
        )
        raise api_error("invalid_signature")
    feedback = []
    revoked = 0
    for item in _matches(body):
        token = item.get("token")
        token = token if isinstance(token, str) else ""
        live = bool(token) and revoke_leaked(
            token, _text(item.get("url")), _text(item.get("source")).lower()
        )
        revoked += live
        feedback.append(
            {
                "token_hash": hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(),
                "token_type": _text(item.get("type")),
                "label": "true_positive" if live else "false_positive",
            }
        )
    security_events.log_event(
        "secret_scanning.report",
        matches=len(feedback),
        revoked=revoked,
        ip=request.remote_addr,
    )
    response = jsonify(feedback)
    response.headers["Cache-Control"] = "no-store"
    return response
