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
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request

from errors import api_error
from logs import redact

log = logging.getLogger("genmb.security")

HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts are not ours to decide
UNCHECKED_HOST_PATHS = ("/healthz", "/readyz", "/metrics")  # probes address instances by IP
DEFAULT_PORTS = frozenset({"80", "443"})  # what a Host may name and still mean no port
SHOWN_VALUE = 80  # characters of a refused header value that go into the log line
# app.extensions: the HostRule production checks, or None; built once, read by hot_path.py too.
HOST_RULE_EXTENSION = "genmb.host_rule"


# A dotted-quad IPv4 address exactly as ipaddress accepts one (0-255, ASCII digits, no
# leading zeros): the common case, checked without ipaddress's object construction.
OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"(?:{OCTET}\.){{3}}{OCTET}")


def is_ip_address(value: str | None) -> bool:
    """True for a syntactically valid IPv4 or IPv6 address (no port, no brackets, and no
    %zone: Python takes any text after the % as an IPv6 scope)."""
    if not value:
        return False
    if IPV4.fullmatch(value):
        return True
    if ":" not in value or "%" in value:  # neither IPv4 nor a zone-free IPv6 address
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _from_the_right(header: str | None, count: int) -> str | None:
    """The entry `count` places from the right of a comma-separated header (the one the
    outermost trusted proxy wrote), or None when the header has fewer entries. Stricter than
    werkzeug's ProxyFix: no quoted strings (a quoted address is not an address), an empty
    entry counts as an entry, and only spaces and tabs around an entry are dropped."""
    if not header:
        return None
    entries = header.split(",")
    return entries[-count].strip(" \t") if len(entries) >= count else None


class TrustedProxies:
    """The client address and scheme as the `count` trusted proxies in front report them
    (X-Forwarded-For and X-Forwarded-Proto, each read `count` entries from the right, as
    werkzeug's ProxyFix does, but stricter: _from_the_right), taken only when valid: an
    address that is not an IP address counts under the TCP peer (and is logged), a scheme
    other than http/https is ignored."""

    def __init__(self, app: Callable[..., Iterable[bytes]], count: int) -> None:
        self.app, self.count = app, count

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Rewrite REMOTE_ADDR and wsgi.url_scheme from the proxies' headers, then the app."""
        forwarded = _from_the_right(environ.get("HTTP_X_FORWARDED_FOR"), self.count)
        if forwarded:
            if is_ip_address(forwarded):
                environ["REMOTE_ADDR"] = forwarded
            else:
                log.warning(
                    "proxy.bad_forwarded_for value=%s peer=%s",
                    redact(forwarded)[:SHOWN_VALUE],
                    environ.get("REMOTE_ADDR"),
                )
        scheme = _from_the_right(environ.get("HTTP_X_FORWARDED_PROTO"), self.count)
        if scheme in ("http", "https"):
            environ["wsgi.url_scheme"] = scheme
        return self.app(environ, start_response)


def trust_proxies(app: Flask) -> None:
    """Take the client address and scheme from the TRUSTED_PROXY_COUNT proxies in front, when
    valid: the outermost WSGI layer, so every layer inside sees the client's address."""
    count = app.config["TRUSTED_PROXY_COUNT"]
    if count:
        app.wsgi_app = TrustedProxies(app.wsgi_app, count)  # type: ignore[method-assign]


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
        """Does `host` match an entry? A default port written out (name:80, name:443) is the
        name without it: clients may send either for the same URL."""
        host = host.lower()
        name, _, port = host.rpartition(":")
        return (
            host in self.exact
            or name in self.any_port
            or (port in DEFAULT_PORTS and name in self.exact)
        )


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


def security_header_items(trusted_proxy: bool, scheme: str) -> list[tuple[str, str]]:
    """The headers every response carries: nosniff; HSTS over HTTPS through a trusted proxy
    (scheme: the environ's wsgi.url_scheme, set by the proxy checks above)."""
    if trusted_proxy and scheme == "https":
        return [("X-Content-Type-Options", "nosniff"), ("Strict-Transport-Security", HSTS)]
    return [("X-Content-Type-Options", "nosniff")]


def security_headers(trusted_proxy: bool) -> Callable[[Response], Response]:
    """The after_request hook adding security_header_items (the setting read once, not per
    response)."""

    def add_headers(response: Response) -> Response:
        scheme = request.environ.get("wsgi.url_scheme", "")
        for name, value in security_header_items(trusted_proxy, scheme):
            response.headers[name] = value
        return response

    return add_headers


def host_rule(config: dict[str, Any]) -> HostRule | None:
    """The Host values checked on every request: production's rule, or None (development and
    tests answer any Host)."""
    if config["ENV"] == "production" and not config["TESTING"]:
        return HostRule(allowed_hosts(config))
    return None


def init_app(app: Flask) -> None:
    """Install the Host check (production) and the headers. (The proxy checks wrap the whole
    WSGI app, so app.py installs them last: trust_proxies.)"""
    config = app.config
    rule = app.extensions[HOST_RULE_EXTENSION] = host_rule(config)
    if rule is not None:
        app.before_request(host_check(rule))
    app.after_request(security_headers(bool(config["TRUSTED_PROXY_COUNT"])))
