"""Issue #17: GET /metrics across 4 gunicorn workers, its token and listener, and its labels.

A known mix of requests (admitted, and refused for each reason the gate has) goes through one
instance; /metrics must then show exactly that mix, summed over the workers. Every client IP
is a fresh X-Forwarded-For address (TRUSTED_PROXY_COUNT=1), so only the phase meant to be
rate limited ever is.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
from collections import Counter

import pytest
import requests
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import metrics
from deploy.processes import ROOT, free_port
from errors import CATALOGUE
from store import users
from tests.helpers import PASSWORD, app_server, gunicorn_run, make_app

pytestmark = pytest.mark.integration

TOKEN = "metrics-token-for-the-tests"
LIMIT = 10  # RATELIMIT_GLOBAL per client IP
DASHBOARD = ROOT / "deploy" / "grafana" / "genmb.json"
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}
_ips = (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def instance(redis_server, tmp_path_factory):
    """One instance, 4 workers, both ways to scrape, JSON logs."""
    metrics_port = free_port()
    server = app_server(
        redis_server.url,
        tmp_path_factory.mktemp("metrics") / "log",
        4,
        env={
            "METRICS_TOKEN": TOKEN,
            "METRICS_BIND": f"127.0.0.1:{metrics_port}",
            "TRUSTED_PROXY_COUNT": "1",
            "RATELIMIT_GLOBAL": f"{LIMIT} per minute",
            "CREDITS_PRO": "15",  # one codegen (10) and one deploy (5), then 402
            "LOG_FORMAT": "json",
        },
    ).start()
    server.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    yield server
    server.stop()


@pytest.fixture
def live(instance, redis_url):
    """The module's instance, with an empty database for this test."""
    return instance


def send(base: str, method: str, path: str, ip: str | None = None, **kw) -> requests.Response:
    """One request from a client IP of its own (or `ip`)."""
    headers = {"X-Forwarded-For": ip or next(_ips), **kw.pop("headers", {})}
    return requests.request(method, base + path, headers=headers, timeout=30, **kw)


def scrape(live) -> str:
    """The instance's /metrics, with the token."""
    r = requests.get(
        f"{live.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return r.text


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: dict, after: dict, prefix: str) -> dict[tuple, float]:
    """The samples of one metric that moved between two scrapes."""
    moved = {k: after[k] - before.get(k, 0.0) for k in after if k[0] == prefix}
    return {k: v for k, v in moved.items() if v}


def _login(base: str, email: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    r = send(base, "POST", "/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    http.cookies.update(r.cookies)
    return http, r.json()["csrf_token"]


def _session_send(http, base, method, path, csrf=None, **kw) -> requests.Response:
    headers = {"X-Forwarded-For": next(_ips), **({"X-CSRF-Token": csrf} if csrf else {})}
    return http.request(method, base + path, headers=headers, timeout=30, **kw)


def test_counters_are_exact_after_a_known_mix(live, make_user, storage):
    """Every counted request lands in exactly one outcome, summed over the 4 workers; jobs,
    credits, keys and MCP tool calls as sent; scrapes, probes and pages count nowhere."""
    base = live.url
    owner, downgraded = make_user("pro"), make_user("pro")
    http, csrf = _login(base, owner.email)
    key = _session_send(http, base, "POST", "/api/keys", csrf, json={"name": "a"}).json()["key"]
    other_http, other_csrf = _login(base, downgraded.email)
    r = _session_send(other_http, base, "POST", "/api/keys", other_csrf, json={"name": "b"})
    refused_key = r.json()["key"]
    users.set_plan(storage, downgraded.email, "free")
    app_id = send(base, "POST", "/api/apps", headers=_bearer(key), json={"name": "x"}).json()["id"]
    before = samples(scrape(live))

    sent: Counter[str] = Counter()

    def expect(outcome: str, status: int, response: requests.Response) -> None:
        assert response.status_code == status, (outcome, response.text)
        sent[outcome] += 1

    for _ in range(7):
        expect("admitted", 200, send(base, "GET", "/api/me", headers=_bearer(key)))
    for _ in range(5):
        expect("missing_credentials", 401, send(base, "GET", "/api/me"))
    for bad in ("genmb_sk_short", "not-a-key", "genmb_sk_" + "A" * 32, "genmb_sk_" + "b" * 32):
        expect("invalid_api_key", 401, send(base, "GET", "/api/me", headers=_bearer(bad)))
    for _ in range(3):
        expect("plan_required", 403, send(base, "GET", "/api/me", headers=_bearer(refused_key)))
    for _ in range(2):
        r = _session_send(http, base, "POST", "/api/apps", json={"name": "no csrf"})
        expect("csrf_failed", 403, r)
    # A blueprint's own access checks, after the gate admitted the request.
    for path in ("/api/keys", "/api/security-log"):
        expect("session_required", 403, send(base, "GET", path, headers=_bearer(key)))
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    r = send(base, "POST", "/auth/logout", headers=evil)
    expect("cross_site_request", 403, r)
    # A view's own refusal is not the gate's: the request was admitted.
    expect(
        "admitted", 404, send(base, "GET", "/api/apps/app_0000000000000000", headers=_bearer(key))
    )
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    json_type = {"Content-Type": "application/json"}
    r = send(base, "POST", "/api/apps", headers={**_bearer(key), **json_type}, data=big)
    expect("payload_too_large", 413, r)
    text_type = {**_bearer(key), "Content-Type": "text/plain"}
    expect(
        "unsupported_media_type", 415, send(base, "POST", "/api/apps", headers=text_type, data="x")
    )
    crowded = next(_ips)
    for _ in range(LIMIT):
        expect("missing_credentials", 401, send(base, "GET", "/api/me", ip=crowded))
    for _ in range(3):
        expect("rate_limited", 429, send(base, "GET", "/api/me", ip=crowded))
    # Jobs and credits (CREDITS_PRO=15): codegen 10, deploy 5, then a deploy over the allowance.
    path = f"/api/apps/{app_id}"
    prompt = {"prompt": "a todo app"}
    expect(
        "admitted", 202, send(base, "POST", f"{path}/codegen", headers=_bearer(key), json=prompt)
    )
    expect("admitted", 202, send(base, "POST", f"{path}/deploy", headers=_bearer(key)))
    expect("admitted", 402, send(base, "POST", f"{path}/deploy", headers=_bearer(key)))
    # Keys: one created, rolled (a second created, the first retired) and the new one revoked.
    r = _session_send(http, base, "POST", "/api/keys", csrf, json={"name": "c"})
    expect("admitted", 201, r)
    rolled = _session_send(
        http, base, "POST", f"/api/keys/{r.json()['id']}/roll", csrf, json={"overlap_seconds": 0}
    )
    expect("admitted", 201, rolled)
    gone = _session_send(http, base, "DELETE", f"/api/keys/{rolled.json()['id']}", csrf)
    expect("admitted", 204, gone)
    # MCP: two list_apps, one start_deploy of an unknown app (a refusal, not an error).
    for _ in range(2):
        expect("admitted", 200, _mcp(base, key, "list_apps", {}))
    r = _mcp(base, key, "start_deploy", {"app_id": "app_0000000000000000"})
    expect("admitted", 200, r)
    assert r.json()["result"]["isError"] is True
    # Not counted anywhere: scrapes (with and without the token), probes, pages.
    for path in ("/metrics", "/healthz", "/readyz", "/login"):
        send(base, "GET", path)

    after = samples(scrape(live))
    got = {
        dict(k[1])["outcome"]: v for k, v in delta(before, after, "genmb_requests_total").items()
    }
    assert got == dict(sent)
    # One observation per gate call: every counted request makes one, refused or not.
    timed = delta(before, after, "genmb_gate_seconds_count")
    assert timed == {("genmb_gate_seconds_count", ()): sum(sent.values())}
    jobs = delta(before, after, "genmb_jobs_total")
    assert {tuple(v for _, v in k[1]): n for k, n in jobs.items()} == {
        ("codegen", "started"): 1,
        ("deploy", "started"): 1,
        ("deploy", "insufficient_credits"): 1,
        ("deploy", "not_found"): 1,
    }
    credits = delta(before, after, "genmb_credits_charged_total")
    assert {dict(k[1])["action"]: n for k, n in credits.items()} == {"codegen": 10, "deploy": 5}
    assert sum(delta(before, after, "genmb_api_keys_created_total").values()) == 2
    revoked = delta(before, after, "genmb_api_keys_revoked_total")
    assert {dict(k[1])["reason"]: n for k, n in revoked.items()} == {"rolled": 1, "user": 1}
    tools = delta(before, after, "genmb_mcp_tool_calls_total")
    assert {tuple(v for _, v in k[1]): n for k, n in tools.items()} == {
        ("ok", "list_apps"): 2,
        ("not_found", "start_deploy"): 1,
    }
    assert not delta(before, after, "genmb_redis_errors_total")
    _assert_no_forbidden_labels(scrape(live), [owner, downgraded], [key, refused_key])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _mcp(base: str, key: str, tool: str, arguments: dict) -> requests.Response:
    """One raw JSON-RPC tools/call on /mcp with the key."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    return send(base, "POST", "/mcp", headers={**MCP_HEADERS, **_bearer(key)}, json=body)


# Every label a metric may carry, and the words it may hold (bounded cardinality).
ALLOWED_LABELS = {
    "outcome": set(metrics.GATE_OUTCOMES) | set(CATALOGUE) | {"ok", "started", "error"},
    "reason": set(metrics.REVOKE_REASONS),
    "kind": {kind for _, kind in metrics._REDIS_KINDS} | {"other"},
    "action": set(metrics.JOB_ACTIONS),
    "tool": set(metrics.MCP_TOOLS),
    "le": None,  # histogram buckets: numbers
}
FORBIDDEN = [
    re.compile(r"genmb(_|%5f)sk", re.I),  # a key, or a piece of one
    re.compile(r"@"),  # an email
    re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b"),  # an IPv4 address
    re.compile(r"[0-9a-f]{0,4}:[0-9a-f]{0,4}:"),  # an IPv6 address
    re.compile(r"(usr|user|key|app|job|sess)_[0-9a-f]{8,}"),  # an id
]


def _assert_no_forbidden_labels(text: str, people=(), secrets=()) -> None:
    """Every label of every genmb_ sample is a known name holding an allowed value; none
    holds a key, an email, an IP or an id."""
    known = [*secrets, *(u.email for u in people), *(u.id for u in people)]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, value in sample.labels.items():
                for pattern in FORBIDDEN:
                    assert not pattern.search(value), (sample.name, name, value)
                assert not any(k and k in value for k in known), (sample.name, name, value)
                if not sample.name.startswith("genmb_"):
                    continue
                assert name in ALLOWED_LABELS, (sample.name, name)
                allowed = ALLOWED_LABELS[name]
                if allowed is None:
                    float(value)  # a bucket bound
                else:
                    assert value in allowed, (sample.name, name, value)


def test_metrics_needs_the_token(live):
    """Without the token, or with a wrong one (or one differing only in case or by a
    prefix): 401 in the JSON envelope, nothing of the metrics in it; never counted."""
    crowded = next(_ips)
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        r = send(live.url, "GET", "/metrics", ip=crowded, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["Content-Type"] == "application/json"
        assert r.json()["error"]["code"] == "missing_credentials"
        assert "genmb_" not in r.text
    for _ in range(LIMIT + 2):  # scrapes are in no window
        r = send(live.url, "GET", "/metrics", ip=crowded, headers=_bearer(TOKEN))
        assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    r = send(live.url, "GET", "/api/me", ip=crowded)
    assert r.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_metrics_bind_serves_without_token_and_nothing_else(live):
    """METRICS_BIND: a listener of gunicorn's master; /metrics there equals the token's view
    of the same counters, and any other path is a JSON 404 (the API is not reachable)."""
    r = requests.get(live.metrics_url, timeout=10)
    assert r.status_code == 200
    assert "genmb_requests_total" in r.text
    for path in ("/api/me", "/healthz", "/"):
        other = requests.get(live.metrics_url.replace("/metrics", path), timeout=10)
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "not_found"
    assert requests.post(live.metrics_url, timeout=10).status_code == 405


def test_without_a_token_metrics_is_404(redis_url):
    """No METRICS_TOKEN: /metrics does not exist on the app's address (the same 404 as any
    unknown path); METRICS=off: not even with a token."""
    r = make_app(redis_url).test_client().get("/metrics", headers=_bearer(TOKEN))
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    off = make_app(redis_url, METRICS="off", METRICS_TOKEN=TOKEN).test_client()
    assert off.get("/metrics", headers=_bearer(TOKEN)).status_code == 404
    make_app(redis_url)  # the switch is per process: back on for the tests after this one


def test_redis_errors_are_counted_by_kind():
    """Redis unreachable: the 503 counts as a gate outcome and as a connection error."""
    client = make_app("redis://127.0.0.1:1/0", REDIS_TIMEOUT=0.5, METRICS_TOKEN=TOKEN)
    client = client.test_client()
    before = samples(client.get("/metrics", headers=_bearer(TOKEN)).get_data(as_text=True))
    assert client.get("/api/me").status_code == 503
    after = samples(client.get("/metrics", headers=_bearer(TOKEN)).get_data(as_text=True))
    assert delta(before, after, "genmb_redis_errors_total") == {
        ("genmb_redis_errors_total", (("kind", "connection"),)): 1.0
    }
    outcomes = delta(before, after, "genmb_requests_total")
    assert outcomes == {("genmb_requests_total", (("outcome", "service_unavailable"),)): 1.0}


def test_every_dashboard_metric_exists(live):
    """Each metric the Grafana dashboard queries is in /metrics (a renamed metric would leave
    an empty panel)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queried = {name for expr in exprs for name in re.findall(r"\bgenmb_[a-z_]+", expr)}
    assert {"genmb_requests_total", "genmb_gate_seconds_bucket"} <= queried
    exposed = {s.name for f in text_string_to_metric_families(scrape(live)) for s in f.samples}
    assert queried <= exposed, queried - exposed


def test_gunicorn_writes_json_lines(live):
    """LOG_FORMAT=json: every line gunicorn and the app wrote is one JSON object."""
    forged = "/api/me%0a%20ip=6.6.6.6%20user_id=usr_forged"
    client = next(_ips)
    r = send(live.url, "GET", forged, ip=client, headers=_bearer("genmb_sk_" + "Q" * 32))
    assert r.status_code == 401
    lines = [line for line in live.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # each line is one object, or this fails
    assert all({"time", "level", "logger", "event"} <= set(r) for r in records)
    access = [r for r in records if r["event"] == "http.access"]
    assert access and all({"method", "path", "status", "ms"} <= set(r) for r in access)
    # The security event's fields come from the code, never from the client's path.
    failed = [r for r in records if "6.6.6.6" in r.get("path", "") and r["event"] == "auth.failed"]
    assert len(failed) == 1, failed
    assert failed[0]["ip"] == client and "user_id" not in failed[0]
    assert failed[0]["prefix"] == "genmb_sk_QQQQ" and "Q" * 5 not in live.logs()
    assert "\\n" in failed[0]["path"]  # the newline escaped (a visible \n), not raw


@pytest.fixture(scope="session")
def label_scan_at_the_end():
    """After the whole run: no label of this process's metrics (every in-process app of
    every test) holds a key, an email, an IP or an id."""
    yield
    _assert_no_forbidden_labels(generate_latest(REGISTRY).decode())


def test_in_process_labels_are_clean(label_scan_at_the_end):
    """This process's registry, now (and again at the end of the run, see the fixture)."""
    text = generate_latest(REGISTRY).decode()
    assert "genmb_requests_total" in text
    _assert_no_forbidden_labels(text)


def test_a_busy_metrics_bind_stops_gunicorn_with_one_line():
    """METRICS_BIND held by another server: exit 2 and one line naming it, no traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        env = {
            **os.environ,
            "REDIS_URL": "memory://",
            "GENMB_ENV": "development",
            "BIND": f"127.0.0.1:{free_port()}",
            "METRICS_BIND": taken,
        }
        done = gunicorn_run(env)
    assert done.returncode == 2, done.stderr
    assert f"genmb: cannot start: METRICS_BIND='{taken}'" in done.stderr
    assert "Traceback" not in done.stderr
