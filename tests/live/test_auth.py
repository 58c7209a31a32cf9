"""README, "The API" (/auth): signup, login, the session cookie, logout, CSRF on session writes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.helpers import PASSWORD, create_key, login, make_app

COOKIE = "genmb_session"


def session_cookie(response) -> tuple[str, dict[str, str]]:
    """The session cookie's value and its attributes (lower-cased names) from Set-Cookie."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith((COOKIE + "=", "__Host-" + COOKIE + "=")):  # production: __Host-
            first, *rest = [part.strip() for part in header.split(";")]
            attrs = {}
            for part in rest:
                name, _, value = part.partition("=")
                attrs[name.lower()] = value
            return first.split("=", 1)[1], attrs
    raise AssertionError(f"no {COOKIE} cookie set: {response.headers.getlist('Set-Cookie')}")


def clone_session(app, source) -> object:
    """A second test client holding a copy of source's session cookie (another browser)."""
    other = app.test_client()
    other.set_cookie(COOKIE, source.get_cookie(COOKIE).value)
    return other


def signup(client, email: str, password: str = PASSWORD):
    """POST /auth/signup."""
    return client.post("/auth/signup", json={"email": email, "password": password})


def post_login(client, email: str, password: str = PASSWORD):
    """POST /auth/login."""
    return client.post("/auth/login", json={"email": email, "password": password})


# ---- signup ---------------------------------------------------------------------------


def test_signup_creates_free_user(client):
    """Signup answers 201 {"user"} on the free plan, and the password then logs in."""
    response = signup(client, "new@example.test")
    assert response.status_code == 201
    assert set(response.json) == {"user"}
    user = response.json["user"]
    assert set(user) == {"id", "email", "plan"}
    assert user["plan"] == "free"
    assert user["email"] == "new@example.test"
    assert PASSWORD not in response.get_data(as_text=True)
    logged_in = post_login(client, "new@example.test")
    assert logged_in.status_code == 200
    assert logged_in.json["user"] == user


def test_signup_cannot_choose_a_paid_plan(client):
    """A signup body asking for a paid plan is refused or still yields a free user."""
    response = client.post(
        "/auth/signup",
        json={"email": "greedy@example.test", "password": PASSWORD, "plan": "business"},
    )
    if response.status_code == 201:
        assert response.json["user"]["plan"] == "free"
    else:
        assert response.status_code in (400, 422)
        assert response.json["error"]["code"] == "validation_error"
        assert post_login(client, "greedy@example.test").status_code == 401


@pytest.mark.parametrize(
    "second", ["alice@example.test", "ALICE@EXAMPLE.TEST", "Alice@Example.Test"]
)
def test_signup_email_unique_case_insensitively(client, second):
    """A second signup with the same email in any case is 409 email_taken; nothing changes."""
    assert signup(client, "Alice@example.test").status_code == 201
    response = signup(client, second, "another password")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "email_taken"
    assert post_login(client, "alice@example.test", "another password").status_code == 401
    assert post_login(client, "alice@example.test").status_code == 200


def test_login_email_is_case_insensitive(client, make_user):
    """Login finds the account whatever the case of the email typed."""
    user = make_user("pro", email="bob@example.test")
    response = post_login(client, "BOB@Example.TEST")
    assert response.status_code == 200
    assert response.json["user"]["id"] == user.id


def test_signup_short_password_is_422_with_fields(client):
    """A password under 8 characters is 422 validation_error naming the field; no account."""
    response = signup(client, "short@example.test", "1234567")
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert isinstance(error["message"], str) and error["message"]
    assert "password" in error["fields"]
    assert post_login(client, "short@example.test", "1234567").status_code == 401
    assert signup(client, "short@example.test", "12345678").status_code == 201


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, {"email", "password"}),
        ({"email": "x@example.test"}, {"password"}),
        ({"password": PASSWORD}, {"email"}),
        ({"email": "nope", "password": PASSWORD}, {"email"}),
    ],
)
def test_signup_bad_body_names_fields(client, body, fields):
    """Missing or invalid signup fields are each reported in "fields"."""
    response = client.post("/auth/signup", json=body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert set(response.json["error"]["fields"]) == fields


# ---- login and the cookie -------------------------------------------------------------


def test_login_returns_user_csrf_and_cookie_flags(client, make_user):
    """Login: 200 {"user", "csrf_token"}; cookie HttpOnly, SameSite=Lax, not Secure in tests."""
    user = make_user("pro")
    response = post_login(client, user.email)
    assert response.status_code == 200
    assert set(response.json) == {"user", "csrf_token"}
    assert response.json["user"] == {"id": user.id, "email": user.email, "plan": "pro"}
    assert len(response.json["csrf_token"]) >= 32
    value, attrs = session_cookie(response)
    assert len(value) >= 32
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert attrs.get("path") == "/"
    assert "secure" not in attrs


@pytest.mark.parametrize("env, secure", [("production", True), ("development", False)])
def test_cookie_secure_outside_development(redis_url, make_user, env, secure):
    """With TESTING off, the session cookie is Secure in production and not in development."""
    app = make_app(redis_url, TESTING=False, ENV=env)
    user = make_user("pro")
    response = post_login(app.test_client(), user.email)
    assert response.status_code == 200
    _, attrs = session_cookie(response)
    assert ("secure" in attrs) is secure
    assert "httponly" in attrs and attrs["samesite"].lower() == "lax"


def test_wrong_password_and_unknown_email_are_identical(client, make_user):
    """Wrong password and unknown email both give 401 invalid_credentials, byte for byte."""
    user = make_user("pro")
    wrong = post_login(client, user.email, "not the password")
    unknown = post_login(client, "nobody@example.test", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json["error"]["code"] == "invalid_credentials"
    assert wrong.data == unknown.data
    assert not wrong.headers.getlist("Set-Cookie")
    assert not unknown.headers.getlist("Set-Cookie")
    assert client.get("/auth/session").status_code == 401


# ---- the session ----------------------------------------------------------------------


def test_session_endpoint_with_and_without_session(client, app, make_user):
    """GET /auth/session: 200 {"user", "csrf_token"} when logged in, 401 otherwise."""
    user = make_user("business")
    assert client.get("/auth/session").status_code == 401
    csrf = login(client, user.email)
    response = client.get("/auth/session")
    assert response.status_code == 200
    assert response.json == {
        "user": {"id": user.id, "email": user.email, "plan": "business"},
        "csrf_token": csrf,
    }
    stranger = app.test_client()
    stranger.set_cookie(COOKIE, "made-up-token")
    assert stranger.get("/auth/session").status_code == 401


def test_session_endpoint_is_not_satisfied_by_api_key(client, app, make_user):
    """An API key is not a session: /auth/session answers 401 for it."""
    user = make_user("pro")
    key = create_key(client, login(client, user.email))["key"]
    response = app.test_client().get("/auth/session", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_logout_kills_session_on_server(client, app, make_user, rdb):
    """After logout, another client holding the same cookie gets 401 everywhere."""
    user = make_user("pro")
    csrf = login(client, user.email)
    other = clone_session(app, client)
    assert other.get("/auth/session").status_code == 200
    assert other.get("/api/me").status_code == 200

    response = client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert response.data == b""
    assert client.get_cookie(COOKIE) is None
    assert other.get("/auth/session").status_code == 401
    me = other.get("/api/me")
    assert me.status_code == 401
    assert me.json["error"]["code"] == "missing_credentials"
    assert rdb.keys("*session*") == []


def test_logout_needs_csrf_token(client, make_user):
    """Logout is a session write: without the CSRF token it is refused and the session lives."""
    user = make_user("pro")
    login(client, user.email)
    response = client.post("/auth/logout")
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"
    assert client.get("/auth/session").status_code == 200


def test_logout_without_session_is_harmless(client):
    """Logging out with no session is still 204."""
    assert client.post("/auth/logout").status_code == 204


def test_logout_ends_only_this_session(app, make_user):
    """Two logins of one user are two sessions; logging one out leaves the other."""
    user = make_user("pro")
    laptop, phone = app.test_client(), app.test_client()
    csrf = login(laptop, user.email)
    login(phone, user.email)
    assert laptop.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert laptop.get("/auth/session").status_code == 401
    assert phone.get("/auth/session").status_code == 200


def test_new_login_rotates_session_token(client, app, make_user):
    """Logging in again issues a new token and CSRF token; the old cookie is dead."""
    user = make_user("pro")
    old_csrf = login(client, user.email)
    old_value = client.get_cookie(COOKIE).value
    old_holder = clone_session(app, client)

    new_csrf = login(client, user.email)
    assert client.get_cookie(COOKIE).value != old_value
    assert new_csrf != old_csrf
    assert old_holder.get("/auth/session").status_code == 401
    assert old_holder.get("/api/me").status_code == 401
    assert client.get("/auth/session").json["csrf_token"] == new_csrf
    stale = client.post("/api/apps", json={"name": "x"}, headers={"X-CSRF-Token": old_csrf})
    assert stale.status_code == 403
    fresh = client.post("/api/apps", json={"name": "x"}, headers={"X-CSRF-Token": new_csrf})
    assert fresh.status_code == 201


# ---- CSRF -----------------------------------------------------------------------------


@dataclass
class World:
    """A logged-in pro user with one app and one key, plus another user's CSRF token."""

    web: object
    csrf: str
    app_id: str
    key_id: str
    raw_key: str
    foreign_csrf: str

    def snapshot(self) -> dict:
        """Everything a stray write could change, read through the API."""
        apps = self.web.get("/api/apps")
        keys = self.web.get("/api/keys")
        me = self.web.get("/api/me")
        assert apps.status_code == keys.status_code == me.status_code == 200
        return {
            "apps": apps.json["apps"],
            "keys": [k["id"] for k in keys.json["keys"]],
            "credits": me.json["credits"]["used"],
        }


@pytest.fixture
def world(app, client, make_user) -> World:
    """Set up a World."""
    user, other = make_user("pro"), make_user("pro")
    csrf = login(client, user.email)
    app_id = client.post("/api/apps", json={"name": "mine"}, headers={"X-CSRF-Token": csrf}).json[
        "id"
    ]
    key = create_key(client, csrf)
    foreign = login(app.test_client(), other.email)
    return World(client, csrf, app_id, key["id"], key["key"], foreign)


WRITES = [
    ("POST", "/api/apps", {"name": "sneaky"}),
    ("DELETE", "/api/apps/{app}", None),
    ("POST", "/api/apps/{app}/codegen", {"prompt": "make it"}),
    ("POST", "/api/apps/{app}/deploy", None),
    ("POST", "/api/keys", {"name": "sneaky"}),
    ("DELETE", "/api/keys/{key}", None),
]
BAD_TOKENS = ["missing", "empty", "wrong", "other_users"]


@pytest.mark.parametrize("method, path, body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
@pytest.mark.parametrize("token", BAD_TOKENS)
def test_session_write_without_valid_csrf_is_refused(world, method, path, body, token):
    """A session write without the right X-CSRF-Token is 403 csrf_failed and changes nothing."""
    before = world.snapshot()
    headers = {
        "missing": {},
        "empty": {"X-CSRF-Token": ""},
        "wrong": {"X-CSRF-Token": "0" * len(world.csrf)},
        "other_users": {"X-CSRF-Token": world.foreign_csrf},
    }[token]
    url = path.format(app=world.app_id, key=world.key_id)
    response = world.web.open(url, method=method, json=body, headers=headers)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "csrf_failed"
    assert world.snapshot() == before


@pytest.mark.parametrize(
    "method, path, body", WRITES[:4], ids=[f"{m} {p}" for m, p, _ in WRITES[:4]]
)
def test_same_writes_succeed_with_csrf_token(world, method, path, body):
    """The same session writes succeed when the CSRF token is sent (the refusals are CSRF)."""
    url = path.format(app=world.app_id, key=world.key_id)
    response = world.web.open(url, method=method, json=body, headers={"X-CSRF-Token": world.csrf})
    assert response.status_code in (201, 202, 204)


def test_api_key_writes_need_no_csrf(app, world):
    """Writes authenticated by an API key succeed without any CSRF token."""
    api = app.test_client()
    auth = {"Authorization": f"Bearer {world.raw_key}"}
    created = api.post("/api/apps", json={"name": "by key"}, headers=auth)
    assert created.status_code == 201
    assert (
        api.post(
            f"/api/apps/{created.json['id']}/codegen",
            json={"prompt": "p"},
            headers={"X-MCP-API-Key": world.raw_key},
        ).status_code
        == 202
    )
    assert api.post(f"/api/apps/{created.json['id']}/deploy", headers=auth).status_code == 202
    assert api.delete(f"/api/apps/{world.app_id}", headers=auth).status_code == 204
    assert [a["id"] for a in world.snapshot()["apps"]] == [created.json["id"]]
