"""Faults in make stack's topology (docs/deploy.md, "What is lost in which failure"): an app
instance killed mid-load, Redis killed and restarted from its append-only file, Redis frozen.

One stack for the module (REDIS_TIMEOUT=0.5, a global limit high enough that the load is never
rate limited); each test leaves it whole again. What a test measures is printed (-s shows it)
and recorded in docs/deploy.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

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
    whole_and_empty,
)

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

REDIS_TIMEOUT = 0.5
BOUND = 2.5  # REDIS_TIMEOUT plus a margin, as in tests/live/test_outage.py
RECOVERY = 15.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """make stack's topology with a short Redis timeout and no practical global limit."""
    require_nginx()
    # The load creates ~150 apps for one pro user: the app cap (MAX_APPS_PRO) out of the way.
    env = stack_env(
        REDIS_TIMEOUT=str(REDIS_TIMEOUT),
        RATELIMIT_GLOBAL="100000 per minute",
        MAX_APPS_PRO="100000",
    )
    running = Stack(tmp_path_factory.mktemp("faults") / "var", workers=2, env=env)
    try:
        running.start()
        yield running
    finally:
        running.resume_redis()  # a frozen Redis must never outlive the tests
        running.stop()


@pytest.fixture
def whole(stack: Stack) -> Iterator[Stack]:
    """The stack, every part running, an empty database; whole again after the test."""
    whole_and_empty(stack)
    yield stack
    stack.resume_redis()
    if not stack.redis_part.running:
        stack.restart_redis()
    for name, part in stack.apps.items():
        if not part.running:
            stack.restart_app(name)


def _user_with_key(stack: Stack, email: str, source: str) -> tuple[requests.Session, str, str]:
    """A pro user logged in through nginx from `source`: (session, csrf, raw key)."""
    make_pro_user(stack, email)
    http = client(source)
    csrf = login(http, stack.url, email)
    r = http.post(
        f"{stack.url}/api/keys", json={"name": "load"}, timeout=10, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201, r.text
    return http, csrf, r.json()["key"]


@dataclass
class Outcome:
    """One request of the load."""

    index: int
    method: str
    status: int
    body: bytes
    content_type: str
    started: float
    finished: float


CUT = 0  # the status recorded for a response cut off after its headers (see below)


def test_killing_an_instance_mid_load_fails_over_without_a_bad_answer(whole: Stack) -> None:
    """SIGKILL app1 (master and workers) under load. Every request gets a valid answer, except
    those app1 was already handling: a POST gets a clean JSON 502 (never re-sent, so never run
    twice) and a response app1 had begun to send is cut short, which the client sees as a
    broken connection. app1 rejoins the rotation once restarted."""
    stack = whole
    _, _, key = _user_with_key(stack, "failover@example.test", "127.0.0.30")
    bearer = {"Authorization": f"Bearer {key}"}
    http = client("127.0.0.31")
    total, kill_after, threads = 600, 150, 8
    done = Counter()
    lock = threading.Lock()
    killed = threading.Event()
    kill_time: list[float] = []

    def call(i: int) -> Outcome:
        started = time.monotonic()
        method = "POST" if i % 4 == 3 else "GET"  # a quarter are non-idempotent creates
        try:
            if method == "POST":
                r = http.post(
                    f"{stack.url}/api/apps", json={"name": f"app-{i}"}, headers=bearer, timeout=30
                )
            else:
                r = http.get(f"{stack.url}/api/me", headers=bearer, timeout=30)
            outcome = Outcome(
                i,
                method,
                r.status_code,
                r.content,
                r.headers.get("Content-Type", ""),
                started,
                time.monotonic(),
            )
        except requests.exceptions.ChunkedEncodingError:
            # Headers with a Content-Length arrived, then the connection closed before the
            # body: gunicorn writes headers and body in two writes, and a SIGKILL between
            # them leaves nginx nothing to retry (it has already answered). The client can
            # never take this for a whole answer.
            outcome = Outcome(i, method, CUT, b"", "", started, time.monotonic())
        with lock:
            done["n"] += 1
            if done["n"] == kill_after and not killed.is_set():
                killed.set()
        return outcome

    def killer() -> None:
        if killed.wait(timeout=60):
            stack.kill_app("app1")
            kill_time.append(time.monotonic())  # app1's master has been reaped: all dead

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        outcomes = fire(total, call, threads=threads)
    finally:
        killed.set()
        thread.join(timeout=30)
    assert kill_time and not stack.apps["app1"].running
    killed_at = kill_time[0]

    def valid(o: Outcome) -> bool:
        return (o.method, o.status) in (("GET", 200), ("POST", 201))

    def clean_failure(o: Outcome) -> bool:
        if o.status == CUT:
            return True
        if o.status not in (502, 503) or not o.content_type.startswith("application/json"):
            return False
        body = json.loads(o.body)
        return set(body) == {"error"} and body["error"]["code"] in (
            "bad_gateway",
            "service_unavailable",
        )

    bad = [
        (o.index, o.method, o.status, o.body[:200])
        for o in outcomes
        if not valid(o) and not clean_failure(o)
    ]
    assert bad == [], bad
    failed = [o for o in outcomes if not valid(o)]
    # Only requests app1 was already handling can fail: at most one per load thread, all
    # started before the kill; a GET is never answered 502 (nginx retries it on app2).
    assert len(failed) <= threads, failed
    assert all(o.started <= killed_at for o in failed), [
        (o.index, round(o.started - killed_at, 4)) for o in failed
    ]
    assert [o for o in failed if o.method == "GET" and o.status != CUT] == []
    after = [o for o in outcomes if o.started > killed_at]
    assert after and all(valid(o) for o in after)

    # No POST ran twice (nginx never re-sends one), every 201 is stored, nothing else is.
    names, cursor = [], ""
    for _ in range(10):  # pages of 100 (GET /api/apps is paginated), bounded
        r = http.get(
            f"{stack.url}/api/apps",
            params={"cursor": cursor} if cursor else None,
            headers=bearer,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        names += [app["name"] for app in r.json()["apps"]]
        cursor = r.json().get("next_cursor")
        if not cursor:
            break
    posts = [o for o in outcomes if o.method == "POST"]
    created = {f"app-{o.index}" for o in posts if o.status == 201}
    maybe = {f"app-{o.index}" for o in posts if not valid(o)}
    assert len(names) == len(set(names)), "an app was created twice"
    assert created <= set(names) <= created | maybe

    served = Counter(
        instance_of(stack, e["upstream"]) for e in access_log(stack) if e["client"] == "127.0.0.31"
    )
    slowest = max(o.finished - o.started for o in outcomes)
    print(
        f"\nfailover: {total} requests ({total - len(posts)} GET, {len(posts)} POST), "
        f"app1 SIGKILLed after {kill_after}; {len(after)} started after the kill, all valid; "
        f"answers {dict(Counter(o.status for o in outcomes))} (0 = cut off); POSTs not "
        f"answered 201: {len(maybe)} (of which had run: {len(set(names) & maybe)}); slowest "
        f"{slowest * 1000:.0f} ms; served by {dict(served)}"
    )

    # Restarted, app1 is back in rotation once nginx's fail_timeout (5 s) has passed.
    stack.restart_app("app1")
    deadline = time.monotonic() + 15
    rejoined = False
    while time.monotonic() < deadline and not rejoined:
        r = http.get(f"{stack.url}/api/me", headers=bearer, timeout=10)
        assert r.status_code == 200, r.text
        last = [e for e in access_log(stack) if e["client"] == "127.0.0.31"][-1]
        rejoined = instance_of(stack, last["upstream"]) == "app1"
        time.sleep(0.2)
    assert rejoined, "app1 did not rejoin the rotation within 15 s"


def test_redis_killed_and_restarted_keeps_every_acknowledged_key_and_revocation(
    whole: Stack,
) -> None:
    """Keys created and revoked through nginx up to the instant Redis is SIGKILLed: after a
    restart from the append-only file, everything acknowledged over 1 s before the kill holds."""
    stack = whole
    users = []
    for n in range(4):
        email = f"durable{n}@example.test"
        make_pro_user(stack, email)
        http = client("127.0.0.40")
        users.append((http, login(http, stack.url, email)))

    created: dict[str, tuple[str, float]] = {}  # key id -> (raw key, acknowledged at)
    revoked: dict[str, float] = {}  # key id -> revocation acknowledged at
    live: list[list[str]] = [[] for _ in users]
    started = time.monotonic()
    step = 0
    while time.monotonic() - started < 2.5:  # bounded: a few hundred writes at most
        n = step % len(users)
        http, csrf = users[n]
        if len(live[n]) >= 4:  # stay under the cap: revoke the oldest
            key_id = live[n].pop(0)
            r = http.delete(
                f"{stack.url}/api/keys/{key_id}", timeout=10, headers={"X-CSRF-Token": csrf}
            )
            assert r.status_code == 204, r.text
            revoked[key_id] = time.monotonic()
        else:
            r = http.post(
                f"{stack.url}/api/keys",
                json={"name": f"k{step}"},
                timeout=10,
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status_code == 201, r.text
            created[r.json()["id"]] = (r.json()["key"], time.monotonic())
            live[n].append(r.json()["id"])
        step += 1
    stack.kill_redis()
    killed_at = time.monotonic()

    r = requests.get(f"{stack.url}/api/me", timeout=10)
    assert r.status_code == 503 and is_error_envelope(r, "service_unavailable"), r.text
    stack.restart_redis()
    restarted = time.monotonic()
    deadline = restarted + RECOVERY
    while requests.get(f"{stack.url}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the app did not see Redis come back"
        time.sleep(0.1)
    recovered = time.monotonic() - restarted

    def outcome(key_id: str) -> int:
        raw, _ = created[key_id]
        return requests.get(
            f"{stack.url}/api/me", headers={"Authorization": f"Bearer {raw}"}, timeout=10
        ).status_code

    statuses = dict(
        zip(created, fire(len(created), lambda i: outcome(list(created)[i])), strict=True)
    )
    old = killed_at - 1.0
    lost_keys = [
        k for k, (_, at) in created.items() if k not in revoked and at < old and statuses[k] != 200
    ]
    lost_revocations = [k for k, at in revoked.items() if at < old and statuses[k] != 401]
    assert lost_keys == [] and lost_revocations == []
    assert set(statuses.values()) <= {200, 401}
    recent_keys = [k for k, (_, at) in created.items() if k not in revoked and at >= old]
    recent_revocations = [k for k, at in revoked.items() if at >= old]
    survived = sum(statuses[k] == 200 for k in recent_keys)
    held = sum(statuses[k] == 401 for k in recent_revocations)
    print(
        f"\nredis SIGKILL: {len(created)} keys created, {len(revoked)} revoked in 2.5 s; "
        f"acknowledged in the last second before the kill: {len(recent_keys)} keys "
        f"({survived} survived), {len(recent_revocations)} revocations ({held} held); "
        f"older: all held; app back {recovered * 1000:.0f} ms after Redis restarted"
    )
    assert recent_keys or recent_revocations  # the last second was really exercised
    # Sessions survived too: the same logged-in clients still list their keys.
    http, _ = users[0]
    r = http.get(f"{stack.url}/api/keys", timeout=10)
    assert r.status_code == 200, r.text
    for http, _ in users:
        http.close()


def test_redis_frozen_gives_503_within_the_timeout_and_recovers_without_restart(
    whole: Stack,
) -> None:
    """SIGSTOP Redis: answers through nginx are 503 within REDIS_TIMEOUT + margin, from both
    instances; after SIGCONT everything works again with the same app processes."""
    stack = whole
    http, _, key = _user_with_key(stack, "frozen@example.test", "127.0.0.50")
    bearer = {"Authorization": f"Bearer {key}"}
    masters = {name: part.process.pid for name, part in stack.apps.items()}  # type: ignore[union-attr]
    for _ in range(8):  # warm every worker's pooled connection, through both instances
        assert http.get(f"{stack.url}/api/me", headers=bearer, timeout=10).status_code == 200
        assert http.get(f"{stack.url}/api/keys", timeout=10).status_code == 200

    mark = len(access_log(stack))
    stack.pause_redis()
    latencies = []
    try:
        for i in range(12):
            started = time.monotonic()
            if i % 3 == 0:
                r = http.get(f"{stack.url}/api/keys", timeout=10)  # the session
            elif i % 3 == 1:
                r = requests.get(f"{stack.url}/api/me", headers=bearer, timeout=10)
            else:
                r = requests.get(f"{stack.url}/readyz", timeout=10)
            latencies.append(time.monotonic() - started)
            assert r.status_code == 503, r.text
            assert latencies[-1] < BOUND, latencies
            if i % 3 != 2:
                assert is_error_envelope(r, "service_unavailable"), r.text
    finally:
        stack.resume_redis()
    frozen = access_log(stack)[mark:]
    assert {instance_of(stack, e["upstream"]) for e in frozen} == {"app1", "app2"}
    assert all(e["upstream"].count(":") == 1 for e in frozen)  # no retry on another instance

    resumed = time.monotonic()
    deadline = resumed + RECOVERY
    while True:
        r = requests.get(f"{stack.url}/api/me", headers=bearer, timeout=10)
        assert r.status_code in (200, 503), r.text
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, "no recovery after SIGCONT"
        time.sleep(0.05)
    recovered = time.monotonic() - resumed
    for _ in range(8):
        assert http.get(f"{stack.url}/api/me", headers=bearer, timeout=10).status_code == 200
        assert http.get(f"{stack.url}/api/keys", timeout=10).status_code == 200
    assert {n: p.process.pid for n, p in stack.apps.items()} == masters  # type: ignore[union-attr]
    assert all(part.running for part in stack.parts)
    print(
        f"\nredis SIGSTOP: 12 requests through nginx, all 503; slowest "
        f"{max(latencies) * 1000:.0f} ms, median {sorted(latencies)[6] * 1000:.0f} ms "
        f"(REDIS_TIMEOUT {REDIS_TIMEOUT * 1000:.0f} ms); first 200 "
        f"{recovered * 1000:.0f} ms after SIGCONT, same app processes"
    )
