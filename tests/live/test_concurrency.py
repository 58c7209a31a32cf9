"""Real concurrency against gunicorn with 4 workers on a real redis-server."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from deploy.local_redis import ClusterGroup, NodeRecorders, is_setup
from store import apikeys
from store.names import KeyNames
from tests.helpers import LiveSession

pytestmark = pytest.mark.gunicorn


def _fire(count: int, call) -> list:
    """Run call(i) for i in range(count) from `count` threads at once; bounded."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def test_forty_racing_creates_admit_exactly_one(live, make_user):
    """A user holding 4 keys fires 40 concurrent creates: one 201, 39 409s, 5 keys."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    for i in range(4):
        assert session.create_key(f"k{i}").status_code == 201

    def create(i: int) -> int:
        http = requests.Session()
        http.cookies.update(session.http.cookies)
        r = http.post(
            f"{live.url}/api/keys",
            json={"name": f"race {i}"},
            headers={"X-CSRF-Token": session.csrf},
            timeout=60,
        )
        return (
            r.status_code
            if r.status_code != 409 or r.json()["error"]["code"] == "key_limit_reached"
            else -1
        )

    codes = Counter(_fire(40, create))
    assert codes == Counter({201: 1, 409: 39})
    assert len(session.keys()) == 5


def test_revocation_is_immediate_on_every_worker(live, make_user):
    """After a revoke, 50 concurrent requests spread over the workers all get 401."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    created = session.create_key().json()
    headers = {"Authorization": f"Bearer {created['key']}"}

    def call(_: int) -> int:
        return requests.get(f"{live.url}/api/me", headers=headers, timeout=30).status_code

    # Every worker has served the key successfully before the revoke.
    assert set(_fire(24, call)) == {200}
    assert session.delete_key(created["id"]).status_code == 204
    assert Counter(_fire(50, call)) == Counter({401: 50})


def test_exactly_200_of_250_mixed_requests_are_admitted(live, make_user):
    """250 concurrent requests from one IP, good and bad, mixed routes: 200 admitted."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    good = session.create_key().json()["key"]  # login + create used 2 of the 200
    variants = [
        ("GET", "/api/me", {"Authorization": f"Bearer {good}"}),
        ("GET", "/api/apps", {"X-MCP-API-Key": good}),
        ("GET", "/api/me", {"Authorization": "Bearer genmb_sk_" + "Z" * 32}),
        ("GET", "/api/me", {"Authorization": "Bearer not-a-key"}),
        ("GET", "/api/me", {}),
        ("GET", "/auth/session", {}),
        ("POST", "/mcp", {}),
    ]

    def call(i: int) -> int:
        method, path, headers = variants[i % len(variants)]
        return requests.request(
            method, f"{live.url}{path}", headers=headers, timeout=60
        ).status_code

    codes = Counter(_fire(250, call))
    assert sum(n for code, n in codes.items() if code != 429) == 198, codes
    assert codes[429] == 52
    assert codes[200] > 0 and codes[401] > 0


def test_one_redis_command_per_key_authenticated_me(live, make_user, redis_server):
    """GET /api/me with a key costs exactly one Redis command (the gate's EVALSHA) in steady
    state. A worker's first sight of a key costs one GET of the key's owner index more, so
    until every worker has seen the key a round may hold up to one GET per worker (and, on
    Cluster, a worker's first CLUSTER SLOTS), never anything else. On Cluster the IP window
    and the credential live in different slots: two scripts per request, sent together."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    key = session.create_key().json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    owner_index = f"GET {KeyNames().key_owner(apikeys.digest(key))}"
    scripts_per_request = 2 if isinstance(redis_server, ClusterGroup) else 1
    requests_made, workers, cold_lookups = 40, 4, 0
    for _ in range(5):  # rounds, until one is all steady state
        with NodeRecorders(redis_server) as recorder:
            for _ in range(requests_made):
                response = requests.get(f"{live.url}/api/me", headers=headers, timeout=10)
                assert response.status_code == 200
        # Script-internal commands and per-connection set-up (CLIENT SETINFO...) are left out.
        sent = recorder.sent_by_clients()
        assert sent["EVALSHA"] == scripts_per_request * requests_made, sent
        # A cold worker's extra commands: the owner lookup, and on Cluster its client's
        # first reading of the slot map.
        cold = [
            c for c in recorder.client_commands() if not is_setup(c) and not c.startswith("EVALSHA")
        ]
        assert all(c in (owner_index, "CLUSTER SLOTS") for c in cold), cold
        cold_lookups += cold.count(owner_index)
        if not cold:
            break
    assert sent == Counter({"EVALSHA": scripts_per_request * requests_made})
    assert cold_lookups <= workers
