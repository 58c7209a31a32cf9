"""Issue #18: what the service keeps in Redis stays bounded, and expires when it should.

Each test drives the API as a client would, with short configured windows and lifetimes, then
looks behind it with `rdb`. Key names come from the app's KeyNames, and sizes are measured by
the length command of whatever type the key has, so a change of key layout or of a record's
representation does not stop these tests from checking the property.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from extensions import storage as app_storage
from store import apikeys
from store.clock import month_of, start_of_next_month, utcnow
from store.digest import digest
from store.names import KeyNames
from tests.helpers import create_key, login, make_app
from tests.live.helpers import entries

pytestmark = pytest.mark.integration

COOKIE = "genmb_session"


def names_of(app) -> KeyNames:
    """The key names the app itself uses (prefix and layout included)."""
    with app.app_context():
        return app_storage().names


def members(rdb, key: str) -> list[str]:
    """The records a collection key holds, whatever its type."""
    kind = rdb.type(key)
    if kind == "list":
        return rdb.lrange(key, 0, -1)
    if kind == "zset":
        return rdb.zrange(key, 0, -1)
    if kind == "hash":
        return [*rdb.hkeys(key), *rdb.hvals(key)]
    if kind == "set":
        return list(rdb.smembers(key))
    pytest.fail(f"{key} is a {kind}: teach members() to read it")


# ---- the rolling window ---------------------------------------------------------------


def test_rolling_window_storage_stays_within_the_limit(redis_url, rdb):
    """A steady client, never refused, keeps its window key alive for several windows; the
    key holds at most `limit` counters (and two of bookkeeping) all along: old ones are dropped,
    not kept forever."""
    limit, window, gap = 5, 1.0, 0.22  # 0.22 s apart: at most 5 requests in any second
    app = make_app(redis_url, RATELIMIT_GLOBAL=f"{limit} per second")
    client = app.test_client()
    address = "192.0.2.41"
    window_key = names_of(app).ip_window(address)
    sizes, statuses = [], []
    for _ in range(round(2.5 * window / gap)):  # 11 requests over about 2.4 windows
        statuses.append(
            client.get("/auth/session", environ_base={"REMOTE_ADDR": address}).status_code
        )
        sizes.append(entries(rdb, window_key))
        time.sleep(gap)
    assert set(statuses) == {401}  # every request admitted (401: no session)
    # At most one counter per request still counted, plus the total and the cleanup cursor
    # (docs/storage.md): records of requests that left the window are gone.
    assert max(sizes) <= limit + 2, f"window key sizes after each request: {sizes}"


def test_rolling_window_key_expires_once_the_client_stops(redis_url, rdb):
    """A client's window key carries a TTL of at most two windows: an address that stops
    sending leaves nothing behind for long."""
    app = make_app(redis_url, RATELIMIT_GLOBAL="5 per minute")
    address = "192.0.2.42"
    assert (
        app.test_client().get("/auth/session", environ_base={"REMOTE_ADDR": address}).status_code
        == 401
    )
    ttl_ms = rdb.pttl(names_of(app).ip_window(address))
    assert 0 < ttl_ms <= 2 * 60_000, f"window key PTTL {ttl_ms} (-1 means it never expires)"


# ---- sessions ---------------------------------------------------------------------------


def _short_session(redis_url, make_user, lifetime: int):
    """An app with SESSION_LIFETIME_SECONDS=lifetime, and a fresh login's cookie token."""
    app = make_app(redis_url, SESSION_LIFETIME_SECONDS=lifetime)
    web = app.test_client()
    user = make_user("pro")
    login(web, user.email)
    token = web.get_cookie(COOKIE).value
    return app, token, names_of(app).session(user.id, digest(token))


def test_session_record_lives_no_longer_than_the_session_lifetime(redis_url, rdb, make_user):
    """The server-side session, and the index that finds its owner, carry a TTL of at most
    SESSION_LIFETIME_SECONDS."""
    app, token, record = _short_session(redis_url, make_user, lifetime=30)
    owner_index = names_of(app).session_owner(digest(token))
    for key in (record, owner_index):
        ttl_ms = rdb.pttl(key)
        assert 0 < ttl_ms <= 30_000, f"{key} PTTL {ttl_ms} (-1 means it never expires)"


def test_expired_session_is_refused_even_if_the_cookie_is_kept(redis_url, rdb, make_user):
    """With a 1-second lifetime, a client replaying its cookie after 1.3 s gets 401."""
    app, token, record = _short_session(redis_url, make_user, lifetime=1)
    started = time.monotonic()
    replay = app.test_client()
    replay.set_cookie(COOKIE, token)  # no max-age: the client never drops it by itself
    assert replay.get("/auth/session").status_code == 200
    time.sleep(max(0.0, started + 1.3 - time.monotonic()))
    assert replay.get("/auth/session").status_code == 401
    me = replay.get("/api/me")
    assert me.status_code == 401 and me.json["error"]["code"] == "missing_credentials"
    assert entries(rdb, record) == 0


# ---- jobs and credits -------------------------------------------------------------------


def _key_and_app(app, make_user) -> tuple[dict[str, str], str, str]:
    """(auth headers of a new pro user's key, the user's id, one of the user's app ids)."""
    user = make_user("pro")
    web = app.test_client()
    auth = {"Authorization": f"Bearer {create_key(web, login(web, user.email))['key']}"}
    made = app.test_client().post("/api/apps", json={"name": "history"}, headers=auth)
    assert made.status_code == 201, made.json
    return auth, user.id, made.json["id"]


def test_job_history_is_capped_per_app(redis_url, rdb, make_user):
    """After more deploys than the cap, an app keeps exactly the newest JOBS_KEPT_PER_APP."""
    from store.apps import JOBS_KEPT_PER_APP  # here: a move of the cap fails this test only

    app = make_app(redis_url, RATELIMIT_DEPLOY="1000 per minute")
    auth, user_id, app_id = _key_and_app(app, make_user)
    client = app.test_client()
    job_ids = []
    for _ in range(JOBS_KEPT_PER_APP + 3):
        response = client.post(f"/api/apps/{app_id}/deploy", headers=auth)
        assert response.status_code == 202, response.json
        job_ids.append(response.json["job"]["id"])
    history = names_of(app).app_jobs(user_id, app_id)
    assert entries(rdb, history) == JOBS_KEPT_PER_APP
    kept = "\n".join(members(rdb, history))
    assert job_ids[-1] in kept and job_ids[0] not in kept  # the oldest go first


@pytest.mark.parametrize("action", ["codegen", "deploy"])
def test_credits_counter_expires_after_its_month(app, rdb, make_user, action):
    """A charge leaves this month's counter with a TTL: long enough to outlive the month,
    short enough that old months do not pile up (at most two months)."""
    auth, user_id, app_id = _key_and_app(app, make_user)
    charged = app.test_client().post(
        f"/api/apps/{app_id}/{action}", json={"prompt": "x"}, headers=auth
    )
    assert charged.status_code == 202, charged.json
    now = utcnow()
    ttl = rdb.ttl(names_of(app).credits(user_id, month_of(now)))
    assert ttl != -1, "the credits counter never expires"
    month_left = (start_of_next_month(now) - now).total_seconds()
    assert month_left <= ttl <= timedelta(days=62).total_seconds(), ttl


# ---- refused keys -------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Authorization", "X-MCP-API-Key"])
@pytest.mark.parametrize("path", ["/api/me", "/mcp"])
def test_unknown_key_leaves_no_key_record_behind(app, rdb, header, path):
    """A well-formed key nobody holds is refused (401) without writing a key record: no
    last_used_at stamp, nor anything else named after its digest."""
    key = "genmb_sk_" + "Q" * 32
    assert apikeys.is_well_formed(key)
    value = f"Bearer {key}" if header == "Authorization" else key
    response = (
        app.test_client().post(path, json={}, headers={header: value})
        if path == "/mcp"
        else app.test_client().get(path, headers={header: value})
    )
    assert response.status_code == 401
    digest = apikeys.digest(key)
    assert list(rdb.scan_iter(match=f"*{digest}*", count=1000)) == []


def test_revoked_key_leaves_no_key_record_behind(client, app, rdb, make_user):
    """Using a key after its revocation is refused and does not bring its record back."""
    user = make_user("pro")
    csrf = login(client, user.email)
    key = create_key(client, csrf)
    # Used once first: this process now knows the key's owner, so the refused request below
    # reaches the credential check itself (not just a missing owner index).
    assert (
        app.test_client().get("/api/me", headers={"X-MCP-API-Key": key["key"]}).status_code == 200
    )
    assert (
        client.delete(f"/api/keys/{key['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    )
    response = app.test_client().get("/api/me", headers={"X-MCP-API-Key": key["key"]})
    assert response.status_code == 401
    digest = apikeys.digest(key["key"])
    assert entries(rdb, names_of(app).api_key(user.id, digest)) == 0
    assert list(rdb.scan_iter(match=f"*{digest}*", count=1000)) == []
