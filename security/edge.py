"""What the request says about where it came from, checked at the edge of the app.

- The client address from X-Forwarded-For (TRUSTED_PROXY_COUNT > 0) is used only when it is
  an IP address: anything else would become a rate-limit window of its own (and a Redis key
  name holding whatever the client wrote). It counts under the TCP peer instead.
- In production, the Host header must be one the service answers to (PUBLIC_URL's host or
  MCP_ALLOWED_HOSTS): it is never reflected into a page from an arbitrary value.
- Every response says nosniff; HSTS goes out when the request came over HTTPS through a
  trusted proxy.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from errors import api_error
from logs import redact

log = logging.getLogger("genmb.security")

HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts are not ours to decide
UNCHECKED_HOST_PATHS = ("/healthz", "/readyz", "/metrics")  # probes address instances by IP
SHOWN_VALUE = 80  # characters of a refused header value that go into the log line


# Asked on every request behind a proxy; a client keeps its address, so the answers for
# the addresses seen lately are kept (bounded: a few hundred kB at most).
@lru_cache(maxsize=4096)
def is_ip_address(value: str | None) -> bool:
    """True for a syntactically valid IPv4 or IPv6 address (no port, no brackets, and no
    %zone: Python takes any text after the % as an IPv6 scope)."""
    if not value or "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class ForwardedChecks:
    """Runs inside ProxyFix: undo what it took from headers that do not hold a valid value."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Restore the TCP peer (and the real scheme) when the forwarded value is not valid."""
        original = environ.get("werkzeug.proxy_fix.orig", {})
        peer = original.get("REMOTE_ADDR")
        forwarded = environ.get("REMOTE_ADDR")
        if forwarded != peer and not is_ip_address(forwarded):
            environ["REMOTE_ADDR"] = peer
            log.warning(
                "proxy.bad_forwarded_for value=%s peer=%s",
                redact(str(forwarded))[:SHOWN_VALUE],
                peer,
            )
        if environ.get("wsgi.url_scheme") not in ("http", "https"):
            environ["wsgi.url_scheme"] = original.get("wsgi.url_scheme", "http")
        return self.app(environ, start_response)


def trust_proxies(app: Flask, count: int) -> None:
    """Take the client address and scheme from the `count` proxies in front, when valid."""
    app.wsgi_app = ProxyFix(
        ForwardedChecks(app.wsgi_app),
        x_for=count,  # type: ignore[method-assign]
        x_proto=count,
    )


def allowed_hosts(config: dict[str, Any]) -> list[str]:
    """The Host values production answers: PUBLIC_URL's host and MCP_ALLOWED_HOSTS."""
    hosts = list(config["MCP_ALLOWED_HOSTS"])
    if config.get("PUBLIC_URL"):
        hosts.append(urlsplit(config["PUBLIC_URL"]).netloc)
    return hosts


class HostRule:
    """The Host values the service answers to, as sets: checked on every request, so an
    entry is matched by a lookup rather than a loop (exactly, or "name:*" for any port)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        entries = [entry.lower() for entry in allowed]
        self.exact = frozenset(e for e in entries if not e.endswith(":*"))
        self.any_port = frozenset(e[:-2] for e in entries if e.endswith(":*"))

    def allows(self, host: str) -> bool:
        """Does `host` match an entry?"""
        host = host.lower()
        return host in self.exact or host.rpartition(":")[0] in self.any_port


def host_check(rule: HostRule) -> Callable[[], None]:
    """Production's before_request hook: refuse a Host the service does not answer to (421
    host_not_allowed)."""

    def check_host() -> None:
        # The Host header from the environ, as request.headers reads it (one proxy lookup).
        req = request._get_current_object()  # type: ignore[attr-defined]
        if rule.allows(req.environ.get("HTTP_HOST", "")) or req.path in UNCHECKED_HOST_PATHS:
            return
        raise api_error("host_not_allowed")

    return check_host


def security_headers(trusted_proxy: bool) -> Callable[[Response], Response]:
    """The after_request hook: nosniff on every response; HSTS over HTTPS through a trusted
    proxy (the setting read once, not per response)."""

    def add_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        # request.scheme is the environ's wsgi.url_scheme (set by the proxy checks above).
        if trusted_proxy and request.environ.get("wsgi.url_scheme") == "https":
            response.headers["Strict-Transport-Security"] = HSTS
        return response

    return add_headers


def init_app(app: Flask) -> None:
    """Install the proxy checks, the Host check (production) and the headers."""
    config = app.config
    if config["TRUSTED_PROXY_COUNT"]:
        trust_proxies(app, config["TRUSTED_PROXY_COUNT"])
    config["ALLOWED_HOSTS"] = allowed_hosts(config)
    if config["ENV"] == "production" and not config["TESTING"]:
        app.before_request(host_check(HostRule(config["ALLOWED_HOSTS"])))
    app.after_request(security_headers(bool(config["TRUSTED_PROXY_COUNT"])))
