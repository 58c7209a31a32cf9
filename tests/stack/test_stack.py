"""Rate limits and guarantees (README, "The API" and "How it works") through the load balancer:
`make stack`'s topology (deploy/stack.py) — redis-server with a password and the append-only file,
two gunicorn instances, the system's nginx in front — started on free ports with its var/ in a
temporary directory.

Distinct clients are distinct loopback source addresses (127.0.0.2, 127.0.0.3, ...: all of
127.0.0.0/8 is this machine), so nginx sees each as its own peer.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from deploy import topology
from deploy.processes import LOOPBACK, ROOT, all_processes, free_port, wait_until
from deploy.stack import Stack
from tests.stack.helpers import (
    access_log,
    client,
    fire,
    instance_of,
    is_error_envelope,
    login,
    make_pro_user,
    require_nginx,
    stack_env,
    start_in_own_session,
    whole_and_empty,
)

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """make stack's topology on free ports, var/ in a temporary directory; default limits."""
    require_nginx()
    with Stack(tmp_path_factory.mktemp("stack") / "var", workers=2, env=stack_env()) as running:
        yield running


@pytest.fixture
def lb(stack: Stack) -> Stack:
    """The module's stack with an empty database (and so fresh rate-limit windows)."""
    whole_and_empty(stack)
    return stack


# ---- the topology ---------------------------------------------------------------------------


def test_stack_runs_the_topology_with_compose_settings(lb: Stack) -> None:
    """Redis has the shared settings and a password; nginx balances over both instances."""
    admin = lb.redis_client()
    for name, value in topology.REDIS_SETTINGS.items():
        assert admin.config_get(name) == {name: value}, name
    assert admin.config_get("bind") == {"bind": LOOPBACK}
    admin.close()
    anonymous = redis.Redis(host=LOOPBACK, port=lb.redis_port, socket_timeout=2)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()  # the password is required
    anonymous.close()
    assert (lb.dir / "redis" / "appendonlydir").is_dir()

    rendered = (lb.dir / "nginx" / "genmb.conf").read_text()
    assert rendered == topology.render_nginx(lb.template_values())
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in rendered
    for port in lb.app_ports.values():
        assert f"server {LOOPBACK}:{port} {topology.UPSTREAM_PARAMETERS};" in rendered

    http = client("127.0.0.20")
    for _ in range(6):
        r = http.get(f"{lb.url}/healthz", timeout=10)
        assert r.status_code == 200 and r.json() == {"status": "ok"}

    def served() -> Counter[str]:
        return Counter(
            instance_of(lb, e["upstream"]) for e in access_log(lb) if e["client"] == "127.0.0.20"
        )

    # nginx writes a request's log line after its response: the last may still be coming.
    wait_until(lambda: served().total() >= 6, 5, "nginx's access log")
    assert served() == Counter({"app1": 3, "app2": 3})  # round robin
    # nginx's own errors keep the JSON envelope too.
    r = http.post(
        f"{lb.url}/api/apps",
        data=b"x" * (3 * 1024 * 1024),
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and is_error_envelope(r, "payload_too_large"), r.text
    for part in lb.parts:
        assert part.log.parent == lb.dir
    assert (lb.dir / "app1.log").stat().st_size > 0 and (lb.dir / "app2.log").stat().st_size > 0


def test_300_mixed_requests_from_one_client_admit_exactly_200_across_both_instances(
    lb: Stack,
) -> None:
    """One client IP, 300 concurrent mixed requests through nginx: exactly 200 admitted."""
    email = "mixed@example.test"
    make_pro_user(lb, email)
    setup = client("127.0.0.3")  # set-up from another address: it must not count below
    csrf = login(setup, lb.url, email)
    r = setup.post(
        f"{lb.url}/api/keys", json={"name": "mixed"}, timeout=10, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    cookie = setup.cookies.get("genmb_session")

    variants = [
        ("GET", "/api/me", {"Authorization": f"Bearer {key}"}),
        ("GET", "/api/apps", {"X-MCP-API-Key": key}),
        ("GET", "/api/me", {"Authorization": "Bearer genmb_sk_" + "Z" * 32}),
        ("GET", "/api/me", {}),
        ("GET", "/auth/session", {"Cookie": f"genmb_session={cookie}"}),
        ("POST", "/auth/login", {}),
        ("POST", "/mcp", {"X-MCP-API-Key": key}),
    ]
    http = client("127.0.0.2")

    def call(i: int) -> tuple[int, str]:
        method, path, headers = variants[i % len(variants)]
        r = http.request(method, f"{lb.url}{path}", headers=headers, timeout=30)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            body = r.json()  # /mcp answers a JSON-RPC error object with our code in "data"
            code = body["error"]["data"]["code"] if path == "/mcp" else body["error"]["code"]
            assert code == "rate_limited", r.text
        return r.status_code, path

    results = fire(300, call)
    codes = Counter(code for code, _ in results)
    assert codes[429] == 100, codes
    assert sum(n for code, n in codes.items() if code != 429) == 200, codes
    assert codes[200] > 0 and codes[401] > 0, codes
    assert not any(code >= 500 for code in codes), codes

    served = Counter(
        instance_of(lb, e["upstream"])
        for e in access_log(lb)
        if e["client"] == "127.0.0.2" and e["status"] != "429"
    )
    assert sum(served.values()) == 200
    assert served["app1"] > 0 and served["app2"] > 0, served  # counted across both instances


def test_clients_are_limited_separately_and_forged_forwarded_for_does_not_escape(
    lb: Stack,
) -> None:
    """A client forging X-Forwarded-For still gets 200 in total; another client keeps its own."""
    forger, other = client("127.0.0.4"), client("127.0.0.5")
    forged = ["127.0.0.5", "203.0.113.9", "198.51.100.1, 203.0.113.7", "unknown", "::1"]

    def call(i: int) -> int:
        headers = {
            "X-Forwarded-For": forged[i % len(forged)],
            "X-Real-IP": "203.0.113.10",
            "Forwarded": "for=203.0.113.11",
        }
        return forger.get(f"{lb.url}/api/me", headers=headers, timeout=30).status_code

    codes = Counter(fire(230, call))
    assert codes == Counter({401: 200, 429: 30}), codes
    # Without the forged header, still the same (exhausted) client.
    assert forger.get(f"{lb.url}/api/me", timeout=10).status_code == 429

    # The other client was never charged for what the forger claimed to be: a full window.
    r = other.get(f"{lb.url}/api/me", timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["X-RateLimit-Remaining"] == "199"
    codes = Counter(fire(199, lambda _: other.get(f"{lb.url}/api/me", timeout=30).status_code))
    assert codes == Counter({401: 199}), codes
    assert other.get(f"{lb.url}/api/me", timeout=10).status_code == 429


def test_key_revoked_through_instance_a_is_refused_on_next_request_through_instance_b(
    lb: Stack,
) -> None:
    """Revoke on one instance, the very next request on the other is 401 — both directions."""
    email = "revoke@example.test"
    make_pro_user(lb, email)
    a, b = lb.app_url("app1"), lb.app_url("app2")
    for revoke_on, check_on in ((a, b), (b, a), (a, b)):
        session = requests.Session()
        csrf = login(session, revoke_on, email)
        r = session.post(
            f"{revoke_on}/api/keys",
            json={"name": "short-lived"},
            timeout=10,
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 201, r.text
        key, key_id = r.json()["key"], r.json()["id"]
        bearer = {"Authorization": f"Bearer {key}"}
        for _ in range(3):  # both instances have served the key
            assert requests.get(f"{check_on}/api/me", headers=bearer, timeout=10).ok
            assert requests.get(f"{revoke_on}/api/me", headers=bearer, timeout=10).ok

        r = session.delete(
            f"{revoke_on}/api/keys/{key_id}", timeout=10, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 204, r.text
        r = requests.get(f"{check_on}/api/me", headers=bearer, timeout=10)
        assert r.status_code == 401 and is_error_envelope(r, "invalid_api_key"), r.text
        # And through the load balancer, whichever instance answers.
        codes = {
            requests.get(f"{lb.url}/api/me", headers=bearer, timeout=10).status_code
            for _ in range(6)
        }
        assert codes == {401}
        session.close()


def test_five_key_cap_holds_under_40_concurrent_creates_spread_over_both_instances(
    lb: Stack,
) -> None:
    """40 racing creates through nginx, landing on both instances: exactly 5 succeed."""
    email = "cap@example.test"
    make_pro_user(lb, email)
    http = client("127.0.0.6")
    csrf = login(http, lb.url, email)

    def create(i: int) -> int:
        r = http.post(
            f"{lb.url}/api/keys",
            json={"name": f"race {i}"},
            timeout=30,
            headers={"X-CSRF-Token": csrf},
        )
        if r.status_code == 409:
            assert is_error_envelope(r, "key_limit_reached"), r.text
        return r.status_code

    codes = Counter(fire(40, create, threads=40))
    assert codes == Counter({201: 5, 409: 35}), codes
    r = http.get(f"{lb.url}/api/keys", timeout=10)
    assert r.status_code == 200 and len(r.json()["keys"]) == 5
    served = Counter(
        instance_of(lb, e["upstream"])
        for e in access_log(lb)
        if e["client"] == "127.0.0.6" and e["method"] == "POST" and e["path"] == "/api/keys"
    )
    assert sum(served.values()) == 40 and served["app1"] > 0 and served["app2"] > 0, served


# ---- make stack, the command ----------------------------------------------------------------


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _process_groups(parent: int) -> list[int]:
    """The process groups of `parent`'s children (each part of the stack leads its own)."""
    return sorted({s.pgrp for s in all_processes() if s.ppid == parent})


@pytest.mark.parametrize(
    ("redis_topology", "stop_signal"),
    [
        pytest.param(
            "single", signal.SIGINT, id="single-ctrl-c"
        ),  # the terminal's foreground group
        pytest.param("sentinel", signal.SIGTERM, id="sentinel-term"),  # a service manager
        pytest.param("cluster", signal.SIGTERM, id="cluster-term"),
    ],
)
def test_make_stack_command_serves_prints_url_and_ctrl_c_stops_every_part(
    repo: Path,
    tmp_path: Path,
    redis_topology: str,
    stop_signal: int,
) -> None:
    """`python -m deploy.stack` (make stack, STACK_REDIS=single, sentinel or cluster): URL
    printed, all healthy, Ctrl-C or TERM ends every part."""
    require_nginx()
    port = free_port()
    out_path = tmp_path / "stack.out"
    env = stack_env(PORT=str(port), WORKERS="1", PYTHONUNBUFFERED="1", STACK_REDIS=redis_topology)
    process = start_in_own_session([sys.executable, "-m", "deploy.stack"], repo, env, out_path)
    url = f"http://{LOOPBACK}:{port}"
    groups: list[int] = []
    try:
        deadline = time.monotonic() + 40
        while f"serving on {url}" not in out_path.read_text():
            assert process.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.1)
        groups = _process_groups(process.pid)
        # redis (or 3 data nodes and 3 sentinels, or 6 cluster nodes), app1, app2, nginx: each
        # its own group
        assert len(groups) == len(topology.services(redis_topology)), groups
        r = requests.get(f"{url}/healthz", timeout=10)
        assert r.status_code == 200, r.text
        var = repo / "var" / "stack"
        for name in (*topology.services(redis_topology)[:-1], "nginx-access"):
            assert (var / f"{name}.log").stat().st_size > 0, name
        stored = (repo / "var" / "redis_password").read_text().strip()
        for node in topology.redis_nodes(redis_topology):
            assert (var / node / "appendonlydir").is_dir()
            assert (var / f"{node}.conf").stat().st_mode & 0o077 == 0  # it holds the password
            conf = (var / f"{node}.conf").read_text()
            password = re.search(r"^requirepass (\S+)$", conf, re.M)
            assert password, conf
            assert password.group(1) == stored
        assert (repo / "var").stat().st_mode & 0o077 == 0  # sentinels rewrite their files 0644

        os.killpg(process.pid, stop_signal)
        assert process.wait(timeout=30) == 0, out_path.read_text()
        assert out_path.read_text().rstrip().endswith("stopped")
        deadline = time.monotonic() + 10
        while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_group_alive(g) for g in groups), "a part outlived Ctrl-C"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/healthz", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for group in groups:
            if _group_alive(group):
                os.killpg(group, signal.SIGKILL)


def test_make_stack_refuses_an_unknown_redis_topology_in_one_line() -> None:
    """STACK_REDIS=<anything else>: exit 1 with one line naming the three choices, nothing
    started."""
    done = subprocess.run(
        [sys.executable, "-m", "deploy.stack"],
        cwd=ROOT,
        timeout=30,
        env=stack_env(STACK_REDIS="clustre"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "error: unknown Redis topology 'clustre': use single, sentinel or cluster\n"
    )
    assert "serving" not in done.stdout
