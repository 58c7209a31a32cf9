"""Unbound extension objects and the one way to reach the process's Storage."""

from __future__ import annotations

from flask import Response, current_app
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

from errors import http_exception_response
from store.client import Storage


class Api(SmorestApi):
    """flask-smorest's Api, answering every HTTP error with our envelope."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Render werkzeug and validation errors as {"error": {...}}."""
        return http_exception_response(error)


api = Api()

STORAGE_EXTENSION = "genmb_storage"


def storage() -> Storage:
    """The Storage of the current app (one Redis client per process)."""
    return current_app.extensions[STORAGE_EXTENSION]
