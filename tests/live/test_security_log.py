"""Issue #13: every account's security log, its banners, and the operator's revocations."""

from __future__ import annotations

import io
import json
import re
import time

import pytest

from config import load_settings
from store import apikeys
from tests.helpers import PASSWORD, create_key, login, make_app

pytestmark = pytest.mark.integration

KEY_SHAPE = re.compile(r"genmb_sk_[A-Za-z0-9_-]{32}")


def events(client) -> list[dict]:
    """The first page of the logged-in client's security log."""
    response = client.get("/api/security-log?limit=100")
    assert response.status_code == 200, response.json
    return response.json["events"]


def types(client) -> list[str]:
    return [e["type"] for e in events(client)]


def stream(rdb, user_id: str) -> str:
    return f"genmb:user:{{{user_id}}}:security_log"


@pytest.fixture
def cli(app):
    """Invoke the app's CLI in-process."""
    runner = app.test_cli_runner()
    return lambda *args, input=None: runner.invoke(args=list(args), input=input)


def test_key_life_and_login_are_recorded_newest_first_without_secrets(client, make_user, rdb):
    """Login, create, revoke: time, actor, IP, key id and prefix; no key, digest or password."""
    user = make_user("pro")
    csrf = login(client, user.email)
    created = create_key(client, csrf, "CI deploy")
    assert (
        client.delete(f"/api/keys/{created['id']}", headers={"X-CSRF-Token": csrf}).status_code
        == 204
    )
    log = events(client)
    assert [e["type"] for e in log] == ["api_key.revoked", "api_key.created", "auth.login"]
    revoked, made, logged_in = log
    assert made["key_id"] == revoked["key_id"] == created["id"]
    assert made["key_prefix"] == revoked["key_prefix"] == created["prefix"]
    assert made["key_name"] == "CI deploy"
    assert {e["actor"] for e in log} == {"user"}
    assert {e["ip"] for e in log} == {"127.0.0.1"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", logged_in["at"])
    dump = json.dumps(rdb.xrange(stream(rdb, user.id)))
    assert created["key"] not in dump and apikeys.digest(created["key"]) not in dump
    assert not KEY_SHAPE.search(dump) and PASSWORD not in dump


def test_failed_logins_are_one_event_per_minute(client, make_user, rdb):
    """Five wrong passwords: one auth.failed_login_burst; an unknown email records nothing."""
    user = make_user("pro")
    for _ in range(5):
        assert (
            client.post(
                "/auth/login", json={"email": user.email, "password": "wrong password"}
            ).status_code
            == 401
        )
    client.post("/auth/login", json={"email": "nobody@example.test", "password": "x" * 10})
    login(client, user.email)
    assert types(client) == ["auth.login", "auth.failed_login_burst"]
    assert rdb.ttl(f"genmb:user:{{{user.id}}}:throttle:failed_login") <= 60


def test_a_key_refused_for_the_plan_is_recorded_once_a_minute(app, client, make_user, cli):
    """A downgraded owner's key: 403 each time, one api_key.refused_plan event."""
    user = make_user("pro")
    created = create_key(client, login(client, user.email))
    assert cli("users", "set-plan", user.email, "free").exit_code == 0
    bearer = {"Authorization": f"Bearer {created['key']}"}
    for _ in range(4):
        assert client.get("/api/me", headers=bearer).status_code == 403
    log = events(client)
    assert [e["type"] for e in log][:2] == ["api_key.refused_plan", "plan.changed"]
    refused, changed = log[:2]
    assert refused["key_id"] == created["id"] and refused["key_prefix"] == created["prefix"]
    assert (changed["actor"], changed["plan"]) == ("operator", "free")
    assert "ip" not in changed
    assert types(client).count("api_key.refused_plan") == 1


def test_pagination_is_newest_first_with_a_cursor(client, make_user, storage):
    """limit and next_cursor walk the whole log once, newest first; a bad cursor is 422."""
    user = make_user("pro")
    csrf = login(client, user.email)
    for n in range(4):
        created = create_key(client, csrf, f"key {n}")
        client.delete(f"/api/keys/{created['id']}", headers={"X-CSRF-Token": csrf})
    seen, cursor, pages = [], None, 0
    while pages < 20:
        pages += 1
        response = client.get(
            "/api/security-log", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200
        seen += response.json["events"]
        cursor = response.json.get("next_cursor")
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 9
    assert len({e["id"] for e in seen}) == 9
    assert [e["id"] for e in seen] == sorted(
        (e["id"] for e in seen), key=lambda i: tuple(map(int, i.split("-"))), reverse=True
    )
    assert seen[-1]["type"] == "auth.login"
    for bad in ("abc", "1-2-3", "genmb_sk_" + "a" * 32):
        response = client.get("/api/security-log", query_string={"cursor": bad})
        assert response.status_code == 422
        assert "genmb_sk_" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "cursor", ["0-0", "0-1", "1-0", "99999999999999999999-99999999999999999999"]
)
def test_any_cursor_of_the_documented_shape_is_a_position(client, make_user, cursor):
    """Edge cursors (found by the fuzzer: 0-0 was a 500) answer 200, never a Redis error."""
    user = make_user("pro")
    login(client, user.email)
    response = client.get("/api/security-log", query_string={"cursor": cursor})
    assert response.status_code == 200
    huge = cursor.startswith("9")
    assert [e["type"] for e in response.json["events"]] == (["auth.login"] if huge else [])


def test_session_only(client, make_user):
    """With a key: 403 session_required; without anything: 401."""
    user = make_user("pro")
    created = create_key(client, login(client, user.email))
    other = make_app(client.application.config["REDIS_URL"]).test_client()
    assert other.get("/api/security-log").status_code == 401
    response = other.get("/api/security-log", headers={"Authorization": f"Bearer {created['key']}"})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "session_required"


def test_the_log_is_capped_by_count_and_by_age(redis_url, make_user, rdb):
    """SECURITY_LOG_MAX_EVENTS keeps the newest N; events past MAX_DAYS are dropped."""
    client = make_app(redis_url, SECURITY_LOG_MAX_EVENTS=5, SECURITY_LOG_MAX_DAYS=2).test_client()
    user = make_user("pro")
    key = stream(rdb, user.id)
    old = int(time.time() * 1000) - 3 * 24 * 3600 * 1000
    rdb.xadd(key, {"type": "auth.login", "actor": "user"}, id=f"{old}-0")
    csrf = login(client, user.email)
    assert rdb.xlen(key) == 1  # the old event went with the first new one
    for n in range(5):
        create_key(client, csrf, f"k{n}")
    assert rdb.xlen(key) == 5
    assert [e["type"] for e in events(client)] == ["api_key.created"] * 5
    assert 0 < rdb.ttl(key) <= 2 * 24 * 3600


@pytest.mark.parametrize(
    "name,value",
    [
        ("SECURITY_LOG_MAX_EVENTS", "0"),
        ("SECURITY_LOG_MAX_DAYS", "0"),
        ("SECURITY_LOG_MAX_DAYS", "ninety"),
        ("SECRET_SCANNING_KEYS_URL", "ftp://example.test/k"),
        ("SECRET_SCANNING_RATELIMIT", "lots"),
        ("SECRET_SCANNING_MAX_BYTES", "10"),
    ],
)
def test_bad_settings_stop_start_up(name, value):
    """Each new setting is checked at start-up, with its name in the message."""
    env = {"REDIS_URL": "memory://", "GENMB_ENV": "development", name: value}
    with pytest.raises(RuntimeError, match=name):
        load_settings(env=env)


def test_leaked_key_banner_until_dismissed(app, client, make_user):
    """A leaked-key revocation leaves a banner (alerts) until the user dismisses it."""
    from services.revocation import revoke_leaked

    user = make_user("pro")
    csrf = login(client, user.email)
    created = create_key(client, csrf, "CI deploy")
    url = "https://github.com/octocat/hello/blob/abc/deploy.sh"
    with app.test_request_context(
        "/api/secret-scanning/github", method="POST", environ_base={"REMOTE_ADDR": "192.0.2.7"}
    ):
        assert revoke_leaked(created["key"], url, "content") is True
    alerts = client.get("/api/security-log/alerts").json["alerts"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert["type"], alert["actor"], alert["url"]) == (
        "api_key.leaked",
        "github_secret_scanning",
        url,
    )
    assert (alert["key_name"], alert["key_prefix"], alert["ip"]) == (
        "CI deploy",
        created["prefix"],
        "192.0.2.7",
    )
    assert events(client)[0]["id"] == alert["id"]
    path = f"/api/security-log/{alert['id']}/dismiss"
    assert client.post(path).status_code == 403  # CSRF
    assert client.post(path, headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/security-log/alerts").json["alerts"] == []
    assert client.post(path, headers={"X-CSRF-Token": csrf}).status_code == 404
    assert events(client)[0]["type"] == "api_key.leaked"  # the event stays


# ---- the operator's revocations --------------------------------------------------------


def test_cli_revoke_by_prefix_lists_asks_and_records(cli, client, make_user):
    """--prefix lists the matches and asks; 'n' changes nothing, 'y' revokes and records."""
    user = make_user("pro")
    created = create_key(client, login(client, user.email), "CI deploy")
    refused = cli("keys", "revoke", "--prefix", created["prefix"], input="n\n")
    assert refused.exit_code != 0
    assert created["id"] in refused.output and created["key"] not in refused.output
    bearer = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    done = cli("keys", "revoke", "--prefix", created["prefix"], input="y\n")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["revoked"] == created["id"]
    assert client.get("/api/me", headers=bearer).status_code == 401
    event = events(client)[0]
    assert (event["type"], event["actor"], event["key_id"]) == (
        "api_key.revoked",
        "operator",
        created["id"],
    )
    assert cli("keys", "revoke", "--prefix", created["prefix"], "--yes").exit_code != 0


def test_cli_revoke_by_id_and_argument_checks(cli, client, make_user):
    """--id revokes exactly that key, whoever owns it; both or neither option is an error."""
    a, b = make_user("pro"), make_user("pro")
    key_a = create_key(client, login(client, a.email), "A")
    key_b = create_key(client, login(client, b.email), "B")
    assert cli("keys", "revoke").exit_code != 0
    assert cli("keys", "revoke", "--id", key_a["id"], "--prefix", "genmb_sk_").exit_code != 0
    assert cli("keys", "revoke", "--prefix", "genmb").exit_code != 0
    result = cli("keys", "revoke", "--id", key_b["id"], "--yes")
    assert result.exit_code == 0, result.output
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {key_b['key']}"}).status_code
        == 401
    )
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {key_a['key']}"}).status_code
        == 200
    )
    assert types(client)[0] == "api_key.revoked"  # b is logged in last: b's log


def test_cli_revoke_token_reads_standard_input(cli, client, make_user, app, caplog):
    """revoke-token - : the raw token from stdin, never echoed; junk is a clear error."""
    user = make_user("pro")
    created = create_key(client, login(client, user.email))
    result = cli("keys", "revoke-token", "-", input=created["key"] + "\n")
    assert result.exit_code == 0, result.output
    assert created["key"] not in result.output
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {created['key']}"}).status_code
        == 401
    )
    assert events(client)[0]["actor"] == "operator"
    again = cli("keys", "revoke-token", "-", input=created["key"])
    assert again.exit_code != 0 and "no live key" in again.output
    assert created["key"] not in again.output
    junk = cli("keys", "revoke-token", "-", input=io.StringIO("hello").read())
    assert junk.exit_code != 0 and "hello" not in junk.output
    assert created["key"] not in caplog.text
