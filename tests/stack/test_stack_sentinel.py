"""High availability through the load balancer (docs/deploy.md, "High availability"): `make stack
STACK_REDIS=sentinel` — a primary, two replicas and three sentinels with the shared Redis settings
and password, two gunicorn instances on a redis+sentinel:// URL, nginx in front — started by the
same `Stack` on free ports. The primary is SIGKILLed; service must come back through nginx by
itself, and a revoked key must stay refused. What a run measures is printed (-s shows it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from deploy import topology
from deploy.stack import Stack
from tests.stack import helpers

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

RECOVERY_TARGET_S = 5.0  # docs/deploy.md, "High availability"; RECOVERY_BOUND only ends polls


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The Sentinel stack on free ports."""
    yield from helpers.ha_stack(tmp_path_factory, "sentinel")


@pytest.fixture
def whole(ha: Stack) -> Stack:
    """Every part running, Redis settled, an empty database."""
    return helpers.settled_and_empty(ha)


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
        helpers.assert_refuses_anonymous(port)
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
    a replica, then 200 again within 5 s without touching the app; a key revoked
    (and confirmed) before the kill is 401 on every instance."""
    live, revoked, _ = helpers.live_and_revoked_keys(whole, "ha@example.test", "127.0.0.40")
    old = whole.kill_redis()
    first_ok = helpers.poll_until_back(whole, live, "127.0.0.41", time.monotonic())
    assert first_ok <= RECOVERY_TARGET_S  # README: back by itself within 5 s, through nginx too
    new = whole.primary_name()
    assert new != old
    helpers.assert_live_and_revoked(whole, live, revoked)

    # The other replica follows the new primary (masterauth), the old one is down.
    with whole.redis_client(port=whole.node_ports[new]) as primary:
        replication = primary.info("replication")
    assert replication["role"] == "master" and replication["connected_slaves"] == 1
