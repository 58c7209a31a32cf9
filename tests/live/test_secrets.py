"""README, "How it works": Redis never holds a raw key or its random part, and no log line contains
one.

The live test drives gunicorn (4 workers, real redis-server) through a user's whole key life
— create, use, revoke — and through every way a key can be presented wrongly, then reads back
EVERYTHING: every Redis key name and value in every database, the commands Redis was sent
(its slow log, set to record every command), and the whole gunicorn log. It also checks that
the log did record those requests, so that silence cannot pass for redaction.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import socket
import time
from collections.abc import Iterator

import pytest
import redis
import requests

import logs
from deploy.local_redis import RedisServer
from deploy.processes import LOOPBACK, Gunicorn
from store import apikeys
from store.names import KeyNames
from tests.helpers import LiveSession, make_app

pytestmark = [pytest.mark.integration]

KEY_PREFIX = apikeys.KEY_PREFIX
WINDOW = 8  # any 8 characters of a random part: more than the 4 the display prefix shows


def _fragments(raw: str) -> set[str]:
    """The raw key, its random part, and every WINDOW-long run of the random part."""
    random_part = raw[len(KEY_PREFIX) :]
    runs = {random_part[i : i + WINDOW] for i in range(len(random_part) - WINDOW + 1)}
    return {raw, random_part, *runs}


def _leaks(text: str, secrets: list[str]) -> list[str]:
    """Which secrets (or fragments of them) occur in text."""
    return sorted({f for s in secrets for f in _fragments(s) if f in text})


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# ---- reading everything Redis holds -----------------------------------------------------


def _databases(server: RedisServer) -> list[int]:
    """The numbers of the databases that hold at least one key."""
    client = server.client()
    info = client.info("keyspace")
    client.close()
    return sorted(int(name[2:]) for name in info if name.startswith("db"))


def dump_redis(server: RedisServer) -> list[str]:
    """Every key name and every value/member/field/score of every key, in every database."""
    out: list[str] = []
    for db in _databases(server):
        r = redis.Redis(host=LOOPBACK, port=server.port, db=db, socket_timeout=5)
        for name in r.scan_iter(count=500):
            out.append(name.decode(errors="replace"))
            kind = r.type(name).decode()
            if kind == "string":
                values = [r.get(name)]
            elif kind == "hash":
                values = [x for pair in r.hgetall(name).items() for x in pair]
            elif kind == "list":
                values = r.lrange(name, 0, -1)
            elif kind == "set":
                values = list(r.smembers(name))
            elif kind == "zset":
                values = [
                    x
                    for m, score in r.zrange(name, 0, -1, withscores=True)
                    for x in (m, str(score).encode())
                ]
            elif kind == "stream":
                values = [
                    x for _id, fields in r.xrange(name) for pair in fields.items() for x in pair
                ]
            elif kind == "none":  # expired between SCAN and TYPE
                values = []
            else:
                pytest.fail(f"unexpected Redis type {kind!r} for {name!r}: teach dump_redis")
            out.extend(v.decode(errors="replace") for v in values if v is not None)
        r.close()
    return out


def _slowlog_args(server: RedisServer) -> list[str]:
    """The arguments of every command in the slow log (set to record every command)."""
    client = server.client()
    entries = client.slowlog_get(100_000)
    client.close()
    commands = [e.get("command", b"") for e in entries]
    return [c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in commands]


@pytest.fixture
def command_log(redis_server: RedisServer, redis_url: str) -> Iterator[RedisServer]:
    """Make the shared redis-server's slow log record every command for this test only."""
    client = redis_server.client()
    saved = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()
    try:
        yield redis_server
    finally:
        for name, value in saved.items():
            client.config_set(name, value)
        client.slowlog_reset()
        client.close()


# ---- the live run -----------------------------------------------------------------------


def _wait_for_log(live: Gunicorn, needles: list[str], timeout: float = 10.0) -> str:
    """Poll (bounded) until every needle is in the log (stdout is flushed asynchronously)."""
    deadline = time.monotonic() + timeout
    text = live.logs()
    while time.monotonic() < deadline:
        text = live.logs()
        if all(n in text for n in needles):
            return text
        time.sleep(0.1)
    missing = [n for n in needles if n not in text]
    pytest.fail(f"log lacks {missing!r}; logging may have stopped. Tail:\n{text[-3000:]}")


@pytest.mark.gunicorn
def test_no_raw_key_in_redis_or_logs_after_a_full_key_life(
    live: Gunicorn, make_user, command_log: RedisServer
) -> None:
    """Create/use/revoke keys and present them badly: nothing stores or logs a raw key."""
    base = live.url
    user = make_user("pro")
    session = LiveSession(base, user.email)

    created = []
    for i in range(4):
        r = session.create_key(f"secret-test key {i}")
        assert r.status_code == 201, r.text
        created.append(r.json())
    raws = [k["key"] for k in created]
    assert all(apikeys.is_well_formed(raw) for raw in raws)

    # Use every key, with both headers.
    for raw in raws:
        for headers in ({"Authorization": f"Bearer {raw}"}, {"X-MCP-API-Key": raw}):
            r = requests.get(f"{base}/api/me", headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["auth"]["method"] == "api_key"
    auth0 = {"Authorization": f"Bearer {raws[0]}"}
    r = requests.post(f"{base}/api/apps", json={"name": "leak check"}, headers=auth0, timeout=10)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    r = requests.post(
        f"{base}/api/apps/{app_id}/codegen",
        json={"prompt": "a todo app"},
        headers={"X-MCP-API-Key": raws[1]},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    r = requests.get(f"{base}/api/apps", headers=auth0, timeout=10)
    assert r.status_code == 200 and len(r.json()["apps"]) == 1, r.text

    # Revoke one, then use it: 401.
    revoked = created[3]
    assert session.delete_key(revoked["id"]).status_code == 204
    r = requests.get(
        f"{base}/api/me", headers={"Authorization": f"Bearer {revoked['key']}"}, timeout=10
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text

    # Malformed: a live key with one character too many (the whole raw key is inside it).
    malformed = raws[2] + "x"
    r = requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {malformed}"}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text

    # Well-formed but unknown.
    unknown = apikeys.generate()
    r = requests.get(f"{base}/api/me", headers={"X-MCP-API-Key": unknown}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text

    # In the query string: never read, so no credentials at all.
    r = requests.get(f"{base}/api/me", params={"api_key": raws[0]}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_credentials", r.text

    # In a header that the access log does record (User-Agent), and as a login password.
    r = requests.get(
        f"{base}/api/me", headers={**auth0, "User-Agent": f"cli/{raws[0]}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    r = requests.post(
        f"{base}/auth/login", json={"email": user.email, "password": raws[0]}, timeout=10
    )
    assert r.status_code == 401, r.text
    assert len(session.keys()) == 3  # the live ones, still listed

    secrets = [*raws, unknown, malformed]

    # ---- Redis: every command it was sent so far (arguments included) ----------------------
    # Only digests: every key above came in a header, and the app hashes before it looks up.
    commands = _slowlog_args(command_log)
    assert any(_digest(raws[0]) in c for c in commands)  # the lookups by digest were recorded
    assert [c for c in commands if _leaks(c, secrets)] == [], "a raw key was sent to Redis"

    # In the URL path: not a key id, so 404; with an API key, 404 for an app id.
    # (That these ids reach Redis verbatim is test_key_in_url_path_never_reaches_redis.)
    r = session.delete_key(raws[1])
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    r = requests.get(f"{base}/api/apps/{raws[1]}", headers=auth0, timeout=10)
    assert r.status_code == 404, r.text

    # ---- Redis: every key name and value, in every database --------------------------------
    dumped = dump_redis(command_log)
    blob = "\n".join(dumped)
    # The dump really covers the key records: each live key is there under its digest...
    for key in created[:3]:
        assert KeyNames().api_key(user.id, _digest(key["key"])) in dumped
        assert key["prefix"] in dumped and key["id"] in dumped
    # ...and the revoked one is gone.
    assert KeyNames().api_key(user.id, _digest(revoked["key"])) not in dumped
    assert _leaks(blob, secrets) == [], "Redis holds raw key material"

    # ---- Logs: the requests were recorded, redacted ----------------------------------------
    redacted_path = f"/api/keys/{raws[1][:13]}…[redacted]"
    needles = [
        '"GET /api/me HTTP/1.1" 200',
        '"GET /api/me HTTP/1.1" 401',  # the query string is not logged at all
        f'"DELETE {redacted_path} HTTP/1.1" 404',
        f'"cli/{raws[0][:13]}…[redacted]"',
        *(f"api_key.created key_id={k['id']} prefix={k['prefix']}" for k in created),
        f"api_key.revoked key_id={revoked['id']} prefix={revoked['prefix']}",
        f"auth.failed reason=invalid_api_key prefix={revoked['prefix']}",
        f"auth.failed reason=invalid_api_key prefix={unknown[:13]} ",
        "auth.failed reason=invalid_api_key ip=",  # the malformed one: no prefix at all
        "auth.failed reason=invalid_credentials",
    ]
    text = _wait_for_log(live, needles)
    leaked = _leaks(text, secrets)
    lines = [line for line in text.splitlines() if any(f in line for f in leaked)]
    assert leaked == [], f"log lines with raw key material: {lines[:5]}"
    assert "Logging error" not in text  # a handler that choked would drop lines silently
    session.http.close()


@pytest.mark.gunicorn
def test_key_in_url_path_never_reaches_redis(
    live: Gunicorn, make_user, command_log: RedisServer
) -> None:
    """A raw key sent where an id belongs (the URL path) gets 404 without reaching Redis."""
    user = make_user("pro")
    session = LiveSession(live.url, user.email)
    r = session.create_key("pasted in the wrong place")
    assert r.status_code == 201, r.text
    raw = r.json()["key"]

    r = session.delete_key(raw)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    r = requests.get(f"{live.url}/api/apps/{raw}", headers={"X-MCP-API-Key": raw}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text

    commands = _slowlog_args(command_log)
    assert any(_digest(raw) in c for c in commands)  # the key's own lookup, by digest
    session.http.close()
    assert [c for c in commands if _leaks(c, [raw])] == [], "a raw key was sent to Redis"


# ---- in-process: an exception whose message carries a key ----------------------------


@pytest.fixture
def app_log() -> Iterator[io.StringIO]:
    """Point the app's own stdout handler (made by logs.configure_logging) at a buffer."""
    make_app("memory://")  # configure_logging runs in create_app
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_genmb", False)]
    assert len(handlers) == 1, logging.getLogger().handlers
    handler = handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    assert any(isinstance(f, logs.KeyRedactingFilter) for f in handler.filters)
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(old)


def test_exception_carrying_a_key_is_logged_redacted_with_its_traceback(
    redis_url: str, app_log: io.StringIO
) -> None:
    """logger.exception and Flask's unhandled-error log redact keys in message and traceback."""
    raw = apikeys.generate()
    cause_key = apikeys.generate()
    app = make_app(redis_url, TESTING=False)  # not TESTING: Flask logs the 500 itself
    view_log = logging.getLogger("genmb.test_secrets")

    @app.route("/test-handled")
    def handled() -> str:
        try:
            try:
                raise KeyError(cause_key)
            except KeyError as exc:
                raise RuntimeError(f"upstream rejected {raw}") from exc
        except RuntimeError:
            view_log.exception("call failed for key %s", raw)
        return "handled"

    @app.route("/test-unhandled/<token>")
    def unhandled(token: str) -> str:
        raise ValueError(f"cannot use {token} (also {raw})")

    client = app.test_client()
    assert client.get("/test-handled").status_code == 200
    r = client.get(f"/test-unhandled/{raw}")
    assert r.status_code == 500
    assert r.json == {"error": {"code": "internal_error", "message": "Internal server error."}}

    text = app_log.getvalue()
    shown = f"{raw[:13]}…[redacted]"
    # The records are there, with their tracebacks, and the key is redacted in each part.
    assert f"call failed for key {shown}" in text, text
    assert f"RuntimeError: upstream rejected {shown}" in text, text
    assert f"KeyError: '{cause_key[:13]}…[redacted]'" in text, text
    assert "The above exception was the direct cause" in text, text
    assert f"Exception on /test-unhandled/{shown} [GET]" in text, text
    assert f"ValueError: cannot use {shown} (also {shown})" in text, text
    assert text.count("Traceback (most recent call last)") == 3, text
    assert _leaks(text, [raw, cause_key]) == [], text
    assert re.search(r"genmb_sk_[A-Za-z0-9_-]{5,}", text) is None, text


@pytest.mark.gunicorn
def test_percent_encoded_and_malformed_requests_never_echo_or_log_a_key(live, redis_url):
    """A key percent-encoded into a URL is redacted in the access log; gunicorn's own 400
    for a malformed header answers our JSON envelope and does not quote the header back."""
    raw = apikeys.generate()
    encoded = raw.replace("_", "%5F")
    r = requests.get(f"{live.url}/api/keys/{encoded}?k={encoded}", timeout=10)
    assert r.status_code == 401 and raw not in r.text
    with socket.create_connection((LOOPBACK, live.port), timeout=10) as sock:
        sock.sendall(f"GET /api/me HTTP/1.1\r\nHost: x\r\n{raw}(: y\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.decode("latin1").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400")
    assert "Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert raw not in answer.decode("latin1")
    text = _wait_for_log(live, [f'"GET /api/keys/{raw[:13]}…[redacted] HTTP/1.1" 401'])
    assert raw not in text and encoded not in text
