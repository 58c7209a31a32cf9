"""Issue #19, item 4: with REDIS_KEY_PREFIX=acme, every key the service writes starts with
"acme:" — the per-user limiter's included (flask-limiter used to write LIMITS:LIMITER/...)."""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, make_app

pytestmark = pytest.mark.integration


def test_every_key_lives_under_the_prefix(redis_url, rdb):
    """A full run (signup, a pro user made by the CLI, login, key, apps, codegen, deploy, a
    key-authenticated call, revocation, logout), then a scan of the whole database."""
    app = make_app(redis_url, REDIS_KEY_PREFIX="acme")
    client = app.test_client()
    runner = app.test_cli_runner()
    assert (
        client.post(
            "/auth/signup", json={"email": "free@example.test", "password": PASSWORD}
        ).status_code
        == 201
    )
    made = runner.invoke(
        args=["users", "create", "pro@example.test", "--plan", "pro", "--password", PASSWORD]
    )
    assert made.exit_code == 0, made.output
    login = client.post("/auth/login", json={"email": "pro@example.test", "password": PASSWORD})
    csrf = {"X-CSRF-Token": login.json["csrf_token"]}
    key = client.post("/api/keys", json={"name": "ci"}, headers=csrf).json
    bearer = {"Authorization": f"Bearer {key['key']}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    created = client.post("/api/apps", json={"name": "site"}, headers=bearer)
    assert created.status_code == 201
    app_id = created.json["id"]
    assert (
        client.post(
            f"/api/apps/{app_id}/codegen", json={"prompt": "a page"}, headers=bearer
        ).status_code
        == 202
    )
    assert client.post(f"/api/apps/{app_id}/deploy", headers=bearer).status_code == 202
    assert client.delete(f"/api/keys/{key['id']}", headers=csrf).status_code == 204
    assert client.get("/api/me", headers=bearer).status_code == 401
    assert client.post("/auth/logout", headers=csrf).status_code == 204

    names = sorted(rdb.scan_iter(count=1000))
    assert any(":limiter:" in name for name in names), names  # the limiter wrote something
    outside = [name for name in names if not name.startswith("acme:")]
    assert outside == []
