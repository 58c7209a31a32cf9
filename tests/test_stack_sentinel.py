"""High availability through the load balancer (CONTRACT §11): `make stack STACK_REDIS=sentinel`
— a primary, two replicas and three sentinels with the shared Redis settings and password, two
gunicorn instances on a redis+sentinel:// URL, nginx in front — started by the same `Stack` on
free ports. The primary is SIGKILLed; service must come back through nginx by itself, and a
revoked key must stay refused. What a run measures is printed (-s shows it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from deploy import topology
from deploy.stack import Stack, wait_until
from tests import test_stack as helpers
from tests.servers import LOOPBACK, whole_and_empty

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

RECOVERY_BOUND = 10.0  # seconds from the kill to a 200 through nginx
POLL_INTERVAL = 0.1  # at most 100 polls from one address: under the 200/min window
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py retries a refused AUTH thrice, with backoff


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The Sentinel stack on free ports, REDIS_TIMEOUT=0.5 as in tests/test_faults.py."""
    helpers.require_nginx()
    running = Stack(tmp_path_factory.mktemp("ha-stack") / "var", workers=2,
                    env=helpers.stack_env(REDIS_TIMEOUT="0.5"), redis_topology="sentinel")
    with running:
        yield running


@pytest.fixture
def whole(ha: Stack) -> Stack:
    """Every part running, the sentinels settled, an empty database."""
    wait_until(ha.settled_primary, 30, "the sentinels' agreement")
    whole_and_empty(ha)
    return ha


def test_sentinel_stack_runs_the_shared_topology_with_passwords_everywhere(whole: Stack) -> None:
    """Data nodes with REDIS_SETTINGS, requirepass and masterauth; sentinels with the settings
    of topology.py and a password; the app instances on the redis+sentinel:// URL."""
    assert tuple(part.name for part in whole.parts) == topology.services("sentinel")
    primary = whole.primary_name()
    assert primary == whole.settled_primary() == whole.first_primary
    for name, port in whole.node_ports.items():
        with whole.redis_client(port=port) as node:
            for setting, value in topology.REDIS_SETTINGS.items():
                assert node.config_get(setting) == {setting: value}, (name, setting)
            assert node.config_get("masterauth") == {"masterauth": whole.redis_password}
            role = node.info("replication")
        if name == primary:
            assert role["role"] == "master" and role["connected_slaves"] == 2
        else:
            assert role["role"] == "slave" and role["master_link_status"] == "up", name
        assert (whole.dir / name / "appendonlydir").is_dir()
    for port in (*whole.node_ports.values(), *whole.sentinel_ports.values()):
        with redis.Redis(host=LOOPBACK, port=port, socket_timeout=2, retry=NO_RETRY) as anonymous:
            with pytest.raises(redis.AuthenticationError):
                anonymous.ping()
    for port in whole.sentinel_ports.values():
        with whole.redis_client(port=port) as sentinel:
            state = sentinel.sentinel_master(topology.SENTINEL_SERVICE_NAME)
        assert state["quorum"] == topology.SENTINEL_QUORUM
        for setting, value in topology.SENTINEL_SETTINGS.items():
            assert state[setting] == int(value), setting
        assert state["num-other-sentinels"] == 2 and state["num-slaves"] == 2
    for app in whole.apps.values():
        assert app.env["REDIS_URL"] == whole.redis_url
        assert app.env["REDIS_URL"].startswith("redis+sentinel://")
        assert app.env["REDIS_SENTINEL_PASSWORD"] == whole.redis_password
    assert "REDIS_SENTINEL_PASSWORD=" in (whole.dir / "stack.env").read_text()


def test_primary_killed_service_resumes_through_nginx_and_a_revoked_key_stays_refused(
    whole: Stack,
) -> None:
    """SIGKILL the primary: only 503 service_unavailable through nginx until Sentinel promotes
    a replica, then 200 again within RECOVERY_BOUND without touching the app; a key revoked
    (and confirmed) before the kill is 401 on every instance."""
    email = "ha@example.test"
    helpers.make_pro_user(whole, email)
    http = helpers.client("127.0.0.40")
    csrf = helpers.login(http, whole.url, email)
    keys = []
    for name in ("live", "revoked"):
        r = http.post(f"{whole.url}/api/keys", json={"name": name}, timeout=10,
                      headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        keys.append(r.json())
    live = {"Authorization": f"Bearer {keys[0]['key']}"}
    revoked = {"Authorization": f"Bearer {keys[1]['key']}"}
    r = http.delete(f"{whole.url}/api/keys/{keys[1]['id']}", timeout=10,
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204, r.text  # a replica confirmed it (REVOKE_MIN_REPLICAS)
    for _ in range(4):  # both instances, round robin
        assert http.get(f"{whole.url}/api/me", headers=live, timeout=10).status_code == 200

    poller = helpers.client("127.0.0.41")
    old = whole.kill_redis()
    killed_at = time.monotonic()
    answers: list[tuple[float, int, str]] = []
    while time.monotonic() - killed_at < RECOVERY_BOUND:
        r = poller.get(f"{whole.url}/api/me", headers=live, timeout=5)
        code = "" if r.status_code == 200 else r.json()["error"]["code"]
        answers.append((time.monotonic() - killed_at, r.status_code, code))
        if r.status_code == 200:
            break
        assert r.status_code == 503 and helpers.is_error_envelope(r, "service_unavailable"), r.text
        assert r.headers["Retry-After"] == "1"
        time.sleep(POLL_INTERVAL)
    recovered = answers[-1][0]
    print(f"\nprimary {old} killed: first 200 through nginx after {recovered:.2f} s "
          f"({Counter((s, c) for _, s, c in answers)})")
    assert answers[-1][1] == 200, answers[-5:]
    new = whole.primary_name()
    assert new != old

    # Every instance, directly and through nginx: the live key works, the revoked one does not.
    for base in (*(whole.app_url(name) for name in whole.apps), whole.url, whole.url):
        assert requests.get(f"{base}/api/me", headers=live, timeout=10).status_code == 200
        r = requests.get(f"{base}/api/me", headers=revoked, timeout=10)
        assert r.status_code == 401 and helpers.is_error_envelope(r, "invalid_api_key"), r.text

    # The other replica follows the new primary (masterauth), the old one is down.
    with whole.redis_client(port=whole.node_ports[new]) as primary:
        replication = primary.info("replication")
    assert replication["role"] == "master" and replication["connected_slaves"] == 1
