"""Issue #15: GET /api/me by API key is answered before Flask (security/hot_path.py).

What must hold: the hot path answers what Flask answers, byte for byte (status, every header,
body), for every way a key may be presented; it answers only the admitted requests it may
(everything else reaches Flask, and Flask's answer is the one the client gets); and a request
it hands on is counted once, not twice.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from werkzeug.test import Client

from security import gate, hot_path
from security.edge import TrustedProxies
from security.hot_path import HotPath
from store import users
from store.gate import GateResult, RateState
from tests.helpers import create_key, login, make_app

pytestmark = pytest.mark.integration

_serial = itertools.count(1)


class Spy:
    """A WSGI app that counts the requests reaching it, and the gate answers handed to it
    with them, then passes them on."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls = 0
        self.handed: list[Any] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.calls += 1
        if gate.GATE_ANSWER in environ:
            self.handed.append(environ[gate.GATE_ANSWER])
        return self.app(environ, start_response)


def spy_on(app) -> Spy:
    """Put a Spy between the hot path and Flask."""
    layer = hot_layer(app)
    layer.app = Spy(layer.app)
    return layer.app


def hot_layer(app) -> HotPath:
    """The app's hot path layer (inside the proxy checks, when there are any)."""
    outer = app.wsgi_app
    layer = outer.app if isinstance(outer, TrustedProxies) else outer
    assert isinstance(layer, HotPath)
    return layer


def flask_only(app) -> Callable[..., Iterable[bytes]]:
    """The same WSGI stack with the hot path taken out: the proxy checks, then Flask."""
    outer = app.wsgi_app
    inner = hot_layer(app).app
    return TrustedProxies(inner, outer.count) if isinstance(outer, TrustedProxies) else inner


@pytest.fixture
def gate_calls(monkeypatch) -> list[int]:
    """Every call of the gate's Redis script (store/gate.check), recorded: one per request."""
    calls: list[int] = []
    real = gate.gate_store.check

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gate.gate_store, "check", counting)
    return calls


def setup(app, make_user, plan: str = "pro") -> tuple[str, Any]:
    """A key of a new user, created through the API: (key, user)."""
    user = make_user(plan)
    web = app.test_client()
    return create_key(web, login(web, user.email))["key"], user


def answer(wsgi, path: str = "/api/me", method: str = "GET", **headers: str):
    """One request from a fresh client address: (status, headers as a list, body)."""
    n = next(_serial)  # a fresh client address: each request starts a window of its own
    fresh = (
        f"2001:db8:{n:x}::1"
        if headers.get("X-Forwarded-For") == "ipv6"
        else f"10.7.{n // 256 % 256}.{n % 256}"
    )
    headers["X-Forwarded-For"] = fresh  # behind a trusted proxy; else the peer's address:
    environ = {"REMOTE_ADDR": fresh}
    response = Client(wsgi).open(path, method=method, headers=headers, environ_base=environ)
    return response.status, list(response.headers.items()), response.get_data()


def presentations(key: str) -> list[dict[str, str]]:
    """Every way a request may carry the key (headers, as keyword names)."""
    wrong = "genmb_sk_" + "A" * 32
    return [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"  bearer   {key}  "},
        {"X_MCP_API_Key": key},
        {"X_MCP_API_Key": f" {key} ", "Authorization": f"Bearer {wrong}"},  # X-MCP-API-Key wins
        {"X_MCP_API_Key": " ", "Authorization": f"BEARER {key}"},  # blank counts as absent
        {"Authorization": f"Bearer {key}", "X-Forwarded-Proto": "https"},  # HSTS
        {"Authorization": f"Bearer {key}", "X-Forwarded-For": "ipv6"},  # counted by its /64
    ]


def _headers(case: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in case.items()}


@pytest.mark.parametrize(
    "settings",
    [
        {"TRUSTED_PROXY_COUNT": 1},
        {"TRUSTED_PROXY_COUNT": 0},
        {"TRUSTED_PROXY_COUNT": 1, "KEY_USAGE": "off", "METRICS": "off"},
        {
            "TRUSTED_PROXY_COUNT": 1,
            "TESTING": False,
            "ENV": "production",
            "PUBLIC_URL": "https://genmb.example.com",
        },
    ],
    ids=["behind-a-proxy", "no-proxy", "no-usage-no-metrics", "production"],
)
def test_the_hot_path_answers_what_flask_answers(redis_url, make_user, settings) -> None:
    """Status, every header in order, and the body: the same with and without the hot path,
    and the hot path answered each of them itself (Flask never saw the request)."""
    app = make_app(redis_url, **settings)
    key, _ = setup(app, make_user)
    host = {"Host": "genmb.example.com"} if "PUBLIC_URL" in settings else {}
    spy = spy_on(app)
    for case in presentations(key):
        headers = {**_headers(case), **host}
        for path in ("/api/me", "/api/me?verbose=1"):
            hot = answer(app.wsgi_app, path, **headers)
            spy.calls, before = 0, spy.calls
            flask = answer(flask_only(app), path, **headers)
            assert spy.calls == 1 and before == 0, case  # the hot one never reached Flask
            spy.calls = 0
            assert hot == flask, case
            assert hot[0] == "200 OK", case


def test_every_other_request_reaches_flask(app, make_user, gate_calls) -> None:
    """Sessions, other methods and paths, a malformed key, no key: Flask answers them, and
    the hot path counts none of them (the gate runs once, in Flask, for each)."""
    key, user = setup(app, make_user)
    web = app.test_client()
    login(web, user.email)
    spy = spy_on(app)
    gate_calls.clear()
    cases = [
        (web.get("/api/me"), 200),  # a session
        (web.head("/api/me", headers={"Authorization": f"Bearer {key}"}), 200),
        (web.get("/api/me/", headers={"Authorization": f"Bearer {key}"}), 404),
        (web.get("/api/apps", headers={"Authorization": f"Bearer {key}"}), 200),
        (app.test_client().get("/api/me", headers={"Authorization": "Bearer genmb_sk_x"}), 401),
        (app.test_client().get("/api/me", headers={"Authorization": key}), 401),  # no scheme
        (app.test_client().get("/api/me"), 401),
        # Werkzeug's routing refuses a websocket upgrade here, after the gate counted it.
        (
            app.test_client().get(
                "/api/me",
                headers={
                    "Authorization": f"Bearer {key}",
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                },
            ),
            400,
        ),
    ]
    assert [response.status_code for response, _ in cases] == [code for _, code in cases]
    assert spy.calls == len(cases)
    assert len(gate_calls) == len(cases)
    assert "Bearer" in cases[5][0].json["error"]["message"]  # Flask's hint, not the hot path's


def test_refusals_are_flasks_and_counted_once(redis_url, make_user, gate_calls, rdb) -> None:
    """Unknown key, spent window, plan without keys: the hot path hands each to Flask with
    the gate's answer; Flask refuses it as always, and the request is counted once."""
    app = make_app(redis_url, RATELIMIT_GLOBAL="3 per minute", TRUSTED_PROXY_COUNT=1)
    key, user = setup(app, make_user)
    client = app.test_client()
    gate_calls.clear()

    def get(secret: str, header: str = "Authorization", address: str = "10.9.0.1"):
        value = f"Bearer {secret}" if header == "Authorization" else secret
        return client.get("/api/me", headers={header: value, "X-Forwarded-For": address})

    r1 = get("genmb_sk_" + "B" * 32)
    assert (r1.status_code, r1.json["error"]["code"]) == (401, "invalid_api_key")
    assert r1.headers["X-RateLimit-Remaining"] == "2"  # one request, counted once
    r2 = get(key)
    assert r2.status_code == 200 and r2.headers["X-RateLimit-Remaining"] == "1"
    r3 = get(key, "X-MCP-API-Key")
    assert r3.status_code == 200 and r3.headers["X-RateLimit-Remaining"] == "0"
    r4 = get(key)
    assert (r4.status_code, r4.json["error"]["code"]) == (429, "rate_limited")
    assert int(r4.headers["Retry-After"]) >= 1 and r4.headers["X-RateLimit-Remaining"] == "0"
    assert len(gate_calls) == 4

    # A plan without keys: 403 from the next request on, and one security-log entry.
    storage = hot_layer(app).storage
    users.set_plan(storage, user.email, "free")
    for _ in range(2):
        r5 = get(key, address="10.9.0.2")
        assert (r5.status_code, r5.json["error"]["code"]) == (403, "plan_required")
    assert r5.headers["X-RateLimit-Remaining"] == "1"
    assert len(gate_calls) == 6
    events = rdb.xrange(storage.names.security_log(user.id))
    assert [fields["type"] for _, fields in events].count("api_key.refused_plan") == 1


def test_a_redis_failure_is_flasks_503_counted_once(app, make_user, monkeypatch) -> None:
    """The gate call fails in the hot path: Flask answers 503 service_unavailable with its
    envelope, the failure is counted once by outcome and by kind, and nothing is retried."""
    key, _ = setup(app, make_user)
    calls: list[int] = []

    def down(*args, **kwargs):
        calls.append(1)
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(gate.gate_store, "check", down)
    unavailable = ("genmb_requests_total", {"outcome": "service_unavailable"})
    by_kind = ("genmb_redis_errors_total", {"kind": "connection"})
    before = [REGISTRY.get_sample_value(*sample) or 0 for sample in (unavailable, by_kind)]
    spy = spy_on(app)
    response = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {key}"})
    assert [type(answer) for answer in spy.handed] == [RedisConnectionError]  # by the hot path
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert "Connection refused" not in response.get_data(as_text=True)
    after = [REGISTRY.get_sample_value(*sample) or 0 for sample in (unavailable, by_kind)]
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1]
    assert calls == [1]


def test_a_bug_building_the_answer_is_flasks_500(app, make_user, monkeypatch, gate_calls):
    """The body cannot be built (a bug): Flask runs the same view and answers 500
    internal_error in its envelope, without detail; the request is counted once."""
    key, _ = setup(app, make_user)
    gate_calls.clear()

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("blueprints.account.me_body", broken)
    monkeypatch.setattr("security.hot_path.me_body", broken)
    hard = app.test_client()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = hard.get("/api/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert "secret detail" not in response.get_data(as_text=True)
    assert gate_calls == [1]


def test_admissions_are_counted_in_the_metrics(app, make_user) -> None:
    """Each admitted hot-path request: one `admitted` outcome and one gate-time observation."""
    key, _ = setup(app, make_user)
    admitted = ("genmb_requests_total", {"outcome": "admitted"})
    observed = ("genmb_gate_seconds_count", {})
    before = [REGISTRY.get_sample_value(*sample) or 0 for sample in (admitted, observed)]
    spy = spy_on(app)
    for _ in range(5):
        response = app.test_client().get("/api/me", headers={"X-MCP-API-Key": key})
        assert response.status_code == 200
    assert spy.calls == 0  # all five answered by the hot path
    after = [REGISTRY.get_sample_value(*sample) or 0 for sample in (admitted, observed)]
    assert [b - a for a, b in zip(before, after, strict=True)] == [5, 5]


def test_a_host_outside_the_list_is_refused_before_counting(redis_url, make_user, gate_calls):
    """Production: a Host the service does not answer to is Flask's 421, never counted."""
    app = make_app(redis_url, TESTING=False, ENV="production", PUBLIC_URL="https://g.example")
    key, _ = setup(app, make_user)
    gate_calls.clear()
    response = app.test_client().get(
        "/api/me", headers={"Authorization": f"Bearer {key}", "Host": "evil.example"}
    )
    assert (response.status_code, response.json["error"]["code"]) == (421, "host_not_allowed")
    assert gate_calls == []
    good = app.test_client().get(
        "/api/me", headers={"Authorization": f"Bearer {key}", "Host": "g.example"}
    )
    assert good.status_code == 200 and gate_calls == [1]


def test_the_hot_path_stands_in_for_the_route_it_names(fake_app) -> None:
    """It refuses to start if GET /api/me is no longer the account view it replaces: another
    endpoint, or the same endpoint with its view replaced or wrapped."""
    other = Flask(__name__)
    other.add_url_rule("/api/me", "other.me", lambda: "another view")
    with pytest.raises(RuntimeError, match="answers GET /api/me, now routed to"):
        hot_path.init_app(other)
    view = fake_app.view_functions["account.me"]
    fake_app.view_functions["account.me"] = functools.wraps(view)(lambda: view())
    with pytest.raises(RuntimeError, match="answers GET /api/me"):
        hot_path.init_app(fake_app)


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (RateState(200, 0, 30.2, True), ("0", "31")),  # the last request the window admits
        (RateState(200, 0, 0.0004, True), ("0", "1")),  # under a second still says 1
        (RateState(5, 4, 59.9, True), ("4", "0")),  # not spent: no reset to wait for
    ],
)
def test_the_rate_headers_agree_at_the_edge_of_the_window(app, make_user, monkeypatch, rate, shown):
    """The same headers either way at any window state, the spent one included (the gate's
    answer canned, so both paths see exactly the same state)."""
    key, _ = setup(app, make_user)
    real = gate.gate_store.check

    def canned(*args, **kwargs):
        return GateResult(rate, real(*args, **kwargs).identity)

    monkeypatch.setattr(gate.gate_store, "check", canned)
    headers = {"Authorization": f"Bearer {key}"}
    hot, flask = answer(app.wsgi_app, **headers), answer(flask_only(app), **headers)
    assert hot == flask
    sent = dict(hot[1])
    assert (sent["X-RateLimit-Remaining"], sent["X-RateLimit-Reset"]) == shown
