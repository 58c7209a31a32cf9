"""Issue #11: what an outside security review found, each reproduction replayed as a test.

The gunicorn tests run the app with TRUSTED_PROXY_COUNT=1 (as behind the nginx template) and
nothing in front, so a client can send X-Forwarded-For itself, as the reviewers did.
"""

from __future__ import annotations

import io
import logging
import re
import socket
from collections.abc import Iterator

import pytest
import requests

import logs
from tests.servers import LOOPBACK, Gunicorn, RedisServer, wait_until

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def proxied(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gunicorn]:
    """gunicorn (2 workers) trusting one proxy in front, with nothing in front."""
    server = Gunicorn(redis_server.url, tmp_path_factory.mktemp("hardening") / "log", 2,
                      env={"TRUSTED_PROXY_COUNT": "1"}).start()
    yield server
    server.stop()


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
FORGED = ("2026-12-01%2009:99:99,000%20INFO%20[1]%20genmb.security:%20auth.login"
          "%20user_id=usr_admin%20ip=6.6.6.6")


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
        for text in ("a\nb", "a\r\nb", "a\rb", "a\u2028b\u2029c", "a\x85b\x1cc\x1dd\x1ee",
                     "a\x1b[2Jb", "lone \ud800 surrogate", "a\x00b\x0bc\x0cd"):
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
    for path in (f"/api/x%0a{FORGED}", f"/settings%0d%0a{FORGED}", f"/auth/x%0d{FORGED}",
                 f"/api/x%e2%80%a8{FORGED}", f"/x%1b[2J%0a{FORGED}"):
        assert requests.get(front.url + path, timeout=10).status_code in (401, 404)
    # A raw socket too: nothing re-encodes what is sent.
    with socket.create_connection((LOOPBACK, front.port), timeout=10) as sock:
        sock.sendall(f"GET /api/y%0a{FORGED} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                     .encode())
        while sock.recv(65536):
            pass
    wait_until(lambda: front.logs().count("usr_admin") >= 6)
    lines = front.logs().splitlines()[before:]
    assert sum("usr_admin" in line for line in lines) == 6, lines
    assert [line for line in lines if not LINE_SHAPES.match(line)] == []
    assert not any(line.startswith("2026-12-01 09:99:99") for line in lines)
