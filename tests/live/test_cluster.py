"""Redis Cluster (docs/deploy.md, "Redis Cluster"): six nodes (three primaries, three replicas)
behind a redis+cluster:// URL, two gunicorn instances; a primary killed under load, and revocations
that wait on the node holding the key. Real processes on free loopback ports; loops bounded."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from deploy.local_redis import ClusterGroup
from deploy.processes import Gunicorn
from store import users
from store.client import Storage, connect
from store.names import KeyNames
from tests.helpers import FAST_HASH, PASSWORD, LiveSession, app_instances
from tests.live.helpers import Load, each_instance_back

pytestmark = pytest.mark.gunicorn

RECOVERY_TARGET_S = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClusterGroup, list]]:
    """A six-node cluster and two app instances of 2 workers on it."""
    group = ClusterGroup(tmp_path_factory.mktemp("cluster")).start()
    env = {"REDIS_TIMEOUT": "0.5", "TRUSTED_PROXY_COUNT": "1"}
    try:
        with app_instances(group.url, tmp_path_factory, "cluster", env=env) as instances:
            yield group, instances
    finally:
        group.stop()


@pytest.fixture
def healthy(cluster):
    """The cluster with every slot served and a replica per primary, emptied."""
    group, instances = cluster
    group.wait_healthy()
    group.client().flushall()
    return group, instances


def pro_user_with_key(group: ClusterGroup, instance: Gunicorn, email: str):
    """A Pro user logged in on `instance`, holding one new key; returns (session, key, id)."""
    user = users.create(
        Storage(connect(group.url, 2.0), KeyNames()), email, PASSWORD, "pro", FAST_HASH
    )
    session = LiveSession(instance.url, email)
    created = session.create_key("cluster key")
    assert created.status_code == 201, created.text
    return session, created.json(), user.id


def test_primary_killed_under_load_recovers_within_10s(healthy):
    """The primary holding the user's slot is SIGKILLed under load: only 200 and 503
    service_unavailable, never a 500; a revoked key is never admitted; 200 again on both
    instances by itself within 10 s."""
    group, instances = healthy
    session, key, user_id = pro_user_with_key(group, instances[0], "cluster@example.test")
    doomed = session.create_key("revoked before the kill").json()
    assert session.delete_key(doomed["id"]).status_code == 204
    victim = group.primary_for(KeyNames().user(user_id))
    with Load(instances, key["key"]) as load, Load(instances, doomed["key"], network=11) as revoked:
        time.sleep(1.0)
        killed_at = time.monotonic()
        victim.kill()
        deadline = killed_at + 20
        while time.monotonic() < deadline:
            recent = [a for a in load.since(killed_at) if a[0] > time.monotonic() - 0.5]
            if recent and all(a[2] == 200 for a in recent) and time.monotonic() > killed_at + 2:
                break
            time.sleep(0.1)
        time.sleep(1.0)
    after = load.since(killed_at)
    statuses = Counter((a[2], a[3]) for a in after)
    assert set(statuses) <= {(200, ""), (503, "service_unavailable")}, statuses
    assert statuses[(503, "service_unavailable")] > 0  # the kill was felt
    for mine in each_instance_back(after, len(instances), killed_at, RECOVERY_TARGET_S):
        assert mine[-1][2] == 200
    refused = Counter((a[2], a[3]) for a in revoked.answers)
    assert set(refused) <= {(401, "invalid_api_key"), (503, "service_unavailable")}, refused
    victim.start()  # it rejoins as a replica of the promoted node
    group.wait_healthy()


def test_revocation_waits_on_the_node_that_holds_the_key(healthy):
    """WAIT goes to the key's own primary: with that primary's replica frozen, the revoke is
    503 revocation_unconfirmed (and the retry 204); with another shard's replica frozen, it is
    204 at once."""
    group, instances = healthy
    session, key, user_id = pro_user_with_key(group, instances[0], "waits@example.test")
    other = session.create_key("second").json()
    primary = group.primary_for(KeyNames().user(user_id))
    own_replicas = group.replicas_of(primary)
    elsewhere = [
        n
        for n in group.live_nodes()
        if n not in own_replicas and n is not primary and group._role(n) == "slave"
    ]
    assert own_replicas and elsewhere

    for node in elsewhere:
        node.pause()
    try:
        assert session.delete_key(other["id"]).status_code == 204
    finally:
        for node in elsewhere:
            node.resume()

    for node in own_replicas:
        node.pause()
    try:
        refused = session.delete_key(key["id"])
        me = requests.get(
            f"{instances[1].url}/api/me",
            timeout=5,
            headers={"Authorization": f"Bearer {key['key']}"},
        )
    finally:
        for node in own_replicas:
            node.resume()
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "revocation_unconfirmed"
    assert me.status_code == 401
    group.wait_healthy()
    assert session.delete_key(key["id"]).status_code == 204


def test_a_node_that_lost_the_scripts_costs_one_count_not_two(healthy):
    """The credential's node forgot the scripts (SCRIPT FLUSH, as after a restart) while the
    window's node still has them: the gate loads them and runs again only what failed, so
    the request counts once in the window (remaining goes down by exactly one)."""
    group, instances = healthy
    _, key, user_id = pro_user_with_key(group, instances[0], "noscript@example.test")
    names = KeyNames()
    credential_node = group.primary_for(names.user(user_id))
    address = next(
        f"203.0.113.{n}" for n in range(1, 255)
        if group.primary_for(names.ip_window(f"203.0.113.{n}")) is not credential_node
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {key['key']}", "X-Forwarded-For": address}

    def remaining() -> int:
        r = requests.get(f"{instances[0].url}/api/me", headers=headers, timeout=5)
        assert r.status_code == 200, r.text
        return int(r.headers["X-RateLimit-Remaining"])

    before = remaining()
    with credential_node.client() as node:
        node.script_flush()
    assert remaining() == before - 1
