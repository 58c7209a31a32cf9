"""Fail-closed (docs/deploy.md, "What is lost in which failure"): with Redis down or frozen the app
answers 503 fast, never 200/401, and it recovers by itself when Redis is back, without an app
restart.

Each test runs its own redis-server (append-only, so a restart keeps the data) and its own
gunicorn with REDIS_TIMEOUT=0.5 pointed at it; the shared session redis-server is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from deploy.local_redis import RedisServer
from deploy.processes import Gunicorn
from store import users
from store.client import Storage, connect
from store.names import KeyNames
from tests.helpers import FAST_HASH, PASSWORD, LiveSession, app_server

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

REDIS_TIMEOUT = 0.5
# REDIS_TIMEOUT plus a generous margin: a behaviour bound (an outage must not hang a request
# for the 30 s gunicorn timeout, nor for a retry after a timeout), loose enough not to flake.
BOUND = 2.5
RECOVERY = 15.0  # how long the app may take to notice Redis is back (it should be ~instant)
EMAIL = "outage@example.test"


@dataclass
class Stack:
    """A redis-server of the test's own, gunicorn on it, and a user with a session and a key."""

    redis: RedisServer
    web: Gunicorn
    session: LiveSession
    key: str
    key_id: str

    def key_me(self) -> requests.Response:
        """GET /api/me with the API key (a fresh connection, no cookie)."""
        return requests.get(
            f"{self.web.url}/api/me", timeout=10, headers={"Authorization": f"Bearer {self.key}"}
        )

    def session_me(self) -> requests.Response:
        """GET /api/me with the session cookie."""
        return self.session.http.get(f"{self.web.url}/api/me", timeout=10)

    def anonymous_me(self) -> requests.Response:
        """GET /api/me without credentials."""
        return requests.get(f"{self.web.url}/api/me", timeout=10)

    def login(self) -> requests.Response:
        """POST /auth/login with the right password."""
        return requests.post(
            f"{self.web.url}/auth/login", timeout=10, json={"email": EMAIL, "password": PASSWORD}
        )

    def healthz(self) -> requests.Response:
        """GET /healthz."""
        return requests.get(f"{self.web.url}/healthz", timeout=10)

    def readyz(self) -> requests.Response:
        """GET /readyz."""
        return requests.get(f"{self.web.url}/readyz", timeout=10)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Dedicated append-only redis + 2-worker gunicorn (REDIS_TIMEOUT=0.5), a pro user, a key."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = RedisServer(redis_dir, appendonly=True)
    web: Gunicorn | None = None
    try:
        server.start()
        store = Storage(connect(server.url, 2.0), KeyNames())
        users.create(store, EMAIL, PASSWORD, "pro", FAST_HASH)
        store.redis.close()
        web = app_server(
            server.url,
            tmp_path / "gunicorn.log",
            workers=2,
            env={"REDIS_TIMEOUT": str(REDIS_TIMEOUT)},
        )
        web.start()  # assigned first: a gunicorn that fails to come up is still stopped
        session = LiveSession(web.url, EMAIL)
        created = session.create_key("outage key")
        assert created.status_code == 201, created.text
        body = created.json()
        yield Stack(server, web, session, body["key"], body["id"])
        session.http.close()
    finally:
        if web is not None:
            web.stop()
        # A frozen redis must never outlive the test: thaw it, then kill it outright.
        if server.process is not None and server.process.poll() is None:
            server.resume()
        server.kill()


def _assert_healthy(stack: Stack) -> None:
    """The key and the session both authenticate, and /healthz is 200."""
    r = stack.key_me()
    assert r.status_code == 200, r.text
    assert r.json()["auth"] == {"method": "api_key", "key_id": stack.key_id}
    r = stack.session_me()
    assert r.status_code == 200, r.text
    assert r.json()["auth"]["method"] == "session"
    r = stack.healthz()
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}


def _assert_unavailable(probe: Callable[[], requests.Response], what: str) -> None:
    """One request: 503 service_unavailable envelope within the bound, never 200/401."""
    started = time.monotonic()
    r = probe()
    elapsed = time.monotonic() - started
    assert r.status_code == 503, f"{what}: {r.status_code} {r.text}"
    assert elapsed < BOUND, f"{what}: took {elapsed:.2f}s (REDIS_TIMEOUT={REDIS_TIMEOUT})"
    assert r.headers["Content-Type"].startswith("application/json"), what
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == "service_unavailable", body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


def _assert_health_unavailable(stack: Stack) -> None:
    """Not ready (503 in time), but alive: /healthz does not touch Redis (issue #17)."""
    started = time.monotonic()
    r = stack.readyz()
    elapsed = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert elapsed < BOUND, f"/readyz took {elapsed:.2f}s"
    assert r.json()["error"]["code"] == "service_unavailable"  # the error envelope
    started = time.monotonic()
    assert stack.healthz().status_code == 200
    assert time.monotonic() - started < BOUND


def _assert_outage(stack: Stack) -> None:
    """Every kind of request fails closed; repeated so that both workers are exercised."""
    for _ in range(4):
        _assert_unavailable(stack.key_me, "API key /api/me")
        _assert_unavailable(stack.session_me, "session /api/me")
        _assert_health_unavailable(stack)
    _assert_unavailable(stack.anonymous_me, "anonymous /api/me")
    _assert_unavailable(stack.login, "login")


def _wait_recovered(stack: Stack) -> None:
    """Poll (bounded) until the key authenticates again; every answer on the way is 200/503."""
    deadline = time.monotonic() + RECOVERY
    seen: list[int] = []
    while time.monotonic() < deadline:
        r = stack.key_me()
        seen.append(r.status_code)
        assert r.status_code in (200, 503), f"{r.status_code} {r.text}"
        if r.status_code == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"app did not recover within {RECOVERY}s: statuses {seen[-10:]}")
    # Recovered on every worker, not just the one that answered: several rounds, all 200.
    for _ in range(4):
        _assert_healthy(stack)


def test_redis_stopped_fails_closed_then_recovers_after_restart(stack: Stack) -> None:
    """Redis stopped: 503 fast for key, session, login and /readyz; restarted: all 200 again."""
    _assert_healthy(stack)
    gunicorn_pid = stack.web.process.pid  # type: ignore[union-attr]

    stack.redis.stop()
    _assert_outage(stack)

    stack.redis.start()  # same port, same directory: the append-only file brings the data back
    _wait_recovered(stack)
    assert stack.web.process.poll() is None  # type: ignore[union-attr]
    assert stack.web.process.pid == gunicorn_pid  # type: ignore[union-attr]


def test_redis_frozen_times_out_to_503_then_recovers_on_resume(stack: Stack) -> None:
    """Redis SIGSTOPped: 503 within REDIS_TIMEOUT + margin; after SIGCONT: 200 without restart."""
    for _ in range(4):  # warm both workers' pools: the frozen server holds their sockets open
        _assert_healthy(stack)
    gunicorn_pid = stack.web.process.pid  # type: ignore[union-attr]

    stack.redis.pause()
    try:
        _assert_outage(stack)
    finally:
        stack.redis.resume()

    _wait_recovered(stack)
    assert stack.web.process.pid == gunicorn_pid  # type: ignore[union-attr]
    # Nothing the frozen period queued up may have broken the key or the session.
    r = stack.session.keys()
    assert [k["id"] for k in r] == [stack.key_id]


def test_redis_out_of_memory_is_503_not_500(redis_server, redis_url, make_user):
    """With maxmemory reached and noeviction, writes fail: the API answers 503, not 500."""
    from tests.helpers import login, make_app

    client = make_app(redis_url).test_client()
    user = make_user("pro")
    login(client, user.email)
    admin = redis_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")
    try:
        response = client.get("/api/me")
    finally:
        admin.config_set("maxmemory", "0")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert client.get("/api/me").status_code == 200
