"""Issue 16, bug 1: a rejected body is never counted against the per-user codegen limit,
through REST or MCP."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from app import create_app
from mcp_server import tools
from store import users

PASSWORD = "correct horse battery"


@pytest.fixture
def limited(redis_url: str, storage):
    """A logged-in pro user's test client, its CSRF token and an app, with codegen at 3/min."""
    app = create_app(
        {
            "REDIS_URL": redis_url,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "PASSWORD_SCRYPT_N": 2**10,
            "RATELIMIT_CODEGEN": "3 per minute",
        }
    )
    users.create(storage, "order@example.test", PASSWORD, "pro", 2**10)
    client = app.test_client()
    login = client.post("/auth/login", json={"email": "order@example.test", "password": PASSWORD})
    csrf = login.json["csrf_token"]
    created = client.post("/api/apps", json={"name": "a"}, headers={"X-CSRF-Token": csrf})
    return client, csrf, created.json["id"]


@pytest.mark.parametrize("bad", [{"prompt": ""}, {}, {"prompt": 7}])
def test_rejected_bodies_leave_the_codegen_limit_alone(limited, bad):
    """Three 422s, then three valid codegens are all admitted; the fourth is the 429."""
    client, csrf, app_id = limited
    url, headers = f"/api/apps/{app_id}/codegen", {"X-CSRF-Token": csrf}
    for _ in range(3):
        assert client.post(url, json=bad, headers=headers).status_code == 422
    for _ in range(3):
        assert client.post(url, json={"prompt": "p"}, headers=headers).status_code == 202
    refused = client.post(url, json={"prompt": "p"}, headers=headers)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"


def test_the_mcp_tool_validates_before_counting(monkeypatch):
    """start_codegen: a prompt the schema refuses never reaches the per-user limit."""
    counted = []
    monkeypatch.setattr(tools.limits, "hit", lambda action, user_id: counted.append(action))
    app = create_app({"REDIS_URL": "memory://", "TESTING": True, "SECRET_KEY": "x"})
    principal = SimpleNamespace(user_id="usr_0123456789abcdef")
    with app.app_context(), pytest.raises(ValidationError):
        tools.start_codegen(principal, "app_0123456789abcdef", prompt="\ud800")
    assert counted == []
