"""Issue #15: the lean access line (deploy/access_log.py) is byte for byte gunicorn's, and
still never carries a raw key."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from deploy.access_log import LeanAccess, format_atoms
from logs import install_filter
from store import apikeys

DEPLOYED_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
RAW = apikeys.generate()


@pytest.fixture(autouse=True)
def _restore_gunicorn_loggers():
    """gunicorn's Logger configures the process's gunicorn.* loggers: put them back after."""
    saved = {
        name: (list(log.handlers), list(log.filters), log.propagate, log.level)
        for name in ("gunicorn.access", "gunicorn.error")
        for log in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, filters, propagate, level) in saved.items():
        log = logging.getLogger(name)
        log.handlers, log.filters, log.propagate = handlers, filters, propagate
        log.setLevel(level)


class Lines(logging.Handler):
    """Collects the formatted lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def access_logger(cls: type[Logger], access_format: str) -> tuple[Logger, Lines]:
    """A gunicorn logger of `cls` with the deployed redaction filter, writing into a list."""
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_format)
    logger = cls(cfg)
    lines = Lines()
    logger.access_log.handlers = [lines]
    install_filter(logger.access_log)
    return logger, lines


class Response:
    """What gunicorn hands its logger: a status and the bytes sent."""

    def __init__(self, status: str, sent: int | None) -> None:
        self.status, self.sent = status, sent
        self.headers = [("Content-Type", "application/json"), ("X-Key", RAW)]


class Request:
    """gunicorn's parsed request: its headers, names upper-cased."""

    def __init__(self, agent: str | None) -> None:
        self.headers = [("AUTHORIZATION", f"Bearer {RAW}")]
        if agent is not None:
            self.headers.append(("USER-AGENT", agent))


def environ(path: str, agent: str | None, method: str = "GET") -> dict[str, str]:
    """A WSGI environ as gunicorn builds it."""
    env = {
        "REQUEST_METHOD": method,
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_AUTHORIZATION": f"Bearer {RAW}",
    }
    if agent is not None:
        env["HTTP_USER_AGENT"] = agent
    return env


REQUESTS = [
    ("/api/me", "curl/8.0", "200 OK", 221),
    ("/api/me", None, "401 UNAUTHORIZED", 98),
    (f"/api/keys/{RAW}", f"cli/{RAW}", "404 NOT FOUND", 60),
    (f"/api/keys/{RAW.replace('_', '%5F')}", 'a "quoted" agent', "404 NOT FOUND", None),
    ('/api/"odd"\n\x1b[31mpath\u2028', "line\nbreak", "429 TOO MANY REQUESTS", 0),
]
FORMATS = [
    DEPLOYED_FORMAT,
    '%(h)s %(l)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(T)s %(D)s %(L)s %(q)s',
    '%(h)s %(t)s "%(r)s" %(s)s "%({x-key}o)s" "%({authorization}i)s"',  # gunicorn's own dict
]


def lines_of(cls: type[Logger], access_format: str) -> list[str]:
    """Every request of REQUESTS logged by a logger of `cls` (both share gunicorn's logging
    loggers, so one at a time); the time atom cut off, if the format has one."""
    logger, lines = access_logger(cls, access_format)
    for path, agent, status, sent in REQUESTS:
        logger.access(
            Response(status, sent), Request(agent), environ(path, agent), timedelta(0, 1, 2345)
        )
    if "%(t)s" in access_format:
        return [line.split("[", 1)[0] for line in lines.lines]
    return lines.lines


@pytest.mark.parametrize("access_format", FORMATS)
def test_lean_line_is_gunicorns_line_and_redacted(access_format):
    """The same line as gunicorn's Logger writes, for odd paths, agents and statuses; no raw
    key in any of them."""
    lean = lines_of(LeanAccess, access_format)
    assert lean == lines_of(Logger, access_format)
    assert len(lean) == len(REQUESTS)
    assert all(RAW not in line and RAW[9:] not in line for line in lean)
    if "%(t)s" not in access_format:  # the path is in the line, redacted
        assert f"/api/keys/{RAW[:13]}…[redacted]" in lean[2], lean[2]


def test_only_known_atoms_take_the_lean_path():
    """Header, environ and time atoms go to gunicorn's own dict."""
    assert format_atoms(DEPLOYED_FORMAT) == ("h", "m", "U", "H", "s", "b", "M", "a")
    assert format_atoms("%(t)s") is None
    assert format_atoms("%({authorization}i)s") is None
    assert format_atoms("no atoms at all") is None
