"""The session rescue (README: Rate limits): once a script has spent its client IP's window, the
owner's logged-in page can still load the account and the key list and revoke keys, within
the session's own small allowance; nothing else gets past the spent window."""

from __future__ import annotations

import pytest

from security.paths import rescue_route
from tests.helpers import PASSWORD, make_app

SPENT_LIMIT = "4 per minute"
PAGE = {"Sec-Fetch-Site": "same-origin"}  # what a browser sends with the page's own fetches
RESCUE = "3 per minute"


@pytest.fixture
def spent(redis_url: str, make_user):
    """A pro user logged in, one key, and the shared client IP's window spent by that key:
    (client, csrf, key)."""
    client = make_app(
        redis_url, RATELIMIT_GLOBAL=SPENT_LIMIT, RATELIMIT_SESSION_RESCUE=RESCUE
    ).test_client()
    user = make_user("pro")
    login = client.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    csrf = login.json["csrf_token"]
    key = client.post("/api/keys", json={"name": "runaway"}, headers={"X-CSRF-Token": csrf}).json
    script = {"Authorization": f"Bearer {key['key']}"}
    answers = [client.get("/api/me", headers=script).status_code for _ in range(4)]
    assert answers == [200, 200, 429, 429]  # 2 admitted: login and create used the other two
    return client, csrf, key


def test_a_session_loads_its_page_and_revokes_the_runaway_key_past_a_spent_window(
    spent, rdb
) -> None:
    """GET /auth/session, GET /api/keys and DELETE /api/keys/<id> pass on the session's own
    allowance, with headers that say so; the revoke really happens."""
    client, csrf, key = spent
    session = client.get("/auth/session", headers=PAGE)
    assert session.status_code == 200
    assert session.headers["X-RateLimit-Scope"] == "session-rescue"
    assert session.headers["X-RateLimit-Limit"] == "3"
    assert session.headers["X-RateLimit-Remaining"] == "2"
    listed = client.get("/api/keys", headers=PAGE)
    assert listed.status_code == 200 and [k["id"] for k in listed.json["keys"]] == [key["id"]]
    assert listed.headers["X-RateLimit-Remaining"] == "1"
    revoked = client.delete(f"/api/keys/{key['id']}", headers={"X-CSRF-Token": csrf, **PAGE})
    assert revoked.status_code == 204
    assert revoked.headers["X-RateLimit-Remaining"] == "0"
    assert not any(":apikey:" in name for name in rdb.keys("genmb:user:*"))


def test_the_rescue_allowance_is_small_and_then_refused_with_retry_after(spent) -> None:
    """Past the session's own allowance: 429 rate_limited with Retry-After, headers naming the
    window that frees first."""
    client, _, _ = spent
    assert [client.get("/api/keys", headers=PAGE).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/keys", headers=PAGE)
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_only_the_rescue_routes_pass_and_only_for_a_live_session(spent) -> None:
    """Everything else stays refused by the spent window: other session routes, the key, a
    bogus cookie; the refusals use none of the session's allowance."""
    client, csrf, key = spent
    script = {"Authorization": f"Bearer {key['key']}"}
    for response in (
        client.get("/api/me"),
        client.post("/api/keys", json={"name": "more"}, headers={"X-CSRF-Token": csrf}),
        client.post(f"/api/keys/{key['id']}/roll", headers={"X-CSRF-Token": csrf}),
        client.get("/api/keys", headers=script),
        client.delete(f"/api/keys/{key['id']}", headers=script),
    ):
        assert response.status_code == 429, response.json
        assert "X-RateLimit-Scope" not in response.headers
    stranger = make_app(
        client.application.config["REDIS_URL"],
        RATELIMIT_GLOBAL=SPENT_LIMIT,
        RATELIMIT_SESSION_RESCUE=RESCUE,
    ).test_client()
    stranger.set_cookie(client.application.config["SESSION_COOKIE_NAME"], "not-a-session")
    assert stranger.get("/api/keys", headers=PAGE).status_code == 429
    # The session itself, but not from a page (a script with the cookie): the IP window.
    for response in (
        client.get("/api/keys"),
        client.get("/auth/session", headers={"Sec-Fetch-Site": "cross-site"}),
        client.delete(f"/api/keys/{key['id']}", headers={"X-CSRF-Token": csrf}),
    ):
        assert response.status_code == 429 and "X-RateLimit-Scope" not in response.headers
    # The session's three rescue requests are all still there.
    assert client.get("/api/keys", headers=PAGE).headers["X-RateLimit-Remaining"] == "2"


def test_a_rescued_write_still_needs_the_csrf_token(spent) -> None:
    """The rescue skips the spent window, not authentication: a DELETE without the session's
    X-CSRF-Token is 403 csrf_failed, and the key stays."""
    client, _, key = spent
    refused = client.delete(f"/api/keys/{key['id']}", headers=PAGE)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
    assert [k["id"] for k in client.get("/api/keys", headers=PAGE).json["keys"]] == [key["id"]]


@pytest.mark.parametrize(
    ("method", "path", "rescued"),
    [
        ("GET", "/auth/session", True),
        ("GET", "/api/keys", True),
        ("DELETE", "/api/keys/abc123", True),
        ("POST", "/api/keys", False),
        ("DELETE", "/api/keys/abc123/roll", False),
        ("POST", "/api/keys/abc123/roll", False),
        ("GET", "/api/keys/abc123", False),
        ("GET", "/api/me", False),
        ("DELETE", "/auth/session", False),
        ("GET", "/api/keysx", False),
    ],
)
def test_rescue_routes(method: str, path: str, rescued: bool) -> None:
    """Exactly the three routes a page needs to stop a runaway script."""
    assert rescue_route(method, path) is rescued
