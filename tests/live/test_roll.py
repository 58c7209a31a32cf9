"""Issue #14, item 1: rolling a key with an overlap (README, "The API").

The in-process tests run on every Redis topology (one server, Sentinel, Cluster: the roll is
one script in the user's slot); the gunicorn test rolls a key under load with four workers.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from store import users
from store.names import KeyNames
from tests.helpers import LiveSession, create_key, login

WEEK = 7 * 24 * 3600


def roll(client, csrf: str, key_id: str, overlap) -> object:
    """POST /api/keys/<id>/roll."""
    return client.post(
        f"/api/keys/{key_id}/roll",
        json={"overlap_seconds": overlap},
        headers={"X-CSRF-Token": csrf},
    )


def me(app, raw: str) -> int:
    """GET /api/me with a key, from a fresh client: the status code."""
    return app.test_client().get("/api/me", headers={"Authorization": f"Bearer {raw}"}).status_code


def test_roll_returns_new_key_once_and_old_one_keeps_working(pro, app, rdb):
    """201 with a new key of the same name (no-store, as creation); both keys work during the
    overlap; the list shows the old one with expires_at; its record expires by its TTL."""
    client, csrf, user = pro
    old = create_key(client, csrf, "CI deploy")
    before = time.time()
    response = roll(client, csrf, old["id"], 3600)
    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    new = response.json
    assert new["name"] == "CI deploy" and new["id"] != old["id"] and new["key"] != old["key"]
    assert new["expires_at"] is None and new["last_used_at"] is None
    assert me(app, old["key"]) == 200 and me(app, new["key"]) == 200
    listed = {k["id"]: k for k in client.get("/api/keys").json["keys"]}
    assert set(listed) == {old["id"], new["id"]}
    assert listed[new["id"]]["expires_at"] is None
    assert "key" not in listed[old["id"]] and old["key"] not in client.get("/api/keys").text
    expires = listed[old["id"]]["expires_at"]
    at = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
    assert before + 3600 - 2 <= at <= time.time() + 3600 + 2
    digest = hashlib.sha256(old["key"].encode()).hexdigest()
    ttl = rdb.pttl(KeyNames().api_key(user.id, digest))
    assert 3_590_000 < ttl <= 3_600_000  # the record disappears by itself
    # The rolling key is out of the cap's index; the new one is in.
    index = rdb.hgetall(KeyNames().user_keys(user.id))
    assert list(index) == [new["id"]]


def test_roll_works_at_the_cap_and_the_rolling_key_does_not_count(pro, app):
    """At 5 of 5 keys a roll succeeds; 6 keys are listed, 6 work, and a new key is still
    refused (5 live keys); deleting the rolling one does not free a slot."""
    client, csrf, _ = pro
    keys = [create_key(client, csrf, f"k{i}") for i in range(5)]
    response = roll(client, csrf, keys[0]["id"], 600)
    assert response.status_code == 201, response.json
    assert len(client.get("/api/keys").json["keys"]) == 6
    assert all(me(app, k["key"]) == 200 for k in [*keys, response.json])
    refused = client.post("/api/keys", json={"name": "six"}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "key_limit_reached"
    # Revoking a rolling key works, and it is refused at once.
    deleted = client.delete(f"/api/keys/{keys[0]['id']}", headers={"X-CSRF-Token": csrf})
    assert deleted.status_code == 204
    assert me(app, keys[0]["key"]) == 401
    assert len(client.get("/api/keys").json["keys"]) == 5
    again = client.post("/api/keys", json={"name": "six"}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409


def test_roll_of_a_rolling_key_is_refused(pro, app):
    """A key in its overlap cannot be rolled again (409 key_rolling), nor can its successor
    while it lasts (at most one rolling key per key); once the old one is deleted, it can."""
    client, csrf, _ = pro
    old = create_key(client, csrf)
    new = roll(client, csrf, old["id"], 600).json
    refused = roll(client, csrf, old["id"], 600)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "key_rolling"
    successor = roll(client, csrf, new["id"], 600)
    assert successor.status_code == 409 and successor.json["error"]["code"] == "key_rolling"
    assert len(client.get("/api/keys").json["keys"]) == 2
    assert me(app, old["key"]) == 200 and me(app, new["key"]) == 200
    assert (
        client.delete(f"/api/keys/{old['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    )
    third = roll(client, csrf, new["id"], 0)
    assert third.status_code == 201
    assert me(app, new["key"]) == 401 and me(app, third.json["key"]) == 200


def test_overlap_zero_refuses_the_old_key_now(pro, app, rdb):
    """overlap_seconds 0: the old key is 401 from the next request on, and not listed; its
    record and usage counters are gone (as after a revoke)."""
    client, csrf, user = pro
    old = create_key(client, csrf)
    assert me(app, old["key"]) == 200
    new = roll(client, csrf, old["id"], 0)
    assert new.status_code == 201
    assert me(app, old["key"]) == 401 and me(app, new.json["key"]) == 200
    assert [k["id"] for k in client.get("/api/keys").json["keys"]] == [new.json["id"]]
    digest = hashlib.sha256(old["key"].encode()).hexdigest()
    names = KeyNames()
    assert not rdb.exists(names.api_key(user.id, digest), names.key_usage(user.id, digest))
    # As after a revoke: deleting the old key again answers 204 (safe to retry).
    again = client.delete(f"/api/keys/{old['id']}", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 204


def test_old_key_is_refused_after_the_overlap(pro, app, rdb):
    """A 1-second overlap: 200 during it, 401 invalid_api_key after, and gone from the list."""
    client, csrf, _ = pro
    old = create_key(client, csrf)
    new = roll(client, csrf, old["id"], 1).json
    assert me(app, old["key"]) == 200
    time.sleep(1.2)
    response = app.test_client().get("/api/me", headers={"X-MCP-API-Key": old["key"]})
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_api_key"
    assert me(app, new["key"]) == 200
    assert [k["id"] for k in client.get("/api/keys").json["keys"]] == [new["id"]]
    # Gone is 404 to a roll or a delete.
    assert roll(client, csrf, old["id"], 10).status_code == 404
    assert (
        client.delete(f"/api/keys/{old['id']}", headers={"X-CSRF-Token": csrf}).status_code == 404
    )


def test_gate_refuses_an_expired_record_before_its_ttl(pro, app, rdb):
    """The gate checks expires_ms on Redis's clock: a record whose TTL has not removed it yet
    is refused all the same."""
    client, csrf, user = pro
    old = create_key(client, csrf)
    roll(client, csrf, old["id"], 600)
    record = KeyNames().api_key(user.id, hashlib.sha256(old["key"].encode()).hexdigest())
    seconds, micros = rdb.time()
    rdb.hset(record, "expires_ms", seconds * 1000 + micros // 1000 - 1)
    assert rdb.exists(record)
    assert me(app, old["key"]) == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"overlap_seconds": -1},
        {"overlap_seconds": WEEK + 1},
        {"overlap_seconds": "3"},
        {"overlap_seconds": 1.5},
        {"overlap_seconds": None},
    ],
)
def test_bad_overlaps_are_refused_and_change_nothing(pro, app, body):
    """overlap_seconds must be an integer 0..604800."""
    client, csrf, _ = pro
    old = create_key(client, csrf)
    response = client.post(f"/api/keys/{old['id']}/roll", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code in (400, 422), response.json
    assert response.json["error"]["code"] == "validation_error"
    assert [k["id"] for k in client.get("/api/keys").json["keys"]] == [old["id"]]


def test_roll_needs_csrf_a_session_and_ones_own_key(pro, app, make_user):
    """No CSRF token: 403; with an API key: 403 session_required; someone else's or an
    unknown key: 404; the longest overlap is allowed."""
    client, csrf, _ = pro
    old = create_key(client, csrf)
    assert (
        client.post(f"/api/keys/{old['id']}/roll", json={"overlap_seconds": 1}).status_code == 403
    )
    with_key = app.test_client().post(
        f"/api/keys/{old['id']}/roll",
        json={"overlap_seconds": 1},
        headers={"Authorization": f"Bearer {old['key']}"},
    )
    assert with_key.status_code == 403 and with_key.json["error"]["code"] == "session_required"
    other = make_user("pro")
    b = app.test_client()
    b_csrf = login(b, other.email)
    assert roll(b, b_csrf, old["id"], 1).status_code == 404
    assert roll(b, b_csrf, "key_0000000000000000", 1).status_code == 404
    assert roll(b, b_csrf, "not-an-id", 1).status_code == 404
    assert roll(client, csrf, old["id"], WEEK).status_code == 201


def test_free_plan_cannot_roll(pro, app, storage):
    """A downgraded account's keys cannot be rolled (403 plan_required), as none created."""
    client, csrf, user = pro
    old = create_key(client, csrf)
    users.set_plan(storage, user.email, "free")
    response = roll(client, csrf, old["id"], 60)
    assert response.status_code == 403 and response.json["error"]["code"] == "plan_required"


# ---- under gunicorn, four workers ------------------------------------------------------


@pytest.mark.gunicorn
def test_overlap_ends_on_every_worker_under_load(live, make_user):
    """A 3-second overlap under load: every request with the old key is admitted until the
    overlap ends and refused (401) from one second after it, across four workers."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    old = session.create_key("rolled").json()
    headers = {"Authorization": f"Bearer {old['key']}"}

    def call(_: int) -> tuple[float, int]:
        status = requests.get(f"{live.url}/api/me", headers=headers, timeout=30).status_code
        return time.monotonic(), status

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert {s for _, s in pool.map(call, range(24))} == {200}  # every worker has seen it
        started = time.monotonic()
        rolled = session.http.post(
            f"{live.url}/api/keys/{old['id']}/roll",
            json={"overlap_seconds": 3},
            headers={"X-CSRF-Token": session.csrf},
            timeout=30,
        )
        acknowledged = time.monotonic()
        assert rolled.status_code == 201, rolled.text
        during: list[tuple[float, int]] = []
        while time.monotonic() < started + 2.0:  # well inside the overlap
            during += pool.map(call, range(8))
            time.sleep(0.2)
        time.sleep(max(0.0, acknowledged + 4.0 - time.monotonic()))  # 1 s after it ended
        after = list(pool.map(call, range(40)))
    assert Counter(s for _, s in during) == Counter({200: len(during)})
    assert Counter(s for _, s in after) == Counter({401: 40})
    new_headers = {"Authorization": f"Bearer {rolled.json()['key']}"}
    assert requests.get(f"{live.url}/api/me", headers=new_headers, timeout=10).status_code == 200
