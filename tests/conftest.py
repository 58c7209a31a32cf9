"""Fixtures: a real redis-server per test session (flushed per test), apps, gunicorn, users."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from app import create_app
from store import users
from store.client import Storage, connect
from store.names import KeyNames
from tests.servers import ClusterGroup, Gunicorn, RedisServer, SentinelGroup, app_server

# The tests talk to 127.0.0.1 only: never through a proxy a CI machine may have configured.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

PASSWORD = "correct horse battery"
FAST_HASH = 2**10  # scrypt cost for tests; production default is 2**14


# The contract suites run three times: on one redis-server, on a primary with two replicas and
# three sentinels behind a redis+sentinel:// URL, and on a six-node Redis Cluster behind a
# redis+cluster:// URL (the same tests, not copies).
TOPOLOGY_SUITES = frozenset(
    {
        "test_keys",
        "test_gate",
        "test_metering",
        "test_mcp",
        "test_concurrency",
        "test_roll",
        "test_usage",
    }
)
TOPOLOGIES = ("single", "sentinel", "cluster")
SERVERS = {"single": RedisServer, "sentinel": SentinelGroup, "cluster": ClusterGroup}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the contract suites' Redis over every topology."""
    suite = metafunc.module.__name__.rsplit(".", 1)[-1]
    if suite in TOPOLOGY_SUITES and "redis_server" in metafunc.fixturenames:
        metafunc.parametrize("redis_server", TOPOLOGIES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def redis_topologies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Each topology's servers, started on first use and stopped at the end of the run."""
    started: dict[str, RedisServer | SentinelGroup | ClusterGroup] = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(scope="session")
def redis_server(
    request: pytest.FixtureRequest, redis_topologies: dict, tmp_path_factory
) -> RedisServer | SentinelGroup | ClusterGroup:
    """A real Redis of the tests' own on free ports: one server, Sentinel, or a cluster."""
    topology = getattr(request, "param", "single")
    if topology not in redis_topologies:
        directory = tmp_path_factory.mktemp(f"redis-{topology}")
        redis_topologies[topology] = SERVERS[topology](directory).start()
    return redis_topologies[topology]


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, emptied before the test."""
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def rdb(redis_server: RedisServer, redis_url: str):
    """A plain client on the test database, for looking behind the API."""
    return redis_server.client()


def make_app(redis_url: str, **overrides):
    """An app on the given store with test-friendly settings."""
    config = {
        "REDIS_URL": redis_url,
        "TESTING": True,
        "PASSWORD_SCRYPT_N": FAST_HASH,
        "SECRET_KEY": "test-secret",
        **overrides,
    }
    return create_app(config)


@pytest.fixture
def app(redis_url: str):
    """The app on the real redis-server."""
    return make_app(redis_url)


@pytest.fixture
def fake_app():
    """The app on the embedded fakeredis store (fast unit tier)."""
    return make_app("memory://")


@pytest.fixture
def client(app):
    """Flask's test client for the real-Redis app."""
    return app.test_client()


@pytest.fixture
def storage(redis_url: str) -> Storage:
    """A Storage on the test database, as the app builds it."""
    return Storage(connect(redis_url, 2.0), KeyNames())


@dataclass
class UserFactory:
    """Creates users straight in the store (what `flask users create` does)."""

    storage: Storage
    count: int = 0

    def __call__(self, plan: str = "pro", email: str | None = None) -> users.User:
        self.count += 1
        email = email or f"user{self.count}@example.test"
        return users.create(self.storage, email, PASSWORD, plan, FAST_HASH)


@pytest.fixture
def make_user(storage: Storage) -> UserFactory:
    """Factory: make_user("pro") -> User with password PASSWORD."""
    return UserFactory(storage)


@pytest.fixture
def pro(client, make_user):
    """A logged-in pro user: (client, csrf, user)."""
    user = make_user("pro")
    return client, login(client, user.email), user


def login(client, email: str) -> str:
    """Log a Flask test client in; returns the CSRF token."""
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return response.json["csrf_token"]


def create_key(client, csrf: str, name: str = "test key") -> dict:
    """Create a key through the API with a logged-in test client; returns the 201 body."""
    response = client.post("/api/keys", json={"name": name}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201, response.json
    return response.json


# ---- gunicorn tier --------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):
    """The app under gunicorn with 4 workers on the shared redis-server."""
    server = app_server(redis_server.url, tmp_path_factory.mktemp("gunicorn") / "log", 4).start()
    yield server
    server.stop()


@pytest.fixture
def live(gunicorn: Gunicorn, redis_url: str) -> Gunicorn:
    """The module's gunicorn, with an empty database for this test."""
    return gunicorn


class LiveSession:
    """A requests.Session logged in over real HTTP; carries the CSRF token."""

    def __init__(self, base_url: str, email: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        r = self.http.post(
            f"{base_url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def create_key(self, name: str = "live key") -> requests.Response:
        """POST /api/keys."""
        return self.http.post(
            f"{self.base_url}/api/keys",
            json={"name": name},
            headers={"X-CSRF-Token": self.csrf},
            timeout=30,
        )

    def delete_key(self, key_id: str) -> requests.Response:
        """DELETE /api/keys/<id>."""
        return self.http.delete(
            f"{self.base_url}/api/keys/{key_id}", headers={"X-CSRF-Token": self.csrf}, timeout=30
        )

    def keys(self) -> list[dict]:
        """GET /api/keys."""
        r = self.http.get(f"{self.base_url}/api/keys", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["keys"]
