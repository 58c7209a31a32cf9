"""Fixtures only (helpers are in tests/helpers.py): a real Redis per test session (flushed per
test) in each topology, apps on it or on fakeredis, gunicorn, users."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from deploy.local_redis import ClusterGroup, RedisServer, SentinelGroup
from deploy.processes import Gunicorn
from store.client import Storage, connect
from store.names import KeyNames
from tests.helpers import UserFactory, app_server, login, make_app

# The tests talk to 127.0.0.1 only: never through a proxy a CI machine may have configured.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

# The topology suites run three times: on one redis-server, on a primary with two replicas and
# three sentinels behind a redis+sentinel:// URL, and on a six-node Redis Cluster behind a
# redis+cluster:// URL (the same tests, not copies).
TOPOLOGY_SUITES = frozenset(
    {
        "tests.live.test_keys",
        "tests.live.test_gate",
        "tests.live.test_metering",
        "tests.live.test_mcp",
        "tests.live.test_concurrency",
        "tests.live.test_roll",
        "tests.live.test_usage",
        "tests.live.test_session_rescue",
    }
)
TOPOLOGIES = ("single", "sentinel", "cluster")
SERVERS = {"single": RedisServer, "sentinel": SentinelGroup, "cluster": ClusterGroup}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the topology suites' Redis over every topology."""
    if metafunc.module.__name__ in TOPOLOGY_SUITES and "redis_server" in metafunc.fixturenames:
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


@pytest.fixture
def make_user(storage: Storage) -> UserFactory:
    """Factory: make_user("pro") -> User with password PASSWORD."""
    return UserFactory(storage)


@pytest.fixture
def pro(client, make_user):
    """A logged-in pro user: (client, csrf, user)."""
    user = make_user("pro")
    return client, login(client, user.email), user


# ---- gunicorn tier --------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Gunicorn]:
    """Factory: make_gunicorn(redis_url, "name", workers=4, env={...}) -> the app under
    gunicorn with the tests' settings, its log in a temporary directory of that name; not
    started: `with make_gunicorn(...) as server:` starts it and stops it."""

    def make(
        redis_url: str, name: str = "gunicorn", workers: int = 4, env: dict | None = None
    ) -> Gunicorn:
        return app_server(redis_url, tmp_path_factory.mktemp(name) / "gunicorn.log", workers, env)

    return make


@pytest.fixture(scope="module")
def gunicorn(redis_server: RedisServer, make_gunicorn) -> Iterator[Gunicorn]:
    """The app under gunicorn with 4 workers on the shared redis-server."""
    with make_gunicorn(redis_server.url, "gunicorn", 4) as server:
        yield server


@pytest.fixture
def live(gunicorn: Gunicorn, redis_url: str) -> Gunicorn:
    """The module's gunicorn, with an empty database for this test."""
    return gunicorn
