"""The metrics exposition: one scrape of an instance, and the METRICS_BIND listener.

scrape() reads what every worker wrote (prometheus_client's multiprocess mode) when
PROMETHEUS_MULTIPROC_DIR is set, else this process's own registry (the Flask test client).
The METRICS_BIND listener runs in a thread of gunicorn's master (started by
deploy/gunicorn.conf.py): it shares no socket with the app, so nothing a client reaches
through the app's address or nginx can get to it, and it costs the workers nothing.
This module never defines a metric (the master writes no values of its own).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
# The classic text format (what generate_latest writes): every Prometheus version reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def scrape() -> bytes:
    """The instance's metrics in the Prometheus text format."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


def _json(start_response: Callable[..., Any], status: str, code: str, message: str) -> list:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """GET /metrics; anything else answers in the API's JSON error envelope."""
    if environ.get("PATH_INFO") != METRICS_PATH:
        return _json(start_response, "404 Not Found", "not_found", "Not found.")
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _json(
            start_response, "405 Method Not Allowed", "method_not_allowed", "Method not allowed."
        )
    body = scrape()
    start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
    return [body]


class _QuietHandler(WSGIRequestHandler):
    """No access line per scrape on stderr (one every few seconds is noise); a client that
    stops sending is dropped after a while instead of holding a thread."""

    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Say nothing."""


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per connection: a slow client cannot hold up the next scrape."""

    daemon_threads = True


class _Server6(_Server):
    """The same server on an IPv6 address."""

    address_family = socket.AF_INET6


def serve(host: str, port: int) -> WSGIServer:
    """Listen on host:port and serve scrapes from a daemon thread; returns the server."""
    server_class = _Server6 if ":" in host else _Server
    server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="genmb-metrics", daemon=True).start()
    return server
