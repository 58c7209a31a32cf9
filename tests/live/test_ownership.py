"""Issue #18: nobody sees or acts on another user's keys, apps or credits (REST and MCP).

Each test has two users who both hold what is being protected, so a view or tool that stops
scoping by the acting user (lists everyone's keys, acts as whoever owns the given app id)
fails here, at the level a client sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
import requests
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from extensions import storage as app_storage
from services import security_events
from store.names import KeyNames
from tests.helpers import LiveSession, create_key, login
from tests.live.helpers import entries

pytestmark = pytest.mark.integration


@pytest.fixture
def names(app) -> KeyNames:
    """The key names the app itself uses (prefix and layout included)."""
    with app.app_context():
        return app_storage().names


# ---- the key list (REST, session) --------------------------------------------------------


def test_key_list_shows_each_user_only_their_own_keys(app, make_user):
    """GET /api/keys: two users who both hold keys each see exactly their own; a third with
    none sees an empty list."""
    holders = []
    for count in (2, 3):
        user = make_user("pro")
        web = app.test_client()
        csrf = login(web, user.email)
        ids = [create_key(web, csrf, f"{user.email} #{i}")["id"] for i in range(count)]
        holders.append((user, web, ids))
    keyless = app.test_client()
    login(keyless, make_user("pro").email)

    for user, web, ids in holders:
        listed = web.get("/api/keys")
        assert listed.status_code == 200
        assert [k["id"] for k in listed.json["keys"]] == ids, f"{user.email} sees others' keys"
        assert {k["name"].split(" #")[0] for k in listed.json["keys"]} == {user.email}
    assert keyless.get("/api/keys").json == {"keys": []}


# ---- ids in REST routes ------------------------------------------------------------------

# Every /api route with an id in its path, and a body it would accept from the id's owner.
ID_ROUTES = [
    ("GET", "/api/apps/<app_id>", None),
    ("DELETE", "/api/apps/<app_id>", None),
    ("POST", "/api/apps/<app_id>/codegen", {"prompt": "steal"}),
    ("POST", "/api/apps/<app_id>/deploy", None),
    ("DELETE", "/api/keys/<key_id>", None),
    ("POST", "/api/keys/<key_id>/roll", {"overlap_seconds": 60}),  # issue #14
    ("GET", "/api/keys/<key_id>/usage", None),  # issue #14
    ("POST", "/api/security-log/<event_id>/dismiss", None),
]


def test_every_api_route_taking_an_id_is_checked_for_ownership(app):
    """ID_ROUTES lists every /api route with an *_id in its path, so none goes untested."""
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and any(a.endswith("_id") for a in rule.arguments)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    missing = routes - {(method, path) for method, path, _ in ID_ROUTES}
    assert not missing, f"add these routes to ID_ROUTES: {sorted(missing)}"


@pytest.mark.parametrize("method,path,body", ID_ROUTES)
def test_rest_routes_taking_an_id_refuse_another_users(
    app, make_user, rdb, names, method, path, body
):
    """Another user's app or key id is 404 not_found: nothing charged, recorded or deleted."""
    victim, attacker = make_user("pro"), make_user("pro")
    victim_web, attacker_web = app.test_client(), app.test_client()
    victim_key = create_key(victim_web, login(victim_web, victim.email))
    victim_auth = {"Authorization": f"Bearer {victim_key['key']}"}
    app_id = (
        app.test_client().post("/api/apps", json={"name": "mine"}, headers=victim_auth).json["id"]
    )
    attacker_csrf = login(attacker_web, attacker.email)

    with app.app_context():  # a leaked-key banner of the victim's (issue #13)
        event_id = security_events.record(
            victim.id, "api_key.leaked", security_events.SCANNER, alert=True
        )
    url = (
        path.replace("<app_id>", app_id)
        .replace("<key_id>", victim_key["id"])
        .replace("<event_id>", event_id)
    )
    response = attacker_web.open(
        url, method=method, json=body, headers={"X-CSRF-Token": attacker_csrf}
    )
    assert response.status_code == 404, response.json
    assert response.json["error"]["code"] == "not_found"
    assert app.test_client().get(f"/api/apps/{app_id}", headers=victim_auth).status_code == 200
    for user, web in ((victim, victim_web), (attacker, attacker_web)):
        assert web.get("/api/me").json["credits"]["used"] == 0, f"{user.email} was charged"
        assert entries(rdb, names.app_jobs(user.id, app_id)) == 0, (
            f"a job was recorded under {user.email}"
        )
    assert rdb.hexists(names.security_alerts(victim.id), event_id), "the banner was dismissed"


# ---- app ids (MCP, the official SDK client) ----------------------------------------------


@asynccontextmanager
async def _mcp(base_url: str, key: str) -> AsyncIterator[Client]:
    """An SDK client on <base_url>/mcp authenticated with X-MCP-API-Key."""
    async with httpx2.AsyncClient(
        headers={"X-MCP-API-Key": key}, timeout=httpx2.Timeout(30)
    ) as http:
        async with Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client:
            yield client


def _run(coro):
    """Run a coroutine to completion within a bounded time."""
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


# What to pass for the arguments of a tool that takes an id: the other user's id for every
# *_id argument, a harmless value for the rest. A new tool with another argument fails the
# test until it is taught here, so no id-taking tool goes untested.
OTHER_ARGUMENTS = {"prompt": "a todo list"}


def test_mcp_tools_taking_an_id_refuse_another_users_app(live, make_user, rdb, storage):
    """Every MCP tool with an *_id argument, called with another user's app id: not_found,
    nothing charged to either user, no job recorded under either user."""
    names = storage.names
    victim, attacker = make_user("pro"), make_user("pro")
    victim_web = LiveSession(live.url, victim.email)
    made = victim_web.http.post(
        f"{live.url}/api/apps",
        json={"name": "mine"},
        headers={"X-CSRF-Token": victim_web.csrf},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    foreign_ids = {"app_id": made.json()["id"]}
    attacker_key = LiveSession(live.url, attacker.email).create_key().json()["key"]

    async def attempt() -> dict:
        async with _mcp(live.url, attacker_key) as client:
            results = {}
            for tool in (await client.list_tools()).tools:
                properties = tool.input_schema.get("properties", {})
                ids = [name for name in properties if name.endswith("_id")]
                if not ids:
                    continue
                arguments = {}
                for name in ids + list(tool.input_schema.get("required", [])):
                    if name in arguments:
                        continue
                    known = foreign_ids if name.endswith("_id") else OTHER_ARGUMENTS
                    if name not in known:
                        pytest.fail(f"{tool.name} takes {name!r}: teach this test a value")
                    arguments[name] = known[name]
                results[tool.name] = await client.call_tool(tool.name, arguments)
            return results

    results = _run(attempt())
    assert {"start_codegen", "start_deploy"} <= set(results)
    for tool, result in results.items():
        assert result.is_error is True, f"{tool} acted on another user's app: {result}"
        assert result.structured_content["error"]["code"] == "not_found", tool

    victim_me = victim_web.http.get(f"{live.url}/api/me", timeout=10).json()
    attacker_me = requests.get(
        f"{live.url}/api/me", headers={"X-MCP-API-Key": attacker_key}, timeout=10
    ).json()
    assert victim_me["credits"]["used"] == 0, "the app's owner was charged"
    assert attacker_me["credits"]["used"] == 0, "the caller was charged"
    for user in (victim, attacker):
        assert entries(rdb, names.app_jobs(user.id, foreign_ids["app_id"])) == 0, (
            f"a job was recorded under {user.email}"
        )
