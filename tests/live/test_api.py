"""README, "The API": /api/me, apps CRUD, codegen and deploy jobs, credits, plans and key use."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from config import Plan
from store import users
from tests.helpers import create_key, login, make_app

ISO_Z = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_iso_z(text: str) -> datetime:
    """Parse an ISO 8601 UTC timestamp that must end in Z."""
    assert text.endswith("Z"), text
    return datetime.strptime(text, ISO_Z).replace(tzinfo=UTC)


def first_of_next_month(moment: datetime) -> datetime:
    """Midnight UTC on the first day after moment's month (computed independently)."""
    after = moment.replace(day=28, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=4)
    return after.replace(day=1)


@dataclass
class Account:
    """A logged-in web client and an API client holding one of the same user's keys."""

    user: users.User
    web: object
    csrf: str
    api: object
    key: dict

    @property
    def auth(self) -> dict[str, str]:
        """Authorization header for the key."""
        return {"Authorization": f"Bearer {self.key['key']}"}

    def post(self, url: str, **kwargs):
        """A session POST with the CSRF token."""
        return self.web.post(url, headers={"X-CSRF-Token": self.csrf}, **kwargs)

    def delete(self, url: str):
        """A session DELETE with the CSRF token."""
        return self.web.delete(url, headers={"X-CSRF-Token": self.csrf})

    def new_app(self, name: str = "app") -> dict:
        """Create an app through the session."""
        response = self.post("/api/apps", json={"name": name})
        assert response.status_code == 201, response.json
        return response.json

    def used(self) -> int:
        """Credits used this month, as /api/me reports them."""
        return self.web.get("/api/me").json["credits"]["used"]


def open_account(app, make_user, plan: str = "pro") -> Account:
    """A user on plan with a session and a key."""
    user = make_user(plan)
    web = app.test_client()
    csrf = login(web, user.email)
    key = create_key(web, csrf) if plan != "free" else {}
    return Account(user, web, csrf, app.test_client(), key)


@pytest.fixture
def alice(app, make_user) -> Account:
    """A pro user with a session and a key."""
    return open_account(app, make_user)


# ---- /api/me --------------------------------------------------------------------------


def test_me_with_session(app, alice):
    """GET /api/me over the session: the account, auth method session, this month's credits."""
    before = datetime.now(UTC)
    response = alice.web.get("/api/me")
    after = datetime.now(UTC)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"id", "email", "plan", "auth", "credits"}
    assert (body["id"], body["email"], body["plan"]) == (alice.user.id, alice.user.email, "pro")
    assert body["auth"] == {"method": "session", "key_id": None}
    limit = app.config["PLANS"]["pro"].monthly_credits
    credits = body["credits"]
    assert {k: credits[k] for k in ("limit", "used", "remaining")} == {
        "limit": limit,
        "used": 0,
        "remaining": limit,
    }
    resets = parse_iso_z(credits["resets_at"])
    assert resets in {first_of_next_month(before), first_of_next_month(after)}
    assert resets.day == 1 and (resets.hour, resets.minute, resets.second) == (0, 0, 0)


def test_me_with_api_key(alice):
    """GET /api/me with a key: auth method api_key and that key's id, same user and credits."""
    by_key = alice.api.get("/api/me", headers=alice.auth)
    assert by_key.status_code == 200
    assert by_key.json["auth"] == {"method": "api_key", "key_id": alice.key["id"]}
    by_session = alice.web.get("/api/me").json
    for field in ("id", "email", "plan", "credits"):
        assert by_key.json[field] == by_session[field]


def test_me_with_mcp_header(alice):
    """X-MCP-API-Key authenticates /api/me like Authorization: Bearer."""
    response = alice.api.get("/api/me", headers={"X-MCP-API-Key": alice.key["key"]})
    assert response.status_code == 200
    assert response.json["auth"]["key_id"] == alice.key["id"]


def test_me_without_credentials(app):
    """No credential at all is 401 missing_credentials with a Bearer challenge."""
    response = app.test_client().get("/api/me")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_credentials"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="genmb"')


# ---- apps CRUD ------------------------------------------------------------------------


def test_apps_crud(alice):
    """Create 201, list oldest first, get, delete 204, then 404 for get and delete."""
    assert alice.web.get("/api/apps").json == {"apps": []}
    created = []
    for name in ("first", "second", "third"):
        created.append(alice.new_app(name))
        time.sleep(0.003)  # distinct millisecond timestamps
    for app_record in created:
        assert set(app_record) == {"id", "name", "created_at"}
        parse_iso_z(app_record["created_at"])
    assert len({a["id"] for a in created}) == 3

    listed = alice.web.get("/api/apps").json["apps"]
    assert listed == created

    target = created[1]
    assert alice.web.get(f"/api/apps/{target['id']}").json == target
    assert alice.delete(f"/api/apps/{target['id']}").status_code == 204
    missing = alice.web.get(f"/api/apps/{target['id']}")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert alice.delete(f"/api/apps/{target['id']}").status_code == 404
    assert alice.web.get("/api/apps").json["apps"] == [created[0], created[2]]


def test_app_name_is_trimmed_and_validated(alice):
    """App names are trimmed; an empty name is 422 validation_error and creates nothing."""
    assert alice.new_app("  spaced  ")["name"] == "spaced"
    response = alice.post("/api/apps", json={"name": "   "})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert "name" in response.json["error"]["fields"]
    assert len(alice.web.get("/api/apps").json["apps"]) == 1


def test_apps_shared_between_session_and_key(alice):
    """An app made with the key is the user's app in the session, and vice versa."""
    by_key = alice.api.post("/api/apps", json={"name": "via key"}, headers=alice.auth)
    assert by_key.status_code == 201
    by_session = alice.new_app("via session")
    session_ids = [a["id"] for a in alice.web.get("/api/apps").json["apps"]]
    key_ids = [a["id"] for a in alice.api.get("/api/apps", headers=alice.auth).json["apps"]]
    assert set(session_ids) == set(key_ids) == {by_key.json["id"], by_session["id"]}


def test_unknown_app_is_404(alice):
    """An id that never existed is 404 not_found for every app route, and charges nothing."""
    for response in (
        alice.web.get("/api/apps/app_doesnotexist"),
        alice.delete("/api/apps/app_doesnotexist"),
        alice.post("/api/apps/app_doesnotexist/codegen", json={"prompt": "p"}),
        alice.post("/api/apps/app_doesnotexist/deploy"),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"
    assert alice.used() == 0


def test_other_users_app_is_404_and_untouched(app, make_user, alice, rdb, storage):
    """Another user's app is 404 for get, delete, codegen and deploy; nothing changes."""
    bob = open_account(app, make_user)
    victim = alice.new_app("alice's")
    jobs_key = storage.names.app_jobs(alice.user.id, victim["id"])

    attempts = {
        "session": [
            bob.web.get(f"/api/apps/{victim['id']}"),
            bob.delete(f"/api/apps/{victim['id']}"),
            bob.post(f"/api/apps/{victim['id']}/codegen", json={"prompt": "steal"}),
            bob.post(f"/api/apps/{victim['id']}/deploy"),
        ],
        "key": [
            bob.api.get(f"/api/apps/{victim['id']}", headers=bob.auth),
            bob.api.delete(f"/api/apps/{victim['id']}", headers=bob.auth),
            bob.api.post(
                f"/api/apps/{victim['id']}/codegen", json={"prompt": "x"}, headers=bob.auth
            ),
            bob.api.post(f"/api/apps/{victim['id']}/deploy", headers=bob.auth),
        ],
    }
    for how, responses in attempts.items():
        for response in responses:
            assert response.status_code == 404, (how, response.json)
            assert response.json["error"]["code"] == "not_found"

    assert alice.web.get(f"/api/apps/{victim['id']}").json == victim
    assert alice.used() == 0 and bob.used() == 0
    assert rdb.llen(jobs_key) == 0
    assert victim["id"] not in [a["id"] for a in bob.web.get("/api/apps").json["apps"]]


# ---- jobs and credits -----------------------------------------------------------------


def test_codegen_charges_10_and_deploy_5(alice, rdb, storage):
    """Codegen is 202 {"job"} and costs 10 credits; deploy costs 5; both record a job."""
    target = alice.new_app()
    started = datetime.now(UTC) - timedelta(seconds=1)
    codegen = alice.post(f"/api/apps/{target['id']}/codegen", json={"prompt": "a todo app"})
    assert codegen.status_code == 202
    assert set(codegen.json) == {"job"}
    job = codegen.json["job"]
    assert (job["app_id"], job["kind"], job["credits"]) == (target["id"], "codegen", 10)
    assert parse_iso_z(job["created_at"]) >= started
    assert alice.used() == 10

    deploy = alice.api.post(f"/api/apps/{target['id']}/deploy", headers=alice.auth)
    assert deploy.status_code == 202
    assert (deploy.json["job"]["kind"], deploy.json["job"]["credits"]) == ("deploy", 5)
    assert deploy.json["job"]["id"] != job["id"]
    assert alice.used() == 15

    me = alice.api.get("/api/me", headers=alice.auth).json["credits"]
    assert me["used"] == 15 and me["remaining"] == me["limit"] - 15
    assert rdb.llen(storage.names.app_jobs(alice.user.id, target["id"])) == 2


def test_deleting_app_drops_its_jobs(alice, rdb, storage):
    """Deleting an app removes its job history with it."""
    target = alice.new_app()
    assert alice.post(f"/api/apps/{target['id']}/deploy").status_code == 202
    jobs_key = storage.names.app_jobs(alice.user.id, target["id"])
    assert rdb.llen(jobs_key) == 1
    assert alice.delete(f"/api/apps/{target['id']}").status_code == 204
    assert rdb.exists(jobs_key) == 0
    assert alice.post(f"/api/apps/{target['id']}/deploy").status_code == 404


@pytest.mark.parametrize("body", [{}, {"prompt": ""}, {"prompt": None}, {"prompt": 7}])
def test_codegen_bad_prompt_is_422_and_free(alice, body):
    """Codegen with a missing or empty prompt is 422 validation_error and charges nothing."""
    target = alice.new_app()
    response = alice.post(f"/api/apps/{target['id']}/codegen", json=body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert "prompt" in response.json["error"]["fields"]
    assert alice.used() == 0


SMALL_PLANS = {
    "free": Plan("free", 0, api_keys=False),
    "pro": Plan("pro", 15, api_keys=True),
    "business": Plan("business", 100, api_keys=True),
}


def test_out_of_credits_is_402_and_counter_stays(redis_url, make_user):
    """When the allowance cannot cover an action: 402 insufficient_credits, nothing charged."""
    app = make_app(redis_url, PLANS=SMALL_PLANS)
    alice = open_account(app, make_user)
    target = alice.new_app()
    assert alice.post(f"/api/apps/{target['id']}/codegen", json={"prompt": "p"}).status_code == 202
    assert alice.used() == 10

    refused = alice.api.post(
        f"/api/apps/{target['id']}/codegen", json={"prompt": "p"}, headers=alice.auth
    )
    assert refused.status_code == 402
    assert refused.json["error"]["code"] == "insufficient_credits"
    assert alice.used() == 10

    assert alice.post(f"/api/apps/{target['id']}/deploy").status_code == 202  # exactly 15
    credits = alice.web.get("/api/me").json["credits"]
    assert (credits["limit"], credits["used"], credits["remaining"]) == (15, 15, 0)
    again = alice.post(f"/api/apps/{target['id']}/deploy")
    assert again.status_code == 402
    assert again.json["error"]["code"] == "insufficient_credits"
    assert alice.used() == 15


def test_credits_are_per_user(app, make_user, alice):
    """One user's spending does not touch another's counter."""
    bob = open_account(app, make_user)
    target = alice.new_app()
    assert alice.post(f"/api/apps/{target['id']}/deploy").status_code == 202
    assert (alice.used(), bob.used()) == (5, 0)


# ---- plans and keys -------------------------------------------------------------------


def test_downgraded_users_key_is_403_until_upgrade(app, alice, storage):
    """A key of a user moved to free is 403 plan_required; kept, it works again on business."""
    assert alice.api.get("/api/me", headers=alice.auth).status_code == 200
    users.set_plan(storage, alice.user.email, "free")

    refused = alice.api.get("/api/me", headers=alice.auth)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "plan_required"
    write = alice.api.post("/api/apps", json={"name": "x"}, headers=alice.auth)
    assert write.status_code == 403
    assert alice.web.get("/api/apps").json["apps"] == []
    # the session still works and the key is still listed
    assert alice.web.get("/api/me").json["plan"] == "free"
    assert [k["id"] for k in alice.web.get("/api/keys").json["keys"]] == [alice.key["id"]]

    users.set_plan(storage, alice.user.email, "business")
    back = alice.api.get("/api/me", headers=alice.auth)
    assert back.status_code == 200
    assert back.json["plan"] == "business"
    assert back.json["credits"]["limit"] == app.config["PLANS"]["business"].monthly_credits


def test_last_used_at_null_until_first_use(alice):
    """last_used_at is null for a new key and an ISO Z timestamp after a request with it."""
    listed = alice.web.get("/api/keys").json["keys"]
    assert [k["last_used_at"] for k in listed] == [None]
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert alice.api.get("/api/apps", headers=alice.auth).status_code == 200
    after = datetime.now(UTC) + timedelta(seconds=1)
    used = alice.web.get("/api/keys").json["keys"][0]["last_used_at"]
    assert used is not None
    assert before <= parse_iso_z(used) <= after


def test_last_used_at_moves_on_each_use(alice):
    """Each request with the key advances its last_used_at."""
    alice.api.get("/api/me", headers=alice.auth)
    first = alice.web.get("/api/keys").json["keys"][0]["last_used_at"]
    time.sleep(0.005)
    alice.api.get("/api/me", headers={"X-MCP-API-Key": alice.key["key"]})
    second = alice.web.get("/api/keys").json["keys"][0]["last_used_at"]
    assert parse_iso_z(second) > parse_iso_z(first)


def test_session_use_does_not_touch_last_used_at(alice):
    """Requests over the session are not key use: last_used_at stays null."""
    alice.web.get("/api/me")
    alice.new_app()
    assert alice.web.get("/api/keys").json["keys"][0]["last_used_at"] is None
