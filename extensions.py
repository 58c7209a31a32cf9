"""Unbound extension objects and the one way to reach the process's Storage."""

from __future__ import annotations

from flask import Response, current_app, g
from flask_limiter import Limiter
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

from errors import http_exception_response
from store.client import Storage


class Api(SmorestApi):
    """flask-smorest's Api, answering every HTTP error with our envelope."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Render werkzeug and validation errors as {"error": {...}}."""
        return http_exception_response(error)


def acting_user() -> str:
    """Per-endpoint limits count per user, whether the request came with a key or a session."""
    return f"user:{g.principal.user_id}"


api = Api()
# Only per-endpoint limits live here (decorated views). The global per-IP limit is the gate's:
# no default or application limits, and the headers are written by the gate.
limiter = Limiter(
    key_func=acting_user,
    default_limits=[],
    application_limits=[],
    headers_enabled=False,
    strategy="moving-window",
    swallow_errors=False,
)

STORAGE_EXTENSION = "genmb_storage"


def storage() -> Storage:
    """The Storage of the current app (one Redis client per process)."""
    return current_app.extensions[STORAGE_EXTENSION]
