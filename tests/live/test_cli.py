"""README, "First user and key": the operator CLI, `flask --app app users create|set-plan`."""

from __future__ import annotations

import json
import os

import pytest

from store import users
from tests.helpers import FAST_HASH, PASSWORD, create_key, flask_cli, login


@pytest.fixture
def cli(app):
    """Invoke the app's CLI in-process: cli("users", "create", ...) -> click Result."""
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def one_json_line(output: str) -> dict:
    """stdout must be exactly one line holding one JSON object."""
    lines = output.splitlines()
    assert len(lines) == 1, output
    return json.loads(lines[0])


def test_users_create_prints_one_json_object(cli, client, storage):
    """`users create EMAIL --plan pro --password ...` prints {id, email, plan}, exit 0."""
    result = cli("users", "create", "ops@example.test", "--plan", "pro", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    body = one_json_line(result.stdout)
    assert set(body) == {"id", "email", "plan"}
    assert (body["email"], body["plan"]) == ("ops@example.test", "pro")
    assert PASSWORD not in result.output
    stored = users.authenticate(storage, "ops@example.test", PASSWORD, FAST_HASH)
    assert stored is not None and (stored.id, stored.plan) == (body["id"], "pro")
    response = client.post("/auth/login", json={"email": "ops@example.test", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json["user"] == body


@pytest.mark.parametrize("plan", ["free", "pro", "business"])
def test_users_create_each_plan(cli, plan):
    """Every plan of the plan table can be given to a new user."""
    result = cli("users", "create", f"{plan}@example.test", "--plan", plan, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert one_json_line(result.stdout)["plan"] == plan


@pytest.mark.parametrize("again", ["taken@example.test", "TAKEN@Example.Test"])
def test_users_create_taken_email_fails_one_line(cli, storage, again):
    """A taken email (any case) exits non-zero with a one-line error and changes nothing."""
    first = cli("users", "create", "taken@example.test", "--plan", "pro", "--password", PASSWORD)
    assert first.exit_code == 0
    original = one_json_line(first.stdout)
    result = cli("users", "create", again, "--plan", "business", "--password", "other password")
    assert result.exit_code != 0
    assert result.stdout == ""
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1
    assert "taken" in error_lines[0].lower()
    user = users.authenticate(storage, "taken@example.test", PASSWORD, FAST_HASH)
    assert user is not None and (user.id, user.plan) == (original["id"], "pro")


@pytest.mark.parametrize("plan", ["gold", "enterprise", "PRO ", ""])
def test_users_create_rejects_unknown_plan(cli, storage, plan):
    """A plan outside free/pro/business is rejected and no user is created."""
    result = cli("users", "create", "planless@example.test", "--plan", plan, "--password", PASSWORD)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert storage.redis.get(storage.names.user_by_email("planless@example.test")) is None


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "short@example.test", "--password", "1234567"],
        ["users", "create", "not-an-email", "--password", PASSWORD],
        ["users", "create", "nopass@example.test"],
    ],
)
def test_users_create_rejects_bad_input(cli, storage, args):
    """A short password, a non-email or a missing password exits non-zero, creates nothing."""
    result = cli(*args)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert storage.redis.get(storage.names.user_by_email(args[2])) is None


def test_users_create_default_plan_is_free(cli):
    """Without --plan a user starts on free, like a web signup."""
    result = cli("users", "create", "default@example.test", "--password", PASSWORD)
    assert result.exit_code == 0
    assert one_json_line(result.stdout)["plan"] == "free"


def test_set_plan_takes_effect_on_next_request(cli, app, client):
    """`users set-plan` applies from the very next request: the key fails on free, works after."""
    created = cli("users", "create", "mover@example.test", "--plan", "pro", "--password", PASSWORD)
    assert created.exit_code == 0
    key = create_key(client, login(client, "mover@example.test"))["key"]
    api = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/me", headers=auth).json["plan"] == "pro"

    down = cli("users", "set-plan", "mover@example.test", "free")
    assert down.exit_code == 0, down.output
    assert one_json_line(down.stdout)["plan"] == "free"
    refused = api.get("/api/me", headers=auth)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "plan_required"
    assert client.get("/auth/session").json["user"]["plan"] == "free"

    up = cli("users", "set-plan", "MOVER@example.test", "business")
    assert up.exit_code == 0, up.output
    assert one_json_line(up.stdout)["id"] == one_json_line(created.stdout)["id"]
    back = api.get("/api/me", headers=auth)
    assert back.status_code == 200
    assert back.json["plan"] == "business"


def test_set_plan_unknown_user_fails(cli, storage):
    """set-plan for an email nobody has exits non-zero and creates no user."""
    result = cli("users", "set-plan", "ghost@example.test", "pro")
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert storage.redis.get(storage.names.user_by_email("ghost@example.test")) is None
    assert storage.redis.keys("*user*") == []


def test_set_plan_rejects_unknown_plan(cli, storage):
    """set-plan refuses a plan outside free/pro/business and leaves the user as they were."""
    assert (
        cli(
            "users", "create", "keep@example.test", "--plan", "pro", "--password", PASSWORD
        ).exit_code
        == 0
    )
    result = cli("users", "set-plan", "keep@example.test", "platinum")
    assert result.exit_code != 0
    user = users.authenticate(storage, "keep@example.test", PASSWORD, FAST_HASH)
    assert user.plan == "pro"


def test_real_flask_cli_subprocess(redis_url, storage):
    """`python -m flask --app app users create` as a real process prints one JSON line."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "GENMB_ENV": "development",
        "SECRET_KEY": "x",
        "PASSWORD_SCRYPT_N": str(FAST_HASH),
    }
    done = flask_cli(
        env, "users", "create", "proc@example.test", "--plan", "business", "--password", PASSWORD
    )
    assert done.returncode == 0, done.stderr
    body = one_json_line(done.stdout)
    assert (body["email"], body["plan"]) == ("proc@example.test", "business")
    user = users.authenticate(storage, "proc@example.test", PASSWORD, FAST_HASH)
    assert user is not None and user.id == body["id"]
