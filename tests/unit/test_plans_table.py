"""Issue 16: one plan table (config.PLAN_TABLE) from which every plan-shaped thing derives:
app.config["PLANS"], the CLI's choices, who may hold keys, and the words for it."""

from __future__ import annotations

import re

import pytest

import cli
import config
from app import create_app
from config import PLAN_TABLE, PlanRow, key_plans_text, plans_from_env
from errors import plan_required
from extensions import STORAGE_EXTENSION
from store import users

PASSWORD = "correct horse battery"
WITH_TEAM = (
    PlanRow("free", api_keys=False, credits=50, max_apps=10),
    PlanRow("pro", api_keys=True, credits=1000, max_apps=100),
    PlanRow("team", api_keys=True, credits=5000, max_apps=500),
    PlanRow("enterprise", api_keys=True, credits=10_000, max_apps=1000),  # business, renamed
)


@pytest.fixture
def team_app(monkeypatch):
    """An app (embedded store) whose plan table adds `team` and renames `business`."""
    monkeypatch.setattr(config, "PLAN_TABLE", WITH_TEAM)
    return create_app(
        {
            "REDIS_URL": "memory://",
            "TESTING": True,
            "SECRET_KEY": "x",
            "PASSWORD_SCRYPT_N": 2**10,
            "PLANS": plans_from_env({"CREDITS_TEAM": "7"}),
        }
    )


def _logged_in(app, plan: str):
    """A test client logged in as a new user on `plan`, and its CSRF token."""
    store = app.extensions[STORAGE_EXTENSION]
    email = f"{plan}@example.test"
    users.create(store, email, PASSWORD, plan, 2**10)
    client = app.test_client()
    login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    return client, login.json["csrf_token"]


def test_the_table_is_the_plans():
    """The settings, the CLI's choices and the default plans come from the table's rows."""
    names = [row.name for row in PLAN_TABLE]
    assert list(plans_from_env({})) == names
    assert list(cli.PLAN_CHOICE.choices) == names
    for row in PLAN_TABLE:
        assert config.SETTINGS_BY_NAME[f"CREDITS_{row.name.upper()}"].default == str(row.credits)
        assert config.SETTINGS_BY_NAME[f"MAX_APPS_{row.name.upper()}"].default == str(row.max_apps)
        assert plans_from_env({})[row.name].api_keys is row.api_keys
    assert key_plans_text(plans_from_env({})) == "Pro or Business"


def test_a_plan_added_to_the_table_gets_its_settings(team_app):
    """A new row: its own CREDITS_/MAX_APPS_ settings, read from the environment."""
    team = team_app.config["PLANS"]["team"]
    assert (team.monthly_credits, team.max_apps, team.api_keys) == (7, 500, True)


def test_the_words_follow_the_table(team_app):
    """The refusal, the gate's plan list and the key view's notice name the table's plans."""
    plans = team_app.config["PLANS"]
    assert key_plans_text(plans) == "Pro, Team or Enterprise"
    assert key_plans_text(plans, "and") == "Pro, Team and Enterprise"
    with team_app.app_context():
        assert plan_required().message == "API keys require a Pro, Team or Enterprise plan."
    assert team_app.config["KEY_PLANS_ARG"] == "pro team enterprise"

    client, _ = _logged_in(team_app, "free")
    page = client.get("/settings").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "API keys come with the Pro, Team and Enterprise plans." in text
    assert "Upgrade to Pro, Team or Enterprise to connect" in text
    assert "back on Pro, Team or Enterprise." in text
    assert "Business" not in text
    assert 'data-key-plans="pro,team,enterprise"' in page


def test_a_single_key_plan_reads_naturally():
    """One key-capable plan is named alone, with no conjunction."""
    plans = {"free": config.Plan("free", 1, False), "pro": config.Plan("pro", 1, True)}
    assert key_plans_text(plans) == key_plans_text(plans, "and") == "Pro"


@pytest.mark.parametrize("plan, status", [("team", 201), ("enterprise", 201), ("free", 403)])
def test_key_creation_follows_the_table(team_app, plan, status):
    """Keys are for the table's key-capable plans, new and renamed ones included."""
    client, csrf = _logged_in(team_app, plan)
    response = client.post("/api/keys", json={"name": "k"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == status, response.json
    if status == 403:
        assert response.json["error"] == {
            "code": "plan_required",
            "message": "API keys require a Pro, Team or Enterprise plan.",
        }
