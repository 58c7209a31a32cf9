"""Credits and per-endpoint limits (README, "The API"), under real concurrency where it matters."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from store.names import KeyNames
from tests.helpers import LiveSession, create_key, login, make_app


def _fire(count: int, call) -> list:
    """Run call(i) from `count` threads at once."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


@pytest.fixture(scope="module")
def scarce(redis_server, make_gunicorn):
    """gunicorn (4 workers) where a pro user has 35 credits and codegen is barely limited."""
    with make_gunicorn(
        redis_server.url,
        "scarce",
        4,
        env={"CREDITS_PRO": "35", "RATELIMIT_CODEGEN": "1000 per minute"},
    ) as server:
        yield server


def _pro_with_app(base_url: str, make_user):
    """A pro user's logged-in session, raw key and one app id."""
    user = make_user("pro")
    session = LiveSession(base_url, user.email)
    key = session.create_key().json()["key"]
    app = requests.post(
        f"{base_url}/api/apps", json={"name": "bench"}, headers={"X-MCP-API-Key": key}, timeout=10
    )
    assert app.status_code == 201
    return session, key, app.json()["id"]


def test_fifty_racing_codegens_with_credit_for_three(scarce, redis_url, make_user, rdb):
    """Exactly 3 of 50 concurrent codegens succeed; the rest get 402; the counter stays 30."""
    session, key, app_id = _pro_with_app(scarce.url, make_user)

    def codegen(i: int) -> int:
        r = requests.post(
            f"{scarce.url}/api/apps/{app_id}/codegen",
            json={"prompt": f"p{i}"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        if r.status_code == 402:
            assert r.json()["error"]["code"] == "insufficient_credits"
        return r.status_code

    assert Counter(_fire(50, codegen)) == Counter({202: 3, 402: 47})
    me = requests.get(f"{scarce.url}/api/me", headers={"X-MCP-API-Key": key}, timeout=10).json()
    assert me["credits"] == {**me["credits"], "limit": 35, "used": 30, "remaining": 5}
    month = datetime.now(UTC).strftime("%Y-%m")
    assert rdb.get(KeyNames().credits(me["id"], month)) == "30"
    assert len(rdb.lrange(KeyNames().app_jobs(me["id"], app_id), 0, -1)) == 3


def test_key_and_session_share_one_counter(scarce, redis_url, make_user):
    """A deploy through the session and one through a key draw from the same credits."""
    session, key, app_id = _pro_with_app(scarce.url, make_user)
    by_session = session.http.post(
        f"{scarce.url}/api/apps/{app_id}/deploy", headers={"X-CSRF-Token": session.csrf}, timeout=10
    )
    by_key = requests.post(
        f"{scarce.url}/api/apps/{app_id}/deploy",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert (by_session.status_code, by_key.status_code) == (202, 202)
    me = session.http.get(f"{scarce.url}/api/me", timeout=10).json()
    assert me["credits"]["used"] == 10 and me["auth"]["method"] == "session"


def test_refused_requests_charge_nothing(client, make_user):
    """422, 404, 402 and a foreign app leave the counter where it was."""
    owner, other = make_user("pro"), make_user("pro")
    csrf = login(client, owner.email)
    key = create_key(client, csrf)["key"]
    headers = {"Authorization": f"Bearer {key}"}
    app_id = client.post("/api/apps", json={"name": "a"}, headers=headers).json["id"]
    assert client.post(f"/api/apps/{app_id}/codegen", json={}, headers=headers).status_code == 422
    assert (
        client.post(f"/api/apps/{app_id}/codegen", json={"prompt": ""}, headers=headers).status_code
        == 422
    )
    assert client.post("/api/apps/app_nope/deploy", headers=headers).status_code == 404
    other_client = client.application.test_client()
    other_csrf = login(other_client, other.email)
    other_key = create_key(other_client, other_csrf)["key"]
    foreign = client.post(
        f"/api/apps/{app_id}/deploy", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert foreign.status_code == 404
    assert client.get("/api/me", headers=headers).json["credits"]["used"] == 0
    assert other_client.get("/api/me").json["credits"]["used"] == 0


def test_out_of_credits_is_402_and_keeps_counter(redis_url, make_user):
    """With 12 credits: one codegen (10) passes, the second is 402, used stays 10."""
    from config import plans_from_env

    app = make_app(redis_url, PLANS=plans_from_env({"CREDITS_PRO": "12"}))
    client = app.test_client()
    user = make_user("pro")
    csrf = login(client, user.email)
    app_id = client.post("/api/apps", json={"name": "a"}, headers={"X-CSRF-Token": csrf}).json["id"]
    path = f"/api/apps/{app_id}/codegen"
    first = client.post(path, json={"prompt": "x"}, headers={"X-CSRF-Token": csrf})
    second = client.post(path, json={"prompt": "x"}, headers={"X-CSRF-Token": csrf})
    assert (first.status_code, second.status_code) == (202, 402)
    assert second.json["error"]["code"] == "insufficient_credits"
    assert client.get("/api/me").json["credits"] == {
        **client.get("/api/me").json["credits"],
        "used": 10,
        "remaining": 2,
        "limit": 12,
    }


def test_credits_reset_with_the_calendar_month(client, make_user, monkeypatch):
    """Use at 23:59 on 31 December does not count against January."""
    import store.apps
    import store.gate

    user = make_user("pro")
    csrf = login(client, user.email)
    app_id = client.post("/api/apps", json={"name": "a"}, headers={"X-CSRF-Token": csrf}).json["id"]
    december = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    january = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    for module in (store.apps, store.gate):
        monkeypatch.setattr(module, "utcnow", lambda: december)
    assert (
        client.post(f"/api/apps/{app_id}/deploy", headers={"X-CSRF-Token": csrf}).status_code == 202
    )
    assert client.get("/api/me").json["credits"]["used"] == 5
    for module in (store.apps, store.gate):
        monkeypatch.setattr(module, "utcnow", lambda: january)
    assert client.get("/api/me").json["credits"]["used"] == 0


def test_per_user_codegen_limit(live, make_user):
    """Codegen allows 10 per minute per user, across key and session; others unaffected."""
    session, key, app_id = _pro_with_app(live.url, make_user)
    url = f"{live.url}/api/apps/{app_id}/codegen"
    codes = [
        requests.post(
            url, json={"prompt": "x"}, headers={"X-MCP-API-Key": key}, timeout=10
        ).status_code
        for _ in range(10)
    ]
    assert codes == [202] * 10
    limited = session.http.post(
        url, json={"prompt": "x"}, headers={"X-CSRF-Token": session.csrf}, timeout=10
    )
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "10"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    me = session.http.get(f"{live.url}/api/me", timeout=10).json()
    assert me["credits"]["used"] == 100  # the refused call charged nothing
    _, other_key, other_app = _pro_with_app(live.url, make_user)
    other = requests.post(
        f"{live.url}/api/apps/{other_app}/codegen",
        json={"prompt": "x"},
        headers={"X-MCP-API-Key": other_key},
        timeout=10,
    )
    assert other.status_code == 202
    deploy = requests.post(
        f"{live.url}/api/apps/{app_id}/deploy", headers={"X-MCP-API-Key": key}, timeout=10
    )
    assert deploy.status_code == 202  # deploy has a limit of its own


def test_headers_report_the_tighter_limit(live, make_user):
    """On deploy (5/min) the headers describe the per-user limit, not the 200/min IP window."""
    _, key, app_id = _pro_with_app(live.url, make_user)
    url = f"{live.url}/api/apps/{app_id}/deploy"
    seen = []
    for _ in range(6):
        r = requests.post(url, headers={"X-MCP-API-Key": key}, timeout=10)
        seen.append(
            (r.status_code, r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"])
        )
    assert seen == [
        (202, "5", "4"),
        (202, "5", "3"),
        (202, "5", "2"),
        (202, "5", "1"),
        (202, "5", "0"),
        (429, "5", "0"),
    ]
    plain = requests.get(f"{live.url}/api/me", headers={"X-MCP-API-Key": key}, timeout=10)
    assert plain.headers["X-RateLimit-Limit"] == "200"


@pytest.fixture(scope="module")
def proxied(redis_server, make_gunicorn):
    """gunicorn trusting one proxy, with a small global limit."""
    with make_gunicorn(
        redis_server.url,
        "proxied",
        2,
        env={"TRUSTED_PROXY_COUNT": "1", "RATELIMIT_GLOBAL": "3 per minute"},
    ) as server:
        yield server


def _session_status(base: str, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return requests.get(f"{base}/auth/session", headers=headers, timeout=10).status_code


def test_behind_a_proxy_clients_are_limited_separately(proxied, redis_url):
    """Two forwarded clients each get their own 3 requests."""
    a = [_session_status(proxied.url, "198.51.100.10") for _ in range(4)]
    b = [_session_status(proxied.url, "198.51.100.20") for _ in range(4)]
    assert a == [401, 401, 401, 429] and b == [401, 401, 401, 429]


def test_forged_forwarded_for_cannot_escape(proxied, redis_url):
    """A client prepending its own X-Forwarded-For is still counted as the proxy saw it."""
    real = "198.51.100.30"
    codes = [_session_status(proxied.url, f"10.0.0.{i}, {real}") for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_without_trusted_proxy_the_header_is_ignored(live, redis_url):
    """The default trusts no proxy: every forged address is the same TCP peer."""
    codes = Counter(_session_status(live.url, f"10.1.0.{i}") for i in range(5))
    assert codes == Counter({401: 5})
    assert (
        requests.get(f"{live.url}/auth/session", timeout=10).headers["X-RateLimit-Remaining"]
        == "194"
    )
