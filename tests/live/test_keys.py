"""README, "The API" (/api/keys): listing, creating and revoking API keys (real Redis, in-process
app)."""

from __future__ import annotations

import re

import pytest

from store.names import KeyNames
from tests.helpers import create_key, login

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# KeyInfo's fields (issue #14 added the last three: a rolled key's end, and usage counts).
KEY_INFO = {"id", "name", "prefix", "created_at", "last_used_at"} | {
    "expires_at",
    "requests_today",
    "requests_30d",
}


def test_create_returns_key_once_with_no_store(pro):
    """201 carries KeyInfo plus the raw key, with Cache-Control: no-store."""
    client, csrf, _ = pro
    response = client.post(
        "/api/keys", json={"name": "  CI deploy  "}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {*KEY_INFO, "key"}
    assert re.fullmatch(r"genmb_sk_[A-Za-z0-9_-]{32}", body["key"])
    assert body["prefix"] == body["key"][:13]
    assert body["name"] == "CI deploy"
    assert ISO_Z.match(body["created_at"]) and body["last_used_at"] is None
    listed = client.get("/api/keys").json["keys"]
    assert [k["id"] for k in listed] == [body["id"]]
    assert "key" not in listed[0] and body["key"] not in client.get("/api/keys").text


def test_list_is_oldest_first_and_hides_secrets(pro):
    """Keys come back oldest first with exactly the KeyInfo fields."""
    client, csrf, _ = pro
    created = [create_key(client, csrf, f"k{i}") for i in range(3)]
    listed = client.get("/api/keys").json["keys"]
    assert [k["id"] for k in listed] == [c["id"] for c in created]
    for item in listed:
        assert set(item) == KEY_INFO


def test_keys_are_distinct_and_random(pro):
    """Five keys differ in their random part and ids."""
    client, csrf, _ = pro
    keys = [create_key(client, csrf) for _ in range(5)]
    assert len({k["key"] for k in keys}) == 5
    assert len({k["id"] for k in keys}) == 5


def test_sixth_key_is_refused_and_changes_nothing(pro):
    """The cap is 5: the sixth create answers 409 key_limit_reached."""
    client, csrf, _ = pro
    for i in range(5):
        create_key(client, csrf, f"k{i}")
    response = client.post("/api/keys", json={"name": "six"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "key_limit_reached"
    assert len(client.get("/api/keys").json["keys"]) == 5


def test_revoking_frees_a_slot(pro):
    """After a delete, a new key can be created again."""
    client, csrf, _ = pro
    keys = [create_key(client, csrf) for _ in range(5)]
    assert (
        client.delete(f"/api/keys/{keys[0]['id']}", headers={"X-CSRF-Token": csrf}).status_code
        == 204
    )
    create_key(client, csrf, "replacement")
    assert len(client.get("/api/keys").json["keys"]) == 5


def test_free_plan_cannot_create(client, make_user):
    """A free user gets 403 plan_required and no key."""
    user = make_user("free")
    csrf = login(client, user.email)
    response = client.post("/api/keys", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "plan_required"
    assert client.get("/api/keys").json["keys"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 65},
        {"name": "tab\there"},
        {"name": "bell\x07"},
        {"name": "rtl\u202eevil"},
        {"name": 42},
        {"name": "ok", "extra": 1},
        [],
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(pro, body):
    """Invalid names answer 400/422 validation_error with field errors; no key is made."""
    client, csrf, _ = pro
    response = client.post("/api/keys", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code in (400, 422)
    error = response.json["error"]
    assert error["code"] == "validation_error" and error["fields"]
    assert client.get("/api/keys").json["keys"] == []


def test_name_limits_are_after_trimming(pro):
    """64 characters plus surrounding spaces is fine; unicode names are kept."""
    client, csrf, _ = pro
    assert create_key(client, csrf, "  " + "n" * 64 + "  ")["name"] == "n" * 64
    assert create_key(client, csrf, "Claude Desktop 🤖")["name"] == "Claude Desktop 🤖"
    assert create_key(client, csrf, "dup")["name"] == create_key(client, csrf, "dup")["name"]


def test_other_users_key_is_404_and_survives(app, make_user):
    """Deleting another user's key is 404 not_found, and that key keeps working."""
    alice, bob = make_user("pro"), make_user("pro")
    a, b = app.test_client(), app.test_client()
    a_csrf, b_csrf = login(a, alice.email), login(b, bob.email)
    key = create_key(a, a_csrf)
    response = b.delete(f"/api/keys/{key['id']}", headers={"X-CSRF-Token": b_csrf})
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    unknown = b.delete("/api/keys/key_doesnotexist", headers={"X-CSRF-Token": b_csrf})
    assert unknown.status_code == 404 and unknown.json == response.json
    me = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {key['key']}"})
    assert me.status_code == 200 and me.json["id"] == alice.id


def test_revoked_key_gets_401_at_once(pro, app):
    """The very next request with a revoked key is 401 invalid_api_key."""
    client, csrf, _ = pro
    key = create_key(client, csrf)
    other = app.test_client()
    headers = {"X-MCP-API-Key": key["key"]}
    assert other.get("/api/me", headers=headers).status_code == 200
    assert (
        client.delete(f"/api/keys/{key['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    )
    response = other.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_api_key"
    # A repeated revoke (a retry after 503 revocation_unconfirmed) succeeds again (README,
    # "How it works").
    again = client.delete(f"/api/keys/{key['id']}", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 204
    assert other.get("/api/me", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "method,path", [("GET", "/api/keys"), ("POST", "/api/keys"), ("DELETE", "/api/keys/key_x")]
)
def test_key_management_needs_a_session(pro, app, method, path):
    """Key endpoints called with an API key answer 403 session_required."""
    client, csrf, _ = pro
    key = create_key(client, csrf)
    response = app.test_client().open(
        path, method=method, json={"name": "x"}, headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "session_required"
    assert len(client.get("/api/keys").json["keys"]) == 1


def test_last_used_at_follows_use(pro, app):
    """last_used_at is null until first use, then an ISO Z time."""
    client, csrf, _ = pro
    key = create_key(client, csrf)
    app.test_client().get("/api/apps", headers={"Authorization": f"Bearer {key['key']}"})
    (listed,) = client.get("/api/keys").json["keys"]
    assert ISO_Z.match(listed["last_used_at"])
    assert listed["last_used_at"] >= listed["created_at"]


def test_redis_holds_digest_not_key(pro, rdb):
    """The record is named by the SHA-256 digest and holds no key material."""
    import hashlib

    client, csrf, user = pro
    key = create_key(client, csrf)
    digest = hashlib.sha256(key["key"].encode()).hexdigest()
    record = rdb.hgetall(KeyNames().api_key(user.id, digest))
    assert record["user_id"] == user.id and record["prefix"] == key["prefix"]
    assert rdb.hgetall(KeyNames().user_keys(user.id)) == {key["id"]: digest}
    random_part = key["key"][len("genmb_sk_") :]
    for value in record.values():
        assert random_part not in value
