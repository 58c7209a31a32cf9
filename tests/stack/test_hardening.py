"""Issue #11: what an outside security review found, each reproduction replayed as a test.

The gunicorn tests run the app with TRUSTED_PROXY_COUNT=1 (as behind the nginx template) and
nothing in front, so a client can send X-Forwarded-For itself, as the reviewers did.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import hypothesis.strategies as st
import pytest
import requests
from hypothesis import HealthCheck, given, settings

import logs
from config import plans_from_env
from deploy.local_redis import RedisServer
from deploy.processes import LOOPBACK, ROOT, Gunicorn, free_port, wait_until, worker_pids
from deploy.stack import Stack
from schemas import common
from store import apikeys, apps, users
from store.client import Storage
from store.names import KeyNames
from tests.helpers import PASSWORD, LiveSession, app_server, login, make_app
from tests.stack.helpers import require_nginx, stack_env, start_in_own_session, whole_and_empty

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def proxied(redis_server: RedisServer, make_gunicorn) -> Iterator[Gunicorn]:
    """gunicorn (2 workers) trusting one proxy in front, with nothing in front."""
    with make_gunicorn(
        redis_server.url, "hardening", 2, env={"TRUSTED_PROXY_COUNT": "1"}
    ) as server:
        yield server


@pytest.fixture
def front(proxied: Gunicorn, redis_url: str) -> Gunicorn:
    """The module's gunicorn, with an empty database for this test."""
    return proxied


# ---- 1. forged log lines -------------------------------------------------------------------

# The three line shapes the service writes: the app's records (logs.FORMAT), gunicorn's error
# log, and the access log (deploy/gunicorn.conf.py: the client address first).
LINE_SHAPES = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[\d+\] [\w.]+: "
    r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] "
    r"|[0-9a-f.:]+ \"[A-Z]+ )"
)
FORGED = (
    "2026-12-01%2009:99:99,000%20INFO%20[1]%20genmb.security:%20auth.login"
    "%20user_id=usr_admin%20ip=6.6.6.6"
)


def test_every_record_is_one_line_whatever_it_holds() -> None:
    """Line count == record count: newlines, CR, separators, tracebacks and stacks included."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    handler.addFilter(logs.KeyRedactingFilter())
    logger = logging.getLogger("genmb.test_hardening.lines")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    written = 0
    try:
        for text in (
            "a\nb",
            "a\r\nb",
            "a\rb",
            "a\u2028b\u2029c",
            "a\x85b\x1cc\x1dd\x1ee",
            "a\x1b[2Jb",
            "lone \ud800 surrogate",
            "a\x00b\x0bc\x0cd",
        ):
            logger.warning("path=%s", text)
            written += 1
        try:
            raise ValueError("multi\nline\nerror")
        except ValueError:
            logger.exception("failed on %s", "x\ny")
            written += 1
        logger.info("with stack\n", stack_info=True)
        written += 1
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert len(text.splitlines()) == written, text
    assert text.count("\n") == written
    assert "multi\\nline\\nerror" in text and "Traceback" in text and "\\ud800" in text


@pytest.mark.gunicorn
def test_a_path_cannot_forge_a_log_line(front: Gunicorn) -> None:
    """The review's exact request (and a page path with CR LF) writes no line of its own."""
    before = len(front.logs().splitlines())
    for path in (
        f"/api/x%0a{FORGED}",
        f"/settings%0d%0a{FORGED}",
        f"/auth/x%0d{FORGED}",
        f"/api/x%e2%80%a8{FORGED}",
        f"/x%1b[2J%0a{FORGED}",
    ):
        assert requests.get(front.url + path, timeout=10).status_code in (401, 404)
    # A raw socket too: nothing re-encodes what is sent.
    with socket.create_connection((LOOPBACK, front.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/y%0a{FORGED} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        while sock.recv(65536):
            pass
    wait_until(lambda: front.logs().count("usr_admin") >= 6)
    lines = front.logs().splitlines()[before:]
    assert sum("usr_admin" in line for line in lines) == 6, lines
    assert [line for line in lines if not LINE_SHAPES.match(line)] == []
    assert not any(line.startswith("2026-12-01 09:99:99") for line in lines)


# ---- 3. login with a password no account can have ------------------------------------------


def _median_login_seconds(
    client, attempts: dict[str, tuple[str, str]], rounds: int = 7
) -> dict[str, float]:
    """The median time of each named (email, password) login, the attempts interleaved round
    by round, so a change in the machine's load touches every one alike."""
    times: dict[str, list[float]] = {name: [] for name in attempts}
    for _ in range(rounds):
        for name, (email, password) in attempts.items():
            start = time.perf_counter()
            response = client.post("/auth/login", json={"email": email, "password": password})
            times[name].append(time.perf_counter() - start)
            assert response.status_code == 401, response.json
            assert response.json == {
                "error": {"code": "invalid_credentials", "message": "Wrong email or password."}
            }
    return {name: statistics.median(values) for name, values in times.items()}


def test_lone_surrogate_password_is_the_same_401_for_known_and_unknown_emails(
    redis_url: str, storage
) -> None:
    """Both run scrypt at the production cost: same body, same time (no 500, no shortcut)."""
    cost = 2**14
    users.create(storage, "known@example.test", PASSWORD, "pro", cost)
    client = make_app(
        redis_url,
        PASSWORD_SCRYPT_N=cost,
        PROPAGATE_EXCEPTIONS=False,
        RATELIMIT_GLOBAL="1000 per minute",
    ).test_client()
    bad = "x\ud800"
    medians = _median_login_seconds(
        client,
        {
            "known": ("known@example.test", bad),
            "unknown": ("nobody@example.test", bad),
            "wrong": ("known@example.test", "wrong password"),
        },
    )
    known, unknown, wrong = medians["known"], medians["unknown"], medians["wrong"]
    print(
        f"login with a lone surrogate: known {known * 1000:.1f} ms, "
        f"unknown {unknown * 1000:.1f} ms, ordinary wrong password {wrong * 1000:.1f} ms"
    )
    assert known > wrong / 2 and unknown > wrong / 2  # scrypt ran in both cases
    assert 0.5 < known / unknown < 2


# ---- 4. bodies that used to be 500s ---------------------------------------------------------


@pytest.fixture
def hard_app(redis_url: str):
    """The app on the real Redis, answering a bug with a 500 (not raising it into the test)."""
    return make_app(redis_url, PROPAGATE_EXCEPTIONS=False, RATELIMIT_GLOBAL="100000 per minute")


@pytest.fixture
def signed_in(hard_app, make_user):
    """A pro user's logged-in test client, its CSRF token and one app id."""
    user = make_user("pro")
    client = hard_app.test_client()
    token = login(client, user.email)
    app_id = client.post(
        "/api/apps", json={"name": "target"}, headers={"X-CSRF-Token": token}
    ).json["id"]
    return client, token, app_id


def _post_raw(client, path: str, raw: str | bytes, token: str | None = None):
    headers = {"X-CSRF-Token": token} if token else {}
    return client.post(path, data=raw, content_type="application/json", headers=headers)


def _assert_refused_cleanly(response, caplog) -> None:
    """A 400/422 in the envelope, and no warning or error logged for it."""
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert response.json["error"]["code"] == "validation_error"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


REVIEW_BODIES = [
    ("/auth/signup", '{"email": "a@example.test", "password": ' + "1" * 5000 + "}"),
    ("/auth/login", "[" * 50000 + "]" * 50000),
    ("/api/keys", '{"name": "a\\ud800b"}'),
    ("/auth/signup", '{"email": "b@example.test", "password": "long enough \\udc00"}'),
    ("/api/apps", '{"name": "x\\udfff"}'),
    ("/api/apps", '{"name": 1e999}'),
    ("/api/apps", '{"name": NaN}'),
    ("/auth/login", b'{"email": "a@example.test", "password": "\xed\xa0\x80"}'),
]


@pytest.mark.parametrize(("path", "raw"), REVIEW_BODIES)
def test_the_reviews_odd_bodies_are_400_or_422(signed_in, path, raw, caplog) -> None:
    """A huge integer, deep nesting, lone surrogates, non-finite numbers: refused, not 500."""
    client, token, _app_id = signed_in
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = _post_raw(client, path, raw, token)
    _assert_refused_cleanly(response, caplog)
    assert len(caplog.records) <= 1


def test_key_name_with_lone_surrogate_is_422_for_a_pro_user(signed_in, rdb) -> None:
    """The key name reaches validation (pro plan), and nothing is written."""
    client, token, _ = signed_in
    response = _post_raw(client, "/api/keys", '{"name": "CI \\ud800"}', token)
    assert response.status_code == 422 and "name" in response.json["error"]["fields"]
    assert client.get("/api/keys").json["keys"] == []


# Raw JSON texts of the classes that used to crash the parser, and ordinary JSON values.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_odd_text = st.one_of(
    st.integers(4000, 6000).map(lambda n: "9" * n),  # over the int() digit limit
    st.integers(21, 200).map(lambda n: "-" + "1" * n),
    st.integers(30, 60000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.integers(30, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]),
    st.sampled_from(["\\ud800", "\\udfff", "a\\udc00b", "\\ud83d", "x\\ud83d\\u0041"]).map(
        lambda s: f'"{s}"'
    ),
    _values.map(json.dumps),
)


@st.composite
def _bodies(draw) -> str:
    """A body: an odd text alone, or as the value of one of the fields the API reads."""
    value = draw(_odd_text)
    shape = draw(st.sampled_from(["bare", "email", "password", "name", "prompt", "both"]))
    if shape == "bare":
        return value
    if shape == "both":
        return f'{{"email": {value}, "password": {value}}}'
    other = {"email": '"fuzz@example.test"', "password": '"a long password"'}
    fields = {**other, "name": '"n"', "prompt": '"p"', shape: value}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(body=_bodies(), target=st.sampled_from(["signup", "login", "keys", "apps", "codegen"]))
def test_fuzzed_json_bodies_never_answer_500(signed_in, body: str, target: str) -> None:
    """Every JSON-reading route answers odd bodies with the envelope, never a 5xx."""
    client, token, app_id = signed_in
    path = {
        "signup": "/auth/signup",
        "login": "/auth/login",
        "keys": "/api/keys",
        "apps": "/api/apps",
        "codegen": f"/api/apps/{app_id}/codegen",
    }[target]
    response = _post_raw(client, path, body, token)
    assert response.status_code < 500, (path, body[:200], response.get_data(as_text=True))
    if response.status_code >= 400:
        assert set(response.json["error"]) >= {"code", "message"}


# ---- 7. invisible characters in names -----------------------------------------------------

INVISIBLE = [
    "\u200b",
    "\u200e",
    "\u200f",
    "\u061c",
    "\ufeff",
    "\u2060",
    "\u206a",
    "\ufff9",
    "\U000e0041",
    "\u00ad",
    "\ud800",
    "\udc00",
    "\ue000",
    "\U000f0000",
    "\x07",
    "\x85",
    "\u2028",
    "\u202e",
]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_names_refuse_format_control_surrogate_and_private_use(signed_in, char) -> None:
    """Key and app names with any of the review's characters: 422, nothing stored."""
    client, token, _ = signed_in
    body = json.dumps({"name": f"CI{char}deploy"})  # ensure_ascii: surrogates travel escaped
    for path in ("/api/keys", "/api/apps"):
        response = _post_raw(client, path, body, token)
        assert response.status_code == 422, (path, response.json)
        assert list(response.json["error"]["fields"]) == ["name"]
    assert client.get("/api/keys").json["keys"] == []
    assert [a["name"] for a in client.get("/api/apps").json["apps"]] == ["target"]


def test_names_are_normalized_to_nfc(signed_in) -> None:
    """A decomposed name is stored composed: one name looks one way."""
    client, token, _ = signed_in
    created = client.post(
        "/api/keys", json={"name": " Cafe\u0301 "}, headers={"X-CSRF-Token": token}
    )
    assert created.status_code == 201 and created.json["name"] == "Caf\u00e9"
    app = client.post("/api/apps", json={"name": "Cafe\u0301"}, headers={"X-CSRF-Token": token})
    assert app.status_code == 201 and app.json["name"] == "Caf\u00e9"


def test_a_key_pasted_into_a_name_or_prompt_is_refused(signed_in, rdb) -> None:
    """Redis never holds a raw key, not even inside a name (README, "How it works")."""
    client, token, app_id = signed_in
    raw = apikeys.generate()
    for path, body in (
        ("/api/keys", {"name": f"key {raw}"}),
        ("/api/apps", {"name": raw}),
        (f"/api/apps/{app_id}/codegen", {"prompt": f"use {raw} to deploy"}),
    ):
        response = client.post(path, json=body, headers={"X-CSRF-Token": token})
        assert response.status_code == 422, response.json
        assert raw[9:] not in response.get_data(as_text=True)
    dump = " ".join(f"{k} {rdb.dump(k)!r}" for k in rdb.keys("*"))
    assert raw[9:17] not in dump


def test_refused_characters_table_matches_unicode() -> None:
    """schemas.common's table is exactly Cc, Cf, Cs, Co, Zl and Zp of this Python's Unicode."""
    refused = re.compile(f"[{common._REFUSED}]")
    categories = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    wrong = [
        hex(c)
        for c in range(0x110000)
        if bool(refused.match(chr(c))) != (unicodedata.category(chr(c)) in categories)
    ]
    assert wrong == []


# ---- 2. MCP never echoes any part of a key -----------------------------------------------

FRAGMENT = 6  # any 6 characters of a random part (the display prefix shows 4)


def _fragments(raw: str) -> set[str]:
    random_part = raw[len(apikeys.KEY_PREFIX) :]
    return {random_part[i : i + FRAGMENT] for i in range(len(random_part) - FRAGMENT + 1)}


def _leaked(text: str, raw: str) -> list[str]:
    return sorted(f for f in _fragments(raw) if f in text)


class McpOwner:
    """A pro user with a live key, talking raw JSON-RPC to /mcp."""

    def __init__(self, base_url: str, make_user) -> None:
        self.base_url = base_url
        self.session = LiveSession(base_url, make_user("pro").email)
        self.key = self.session.create_key("mcp").json()["key"]
        self.headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        }

    def post(self, raw: str) -> requests.Response:
        return requests.post(
            f"{self.base_url}/mcp", data=raw.encode(), headers=self.headers, timeout=30
        )

    def call(self, tool: str, arguments: dict) -> requests.Response:
        return self.post(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments},
                }
            )
        )


def _placements(secret: str) -> dict[str, str]:
    """A secret at the start, in the middle, at the end of a too-long value, and repeated."""
    return {
        "start": secret + " and then some words" * 10,
        "middle": "Deploy bot " * 10 + secret + " and more" * 10,
        "end": "Deploy bot that authenticates with the key " * 3 + secret,
        "review": "Deploy bot for the staging cluster; authenticates with the key " + secret,
        "repeated": secret * 4,
        "repeated-spaced": " ".join([secret] * 4),
    }


@pytest.mark.gunicorn
def test_mcp_validation_errors_carry_no_part_of_a_key(front: Gunicorn, make_user) -> None:
    """Too-long arguments and malformed params: fields and rules come back, the input never."""
    owner = McpOwner(front.url, make_user)
    secrets = [owner.key, apikeys.generate()]  # the caller's own key, and someone else's
    answers = []
    for secret in secrets:
        for _where, value in _placements(secret).items():
            answers.append(owner.call("create_app", {"name": value}))
            answers.append(owner.call("start_codegen", {"app_id": value, "prompt": value * 2000}))
            answers.append(owner.call("start_deploy", {"app_id": 7, "extra": value}))
            answers.append(
                owner.post(
                    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": value})
                )
            )
            answers.append(
                owner.post(
                    json.dumps({"jsonrpc": "2.0", "id": value, "method": value, "params": {}})
                )
            )
            answers.append(owner.call(value, {}))
            answers.append(
                owner.post(
                    '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
                    f'"params": {{"name": "create_app", "arguments": '
                    f'{{"name": {json.dumps(value)}, "x": [1, }}}}}}'
                )
            )
    assert len(answers) == 2 * 6 * 7
    for response in answers:
        assert response.status_code in (200, 400), response.text
        for secret in secrets:
            assert _leaked(response.text, secret) == [], response.text
    too_long = answers[0].json()["result"]
    assert too_long["isError"] is True
    assert "name" in too_long["content"][0]["text"]
    assert "at most 100 characters" in too_long["content"][0]["text"]
    malformed = answers[3].json()
    assert answers[3].status_code == 400 and "params" in malformed["error"]["message"]
    assert "input_value" not in malformed["error"]["message"]
    logs_text = front.logs()
    for secret in secrets:
        assert _leaked(logs_text, secret) == []


# ---- 5. cross-site requests on /auth ------------------------------------------------------

COOKIE = "genmb_session"
CROSS_SITE = [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},  # a modern browser
    {"Origin": "https://evil.example"},  # Origin only
    {"Sec-Fetch-Site": "cross-site"},  # Sec-Fetch-Site only
    {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.localhost"},
    {"Origin": "null"},  # a sandboxed frame or a redirect chain
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=range(len(CROSS_SITE)))
def test_cross_site_logout_form_is_refused_and_keeps_cookie_and_session(
    hard_app, make_user, headers
) -> None:
    """The review's <form method=POST action=/auth/logout enctype=text/plain>: 403, and
    neither the cookie nor the session is touched."""
    user = make_user("pro")
    client = hard_app.test_client()
    login(client, user.email)
    response = client.post("/auth/logout", data=b"", content_type="text/plain", headers=headers)
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "cross_site_request"
    assert "Set-Cookie" not in response.headers
    assert client.get("/auth/session").status_code == 200


@pytest.mark.parametrize("path", ["/auth/login", "/auth/signup", "/auth/logout"])
def test_every_auth_write_refuses_cross_site(hard_app, make_user, path) -> None:
    """Login CSRF (into the attacker's account) and signup are refused the same way."""
    user = make_user("pro")
    response = hard_app.test_client().post(
        path,
        json={"email": user.email, "password": PASSWORD},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403 and response.json["error"]["code"] == "cross_site_request"
    assert "Set-Cookie" not in response.headers


@pytest.mark.gunicorn
def test_a_sibling_subdomain_is_refused_on_auth_writes(front: Gunicorn, make_user) -> None:
    """Sec-Fetch-Site: same-site (another host of the same site, e.g. a sibling subdomain) is
    not this service: without an Origin to look at, login, signup and logout are still 403
    cross_site_request, set no cookie, and the browser's session lives on."""
    user = make_user("pro")
    session = LiveSession(front.url, user.email)
    sibling = {"Sec-Fetch-Site": "same-site"}
    logout = session.http.post(
        f"{front.url}/auth/logout",
        data=b"",
        headers={**sibling, "Content-Type": "text/plain", "X-CSRF-Token": session.csrf},
        timeout=10,
    )
    assert logout.status_code == 403, logout.text
    assert logout.json()["error"]["code"] == "cross_site_request"
    assert "Set-Cookie" not in logout.headers
    assert session.http.get(f"{front.url}/auth/session", timeout=10).status_code == 200
    for path in ("/auth/login", "/auth/signup"):
        r = requests.post(
            f"{front.url}{path}",
            json={"email": user.email, "password": PASSWORD},
            headers=sibling,
            timeout=10,
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request", r.text
        assert "Set-Cookie" not in r.headers


def test_same_origin_pages_and_scripts_still_work(hard_app, make_user) -> None:
    """The web app's own fetch (same-origin) and non-browser clients (no headers) log in and
    out as before."""
    user = make_user("pro")
    own = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    for headers in (own, {}):
        client = hard_app.test_client()
        r = client.post(
            "/auth/login", json={"email": user.email, "password": PASSWORD}, headers=headers
        )
        assert r.status_code == 200, r.json
        out = client.post("/auth/logout", headers={**headers, "X-CSRF-Token": r.json["csrf_token"]})
        assert out.status_code == 204
        assert f"{COOKIE}=;" in out.headers["Set-Cookie"]  # cleared: the session proved itself
        assert client.get("/auth/session").status_code == 401


def test_logout_clears_no_cookie_without_proof_of_the_session(hard_app, make_user) -> None:
    """No CSRF token: 403 and no Set-Cookie; no live session: 204 and no Set-Cookie."""
    user = make_user("pro")
    client = hard_app.test_client()
    login(client, user.email)
    refused = client.post("/auth/logout")
    assert refused.status_code == 403 and "Set-Cookie" not in refused.headers
    assert client.get("/auth/session").status_code == 200
    stranger = hard_app.test_client()
    stranger.set_cookie(COOKIE, "not-a-live-session")
    nothing = stranger.post("/auth/logout")
    assert nothing.status_code == 204 and "Set-Cookie" not in nothing.headers


# ---- 6. the forwarded address -------------------------------------------------------------


@pytest.mark.gunicorn
def test_only_a_valid_forwarded_ip_gets_a_window_of_its_own(front: Gunicorn, rdb) -> None:
    """TRUSTED_PROXY_COUNT=1 and nothing in front: a key, garbage or ip:port in the header
    count under the TCP peer, are logged once each (redacted), and never reach Redis."""
    raw = apikeys.generate()
    bad = [
        raw,
        "garbage",
        "1.1.1.1:80",
        "[::1]",
        "1.1.1.1.1",
        "::1%",
        f"1.2.3.4 {raw}",
        f"fe80::1%{raw}",
    ]
    remaining = []
    for value in bad:
        r = requests.get(f"{front.url}/api/me", headers={"X-Forwarded-For": value}, timeout=10)
        assert r.status_code == 401
        remaining.append(int(r.headers["X-RateLimit-Remaining"]))
    # One window, the peer's: every request took one from the same count.
    assert remaining == list(range(remaining[0], remaining[0] - len(bad), -1))
    good = requests.get(
        f"{front.url}/api/me", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    assert int(good.headers["X-RateLimit-Remaining"]) > remaining[-1]  # a window of its own
    windows = sorted(k for k in rdb.keys("*") if ":rl:ip:" in k)
    assert windows == ["genmb:rl:ip:127.0.0.1", "genmb:rl:ip:203.0.113.9"], windows
    wait_until(lambda: front.logs().count("proxy.bad_forwarded_for") >= len(bad))
    text = front.logs()
    assert text.count("proxy.bad_forwarded_for") == len(bad)
    assert _leaked(text, raw) == [] and "value=garbage peer=127.0.0.1" in text
    everything = " ".join(f"{k} {rdb.dump(k)!r}" for k in rdb.keys("*"))
    assert _leaked(everything, raw) == []


def test_forwarded_values_are_checked_in_process(redis_url: str) -> None:
    """The same rule without gunicorn: IPv4 and IPv6 accepted, anything else is the peer."""
    client = make_app(redis_url, TRUSTED_PROXY_COUNT=1).test_client()
    seen = {}
    for value in ("198.51.100.7", "2001:db8::1", "nonsense", "1.1.1.1:80"):
        r = client.get(
            "/api/me", headers={"X-Forwarded-For": value}, environ_base={"REMOTE_ADDR": "192.0.2.1"}
        )
        seen[value] = r.status_code
    assert set(seen.values()) == {401}
    windows = sorted(k.rsplit(":rl:ip:", 1)[1] for k in RedisServerKeys(redis_url))
    assert windows == ["192.0.2.1", "198.51.100.7", "2001:db8::/64"], windows


def RedisServerKeys(redis_url: str) -> list[str]:  # noqa: N802 - reads like a value
    """Every rate-limit window key on the test database."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [k for k in client.keys("*") if ":rl:ip:" in k]
    finally:
        client.close()


# ---- 8. headers, the cookie prefix, the Host ------------------------------------------------


def test_api_responses_say_nosniff(hard_app) -> None:
    """Not only pages: API answers, errors and the health check too."""
    client = hard_app.test_client()
    for response in (
        client.get("/api/me"),
        client.get("/auth/session"),
        client.get("/healthz"),
        client.get("/no/such/path"),
        client.post("/auth/login", json={}),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.gunicorn
def test_hsts_over_https_through_the_trusted_proxy_only(front: Gunicorn, redis_url) -> None:
    """HSTS when the trusted proxy says https; never over plain HTTP."""
    https = requests.get(f"{front.url}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert https.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = requests.get(f"{front.url}/api/me", timeout=10)
    assert "Strict-Transport-Security" not in plain.headers
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    odd = requests.get(
        f"{front.url}/healthz", headers={"X-Forwarded-Proto": "javascript"}, timeout=10
    )
    assert "Strict-Transport-Security" not in odd.headers and odd.ok


def test_no_hsts_when_no_proxy_is_trusted(hard_app) -> None:
    """Without a trusted proxy, X-Forwarded-Proto is the client's word: no HSTS."""
    response = hard_app.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


@pytest.fixture
def production(redis_url: str):
    """The app as production runs it (Secure cookie, Host check), with a public URL."""
    return make_app(
        redis_url, TESTING=False, ENV="production", PUBLIC_URL="https://genmb.example.com"
    )


def test_production_cookie_has_the_host_prefix(production, make_user) -> None:
    """__Host-genmb_session: Secure, Path=/, no Domain; and it authenticates."""
    user = make_user("pro")
    client = production.test_client()
    r = client.post(
        "/auth/login",
        json={"email": user.email, "password": PASSWORD},
        base_url="https://localhost",
    )
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("__Host-genmb_session=") and "Secure" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie
    assert client.get("/auth/session", base_url="https://localhost").status_code == 200


@pytest.mark.parametrize(
    "path", ["/login", "/settings", "/api/me", "/auth/session", "/openapi.json", "/mcp"]
)
def test_production_refuses_a_host_outside_the_allow_list(production, path) -> None:
    """An arbitrary Host is 421 host_not_allowed, never reflected; probes are not checked."""
    client = production.test_client()
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 421, response.get_data(as_text=True)[:200]
    assert "evil.example" not in response.get_data(as_text=True)
    assert client.get("/healthz", headers={"Host": "10.0.0.5:8000"}).status_code == 200
    # The public host with its default port written out is the public host.
    assert client.get(path, headers={"Host": "genmb.example.com:443"}).status_code != 421


def test_the_mcp_panel_url_comes_from_public_url(production) -> None:
    """Pages show $PUBLIC_URL/mcp whatever allowed Host the request used."""
    client = production.test_client()
    for host in ("genmb.example.com", "localhost:8000", "127.0.0.1"):
        page = client.get("/login", headers={"Host": host}).get_data(as_text=True)
        assert 'data-mcp-url="https://genmb.example.com/mcp"' in page, host


# ---- 9. apps: a cap per plan, and pages --------------------------------------------------


def test_the_reviews_150_creates_stop_at_the_plans_cap(hard_app, make_user) -> None:
    """MAX_APPS_PRO (100 by default): 100 created, then 409 app_limit_reached."""
    client = hard_app.test_client()
    token = login(client, make_user("pro").email)
    codes = [
        client.post(
            "/api/apps", json={"name": f"app {i}"}, headers={"X-CSRF-Token": token}
        ).status_code
        for i in range(150)
    ]
    assert codes == [201] * 100 + [409] * 50
    refused = client.post("/api/apps", json={"name": "one more"}, headers={"X-CSRF-Token": token})
    assert refused.json["error"]["code"] == "app_limit_reached"
    first = client.get("/api/apps").json
    assert len(first["apps"]) == 100 and "next_cursor" not in first


def test_app_caps_come_from_the_environment(redis_url, make_user) -> None:
    """MAX_APPS_<PLAN> configures each plan's cap; deleting an app frees a place."""
    plans = plans_from_env({"MAX_APPS_FREE": "2", "MAX_APPS_PRO": "3"})
    app = make_app(redis_url, PLANS=plans)
    for plan, cap in (("free", 2), ("pro", 3)):
        client = app.test_client()
        token = login(client, make_user(plan).email)
        made = [
            client.post("/api/apps", json={"name": f"a{i}"}, headers={"X-CSRF-Token": token})
            for i in range(cap + 2)
        ]
        assert [r.status_code for r in made] == [201] * cap + [409, 409], plan
        client.delete(f"/api/apps/{made[0].json['id']}", headers={"X-CSRF-Token": token})
        again = client.post("/api/apps", json={"name": "again"}, headers={"X-CSRF-Token": token})
        assert again.status_code == 201


@pytest.mark.gunicorn
def test_racing_creates_never_pass_the_cap(front: Gunicorn, make_user) -> None:
    """30 concurrent creates (10 at a time) on 2 workers for a free user (cap 10): exactly 10."""
    session = LiveSession(front.url, make_user("free").email)

    def create(i: int) -> int:
        return session.http.post(
            f"{front.url}/api/apps",
            json={"name": f"race {i}"},
            headers={"X-CSRF-Token": session.csrf},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(create, range(30)))
    assert sorted(codes) == [201] * 10 + [409] * 20
    listed = session.http.get(f"{front.url}/api/apps", timeout=10).json()["apps"]
    assert len(listed) == 10


@pytest.mark.gunicorn
def test_mcp_create_app_shares_the_cap(front: Gunicorn, make_user, storage) -> None:
    """At the cap, the MCP tool answers a tool error with the same code."""
    owner = McpOwner(front.url, make_user)
    user_id = owner.session.http.get(f"{front.url}/api/me", timeout=10).json()["id"]
    for i in range(100):
        apps.create(storage, user_id, f"seeded {i}")
    result = owner.call("create_app", {"name": "one too many"}).json()["result"]
    assert result["isError"] is True
    assert result["structuredContent"]["error"]["code"] == "app_limit_reached"


def test_pages_walk_every_app_once_in_order(hard_app, make_user, storage) -> None:
    """?limit=N&cursor=...: every app exactly once, oldest first; limit at most 100."""
    user = make_user("business")
    for i in range(150):
        apps.create(storage, user.id, f"app {i:03}")
    order = [a.name for a in apps.list_for_user(storage, user.id)]  # (created_at, id)
    client = hard_app.test_client()
    token = login(client, user.email)
    first = client.get("/api/apps").json
    assert len(first["apps"]) == 100 and first["next_cursor"]
    second = client.get(f"/api/apps?cursor={first['next_cursor']}").json
    assert len(second["apps"]) == 50 and "next_cursor" not in second
    seen, cursor, pages = [], None, 0
    while pages < 30:  # bounded: 150 / 7 = 22 pages
        query = f"?limit=7&cursor={cursor}" if cursor else "?limit=7"
        page = client.get(f"/api/apps{query}").json
        seen += [a["name"] for a in page["apps"]]
        pages += 1
        cursor = page.get("next_cursor")
        if cursor is None:
            break
        if pages == 3:  # the app the cursor points at goes away: the walk goes on
            doomed = page["apps"][-1]
            client.delete(f"/api/apps/{doomed['id']}", headers={"X-CSRF-Token": token})
            order.remove(doomed["name"])
            seen.remove(doomed["name"])
    assert pages == 22
    assert seen == order and len(seen) == 149
    for bad in ("limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=2026-01-01~app_x"):
        r = client.get(f"/api/apps?{bad}")
        assert r.status_code == 422 and r.json["error"]["code"] == "validation_error", bad
        assert set(r.json["error"]["fields"]) <= {"limit", "cursor"}


# ---- 11. the embedded store runs exactly one worker ---------------------------------------


def _logins_all_succeed(base_url: str, email: str) -> list[int]:
    """Sign up once, then 30 logins, 10 at a time; their status codes."""
    r = requests.post(
        f"{base_url}/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 201, r.text

    def one(_: int) -> int:
        return requests.post(
            f"{base_url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
        ).status_code

    with ThreadPoolExecutor(10) as pool:
        return list(pool.map(one, range(30)))


@pytest.mark.gunicorn
def test_direct_gunicorn_start_with_the_embedded_store_runs_one_worker(tmp_path) -> None:
    """`gunicorn -c deploy/gunicorn.conf.py --workers 4` with REDIS_URL=memory://: one worker
    (one store), said at start-up; 30 concurrent logins all succeed (split brain: 15 x 401)."""
    server = app_server("memory://", tmp_path / "log", workers=4).start()
    try:
        codes = _logins_all_succeed(server.url, "embedded@example.test")
        text = server.logs()
    finally:
        server.stop()
    assert codes == [200] * 30, codes
    assert "embedded in-process store (REDIS_URL=memory://): exactly 1 worker" in text
    assert text.count("Booting worker") == 1, text


@pytest.mark.gunicorn
def test_sigttin_adds_no_second_worker_with_the_embedded_store(tmp_path) -> None:
    """SIGTTIN asks gunicorn's master for one more worker: with REDIS_URL=memory:// it stays
    at one (a second worker would hold a second store), and concurrent logins all succeed."""
    server = app_server("memory://", tmp_path / "log", workers=1).start()
    try:
        master = server.process.pid
        for _ in range(2):
            os.kill(master, signal.SIGTTIN)
        time.sleep(3)  # the master adds a requested worker within about a second
        workers = worker_pids(master)
        codes = _logins_all_succeed(server.url, "ttin@example.test")
        text = server.logs()
    finally:
        server.stop()
    assert len(workers) == 1, workers
    assert codes == [200] * 30, codes
    assert text.count("Booting worker") == 1, text


@pytest.mark.gunicorn
def test_make_run_with_memory_url_runs_one_worker(tmp_path) -> None:
    """scripts/run.sh (make run) with REDIS_URL=memory:// and WORKERS=3: one worker, and the
    start-up line says why; it also says gunicorn alone belongs behind the proxy."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": "memory://",
        "WORKERS": "3",
        "PORT": str(port),
        "PASSWORD_SCRYPT_N": "1024",
        "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": "run-test",
    }
    out_path = tmp_path / "run.out"
    process = start_in_own_session([str(ROOT / "scripts" / "run.sh")], ROOT, env, out_path)
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=2).ok, timeout=60)
        codes = _logins_all_succeed(url, "make-run@example.test")
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the script's own session
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    text = out_path.read_text(errors="replace")
    assert codes == [200] * 30, codes
    assert "with 1 worker(s) (embedded store: exactly one)" in text, text
    assert "must sit behind the nginx proxy" in text, text
    assert text.count("Booting worker") == 1, text


# ---- the same reproductions through the nginx template (make stack's topology) ----------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, two gunicorn instances, nginx in front: as the reviewers' second target."""
    require_nginx()
    with Stack(
        tmp_path_factory.mktemp("hardening-stack") / "var", workers=2, env=stack_env()
    ) as running:
        yield running


@pytest.mark.gunicorn
def test_reproductions_through_nginx_come_back_clean(stack: Stack) -> None:
    """Forged log lines, XFF, the cross-site logout, odd bodies and MCP echoes via nginx:
    no forged line in any log, no key fragment in any answer, log line or Redis key."""
    whole_and_empty(stack)
    url = stack.url
    user = f"pro-{time.monotonic_ns()}@example.test"
    admin = stack.redis_client()
    try:
        users.create(Storage(admin, KeyNames()), user, PASSWORD, "pro", 1024)
    finally:
        admin.close()
    owner = McpOwner(url, lambda plan: users.User("", user, plan))
    raw = owner.key
    answers = []
    # 1. forged access-log lines, on an API path and a page path
    for path in (f"/api/x%0a{FORGED}", f"/settings%0d%0a{FORGED}"):
        answers.append(requests.get(url + path, timeout=10))
    # 6. the key as X-Forwarded-For: nginx appends the peer, which is what counts
    answers.append(requests.get(f"{url}/api/me", headers={"X-Forwarded-For": raw}, timeout=10))
    # 5. the cross-site logout form
    form = owner.session.http.post(
        f"{url}/auth/logout",
        data=b"",
        headers={
            "Content-Type": "text/plain",
            "Origin": "https://evil.example",
            "Sec-Fetch-Site": "cross-site",
        },
        timeout=10,
    )
    assert form.status_code == 403 and "Set-Cookie" not in form.headers
    assert owner.session.http.get(f"{url}/auth/session", timeout=10).status_code == 200
    # 4. odd bodies
    for path, body in REVIEW_BODIES[:2]:
        r = requests.post(
            url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert r.status_code in (400, 422) and r.json()["error"]["code"] == "validation_error"
        answers.append(r)
    # 2. MCP echoes
    for value in _placements(raw).values():
        answers.append(owner.call("create_app", {"name": value}))
        answers.append(
            owner.post(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": value})
            )
        )
    for response in answers:
        assert response.status_code < 500, response.text
        assert _leaked(response.text, raw) == [], response.text
    time.sleep(0.5)  # the instances' log lines are written after the answers
    for part in stack.apps.values():
        lines = part.log.read_text(errors="replace").splitlines()
        assert not any(line.startswith("2026-12-01 09:99:99") for line in lines)
        assert [line for line in lines if not LINE_SHAPES.match(line)] == []
        assert _leaked("\n".join(lines), raw) == []
    admin = stack.redis_client()
    try:
        everything = " ".join(f"{k} {admin.dump(k)!r}" for k in admin.keys("*"))
    finally:
        admin.close()
    assert _leaked(everything, raw) == []


@pytest.mark.gunicorn
def test_nginx_access_log_never_holds_a_key_from_the_path(stack: Stack) -> None:
    """A key pasted into a path (raw, percent-encoded, twice) reaches nginx's access log cut
    at its display prefix, as the app's own access log has it: no fragment of it is logged."""
    raw = apikeys.generate()
    encoded = raw.replace("_", "%5F")
    log = stack.dir / "nginx-access.log"
    before = len(log.read_text(errors="replace").splitlines())
    paths = [
        f"/api/keys/{raw}",
        f"/docs/{raw}",
        f"/api/x/{encoded}",
        f"/api/x/{raw}/{raw}",
        f"/api/me?api_key={raw}",
    ]
    for path in paths:
        assert requests.get(stack.url + path, timeout=10).status_code in (401, 404)
    wait_until(lambda: len(log.read_text(errors="replace").splitlines()) >= before + len(paths))
    lines = log.read_text(errors="replace").splitlines()[before:]
    assert len(lines) == len(paths), lines
    assert _leaked("\n".join(lines), raw) == [], lines
    assert f'"GET /api/keys/{raw[:13]}...[redacted] HTTP/1.1"' in lines[0], lines[0]
    assert '"GET /api/me HTTP/1.1"' in lines[-1], lines[-1]


@pytest.mark.gunicorn
def test_mcp_create_app_uses_the_same_name_validator(front: Gunicorn, make_user) -> None:
    """Through MCP, the REST validator refuses the same characters (one validator)."""
    owner = McpOwner(front.url, make_user)
    for char in ("\u200b", "\u061c", "\U000e0041", "\ufeff"):
        result = owner.call("create_app", {"name": f"CI{char}deploy"}).json()["result"]
        assert result["isError"] is True
        assert result["structuredContent"]["error"]["code"] == "validation_error"
        assert list(result["structuredContent"]["error"]["fields"]) == ["name"]
    made = owner.call("create_app", {"name": "Cafe\u0301"}).json()["result"]
    assert made["structuredContent"]["name"] == "Caf\u00e9"


def test_rest_validation_errors_never_echo_a_key_either(signed_in) -> None:
    """An unknown field named by a key, or a key in a field: the answer holds none of it."""
    client, token, _ = signed_in
    raw = apikeys.generate()
    answers = [
        client.post("/api/apps", json={raw: 1, "name": "x"}, headers={"X-CSRF-Token": token}),
        client.post(
            "/api/keys", json={"name": "ok", f"x{raw}": [raw]}, headers={"X-CSRF-Token": token}
        ),
        client.post("/auth/signup", json={"email": raw, "password": raw}),
        client.post("/auth/login", json={"email": f"{raw}@example.test", "password": raw}),
        client.get(f"/api/apps?limit={raw}&cursor={raw}"),
        client.get(f"/api/apps/{raw}"),
    ]
    for response in answers:
        assert response.status_code in (401, 404, 422), response.json
        assert _leaked(response.get_data(as_text=True), raw) == [], response.json
        assert raw[9:13] not in response.get_data(as_text=True)


def test_pages_never_reflect_a_key_from_the_path_or_host(hard_app, make_user) -> None:
    """A key pasted into a page URL or the Host header does not come back in the page."""
    raw = apikeys.generate()
    anonymous = hard_app.test_client()
    user = make_user("pro")
    member = hard_app.test_client()
    login(member, user.email)
    answers = [
        anonymous.get(f"/apps/{raw}"),
        anonymous.get(f"/login?next=/apps/{raw}"),
        member.get(f"/apps/{raw}"),
        member.get("/settings", headers={"Host": raw}),
    ]
    for response in answers:
        text = response.get_data(as_text=True) + str(response.headers)
        assert response.status_code in (200, 302), response.status_code
        assert _leaked(text, raw) == [], text
