"""Unbound extension objects and the one way to reach the process's Storage."""

from __future__ import annotations

from flask import Response, current_app, g
from flask_limiter import Limiter
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from werkzeug.exceptions import HTTPException

from errors import http_exception_response
from http_names import CSRF_HEADER, MCP_HEADER
from schemas.common import ErrorSchema
from security.jsonbody import StrictJsonParser
from store.client import Storage

# The credentials /openapi.json declares (openapi.py says which view takes which).
SCHEME_BEARER, SCHEME_MCP_KEY = "apiKeyBearer", "apiKeyHeader"
SCHEME_SESSION, SCHEME_CSRF = "session", "csrfToken"
SECURITY_SCHEMES = {
    SCHEME_BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "genmb_sk_...",
        "description": "An API key: `Authorization: Bearer genmb_sk_...`.",
    },
    SCHEME_MCP_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": MCP_HEADER,
        "description": "An API key; wins over Authorization when both are sent.",
    },
    SCHEME_SESSION: {
        "type": "apiKey",
        "in": "cookie",  # its name is the SESSION_COOKIE_NAME setting: filled in by init_app
        "description": "The session cookie that POST /auth/login sets.",
    },
    SCHEME_CSRF: {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": "The session's csrf_token, on every session write.",
    },
}


class Api(SmorestApi):
    """flask-smorest's Api, answering every HTTP error with our envelope, and documenting it."""

    # Error responses in /openapi.json are our envelope, not flask-smorest's; and no blanket
    # "default" response: each view lists the statuses it can answer (openapi.py).
    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app, *, spec_kwargs=None) -> None:  # noqa: ANN001 - flask-smorest's
        """Set up the API, then declare the credentials the views refer to."""
        super().init_app(app, spec_kwargs=spec_kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            if name == SCHEME_SESSION:
                scheme = {**scheme, "name": app.config["SESSION_COOKIE_NAME"]}
            self.spec.components.security_scheme(name, scheme)

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Render werkzeug and validation errors as {"error": {...}}."""
        return http_exception_response(error)


class Blueprint(SmorestBlueprint):
    """flask-smorest's Blueprint, parsing JSON bodies that cannot become a 500."""

    ARGUMENTS_PARSER = StrictJsonParser()


def user_limit_key(user_id: str) -> str:
    """The limiter key of a user: limits count per user, whether by key or by session."""
    return f"user:{user_id}"


def acting_user() -> str:
    """The limiter key of the request's principal (the gate has set it before any view)."""
    return user_limit_key(g.principal.user_id)


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
