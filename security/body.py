"""The body check: a before_request hook after the gate, refusing oversized or non-JSON bodies."""

from __future__ import annotations

import io

from flask import current_app, request

from errors import api_error
from security.paths import UNSAFE_METHODS, counted


def check_request_body() -> None:
    """Refuse bodies over MAX_CONTENT_LENGTH (413) and bodies that are not JSON (415).

    Checked up front for every counted route, so a view that never reads its body (deploy)
    cannot accept an oversized one, and a chunked body without Content-Length is measured
    instead of being silently cut at the limit. Runs after the gate: a request refused there
    (429, 401, 403) is never read.
    """
    # One context lookup for the request, not one per attribute read (see security/gate.py).
    req = request._get_current_object()  # type: ignore[attr-defined]
    if req.method not in UNSAFE_METHODS or not counted(req.path):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = req.content_length
    environ = req.environ
    if length is None and environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read(limit + 1)
        length = len(body)
        # Hand the measured body on to the view as an ordinary sized body.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(length)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    if length and length > limit:
        raise api_error("payload_too_large", limit=limit)
    if length and not req.is_json:
        raise api_error("unsupported_media_type")
