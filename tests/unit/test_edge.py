"""security/edge.py: the forwarded address and scheme, read without werkzeug's ProxyFix."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security.edge import HostRule, TrustedProxies, is_ip_address

OCTETS = st.sampled_from(
    [
        "0",
        "1",
        "01",
        "9",
        "10",
        "99",
        "100",
        "199",
        "200",
        "249",
        "250",
        "255",
        "256",
        "300",
        "001",
        "1a",
        "",
        " 1",
        "\u0661",
    ]
)


def _python_says(value: str) -> bool:
    """What ipaddress accepts (zones refused, as the service refuses them)."""
    if not value or "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@given(st.lists(OCTETS, min_size=3, max_size=5).map(".".join))
def test_ipv4_check_agrees_with_ipaddress(value: str) -> None:
    """The dotted-quad fast path accepts exactly what ipaddress.ip_address accepts."""
    assert is_ip_address(value) is _python_says(value)


@given(st.ip_addresses(v=6).map(str) | st.text(alphabet="0123456789abcdef:.%[]", max_size=45))
def test_ipv6_check_agrees_with_ipaddress(value: str) -> None:
    """Anything with a colon goes to ipaddress; a %zone is refused."""
    assert is_ip_address(value) is _python_says(value)


def _seen(count: int, forwarded: str | None, proto: str | None = None) -> tuple[str, str]:
    """(REMOTE_ADDR, wsgi.url_scheme) as the app behind TrustedProxies(count) sees them."""
    seen: dict[str, str] = {}

    def app(environ, start_response):
        seen["addr"], seen["scheme"] = environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]
        return [b""]

    environ = {"REMOTE_ADDR": "192.0.2.1", "wsgi.url_scheme": "http"}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    if proto is not None:
        environ["HTTP_X_FORWARDED_PROTO"] = proto
    TrustedProxies(app, count)(environ, lambda *a: None)
    return seen["addr"], seen["scheme"]


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # only the last entry is the proxy's
        (2, "6.6.6.6, 198.51.100.7", "6.6.6.6"),
        (2, "198.51.100.7", "192.0.2.1"),  # fewer entries than proxies: the peer
        (1, "2001:db8::1", "2001:db8::1"),
        (1, None, "192.0.2.1"),
        (1, "", "192.0.2.1"),
        (1, "genmb_sk_" + "A" * 32, "192.0.2.1"),
        (1, "1.1.1.1:80", "192.0.2.1"),
        (1, "fe80::1%eth0", "192.0.2.1"),
        (1, "198.51.100.7, ", "192.0.2.1"),  # an empty last entry
        (2, "6.6.6.6,, 198.51.100.7", "192.0.2.1"),  # an empty entry counts as one
        (1, '"198.51.100.7"', "192.0.2.1"),  # a quoted address is not an address
        (1, '"x, 198.51.100.7', "198.51.100.7"),  # a client's stray quote changes nothing
        (1, "198.51.100.7\u00a0", "192.0.2.1"),  # only spaces and tabs are trimmed
        (1, "\t198.51.100.7 ", "198.51.100.7"),
    ],
)
def test_forwarded_for_is_taken_from_the_right_and_only_when_valid(count, forwarded, expected):
    """The address the trusted proxy wrote, or the TCP peer when it is not an IP address."""
    assert _seen(count, forwarded)[0] == expected


@pytest.mark.parametrize(
    ("proto", "expected"),
    [("https", "https"), ("http, https", "https"), ("gopher", "http"), (None, "http")],
)
def test_forwarded_proto_is_taken_only_when_http_or_https(proto, expected):
    """The scheme the proxy saw, when it is one the service knows."""
    assert _seen(1, None, proto)[1] == expected


def test_a_refused_address_is_logged_redacted(caplog) -> None:
    """One warning line, the key cut to its display prefix."""
    key = "genmb_sk_" + "Zq9" * 10 + "xy"
    with caplog.at_level("WARNING", logger="genmb.security"):
        _seen(1, key)
    (record,) = caplog.records
    assert "proxy.bad_forwarded_for" in record.getMessage()
    assert key not in record.getMessage() and key[9:20] not in record.getMessage()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("genmb.example.com", True),
        ("GENMB.example.com", True),
        ("genmb.example.com:443", True),  # the default port, written out
        ("genmb.example.com:80", True),
        ("genmb.example.com:8443", False),
        ("evil.example", False),
        ("evil.example:443", False),
        ("genmb.example.com.evil.example", False),
        ("staging.example:9000", True),  # an entry with its own port
        ("staging.example", False),
        ("staging.example:443", False),
        ("127.0.0.1:8000", True),  # "127.0.0.1:*": any port
        ("127.0.0.1", False),
        ("", False),
        (":443", False),
    ],
)
def test_host_rule(host, allowed):
    """Exact entries, "name:*" for any port, and a default port written out means no port."""
    rule = HostRule(["genmb.example.com", "staging.example:9000", "127.0.0.1:*"])
    assert rule.allows(host) is allowed
