"""README, "The API" (errors): every error is the JSON envelope; 404, 405, 413, bad JSON, unhandled
500."""

from __future__ import annotations

import io
import re

import pytest
from flask import abort
from werkzeug.exceptions import default_exceptions

from extensions import STORAGE_EXTENSION
from store import users
from tests.helpers import FAST_HASH, PASSWORD, create_key, login, make_app

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
ERROR_CODES = sorted(code for code in default_exceptions if 400 <= code <= 599)
ONE_MIB = 1024 * 1024


def assert_envelope(response, status: int | None = None) -> dict:
    """The response is {"error": {"code": snake_case, "message": sentence[, "fields"]}}."""
    if status is not None:
        assert response.status_code == status
    assert response.mimetype == "application/json", response.data[:200]
    text = response.get_data(as_text=True)
    assert not text.lstrip().startswith("<")
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    body = response.json
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "fields"}
    assert SNAKE.fullmatch(error["code"]), error["code"]
    assert isinstance(error["message"], str) and error["message"].strip()
    return error


@pytest.fixture
def abort_app():
    """A fresh app (embedded store) with a temporary route that aborts with any status."""
    app = make_app("memory://")

    @app.route("/_test/abort/<int:code>")
    def _abort(code: int):
        abort(code)

    @app.route("/api/_test/abort/<int:code>")
    def _api_abort(code: int):
        abort(code)

    return app


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_werkzeug_error_is_json_envelope(abort_app, code):
    """abort(code) for every 4xx/5xx werkzeug defines answers the JSON envelope, not HTML."""
    response = abort_app.test_client().get(f"/_test/abort/{code}")
    error = assert_envelope(response, code)
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize("code", [400, 403, 404, 409, 418, 422, 500, 503])
def test_errors_under_api_are_json_too(abort_app, code):
    """Errors raised by views under /api (behind the gate) use the same envelope."""
    client = abort_app.test_client()
    storage = abort_app.extensions[STORAGE_EXTENSION]
    email = f"abort{code}@example.test"
    users.create(storage, email, PASSWORD, "pro", FAST_HASH)
    login(client, email)
    assert_envelope(client.get(f"/api/_test/abort/{code}"), code)


def test_error_messages_have_no_html_markup(abort_app):
    """Error messages are plain human sentences, never HTML fragments."""
    client = abort_app.test_client()
    with_markup = {
        code: message
        for code in ERROR_CODES
        if re.search(
            r"</?[a-z]+[^>]*>",
            message := client.get(f"/_test/abort/{code}").json["error"]["message"],
        )
    }
    assert with_markup == {}


@pytest.mark.parametrize(
    "code, expected",
    [
        (413, "payload_too_large"),
        (429, "rate_limited"),
        (500, "internal_error"),
        (404, "not_found"),
        (405, "method_not_allowed"),
    ],
)
def test_contract_codes_for_common_statuses(abort_app, code, expected):
    """The statuses README's API table names carry its snake_case codes."""
    assert assert_envelope(abort_app.test_client().get(f"/_test/abort/{code}"))["code"] == expected


# ---- 404 and 405 ----------------------------------------------------------------------


def test_unknown_path_outside_api_is_json_404(client):
    """An unknown path outside /api is a JSON 404."""
    for path in ("/nope", "/static/nope.css", "/auth/nope", "/api-ish"):
        assert assert_envelope(client.get(path), 404)["code"] == "not_found"


def test_unknown_path_under_api_with_session_is_json_404(client, make_user):
    """With a valid session, an unknown /api path is a JSON 404 (not an auth error)."""
    user = make_user("pro")
    login(client, user.email)
    for path in ("/api/nope", "/api/apps/x/y/z", "/api/keys/a/b"):
        assert assert_envelope(client.get(path), 404)["code"] == "not_found"


def test_unknown_path_under_api_with_key_is_json_404(app, client, make_user):
    """With a valid API key, an unknown /api path is a JSON 404."""
    user = make_user("pro")
    key = create_key(client, login(client, user.email))["key"]
    response = app.test_client().get("/api/nope", headers={"Authorization": f"Bearer {key}"})
    assert assert_envelope(response, 404)["code"] == "not_found"


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("POST", "/healthz", {"GET"}),
        ("GET", "/auth/login", {"POST"}),
        ("PUT", "/auth/signup", {"POST"}),
        ("DELETE", "/auth/session", {"GET"}),
    ],
)
def test_wrong_method_is_json_405_with_allow(client, method, path, allowed):
    """A wrong method is a JSON 405 method_not_allowed with an Allow header."""
    response = client.open(path, method=method)
    assert assert_envelope(response, 405)["code"] == "method_not_allowed"
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow
    assert method not in allow


def test_wrong_method_under_api_with_key_is_405(app, client, make_user):
    """Under /api, once authenticated, a wrong method is 405 with Allow."""
    user = make_user("pro")
    key = create_key(client, login(client, user.email))["key"]
    response = app.test_client().delete("/api/me", headers={"X-MCP-API-Key": key})
    assert assert_envelope(response, 405)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert "DELETE" not in response.headers["Allow"]


# ---- 413 ------------------------------------------------------------------------------


@pytest.fixture
def key_client(app, client, make_user):
    """(api client, auth headers, session client) for a pro user."""
    user = make_user("pro")
    key = create_key(client, login(client, user.email))["key"]
    return app.test_client(), {"Authorization": f"Bearer {key}"}, client


def padded_json(size: int) -> bytes:
    """A valid JSON object {"name": ...} padded with whitespace to more than size bytes."""
    return b'{"name": "big"}' + b" " * size


def test_body_over_1mib_with_content_length_is_413(client):
    """A > 1 MiB body with Content-Length is 413 payload_too_large."""
    response = client.post(
        "/auth/signup", data=padded_json(ONE_MIB), content_type="application/json"
    )
    assert response.request.content_length > ONE_MIB
    assert assert_envelope(response, 413)["code"] == "payload_too_large"


def test_body_over_1mib_with_key_creates_nothing(key_client):
    """An oversized POST /api/apps is 413 and creates no app."""
    api, auth, web = key_client
    response = api.post(
        "/api/apps", data=padded_json(ONE_MIB), headers=auth, content_type="application/json"
    )
    assert assert_envelope(response, 413)["code"] == "payload_too_large"
    assert web.get("/api/apps").json["apps"] == []


def test_body_of_exactly_1mib_is_accepted(key_client):
    """A body of exactly 1 MiB is within the limit."""
    api, auth, _ = key_client
    body = padded_json(0)
    body += b" " * (ONE_MIB - len(body))
    response = api.post("/api/apps", data=body, headers=auth, content_type="application/json")
    assert response.status_code == 201


def test_body_over_1mib_on_bodyless_endpoint_is_413(key_client):
    """An oversized body is 413 even on an endpoint that takes no body, and charges nothing."""
    api, auth, web = key_client
    app_id = api.post("/api/apps", json={"name": "a"}, headers=auth).json["id"]
    response = api.post(
        f"/api/apps/{app_id}/deploy",
        data=padded_json(ONE_MIB),
        headers=auth,
        content_type="application/json",
    )
    assert web.get("/api/me").json["credits"]["used"] == 0
    assert assert_envelope(response, 413)["code"] == "payload_too_large"


def test_body_over_1mib_without_content_length_is_413(key_client):
    """A chunked > 1 MiB body (no Content-Length, as gunicorn passes it) is 413 too."""
    api, auth, web = key_client
    response = api.post(
        "/api/apps",
        input_stream=io.BytesIO(padded_json(2 * ONE_MIB)),
        headers={**auth, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert web.get("/api/apps").json["apps"] == []
    assert assert_envelope(response, 413)["code"] == "payload_too_large"


def test_small_chunked_body_is_read(key_client):
    """A small chunked body without Content-Length is read normally (the harness is sound)."""
    api, auth, _ = key_client
    response = api.post(
        "/api/apps",
        input_stream=io.BytesIO(b'{"name": "chunked"}'),
        headers={**auth, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 201
    assert response.json["name"] == "chunked"


# ---- bad bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b'{"name": "x"', b"\xff\xfe", b"{'name': 'x'}"])
def test_invalid_json_is_400_validation_error(key_client, raw):
    """A body that is not JSON is 400 validation_error with "fields"; nothing is created."""
    api, auth, web = key_client
    response = api.post("/api/apps", data=raw, headers=auth, content_type="application/json")
    error = assert_envelope(response, 400)
    assert error["code"] == "validation_error"
    assert "fields" in error
    assert web.get("/api/apps").json["apps"] == []


def test_invalid_json_on_auth_is_400(client):
    """Invalid JSON on /auth/login is 400 validation_error, not a 500 or an HTML page."""
    response = client.post("/auth/login", data=b"{", content_type="application/json")
    assert assert_envelope(response, 400)["code"] == "validation_error"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"name"', b"42", b"null"])
def test_json_that_is_not_an_object_is_rejected(key_client, raw):
    """Valid JSON that is not an object is a 400/422 validation_error."""
    api, auth, _ = key_client
    response = api.post("/api/apps", data=raw, headers=auth, content_type="application/json")
    assert response.status_code in (400, 422)
    assert assert_envelope(response)["code"] == "validation_error"


# ---- unhandled exceptions -------------------------------------------------------------


@pytest.mark.parametrize("env", ["development", "production"])
def test_unhandled_exception_is_500_without_traceback(redis_url, env):
    """A view raising RuntimeError answers 500 internal_error, no detail, no traceback."""
    app = make_app(redis_url, TESTING=False, ENV=env)

    @app.route("/_test/crash")
    def _crash():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/_test/crash")
    error = assert_envelope(response, 500)
    assert error["code"] == "internal_error"
    text = response.get_data(as_text=True)
    assert "secret detail" not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text
