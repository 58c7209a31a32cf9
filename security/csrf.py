"""CSRF tokens for session-authenticated writes: an HMAC of the session token."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request

from errors import api_error
from http_names import CSRF_HEADER


def token_for(session_token: str) -> str:
    """The CSRF token that goes with a session: stateless, dies with the session."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def require_valid(session_token: str | None) -> None:
    """Refuse the request unless it carries the session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER, "").encode("utf-8", "replace")  # bytes: any header
    expected = token_for(session_token).encode() if session_token else b""
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise api_error("csrf_failed")
