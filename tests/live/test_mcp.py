"""docs/mcp.md / issue #5: the MCP server on /mcp, driven by the official MCP SDK client.

Everything here runs against gunicorn (4 workers, the conftest fixture, or 2 workers with
other settings) on the real redis-server; the client is the mcp package's streamable-HTTP
client, except where a raw HTTP request states the exact bytes on the wire.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
import requests
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from config import load_settings
from deploy.local_redis import RedisServer
from deploy.processes import ROOT, Gunicorn
from store import users
from store.names import KeyNames
from tests.helpers import LiveSession, app_server

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

CURRENT, PREVIOUS = "2026-07-28", "2025-11-25"
TOOLS = {"list_apps", "create_app", "start_codegen", "start_deploy", "get_usage"}
ACCEPT = "application/json, text/event-stream"
BAD_KEY = "genmb_sk_" + "Z" * 32


# ---- helpers ----------------------------------------------------------------------------


@asynccontextmanager
async def connect(
    base_url: str, headers: dict[str, str], mode: str = "auto"
) -> AsyncIterator[Client]:
    """An SDK client on <base_url>/mcp sending `headers` with every request."""
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30)) as http:
        transport = streamable_http_client(f"{base_url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


def run(coro):
    """Run a coroutine to completion (each test drives its own event loop)."""
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def mcp_error(exc: BaseException) -> MCPError:
    """The MCPError a failed connect raised (possibly inside an exception group)."""
    seen = [exc]
    while seen:
        current = seen.pop()
        if isinstance(current, MCPError):
            return current
        seen.extend(getattr(current, "exceptions", ()))
    raise AssertionError(f"no MCPError in {exc!r}")


def connect_error(base_url: str, headers: dict[str, str], mode: str = "auto") -> MCPError:
    """Connect (and list tools); return the MCPError it must fail with."""

    async def attempt() -> None:
        async with connect(base_url, headers, mode) as client:
            await client.list_tools()

    with pytest.raises(BaseException) as info:  # noqa: B017 - narrowed by mcp_error()
        run(attempt())
    return mcp_error(info.value)


def call(
    base_url: str,
    headers: dict[str, str],
    tool: str,
    arguments: dict | None = None,
    mode: str = "auto",
) -> CallToolResult:
    """Connect and call one tool."""

    async def go() -> CallToolResult:
        async with connect(base_url, headers, mode) as client:
            return await client.call_tool(tool, arguments or {})

    return run(go())


def rpc(
    base_url: str, headers: dict[str, str], message: dict, version: str | None = PREVIOUS
) -> requests.Response:
    """One raw JSON-RPC POST to /mcp (MCP-Protocol-Version header unless version is None)."""
    sent = {"Accept": ACCEPT, **headers}
    if version is not None:
        sent["MCP-Protocol-Version"] = version
    return requests.post(f"{base_url}/mcp", json=message, headers=sent, timeout=30)


def assert_json_rpc_error(response: requests.Response, status: int, code: str) -> dict:
    """The response is `status` with a JSON-RPC error object whose data names `code`."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert isinstance(body["error"]["code"], int)
    assert body["error"]["message"]
    assert body["error"]["data"]["code"] == code and body["error"]["data"]["status"] == status
    assert "error" not in body["error"]["data"]  # not our REST envelope
    return body["error"]


class Owner:
    """A pro user with a session (for REST checks) and a live API key."""

    def __init__(self, base_url: str, make_user, plan: str = "pro") -> None:
        self.base_url = base_url
        self.user = make_user(plan)
        self.session = LiveSession(base_url, self.user.email)
        created = self.session.create_key("mcp").json()
        self.key, self.key_id = created["key"], created["id"]
        self.headers = {"X-MCP-API-Key": self.key}

    def rest(self, method: str, path: str, **kwargs) -> requests.Response:
        """A REST call with the key."""
        return requests.request(
            method, f"{self.base_url}{path}", headers=self.headers, timeout=30, **kwargs
        )

    def me(self) -> dict:
        """GET /api/me."""
        response = self.rest("GET", "/api/me")
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def owner(live, make_user) -> Owner:
    """A pro user with a key, on the shared 4-worker gunicorn with an empty database."""
    return Owner(live.url, make_user)


# ---- the SDK client: tools, effects, both protocol revisions ----------------------------


def test_sdk_client_lists_the_tools_with_descriptions_and_schemas(owner):
    """X-MCP-API-Key: the SDK connects at the current revision and sees five described tools."""

    async def go():
        async with connect(owner.base_url, owner.headers) as client:
            return client.protocol_version, client.server_info, await client.list_tools()

    version, info, listed = run(go())
    assert version == CURRENT
    assert info is not None and info.name == "genmb"
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 40, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    assert tools["create_app"].input_schema["required"] == ["name"]
    assert set(tools["start_codegen"].input_schema["required"]) == {"app_id", "prompt"}
    assert tools["start_deploy"].input_schema["required"] == ["app_id"]
    assert tools["list_apps"].annotations.read_only_hint is True
    assert "10 credits" in tools["start_codegen"].description  # COST_CODEGEN, from settings
    assert "5 credits" in tools["start_deploy"].description


def test_each_tool_acts_as_the_key_owner_and_shows_through_rest(owner, rdb):
    """create, list, codegen, deploy, usage over MCP; every effect is visible over REST."""
    rest_app = owner.rest("POST", "/api/apps", json={"name": "made over REST"}).json()

    async def go():
        async with connect(owner.base_url, owner.headers) as client:
            created = await client.call_tool("create_app", {"name": "  made over MCP  "})
            listed = await client.call_tool("list_apps", {})
            app_id = created.structured_content["id"]
            codegen = await client.call_tool(
                "start_codegen", {"app_id": app_id, "prompt": "a todo list"}
            )
            deploy = await client.call_tool("start_deploy", {"app_id": app_id})
            usage = await client.call_tool("get_usage", {})
            return created, listed, codegen, deploy, usage

    created, listed, codegen, deploy, usage = run(go())
    for result in (created, listed, codegen, deploy, usage):
        assert result.is_error is False
    app = created.structured_content
    assert app["name"] == "made over MCP"  # trimmed by the same schema as REST
    assert owner.rest("GET", f"/api/apps/{app['id']}").json() == app
    assert [a["id"] for a in listed.structured_content["apps"]] == [rest_app["id"], app["id"]]
    assert json.loads(created.content[0].text) == app  # text content mirrors the structure

    job = codegen.structured_content["job"]
    assert (job["app_id"], job["kind"], job["status"], job["credits"]) == (
        app["id"],
        "codegen",
        "queued",
        10,
    )
    assert deploy.structured_content["job"]["kind"] == "deploy"
    assert deploy.structured_content["job"]["credits"] == 5
    me = owner.me()
    assert me["credits"]["used"] == 15 and me["credits"]["remaining"] == 985
    # get_usage ran after both charges, in the same terms as GET /api/me
    assert usage.structured_content == {
        "email": me["email"],
        "plan": "pro",
        "credits": me["credits"],
    }
    jobs = rdb.lrange(KeyNames().app_jobs(me["id"], app["id"]), 0, -1)
    assert sorted(json.loads(j)["kind"] for j in jobs) == ["codegen", "deploy"]
    assert json.loads([j for j in jobs if "codegen" in j][0])["prompt"] == "a todo list"


def test_bearer_key_with_the_previous_protocol_revision(owner):
    """Authorization: Bearer, and the initialize handshake at the previous revision."""
    bearer = {"Authorization": f"Bearer {owner.key}"}

    async def go():
        async with connect(owner.base_url, bearer, mode="legacy") as client:
            usage = await client.call_tool("get_usage", {})
            created = await client.call_tool("create_app", {"name": "legacy"})
            return client.protocol_version, usage, created

    version, usage, created = run(go())
    assert version == PREVIOUS
    assert usage.structured_content["email"] == owner.user.email
    assert owner.rest("GET", f"/api/apps/{created.structured_content['id']}").status_code == 200


def test_initialize_at_current_and_previous_revisions_on_the_wire(owner):
    """Raw POSTs: 2026-07-28 is served per request (server/discover, no handshake); the
    handshake revisions negotiate through initialize; nothing opens a server-side session."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": CURRENT,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    discover = rpc(
        owner.base_url,
        {**owner.headers, "Mcp-Method": "server/discover"},
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}},
        version=CURRENT,
    )
    assert discover.status_code == 200, discover.text
    assert discover.headers["Content-Type"].startswith("application/json")
    assert CURRENT in discover.json()["result"]["supportedVersions"]
    assert "tools" in discover.json()["result"]["capabilities"]

    listed = rpc(
        owner.base_url,
        {**owner.headers, "Mcp-Method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}},
        version=CURRENT,
    )
    assert {t["name"] for t in listed.json()["result"]["tools"]} == TOOLS

    for version in (PREVIOUS, "2025-06-18"):
        init = rpc(
            owner.base_url,
            owner.headers,
            version=None,
            message={
                "jsonrpc": "2.0",
                "id": 3,
                "method": "initialize",
                "params": {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            },
        )
        assert init.status_code == 200, init.text
        assert init.headers["Content-Type"].startswith("application/json")
        assert init.json()["result"]["protocolVersion"] == version
        assert init.json()["result"]["serverInfo"]["name"] == "genmb"
        assert "Mcp-Session-Id" not in init.headers  # stateless: no session to pin a worker
    # Without any handshake, a request at the previous revision is answered by any worker.
    direct = rpc(
        owner.base_url,
        owner.headers,
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "list_apps", "arguments": {}},
        },
    )
    assert direct.json()["result"]["structuredContent"] == {"apps": []}


def test_no_endless_event_stream_at_the_current_revision(owner):
    """subscriptions/listen (an event stream at 2026-07-28) is not served: it would pin a
    sync worker. The refusal comes back at once, as JSON, and nothing advertises changes."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": CURRENT,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    listen = rpc(
        owner.base_url,
        {**owner.headers, "Mcp-Method": "subscriptions/listen"},
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "subscriptions/listen",
            "params": {"_meta": meta, "notifications": {"toolsListChanged": True}},
        },
        version=CURRENT,
    )
    assert listen.elapsed.total_seconds() < 5
    assert listen.headers["Content-Type"].startswith("application/json"), listen.text
    assert listen.json()["error"]["code"] == -32601  # method not found
    discover = rpc(
        owner.base_url,
        {**owner.headers, "Mcp-Method": "server/discover"},
        {"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": meta}},
        version=CURRENT,
    )
    assert discover.json()["result"]["capabilities"]["tools"].get("listChanged") is not True


def test_tool_calls_charge_credits_visible_in_me(owner, make_user, rdb):
    """Each start_codegen charges COST_CODEGEN; refusals (unknown app, no credit) charge 0."""
    app_id = owner.rest("POST", "/api/apps", json={"name": "a"}).json()["id"]
    other = Owner(owner.base_url, make_user)
    foreign = other.rest("POST", "/api/apps", json={"name": "not yours"}).json()["id"]

    async def go():
        async with connect(owner.base_url, owner.headers) as client:
            ok = [
                await client.call_tool("start_codegen", {"app_id": app_id, "prompt": f"{i}"})
                for i in range(3)
            ]
            missing = await client.call_tool(
                "start_codegen", {"app_id": foreign, "prompt": "steal"}
            )
            return ok, missing

    ok, missing = run(go())
    assert [r.is_error for r in ok] == [False] * 3
    assert missing.is_error is True
    assert missing.structured_content == {"error": {"code": "not_found", "message": "Not found."}}
    assert missing.content[0].text.startswith("not_found: ")
    assert owner.me()["credits"]["used"] == 30
    assert other.me()["credits"]["used"] == 0

    month = datetime.now(UTC).strftime("%Y-%m")
    rdb.set(KeyNames().credits(owner.user.id, month), 995)  # 5 credits left; codegen costs 10
    broke = call(
        owner.base_url, owner.headers, "start_codegen", {"app_id": app_id, "prompt": "one more"}
    )
    assert broke.is_error is True
    assert broke.structured_content["error"]["code"] == "insufficient_credits"
    assert owner.me()["credits"]["used"] == 995
    deploy = call(owner.base_url, owner.headers, "start_deploy", {"app_id": app_id})
    assert deploy.is_error is False  # 5 credits still cover a deploy
    assert owner.me()["credits"] == {**owner.me()["credits"], "used": 1000, "remaining": 0}


def test_invalid_arguments_are_tool_errors_not_charged(owner, live):
    """Schema violations and the REST validators' refusals come back as tool errors."""
    app_id = owner.rest("POST", "/api/apps", json={"name": "a"}).json()["id"]

    async def go():
        async with connect(owner.base_url, owner.headers) as client:
            blank = await client.call_tool("create_app", {"name": "   "})
            control = await client.call_tool("create_app", {"name": "bad\x07name"})
            empty_prompt = await client.call_tool("start_codegen", {"app_id": app_id, "prompt": ""})
            pasted = await client.call_tool("start_deploy", {"app_id": owner.key})
            # Too long for the schema: the SDK's validation message quotes the input.
            long_name = await client.call_tool("create_app", {"name": owner.key * 4})
            return blank, control, empty_prompt, pasted, long_name

    blank, control, empty_prompt, pasted, long_name = run(go())
    assert long_name.is_error is True and owner.key not in str(long_name)
    assert owner.key[9:13] not in str(long_name)  # the input is never echoed (#11)
    assert "at most 100 characters" in str(long_name)  # the field's rule is
    assert pasted.is_error is True
    assert pasted.structured_content["error"]["code"] == "not_found"
    assert owner.key not in str(pasted)  # never echoed back to the client
    assert owner.key not in live.logs()  # a key pasted as an id is refused, never logged
    assert blank.is_error and blank.structured_content["error"]["code"] == "validation_error"
    assert "name" in blank.structured_content["error"]["fields"]
    assert control.is_error and control.structured_content["error"]["fields"]["name"]
    assert empty_prompt.is_error is True  # refused by the input schema (minLength 1)
    assert [a["name"] for a in owner.rest("GET", "/api/apps").json()["apps"]] == ["a"]
    assert owner.me()["credits"]["used"] == 0


def test_codegen_limit_is_shared_between_rest_and_mcp(owner):
    """RATELIMIT_CODEGEN (10/min) counts REST and MCP calls together, per user."""
    app_id = owner.rest("POST", "/api/apps", json={"name": "a"}).json()["id"]
    for i in range(6):
        r = owner.rest("POST", f"/api/apps/{app_id}/codegen", json={"prompt": f"rest {i}"})
        assert r.status_code == 202, r.text

    async def go():
        async with connect(owner.base_url, owner.headers) as client:
            return [
                await client.call_tool("start_codegen", {"app_id": app_id, "prompt": f"mcp {i}"})
                for i in range(5)
            ]

    results = run(go())
    assert [r.is_error for r in results] == [False] * 4 + [True]
    error = results[-1].structured_content["error"]
    assert error["code"] == "rate_limited" and error["limit"] == 10
    assert 1 <= error["retry_after"] <= 60
    rest = owner.rest("POST", f"/api/apps/{app_id}/codegen", json={"prompt": "rest again"})
    assert rest.status_code == 429 and rest.json()["error"]["code"] == "rate_limited"
    assert owner.me()["credits"]["used"] == 100  # ten jobs; the refused ones charged nothing
    deploy = call(owner.base_url, owner.headers, "start_deploy", {"app_id": app_id})
    assert deploy.is_error is False  # deploy has a limit of its own


def test_deploy_limit_over_mcp_then_rest(owner):
    """RATELIMIT_DEPLOY (5/min): five over MCP use it up for REST too."""
    app_id = owner.rest("POST", "/api/apps", json={"name": "a"}).json()["id"]

    async def go():
        async with connect(owner.base_url, owner.headers) as client:
            return [await client.call_tool("start_deploy", {"app_id": app_id}) for _ in range(5)]

    assert [r.is_error for r in run(go())] == [False] * 5
    rest = owner.rest("POST", f"/api/apps/{app_id}/deploy")
    assert rest.status_code == 429
    assert rest.headers["X-RateLimit-Limit"] == "5" and rest.headers["X-RateLimit-Remaining"] == "0"


def test_last_used_at_is_stamped_by_mcp_requests(owner):
    """A key used only over MCP gets last_used_at, as any API request would set it."""
    fresh = owner.session.create_key("only mcp").json()
    assert _key_info(owner, fresh["id"])["last_used_at"] is None
    call(owner.base_url, {"X-MCP-API-Key": fresh["key"]}, "get_usage")
    first = _key_info(owner, fresh["id"])["last_used_at"]
    assert first is not None and first.endswith("Z")
    call(owner.base_url, {"Authorization": f"Bearer {fresh['key']}"}, "list_apps")
    assert _key_info(owner, fresh["id"])["last_used_at"] >= first


def _key_info(owner: Owner, key_id: str) -> dict:
    return next(k for k in owner.session.keys() if k["id"] == key_id)


def test_session_cookie_works_with_csrf_as_on_the_api(owner):
    """The web session authenticates /mcp too, and, being a cookie, needs the CSRF token."""
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_usage", "arguments": {}},
    }
    headers = {"Accept": ACCEPT, "MCP-Protocol-Version": PREVIOUS}
    url = f"{owner.base_url}/mcp"
    refused = owner.session.http.post(url, json=message, headers=headers, timeout=30)
    assert_json_rpc_error(refused, 403, "csrf_failed")
    allowed = owner.session.http.post(
        url, json=message, timeout=30, headers={**headers, "X-CSRF-Token": owner.session.csrf}
    )
    assert allowed.status_code == 200
    assert allowed.json()["result"]["structuredContent"]["plan"] == "pro"


# ---- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["bad", "missing", "malformed", "blank"])
def test_bad_and_missing_keys_fail_with_clear_errors(live, case):
    """The SDK client fails to connect with our message and code; the wire says 401."""
    headers = {
        "bad": {"X-MCP-API-Key": BAD_KEY},
        "missing": {},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "blank": {"X-MCP-API-Key": ""},
    }[case]
    expected = "missing_credentials" if case in ("missing", "blank") else "invalid_api_key"
    error = connect_error(live.url, headers)
    assert error.error.data["code"] == expected
    assert error.error.data["status"] == 401
    assert (
        "invalid or has been revoked"
        if expected == "invalid_api_key"
        else "Authentication required"
    ) in str(error)

    response = rpc(live.url, headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    body = assert_json_rpc_error(response, 401, expected)
    assert body["code"] == -32010
    realm = 'Bearer realm="genmb"'
    assert response.headers["WWW-Authenticate"] == (
        realm if expected == "missing_credentials" else f'{realm}, error="invalid_token"'
    )
    assert int(response.headers["X-RateLimit-Remaining"]) < 200  # counted like any request


def test_revoked_key_fails_on_its_next_request(owner):
    """A key that worked is refused by the SDK client right after it is revoked."""
    assert call(owner.base_url, owner.headers, "get_usage").is_error is False
    assert owner.session.delete_key(owner.key_id).status_code == 204
    error = connect_error(owner.base_url, owner.headers)
    assert error.error.data["code"] == "invalid_api_key"
    assert_json_rpc_error(
        rpc(owner.base_url, owner.headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        401,
        "invalid_api_key",
    )


def test_downgraded_user_gets_plan_required_and_back_after_upgrade(owner, storage):
    """A key whose owner is now on free: 403 plan_required; it works again after upgrade."""
    users.set_plan(storage, owner.user.email, "free")
    error = connect_error(owner.base_url, owner.headers)
    assert error.error.data == {"code": "plan_required", "status": 403}
    assert "Pro or Business" in str(error)
    body = assert_json_rpc_error(
        rpc(owner.base_url, owner.headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        403,
        "plan_required",
    )
    assert body["code"] == -32011
    users.set_plan(storage, owner.user.email, "business")
    assert call(owner.base_url, owner.headers, "get_usage").structured_content["plan"] == "business"


def test_no_oauth_metadata_is_advertised(live):
    """API keys only: no OAuth discovery documents, no resource_metadata in the challenge."""
    for path in (
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ):
        assert requests.get(f"{live.url}{path}", timeout=10).status_code == 404
    challenge = rpc(live.url, {}, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert challenge.headers["WWW-Authenticate"] == 'Bearer realm="genmb"'


def test_get_and_delete_answer_405(owner):
    """No event stream, no session to delete: 405 with Allow: POST and a JSON-RPC body."""
    for method in ("GET", "DELETE"):
        response = requests.request(
            method,
            f"{owner.base_url}/mcp",
            timeout=10,
            headers={**owner.headers, "Accept": "text/event-stream"},
        )
        error = assert_json_rpc_error(response, 405, "method_not_allowed")
        assert response.headers["Allow"] == "POST"
        assert "stateless" in error["message"]
    anonymous = requests.get(f"{owner.base_url}/mcp", timeout=10)
    assert_json_rpc_error(anonymous, 401, "missing_credentials")  # the gate comes first


def test_oversized_body_is_413_before_the_sdk(owner):
    """Bodies over 1 MiB are refused with 413 and a JSON-RPC error body."""
    huge = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "create_app", "arguments": {"name": "x" * (1024 * 1024)}},
    }
    assert_json_rpc_error(rpc(owner.base_url, owner.headers, huge), 413, "payload_too_large")


def test_default_host_and_origin_checks(owner):
    """The defaults accept loopback hosts and origins only (DNS rebinding protection)."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert_json_rpc_error(
        rpc(owner.base_url, {**owner.headers, "Host": "evil.example"}, message),
        421,
        "host_not_allowed",
    )
    assert_json_rpc_error(
        rpc(owner.base_url, {**owner.headers, "Origin": "http://evil.example"}, message),
        403,
        "origin_not_allowed",
    )
    for origin in ("http://localhost:3000", "http://127.0.0.1:6274"):
        ok = rpc(owner.base_url, {**owner.headers, "Origin": origin}, message)
        assert ok.status_code == 200, ok.text
    assert rpc(owner.base_url, {**owner.headers, "Host": "localhost"}, message).ok


# ---- concurrency --------------------------------------------------------------------------


def test_twenty_concurrent_sdk_clients_all_succeed(owner, live):
    """20 SDK clients at once, each connecting, listing and creating an app: all succeed,
    served by several workers with no session between them."""

    async def one(i: int) -> tuple[int, str]:
        async with connect(owner.base_url, owner.headers) as client:
            listed = await client.list_tools()
            created = await client.call_tool("create_app", {"name": f"client {i}"})
            assert not created.is_error, created
            return len(listed.tools), created.structured_content["name"]

    async def all_of_them():
        return await asyncio.gather(*(one(i) for i in range(20)))

    results = run(all_of_them())
    assert results == [(len(TOOLS), f"client {i}") for i in range(20)]
    names = sorted(a["name"] for a in owner.rest("GET", "/api/apps").json()["apps"])
    assert names == sorted(f"client {i}" for i in range(20))
    pids = set(
        re.findall(
            rf"\[(\d+)\] genmb\.mcp: mcp\.tool tool=create_app "
            rf"user_id={owner.user.id}",
            live.logs(),
        )
    )
    assert len(pids) >= 2, pids


# ---- settings-dependent behaviour: its own gunicorn -------------------------------------


@pytest.fixture(scope="module")
def configured(redis_server: RedisServer, make_gunicorn) -> Iterator[Gunicorn]:
    """gunicorn (2 workers) with a public host name, one allowed origin, 6 requests a minute."""
    with make_gunicorn(
        redis_server.url,
        "mcp-configured",
        2,
        env={
            "MCP_ALLOWED_HOSTS": "mcp.example.test, 127.0.0.1:*",
            "MCP_ALLOWED_ORIGINS": "https://app.example.test",
            "RATELIMIT_GLOBAL": "6 per minute",
        },
    ) as server:
        yield server


def test_host_and_origin_come_from_settings(configured, redis_url, make_user):
    """MCP_ALLOWED_HOSTS / MCP_ALLOWED_ORIGINS replace the loopback defaults."""
    user = make_user("pro")
    key = LiveSession(configured.url, user.email).create_key().json()["key"]  # 2 requests
    headers = {"X-MCP-API-Key": key}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert (
        rpc(
            configured.url,
            {**headers, "Host": "mcp.example.test", "Origin": "https://app.example.test"},
            message,
        ).status_code
        == 200
    )
    assert_json_rpc_error(
        rpc(configured.url, {**headers, "Host": "localhost"}, message), 421, "host_not_allowed"
    )
    assert_json_rpc_error(
        rpc(configured.url, {**headers, "Origin": "http://localhost:8000"}, message),
        403,
        "origin_not_allowed",
    )
    assert rpc(configured.url, headers, message).status_code == 200  # 127.0.0.1:<port>


def test_global_ip_limit_covers_mcp(configured, redis_url):
    """The 7th request in the minute is 429 rate_limited with Retry-After, as JSON-RPC."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    codes = [rpc(configured.url, {"X-MCP-API-Key": BAD_KEY}, message).status_code for _ in range(6)]
    assert codes == [401] * 6
    limited = rpc(configured.url, {"X-MCP-API-Key": BAD_KEY}, message)
    error = assert_json_rpc_error(limited, 429, "rate_limited")
    assert error["code"] == -32012
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    sdk = connect_error(configured.url, {"X-MCP-API-Key": BAD_KEY})
    assert sdk.error.data["code"] == "rate_limited"


def test_redis_outage_is_503_json_rpc(tmp_path: Path):
    """With Redis frozen, /mcp answers 503 service_unavailable (as JSON-RPC) fast."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir).start()
    web = app_server(redis.url, tmp_path / "log", 1, env={"REDIS_TIMEOUT": "0.5"})
    try:
        web.start()
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        assert rpc(web.url, {"X-MCP-API-Key": BAD_KEY}, message).status_code == 401
        redis.pause()
        try:
            down = rpc(web.url, {"X-MCP-API-Key": BAD_KEY}, message)
            error = assert_json_rpc_error(down, 503, "service_unavailable")
            assert error["code"] == -32013 and down.headers["Retry-After"] == "1"
            assert down.elapsed.total_seconds() < 2.5
        finally:
            redis.resume()
    finally:
        web.stop()
        redis.stop()


def test_mcp_settings_are_parsed_and_checked():
    """Comma lists with blanks trimmed; blank means the loopback default; no host is refused."""
    base = {"REDIS_URL": "memory://", "GENMB_ENV": "development"}
    parsed = load_settings(
        env={
            **base,
            "MCP_ALLOWED_HOSTS": " a.example , b.example:* ,",
            "MCP_ALLOWED_ORIGINS": "https://a.example",
        }
    )
    assert parsed["MCP_ALLOWED_HOSTS"] == ["a.example", "b.example:*"]
    assert parsed["MCP_ALLOWED_ORIGINS"] == ["https://a.example"]
    default = load_settings(env={**base, "MCP_ALLOWED_HOSTS": "  "})
    assert "127.0.0.1:*" in default["MCP_ALLOWED_HOSTS"]
    assert "localhost:*" in default["MCP_ALLOWED_HOSTS"]
    assert "http://localhost:*" in default["MCP_ALLOWED_ORIGINS"]
    with pytest.raises(RuntimeError, match="MCP_ALLOWED_HOSTS"):
        load_settings(env={**base, "MCP_ALLOWED_HOSTS": ", ,"})


# ---- process model ------------------------------------------------------------------------


def test_the_sdk_is_not_loaded_until_the_first_mcp_request():
    """Importing and building the app starts no MCP machinery (nothing to break at fork);
    the first use builds this process's runtime: the SDK, its loop thread, its manager."""
    script = """
import os, sys, threading
from app import create_app
app = create_app({"REDIS_URL": "memory://", "TESTING": True})
def loaded():
    return (any(m == "mcp" or m.startswith("mcp.") for m in sys.modules),
            [t.name for t in threading.enumerate() if t.name == "genmb-mcp-loop"])
print("before", loaded())
from mcp_server.runtime import runtime_for
from store.names import KeyNames
runtime = runtime_for(app)
assert runtime_for(app) is runtime and runtime.pid == os.getpid()
print("after", loaded())
runtime.stop()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("before", "after"))]
    assert lines == ["before (False, [])", "after (True, ['genmb-mcp-loop'])"]
