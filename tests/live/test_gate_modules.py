"""The gate's parts (README, "How it works"): the gate hook, then the body check as its own
hook; the paths it counts; the principal's accessors; the 413 naming the configured limit."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from app import create_app
from errors import ApiError
from http_names import MCP_PATH
from security import gate
from security.body import check_request_body
from security.paths import authenticated, counted
from security.principal import current_principal, optional_principal
from security.rate_headers import add_rate_headers

pytestmark = pytest.mark.integration

SMALL_LIMIT = 2048


def app_with(redis_url: str, **settings: object) -> Flask:
    """An app on the test Redis with these settings over the test defaults."""
    return create_app(
        {
            "REDIS_URL": redis_url,
            "TESTING": True,
            "SECRET_KEY": "gate-modules-secret",
            "PASSWORD_SCRYPT_N": 1024,
            **settings,
        }
    )


def oversized(limit: int) -> bytes:
    """A valid JSON signup body padded past `limit` bytes."""
    return b'{"email": "a@example.test", "password": "long enough"}' + b" " * limit


def test_hooks_run_gate_then_body_check(redis_url):
    """The gate is installed before the body check, and the rate headers after the view."""
    app = app_with(redis_url)
    # metrics.py wraps both hooks (functools.wraps keeps the hook as __wrapped__).
    before = [getattr(hook, "__wrapped__", hook) for hook in app.before_request_funcs[None]]
    assert before.index(gate.before_request) < before.index(check_request_body)
    assert add_rate_headers in app.after_request_funcs[None]


def test_413_names_the_configured_limit(redis_url):
    """The 413 message follows MAX_CONTENT_LENGTH instead of a fixed "1 MiB"."""
    client = app_with(redis_url, MAX_CONTENT_LENGTH=SMALL_LIMIT).test_client()
    response = client.post(
        "/auth/signup", data=oversized(SMALL_LIMIT), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json["error"] == {
        "code": "payload_too_large",
        "message": f"Request body is larger than {SMALL_LIMIT} bytes.",
    }


def test_413_of_a_chunked_body_names_the_configured_limit(redis_url):
    """A body without Content-Length is measured against the same setting, same message."""
    client = app_with(redis_url, MAX_CONTENT_LENGTH=SMALL_LIMIT).test_client()
    response = client.post(
        "/auth/signup",
        input_stream=io.BytesIO(oversized(SMALL_LIMIT)),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert str(SMALL_LIMIT) in response.json["error"]["message"]


def test_unauthenticated_oversized_body_is_401_not_413(redis_url):
    """Authentication comes first: a request without credentials is refused unread."""
    client = app_with(redis_url, MAX_CONTENT_LENGTH=SMALL_LIMIT).test_client()
    response = client.post("/api/apps", data=oversized(SMALL_LIMIT), content_type="text/plain")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_credentials"


def test_rate_limited_oversized_body_is_429_not_413(redis_url):
    """Counting comes first: a client over its window gets 429 with its headers, unread."""
    client = app_with(
        redis_url, MAX_CONTENT_LENGTH=SMALL_LIMIT, RATELIMIT_GLOBAL="1 per minute"
    ).test_client()
    assert client.get("/auth/session").status_code == 401
    response = client.post(
        "/auth/signup", data=oversized(SMALL_LIMIT), content_type="application/json"
    )
    assert response.status_code == 429
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("path", "is_counted", "is_authenticated"),
    [
        ("/api/me", True, True),
        ("/api", True, True),
        ("/apix", False, False),
        ("/auth/login", True, False),
        (MCP_PATH, True, True),
        (MCP_PATH + "x", False, False),
        ("/api/secret-scanning/github", False, True),
        ("/settings", False, False),
        ("/healthz", False, False),
    ],
)
def test_paths(path, is_counted, is_authenticated):
    """Which paths the gate counts and which need a principal (CONTRACT §6, §5)."""
    assert counted(path) is is_counted
    assert authenticated(path) is is_authenticated


def test_principal_accessors_without_a_principal(redis_url):
    """No principal: optional_principal is None, current_principal is the 401."""
    app = app_with(redis_url)
    with app.test_request_context("/api/me"):
        assert optional_principal() is None
        with pytest.raises(ApiError) as refused:
            current_principal()
    assert (refused.value.status, refused.value.code) == (401, "missing_credentials")
