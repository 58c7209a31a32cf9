"""Issue #12, item 2: the Claude Desktop configuration, run for real with mcp-remote from npm.

mcp-remote takes a 401 from /mcp as an OAuth challenge, probes the discovery documents and
registers a client at POST /register (blueprints/oauth.py): with a revoked, mistyped or missing
key it must print our message, not "Dynamic Client Registration rejected (HTTP 404)". A good
key keeps working. The package is the one pinned in tests/js/package-lock.json, installed
with `npm ci` into var/test-node/ on first use (Node.js and npm are required: .ci/run installs
them); the snippet runs as the page builds it, `npx -y mcp-remote ...`, from that directory,
so npx finds the pinned package and never fetches another.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from blueprints.oauth import NO_OAUTH
from deploy.processes import ROOT, Gunicorn
from tests.helpers import LiveSession

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

PACKAGE_DIR = ROOT / "tests" / "js"
RUN_SECONDS = 60  # one mcp-remote run, start to exit or to the tools list


def _claude_desktop_args(mcp_url: str) -> list[str]:
    """The "args" of the panel's Claude Desktop snippet (static/js/mcp-config.js)."""
    return ["-y", "mcp-remote", mcp_url, "--header", "X-MCP-API-Key:${GENMB_API_KEY}"]


@pytest.fixture(scope="module")
def node_tools() -> Path:
    """The pinned mcp-remote, installed once per lock file under var/test-node/."""
    for tool in ("node", "npm", "npx"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install nodejs npm"
    lock = (PACKAGE_DIR / "package-lock.json").read_bytes()
    target = ROOT / "var" / "test-node" / hashlib.sha256(lock).hexdigest()[:16]
    if not (target / "node_modules" / ".bin" / "mcp-remote").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(PACKAGE_DIR / name, target / name)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=target,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


def _environment(node_tools: Path, home: Path, key: str | None) -> dict[str, str]:
    """What Claude Desktop gives the process: PATH, a home, and the snippet's env block."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "MCP_REMOTE_CONFIG_DIR": str(home / ".mcp-auth"),
        "npm_config_yes": "false",  # the snippet's -y is what lets npx run it
        "npm_config_update_notifier": "false",
        "npm_config_cache": str(home / ".npm"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if key is not None:
        env["GENMB_API_KEY"] = key
    return env


def _run_refused(node_tools: Path, home: Path, site: Gunicorn, key: str | None) -> str:
    """Run the snippet with a key the server refuses; its exit code and standard error."""
    result = subprocess.run(
        ["npx", *_claude_desktop_args(f"{site.url}/mcp")],
        cwd=node_tools,
        env=_environment(node_tools, home, key),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert result.returncode != 0, result.stderr[-2000:]
    return result.stderr


def test_a_good_key_lists_the_tools_through_mcp_remote(site, node_tools, make_user, tmp_path):
    """The snippet as copied, driven by the official SDK's stdio client: tools listed."""
    make_user("pro", email="remote@example.test")
    key = LiveSession(site.url, "remote@example.test").create_key("Claude Desktop").json()["key"]
    parameters = StdioServerParameters(
        command="npx",
        args=_claude_desktop_args(f"{site.url}/mcp"),
        env=_environment(node_tools, tmp_path, key),
        cwd=node_tools,
    )

    async def tool_names() -> list[str]:
        async with Client(stdio_client(parameters), mode="legacy") as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    names = asyncio.run(asyncio.wait_for(tool_names(), RUN_SECONDS))
    assert "list_apps" in names and "create_app" in names, names
    assert key not in site.logs()


def test_a_revoked_key_prints_our_message(site, node_tools, make_user, tmp_path):
    """Revoked: mcp-remote's registration attempt ends with our sentence, not an HTTP 404."""
    make_user("pro", email="revoked@example.test")
    web = LiveSession(site.url, "revoked@example.test")
    created = web.create_key("Claude Desktop").json()
    assert web.delete_key(created["id"]).status_code == 204
    stderr = _run_refused(node_tools, tmp_path, site, created["key"])
    assert NO_OAUTH in stderr, stderr[-3000:]
    assert "HTTP 404" not in stderr
    assert created["key"] not in stderr.replace("${GENMB_API_KEY}", "")


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("genmb_sk_" + "x" * 31, id="mistyped"),
        pytest.param("", id="empty"),
        pytest.param(None, id="unset"),
    ],
)
def test_a_mistyped_or_missing_key_prints_our_message(site, node_tools, tmp_path, key):
    """A key one character short, an empty env value, no env value at all: the same sentence."""
    stderr = _run_refused(node_tools, tmp_path, site, key)
    assert NO_OAUTH in stderr, stderr[-3000:]


def test_discovery_stays_404_and_registration_says_why(site):
    """No OAuth metadata anywhere mcp-remote or the SDKs look (a client that found some would
    drop its configured headers, as Cursor does); POST /register is 400 with the message, its
    characters unescaped; none of these paths is counted in the per-IP window."""
    base = site.url
    for document in ("oauth-protected-resource", "oauth-authorization-server"):
        for suffix in ("", "/mcp"):
            r = requests.get(f"{base}/.well-known/{document}{suffix}", timeout=10)
            assert r.status_code == 404, (document, suffix)
            assert r.json()["error"] == {"code": "not_found", "message": NO_OAUTH}
            assert "X-RateLimit-Limit" not in r.headers
    for path in ("/.well-known/openid-configuration", "/.well-known/openid-configuration/mcp"):
        assert requests.get(f"{base}{path}", timeout=10).status_code == 404
    r = requests.post(f"{base}/register", json={"client_name": "MCP CLI Proxy"}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "oauth_not_supported", "message": NO_OAUTH}
    assert "—" in r.content.decode() and "\\u2014" not in r.text
    assert "X-RateLimit-Limit" not in r.headers
    challenge = requests.post(f"{base}/mcp", json={}, timeout=10)
    assert challenge.status_code == 401
    assert "resource_metadata" not in challenge.headers["WWW-Authenticate"]
    assert json.loads(challenge.text)["error"]["data"]["code"] == "missing_credentials"
