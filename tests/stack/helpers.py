"""Helpers of the stack tier's tests: `make stack`'s topology started, emptied and driven
through nginx from distinct loopback addresses, and the failover checks test_stack_sentinel
and test_stack_cluster share."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry
from requests.adapters import HTTPAdapter

from deploy.processes import LOOPBACK, ROOT, wait_until
from deploy.stack import Stack
from store import users
from store.client import Storage, connect
from store.names import KeyNames
from tests.helpers import FAST_HASH, PASSWORD

STACK_ENV = {"PASSWORD_SCRYPT_N": str(FAST_HASH), "GENMB_ENV": "development"}


# ---- the stack and its clients ------------------------------------------------------------


def require_nginx() -> None:
    """The stack needs the system's nginx: without it these tests fail, they never skip."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    assert found, "nginx is not installed: apt-get install nginx (.ci/run does it)"


def stack_env(**extra: str) -> dict[str, str]:
    """This process's environment without settings of its own that the stack would inherit."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "REDIS_URL",
            "SECRET_KEY",
            "REDIS_PASSWORD",
            "REDIS_SENTINEL_PASSWORD",
            "STACK_REDIS",
            "PORT",
            "WORKERS",
            "BIND",
            "GENMB_ENV",
            "ACCESS_LOG",
            "TRUSTED_PROXY_COUNT",
        )
    }
    return {**env, **STACK_ENV, **extra}


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a given loopback address, so nginx sees that address as the client."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(pool_connections=4, pool_maxsize=64)

    def init_poolmanager(self, *args, **kwargs):  # noqa: ANN002, ANN003 - requests' signature
        """Bind every connection of the pool to the source address."""
        kwargs["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kwargs)


def start_in_own_session(command: list[str], cwd: Path, env: dict[str, str], out_path: Path):
    """A start command (run.sh, `python -m deploy.stack`) in a session of its own, so it can
    be stopped with its children, its stdout and stderr into out_path."""
    with open(out_path, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


OPEN_CLIENTS: list[requests.Session] = []  # closed after each test (conftest.close_clients)


def client(source: str) -> requests.Session:
    """A requests.Session whose connections come from `source` (e.g. 127.0.0.7); closed when
    the test ends."""
    http = requests.Session()
    http.mount("http://", SourceAddressAdapter(source))
    # A session left to the garbage collector closes its kept-alive sockets late, inside
    # whichever test is running then, and that test fails on the ResourceWarning.
    OPEN_CLIENTS.append(http)
    return http


def make_pro_user(stack: Stack, email: str) -> None:
    """A pro user with PASSWORD, straight in the stack's Redis."""
    store = Storage(connect(stack.redis_url, 2.0, stack.sentinel_password), KeyNames())
    users.create(store, email, PASSWORD, "pro", FAST_HASH)
    store.redis.close()


def login(http: requests.Session, base: str, email: str) -> str:
    """Log a session in; returns its CSRF token."""
    r = http.post(f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def fire(count: int, call: Callable[[int], object], threads: int = 16) -> list:
    """call(i) for i in range(count) on a bounded thread pool."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(call, range(count)))


def access_log(stack: Stack) -> list[dict[str, str]]:
    """nginx's access log, parsed: client, method, path, status, upstream."""
    pattern = re.compile(
        r'^(?P<client>\S+) \[[^\]]+\] "(?P<method>\S+) (?P<path>\S+) [^"]*" '
        r"(?P<status>\d+) .* upstream=(?P<upstream>.*) upstream_status="
    )
    text = (stack.dir / "nginx-access.log").read_text()
    return [m.groupdict() for line in text.splitlines() if (m := pattern.match(line))]


def instance_of(stack: Stack, upstream: str) -> str:
    """The app instance name behind an upstream address as nginx logs it (the last tried)."""
    last = upstream.split(",")[-1].strip()
    by_address = {f"{LOOPBACK}:{port}": name for name, port in stack.app_ports.items()}
    return by_address[last]


def is_error_envelope(response: requests.Response, code: str | None = None) -> bool:
    """True for {"error": {"code", "message"}} as JSON, optionally with this code."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return False
    body = response.json()
    return (
        set(body) == {"error"}
        and isinstance(body["error"].get("message"), str)
        and (code is None or body["error"].get("code") == code)
    )


# ---- failover checks (test_stack_sentinel, test_stack_cluster) -----------------------------

RECOVERY_BOUND = 10.0  # seconds from the kill to a 200 through nginx
POLL_INTERVAL = 0.1  # at most 100 polls from one address: under the 200/min window
BACK_IN_A_ROW = 5  # consecutive 200s from an instance that count as "back"
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py retries a refused AUTH thrice, with backoff


def ha_stack(factory: pytest.TempPathFactory, redis_topology: str) -> Iterator[Stack]:
    """A fixture's body: the Sentinel or Cluster stack on free ports, REDIS_TIMEOUT=0.5 as in
    tests/stack/test_faults.py."""
    require_nginx()
    running = Stack(
        factory.mktemp(f"{redis_topology}-stack") / "var",
        workers=2,
        env=stack_env(REDIS_TIMEOUT="0.5"),
        redis_topology=redis_topology,
    )
    with running:
        yield running


def settled_and_empty(stack: Stack) -> Stack:
    """A fixture's body: every part running, Redis settled (the sentinels agree on a primary
    with a complete view; every cluster slot served), an empty database."""
    wait_until(stack.cluster_ok if stack.cluster else stack.settled_primary, 30, "Redis")
    whole_and_empty(stack)
    return stack


def assert_refuses_anonymous(port: int) -> None:
    """The Redis process (data node or sentinel) at `port` wants a password."""
    with redis.Redis(host=LOOPBACK, port=port, socket_timeout=2, retry=NO_RETRY) as anonymous:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()


def live_and_revoked_keys(stack: Stack, email: str, source: str) -> tuple[dict, dict, str]:
    """A pro user with two keys made through nginx from `source`, the second revoked (204: a
    replica confirmed it), the first used on both instances. Returns the live and the
    revoked key's Authorization headers and the user's id."""
    make_pro_user(stack, email)
    http = client(source)
    csrf = login(http, stack.url, email)
    keys = []
    for name in ("live", "revoked"):
        r = http.post(
            f"{stack.url}/api/keys", json={"name": name}, timeout=10, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 201, r.text
        keys.append(r.json())
    live = {"Authorization": f"Bearer {keys[0]['key']}"}
    revoked = {"Authorization": f"Bearer {keys[1]['key']}"}
    r = http.delete(
        f"{stack.url}/api/keys/{keys[1]['id']}", timeout=10, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 204, r.text
    answers = [http.get(f"{stack.url}/api/me", headers=live, timeout=10) for _ in range(4)]
    assert [r.status_code for r in answers] == [200] * 4  # both instances, round robin
    return live, revoked, answers[0].json()["id"]


def poll_until_back(stack: Stack, live: dict, source: str, killed_at: float) -> float:
    """GET /api/me through nginx every POLL_INTERVAL until a 200, for at most RECOVERY_BOUND
    after `killed_at`; every other answer must be 503 service_unavailable, Retry-After: 1.
    Then the same on each instance directly until BACK_IN_A_ROW 200s: a worker whose view of
    the topology is older (a node that has not yet heard of the promotion) may still answer
    503 for a moment after another worker's first 200. Prints and returns the seconds from
    the kill to the first 200 through nginx."""
    first = _poll(client(source), stack.url, live, killed_at, 1)
    for i, name in enumerate(stack.apps):
        # Its own source address per instance: the polls stay far under the per-IP window.
        _poll(client(f"127.0.0.{60 + i}"), stack.app_url(name), live, killed_at, BACK_IN_A_ROW)
    print(
        f"\nfirst 200 through nginx {first:.2f} s after the kill; every instance back "
        f"({BACK_IN_A_ROW} 200s in a row) {time.monotonic() - killed_at:.2f} s after it"
    )
    return first


def _poll(http: requests.Session, base: str, live: dict, killed_at: float, in_a_row: int) -> float:
    """GET base/api/me every POLL_INTERVAL until `in_a_row` consecutive 200s, within
    RECOVERY_BOUND of `killed_at`; anything else but 503 service_unavailable with Retry-After: 1
    fails. Returns the seconds from the kill to the first 200 of the final run."""
    answers: list[tuple[float, int, str]] = []
    streak_started = 0.0
    streak = 0
    while streak < in_a_row and time.monotonic() - killed_at < RECOVERY_BOUND:
        r = http.get(f"{base}/api/me", headers=live, timeout=5)
        code = "" if r.status_code == 200 else r.json()["error"]["code"]
        answers.append((time.monotonic() - killed_at, r.status_code, code))
        if r.status_code == 200:
            streak_started = streak_started if streak else answers[-1][0]
            streak += 1
            continue
        streak = 0
        assert r.status_code == 503 and is_error_envelope(r, "service_unavailable"), r.text
        assert r.headers["Retry-After"] == "1"
        time.sleep(POLL_INTERVAL)
    assert streak == in_a_row, (base, Counter((s, c) for _, s, c in answers), answers[-5:])
    print(f"\n{base}: {Counter((s, c) for _, s, c in answers)}")
    return streak_started


def assert_live_and_revoked(stack: Stack, live: dict, revoked: dict) -> None:
    """Every instance, directly and through nginx: the live key works, the revoked one is
    401 invalid_api_key."""
    for base in (*(stack.app_url(name) for name in stack.apps), stack.url, stack.url):
        assert requests.get(f"{base}/api/me", headers=live, timeout=10).status_code == 200
        r = requests.get(f"{base}/api/me", headers=revoked, timeout=10)
        assert r.status_code == 401 and is_error_envelope(r, "invalid_api_key"), r.text


def checkout_copy(dest: Path) -> Path:
    """A copy in `dest` of the working tree's files git tracks or would track (so var/ and
    .venv are not copied), with .venv linked to this checkout's; returns `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # not deleted in the working tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def whole_and_empty(stack: Stack) -> None:
    """Assert every part of a `make stack` topology runs, and empty its database (every
    primary's, on Cluster)."""
    for part in stack.parts:
        assert part.running, f"{part.name} is not running"
    for name in stack.primary_names():
        with stack.redis_client(port=stack.node_ports[name]) as admin:
            admin.flushall()
