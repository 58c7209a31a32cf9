"""security/credentials.py: which credential a request presents (the MCP header, a bearer key,
the session cookie), how a malformed or absent one is classified, and what it is looked up by."""

from __future__ import annotations

import hashlib

import pytest
from flask import request

from security.credentials import MCP_HEADER, presented
from store import apikeys
from tests.helpers import a_key

COOKIE = "genmb_session"


def classify(app, headers=None, query_string=None, cookie=None):
    """Run security.credentials.presented() on a synthetic request."""
    if cookie is not None:
        headers = {**(headers or {}), "Cookie": f"{COOKIE}={cookie}"}
    with app.test_request_context("/api/me", headers=headers or {}, query_string=query_string):
        return presented(request, app.config["SESSION_COOKIE_NAME"])


def test_generated_key_has_contract_shape():
    """A generated key is genmb_sk_ plus 32 URL-safe characters and counts as well-formed."""
    key = a_key()
    assert key.startswith("genmb_sk_")
    assert len(key) == len("genmb_sk_") + 32
    assert apikeys.is_well_formed(key)
    assert key != a_key()


def test_mcp_header_wins_over_authorization(fake_app):
    """With both headers present, X-MCP-API-Key is the credential."""
    mcp, bearer = a_key(), a_key()
    got = classify(fake_app, {MCP_HEADER: mcp, "Authorization": f"Bearer {bearer}"})
    assert (got.kind, got.secret) == ("key", mcp)


def test_malformed_mcp_header_still_wins_over_valid_bearer(fake_app):
    """A present-but-malformed X-MCP-API-Key is not silently replaced by Authorization."""
    got = classify(
        fake_app, {MCP_HEADER: "genmb_sk_tooshort", "Authorization": f"Bearer {a_key()}"}
    )
    assert got.kind == "malformed"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(fake_app, scheme):
    """Authorization's scheme matches Bearer in any letter case."""
    key = a_key()
    got = classify(fake_app, {"Authorization": f"{scheme} {key}"})
    assert (got.kind, got.secret) == ("key", key)


def test_surrounding_whitespace_is_ignored(fake_app):
    """Whitespace around the key in either header is not part of the key."""
    key = a_key()
    assert classify(fake_app, {MCP_HEADER: f"  {key}  "}).secret == key
    assert classify(fake_app, {"Authorization": f"Bearer   {key}  "}).secret == key


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_mcp_header_counts_as_absent(fake_app, blank):
    """A blank X-MCP-API-Key falls through to Authorization, or to nothing."""
    key = a_key()
    assert classify(fake_app, {MCP_HEADER: blank}).kind == "none"
    got = classify(fake_app, {MCP_HEADER: blank, "Authorization": f"Bearer {key}"})
    assert (got.kind, got.secret) == ("key", key)


@pytest.mark.parametrize("authorization", ["", "   ", "Bearer", "Bearer    "])
def test_blank_bearer_counts_as_absent(fake_app, authorization):
    """An empty Authorization header or an empty Bearer token is no credential at all."""
    assert classify(fake_app, {"Authorization": authorization}).kind == "none"


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Digest", "ApiKey"])
def test_non_bearer_scheme_counts_as_absent(fake_app, scheme):
    """Another scheme is not a key (even with a valid key after it); the cookie still counts."""
    header = {"Authorization": f"{scheme} {a_key()}"}
    assert classify(fake_app, header).kind == "none"
    got = classify(fake_app, header, cookie="session-token")
    assert (got.kind, got.secret) == ("session", "session-token")


@pytest.mark.parametrize(
    "bad",
    [
        "genmb_sk_short",
        "not-a-key",
        "genmb_sk_" + "a" * 31,
        "genmb_sk_" + "a" * 33,
        "genmb_sk_" + "a" * 31 + "!",
        "GENMB_SK_" + "a" * 32,
        "sk_" + "a" * 38,
    ],
)
def test_malformed_key_is_classified_malformed(fake_app, bad):
    """A present credential that is not key-shaped is "malformed", from either header."""
    assert classify(fake_app, {"Authorization": f"Bearer {bad}"}).kind == "malformed"
    assert classify(fake_app, {MCP_HEADER: bad}).kind == "malformed"
    assert classify(fake_app, {MCP_HEADER: bad}).lookup() is None


@pytest.mark.parametrize("param", ["api_key", "key", "access_token", "X-MCP-API-Key"])
def test_query_string_key_is_ignored(fake_app, param):
    """A key in the query string is never read."""
    assert classify(fake_app, query_string={param: a_key()}).kind == "none"


def test_key_header_wins_over_session_cookie(fake_app):
    """A request carrying both a key and a session cookie is authenticated by the key."""
    key = a_key()
    got = classify(fake_app, {"Authorization": f"Bearer {key}"}, cookie="session-token")
    assert (got.kind, got.secret) == ("key", key)


def test_lookup_uses_sha256_digest_and_prefix_is_display_only(fake_app):
    """The gate looks keys up by SHA-256 hex digest; only genmb_sk_ + 4 chars is loggable."""
    key = a_key()
    got = classify(fake_app, {MCP_HEADER: key})
    assert got.lookup() == ("key", hashlib.sha256(key.encode()).hexdigest())
    assert got.display_prefix == key[:13]
    session = classify(fake_app, cookie="tok")
    assert session.lookup() == ("session", hashlib.sha256(b"tok").hexdigest())
    assert session.display_prefix == ""
