"""README, "The API": credentials, uniform 401s, the rolling per-IP window and its headers."""

from __future__ import annotations

import time

import pytest

from tests.helpers import create_key, login, make_app


@pytest.fixture
def key(client, make_user):
    """A pro user's raw key."""
    user = make_user("pro")
    return create_key(client, login(client, user.email))["key"]


def _get(app, path="/api/me", **headers):
    return app.test_client().get(path, headers=headers)


def test_bearer_scheme_is_case_insensitive(app, key):
    """bearer, Bearer and BEARER all authenticate."""
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = _get(app, Authorization=f"{scheme} {key}")
        assert response.status_code == 200, scheme
        assert response.json["auth"]["method"] == "api_key"


def test_mcp_header_wins_over_authorization(app, key):
    """With both headers, X-MCP-API-Key decides, whichever is valid."""
    bad = "genmb_sk_" + "A" * 32
    assert _get(app, **{"X-MCP-API-Key": key, "Authorization": f"Bearer {bad}"}).status_code == 200
    assert _get(app, **{"X-MCP-API-Key": bad, "Authorization": f"Bearer {key}"}).status_code == 401


def test_key_in_query_string_is_ignored(app, key):
    """A key passed as a query parameter authenticates nothing."""
    response = app.test_client().get(f"/api/me?api_key={key}&key={key}&access_token={key}")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_credentials"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-MCP-API-Key": "  "},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_credentials(app, headers):
    """No usable credential: 401 missing_credentials with a bare Bearer challenge."""
    response = _get(app, **headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_credentials"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="genmb"'


def test_bad_keys_share_one_body(app, client, make_user):
    """Malformed, unknown and revoked keys get the same 401 body and challenge."""
    user = make_user("pro")
    csrf = login(client, user.email)
    revoked = create_key(client, csrf)
    client.delete(f"/api/keys/{revoked['id']}", headers={"X-CSRF-Token": csrf})
    candidates = [
        "nonsense",
        "genmb_sk_short",
        "genmb_sk_" + "!" * 32,
        "genmb_sk_" + "B" * 32,
        revoked["key"],
    ]
    answers = [_get(app, Authorization=f"Bearer {c}") for c in candidates]
    assert {a.status_code for a in answers} == {401}
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].json["error"]["code"] == "invalid_api_key"
    assert {a.headers["WWW-Authenticate"] for a in answers} == {
        'Bearer realm="genmb", error="invalid_token"'
    }


def test_free_owner_gets_plan_required_and_keeps_key(app, client, make_user, storage):
    """A downgraded owner's key answers 403; after an upgrade it works again."""
    from store import users

    user = make_user("pro")
    key = create_key(client, login(client, user.email))["key"]
    users.set_plan(storage, user.email, "free")
    response = _get(app, Authorization=f"Bearer {key}")
    assert response.status_code == 403 and response.json["error"]["code"] == "plan_required"
    users.set_plan(storage, user.email, "business")
    response = _get(app, Authorization=f"Bearer {key}")
    assert response.status_code == 200 and response.json["plan"] == "business"


def test_session_reaches_the_api(client, make_user):
    """A session works on /api/ too, reported as method session with no key id."""
    user = make_user("free")
    login(client, user.email)
    me = client.get("/api/me").json
    assert me["auth"] == {"method": "session", "key_id": None}
    assert me["email"] == user.email and me["plan"] == "free"


def test_headers_count_down(app, key):
    """X-RateLimit-* on every counted response, Remaining falling by one per request."""
    seen = []
    for _ in range(3):
        response = _get(app, Authorization=f"Bearer {key}")
        assert response.headers["X-RateLimit-Limit"] == "200"
        assert response.headers["X-RateLimit-Reset"] == "0"
        seen.append(int(response.headers["X-RateLimit-Remaining"]))
    assert seen[0] - seen[1] == 1 and seen[1] - seen[2] == 1


def test_healthz_is_not_counted(app):
    """/healthz carries no rate headers and never consumes the budget."""
    small = make_app(app.config["REDIS_URL"], RATELIMIT_GLOBAL="2 per minute").test_client()
    for _ in range(5):
        response = small.get("/healthz")
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers
    assert small.get("/auth/session").status_code == 401


def test_failed_and_malformed_requests_are_counted(redis_url):
    """Requests without credentials, with malformed keys or on /auth count too."""
    client = make_app(redis_url, RATELIMIT_GLOBAL="4 per minute").test_client()
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Bearer junk"}).status_code == 401
    assert client.get("/auth/session").status_code == 401
    assert client.get("/mcp").status_code in (401, 404, 405)
    response = client.get("/api/me")
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= 1


def test_window_is_rolling_not_fixed(redis_url):
    """With 4 per 2 s: 2 early + 2 later fill it; only the early 2 free up first."""
    client = make_app(redis_url, RATELIMIT_GLOBAL="4 per 2 seconds").test_client()
    assert [client.get("/auth/session").status_code for _ in range(2)] == [401, 401]
    early_done = time.monotonic()  # both early stamps are at or before this moment
    time.sleep(1.0)
    assert [client.get("/auth/session").status_code for _ in range(2)] == [401, 401]
    refused = client.get("/auth/session")
    assert refused.status_code == 429
    # Past the early stamps' window, well before the later ones' (>= early_done + 3.0).
    time.sleep(max(0.0, early_done + 2.1 - time.monotonic()))
    # The first two stamps left the window; the later two are still in it.
    codes = [client.get("/auth/session").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_limits_are_per_client_ip(redis_url):
    """Without trusted proxies, X-Forwarded-For is ignored; the TCP peer is counted."""
    client = make_app(redis_url, RATELIMIT_GLOBAL="2 per minute").test_client()
    for i in range(2):
        client.get("/auth/session", headers={"X-Forwarded-For": f"10.0.0.{i}"})
    forged = client.get("/auth/session", headers={"X-Forwarded-For": "10.9.9.9"})
    assert forged.status_code == 429
    other_peer = client.get("/auth/session", environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other_peer.status_code == 401


def test_trusted_proxy_uses_forwarded_address(redis_url):
    """With TRUSTED_PROXY_COUNT=1 the last X-Forwarded-For hop is the client."""
    client = make_app(
        redis_url, RATELIMIT_GLOBAL="2 per minute", TRUSTED_PROXY_COUNT=1
    ).test_client()
    a = {"X-Forwarded-For": "203.0.113.1"}
    # A client prepending its own value cannot choose: the proxy appends the real peer.
    a_forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.1"}
    b = {"X-Forwarded-For": "203.0.113.2"}
    assert client.get("/auth/session", headers=a).status_code == 401
    assert client.get("/auth/session", headers=a_forged).status_code == 401
    assert client.get("/auth/session", headers=a).status_code == 429
    assert client.get("/auth/session", headers=b).status_code == 401


def test_non_ascii_csrf_header_is_refused_not_a_crash(client, make_user):
    """A CSRF header with non-ASCII characters is a 403 csrf_failed, never a 500."""
    user = make_user("pro")
    login(client, user.email)
    response = client.post(
        "/api/apps", json={"name": "x"}, headers={"X-CSRF-Token": "é".encode().decode("latin1")}
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"


def test_security_events_cannot_forge_log_lines(app, caplog):
    """A newline in a (decoded) path is escaped in the auth.failed event."""
    with caplog.at_level("INFO", logger="genmb.security"):
        app.test_client().get(
            "/api/x%0Aauth.login user_id=usr_forged", headers={"Authorization": "Bearer junk"}
        )
    events = [r.getMessage() for r in caplog.records if r.name == "genmb.security"]
    assert len(events) == 1 and "\n" not in events[0]
    assert "path=/api/x\\nauth.login" in events[0]


def test_ipv6_clients_are_counted_per_64_network(redis_url):
    """Addresses in one IPv6 /64 share a window; another /64 has its own; mapped IPv4 is IPv4."""
    client = make_app(redis_url, RATELIMIT_GLOBAL="2 per minute").test_client()

    def status(addr: str) -> int:
        return client.get("/auth/session", environ_base={"REMOTE_ADDR": addr}).status_code

    assert [status("2001:db8::1"), status("2001:db8::ffff:2")] == [401, 401]
    assert status("2001:db8::3") == 429  # same /64, a third address
    assert status("2001:db8:0:1::1") == 401  # the next /64
    assert [status("::ffff:192.0.2.7"), status("192.0.2.7")] == [401, 401]
    assert status("192.0.2.7") == 429  # the mapped form counted as the same IPv4 client
