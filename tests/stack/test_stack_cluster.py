"""Redis Cluster through the load balancer (docs/deploy.md, "Redis Cluster"): `make stack
STACK_REDIS=cluster` — six cluster nodes (three primaries, three replicas) with the shared Redis
settings and password, two gunicorn instances on a redis+cluster:// URL, nginx in front — started by
the same `Stack` on free ports. The primary holding the user's slot is SIGKILLed; service must come
back through nginx by itself, and a revoked key must stay refused. What a run measures is printed
(-s shows it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from deploy import topology
from deploy.stack import Stack
from store.client import connect
from store.names import KeyNames
from tests.stack import helpers

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The Cluster stack on free ports."""
    yield from helpers.ha_stack(tmp_path_factory, "cluster")


@pytest.fixture
def whole(cluster: Stack) -> Stack:
    """Every part running, Redis settled, an empty database."""
    return helpers.settled_and_empty(cluster)


def test_cluster_stack_runs_the_shared_topology_with_passwords_everywhere(whole: Stack) -> None:
    """Six nodes with REDIS_SETTINGS, CLUSTER_SETTINGS, requirepass and masterauth; three
    primaries each with a linked replica; the app instances on the redis+cluster:// URL."""
    assert tuple(part.name for part in whole.parts) == topology.services("cluster")
    assert len(whole.primary_names()) == 3
    settings = {**topology.REDIS_SETTINGS, **topology.CLUSTER_SETTINGS}
    for name, port in whole.node_ports.items():
        with whole.redis_client(port=port) as node:
            for setting, value in settings.items():
                assert node.config_get(setting) == {setting: value}, (name, setting)
            assert node.config_get("masterauth") == {"masterauth": whole.redis_password}
            assert node.config_get("cluster-port") == {"cluster-port": str(whole.bus_ports[name])}
            info = node.cluster("info")
        assert info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384
        assert (whole.dir / name / "appendonlydir").is_dir()
        helpers.assert_refuses_anonymous(port)
    for app in whole.apps.values():
        assert app.env["REDIS_URL"] == whole.redis_url
        assert app.env["REDIS_URL"].startswith(f"redis+cluster://:{whole.redis_password}@")
        assert "REDIS_SENTINEL_PASSWORD" not in app.env
    assert f"REDIS_URL={whole.redis_url}\n" in (whole.dir / "stack.env").read_text()


def test_primary_of_the_users_slot_killed_service_resumes_through_nginx(whole: Stack) -> None:
    """SIGKILL the primary that holds the user's slot: only 503 service_unavailable through
    nginx until its replica is promoted, then 200 again within RECOVERY_BOUND without touching
    the app; a key revoked (and confirmed) before the kill is 401 on every instance."""
    live, revoked, user_id = helpers.live_and_revoked_keys(
        whole, "cluster-ha@example.test", "127.0.0.42"
    )
    with connect(whole.redis_url, 2.0) as client:
        node = client.get_node_from_key(KeyNames().user(user_id))
    victim = {port: name for name, port in whole.node_ports.items()}[int(node.port)]
    assert victim in whole.primary_names()
    whole.kill_redis(victim)
    helpers.poll_until_back(whole, live, "127.0.0.43", time.monotonic())
    assert victim not in whole.primary_names() and len(whole.primary_names()) == 3
    helpers.assert_live_and_revoked(whole, live, revoked)
