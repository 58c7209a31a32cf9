"""Issue #4 / README, "Web app": the web pages, driven in a real headless Chromium by Playwright.

The app runs under gunicorn (2 workers) on the suite's real redis-server. Every test fails on
any browser console error or uncaught page exception, except the few network errors a test
provokes on purpose and names. Debian's chromium is required: without it these tests fail.
The fixtures (site, browser, page, log) are tests/live/conftest.py's; the shared steps are
tests/live/browser.py's.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from blueprints.web import mcp_url
from deploy.processes import ROOT
from tests.helpers import PASSWORD, LiveSession, make_app
from tests.live.browser import (
    KEY_SHAPE,
    BrowserLog,
    api_me,
    assert_key_gone_from_page,
    close_reveal,
    create_key_in_ui,
    key_view,
    local_text,
    log_in,
    plain,
    rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

DOCS_SCREENSHOT = ROOT / "docs" / "settings-page.png"


# ---- pages without a browser: headers, redirects, no inline code ----------------------


def test_pages_are_locked_down_and_carry_no_inline_code_or_secrets(site, make_user):
    """CSP without inline script, nosniff, no-referrer; no secret in the HTML; not counted."""
    make_user("pro", email="pages@example.test")
    web = LiveSession(site.url, "pages@example.test")
    anon = requests.Session()
    pages = [
        (anon, "/login"),
        (anon, "/signup"),
        (web.http, "/settings"),
        (web.http, "/apps/app_0123456789abcdef"),
        (web.http, "/apps"),
    ]
    for client, path in pages:
        r = client.get(f"{site.url}{path}", timeout=10, allow_redirects=False)
        assert r.status_code == 200, (path, r.status_code)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "style-src 'self';" in csp, csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert "X-RateLimit-Limit" not in r.headers  # pages are outside the gate's count
        html = r.text
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all(' src="/static/' in s for s in scripts), scripts
        assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # no inline script body
        assert re.search(r"\sstyle=|<style|\son[a-z]+=", html) is None, path
        assert web.csrf not in html
        assert web.http.cookies["genmb_session"] not in html
    for asset in ("/static/js/keys.js", "/static/css/app.css"):
        r = anon.get(f"{site.url}{asset}", timeout=10)
        assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        anon.get(f"{site.url}/static/js/api.js", timeout=10)
        .headers["Content-Type"]
        .startswith("text/javascript")
    )


def test_pages_redirect_by_session(site, make_user):
    """/ and the logged-in pages send a visitor to /login; a live session skips the login."""
    make_user("pro", email="redirect@example.test")

    def location(client, path: str) -> str:
        r = client.get(f"{site.url}{path}", timeout=10, allow_redirects=False)
        assert r.status_code == 302, (path, r.status_code)
        return r.headers["Location"]

    anon = requests.Session()
    assert location(anon, "/") == "/login"
    assert location(anon, "/settings") == "/login?next=/settings"
    assert location(anon, "/apps/app_1") == "/login?next=/apps/app_1"
    stale = requests.Session()
    stale.cookies.set("genmb_session", "not-a-live-session")
    assert location(stale, "/settings").startswith("/login")
    assert stale.get(f"{site.url}/login", timeout=10, allow_redirects=False).status_code == 200
    web = LiveSession(site.url, "redirect@example.test")
    assert location(web.http, "/") == "/settings"
    assert location(web.http, "/login") == "/settings"
    assert location(web.http, "/signup") == "/settings"
    # Only our own pages are accepted as the place to return to after logging in.
    for evil in ("https://evil.example/", "//evil.example", "/settings/../x", "javascript:x"):
        r = anon.get(f"{site.url}/login", params={"next": evil}, timeout=10)
        assert 'data-next=""' in r.text, evil
    r = anon.get(f"{site.url}/login", params={"next": "/apps/app_1"}, timeout=10)
    assert 'data-next="/apps/app_1"' in r.text


def test_public_url_setting_names_the_mcp_endpoint(redis_url):
    """PUBLIC_URL fills the MCP panel's URL; a malformed one is refused at start-up."""
    app = make_app(redis_url, PUBLIC_URL="https://genmb.example.com/")
    with app.test_request_context("/apps"):
        assert mcp_url() == "https://genmb.example.com/mcp"
    with pytest.raises(RuntimeError, match="PUBLIC_URL"):
        make_app(redis_url, PUBLIC_URL="genmb.example.com")


# ---- the browser ----------------------------------------------------------------------


def test_signup_login_logout_and_free_plan_notice(page: Page, site, log: BrowserLog):
    """Sign up (free), see why keys need Pro or Business, log out, log back in."""
    page.goto("/signup")
    page.get_by_label("Email").fill("newcomer@example.test")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert").filter(has_text="at least 8 characters")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/settings")

    expect(page.locator("[data-account-email]")).to_have_text("newcomer@example.test")
    expect(page.locator("[data-account-plan]")).to_have_text("Free")
    notice = key_view(page).locator("[data-plan-notice]")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Pro and Business")
    expect(notice).to_contain_text("Free plan")
    expect(key_view(page).get_by_role("button", name="New key")).to_be_hidden()
    expect(key_view(page).locator("tbody")).to_have_text("No keys.")

    cookie = next(c for c in page.context.cookies() if c["name"] == "genmb_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert "genmb_session" not in page.evaluate("() => document.cookie")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    assert all(c["name"] != "genmb_session" for c in page.context.cookies())
    page.goto("/settings")
    page.wait_for_url("**/login?next=/settings")
    assert log.writes("/auth/logout"), "logout went through the API"

    log.allow(r"status of 401")  # the wrong password below, answered 401 on purpose
    page.get_by_label("Email").fill("newcomer@example.test")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").filter(has_text="Wrong email or password.")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/settings")
    expect(page.locator("[data-user-email]")).to_have_text("newcomer@example.test")


def test_signup_with_a_taken_email_shows_the_api_message(page: Page, site, make_user, log):
    """A 409 from the API is shown as its message, not swallowed."""
    make_user("free", email="taken@example.test")
    log.allow(r"status of 409")
    page.goto("/signup")
    page.get_by_label("Email").fill("taken@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(
        page.get_by_role("alert").filter(has_text="An account with this email already exists.")
    ).to_be_visible()
    assert page.url.endswith("/signup")


def test_pro_user_creates_a_key_sees_it_once_and_uses_it(page: Page, site, make_user, log):
    """Reveal once, gone after closing, works over plain HTTP, last used updates on reload."""
    make_user("pro", email="pro@example.test")
    log_in(page, "pro@example.test")
    view = key_view(page)
    expect(view.locator("[data-key-count]")).to_have_text("0 of 5 keys")
    expect(view.locator("tbody")).to_have_text("No keys yet. Create one with New key.")

    raw = create_key_in_ui(page, "CI <b>deploy</b>")
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    expect(reveal).to_contain_text("will not be shown again")
    reveal.get_by_role("button", name="Copy key").click()
    expect(reveal.get_by_role("status")).to_have_text("Key copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == raw
    close_reveal(page)
    assert page.locator("[data-reveal-key]").text_content() == ""
    assert_key_gone_from_page(page, raw)
    expect(view.get_by_role("status")).to_contain_text("created")
    expect(view.get_by_role("button", name="New key")).to_be_focused()

    row = rows(page).first
    expect(rows(page)).to_have_count(1)
    expect(row.locator("th")).to_have_text("CI <b>deploy</b>")  # text, never markup
    expect(row.locator("td").nth(0)).to_have_text(raw[:13] + "…")
    expect(row.locator("td").nth(2)).to_have_text("Never")
    expect(view.locator("[data-key-count]")).to_have_text("1 of 5 keys")
    creates = log.writes("/api/keys")
    assert [m for m, _ in creates] == ["POST"]

    me = api_me(site, raw)
    assert me.status_code == 200 and me.json()["auth"]["method"] == "api_key", me.text
    page.reload()
    used = rows(page).first.locator("td").nth(2).locator("time")
    expect(used).to_be_visible()
    used_iso = used.get_attribute("title")
    assert used_iso == used.get_attribute("datetime")
    moment = datetime.strptime(used_iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert timedelta(0) <= datetime.now(UTC) - moment < timedelta(minutes=2), used_iso
    assert used.inner_text() in ("just now", "1 min ago")  # relative; exact UTC on hover
    created = rows(page).first.locator("td").nth(1).locator("time")
    created_iso = created.get_attribute("title")
    assert created_iso <= used_iso
    assert plain(created.inner_text()) == local_text(created_iso)

    assert all(raw not in line for line in log.lines)
    assert raw not in site.logs()
    assert_key_gone_from_page(page, raw)


def test_the_key_cap_is_visible_and_explained(page: Page, site, make_user, log):
    """4 of 5, the fifth from the page, then the New key button says why it does nothing."""
    make_user("pro", email="cap@example.test")
    api = LiveSession(site.url, "cap@example.test")
    for n in range(3):
        assert api.create_key(f"script {n}").status_code == 201
    log_in(page, "cap@example.test")
    view = key_view(page)
    expect(view.locator("[data-key-count]")).to_have_text("3 of 5 keys")

    # A key created elsewhere after the page loaded: the page still offers New key, and the
    # server's 409 is shown as its message, with the count brought up to date.
    assert api.create_key("script 3").status_code == 201
    raw = create_key_in_ui(page, "laptop")
    close_reveal(page)
    expect(view.locator("[data-key-count]")).to_have_text("5 of 5 keys")
    api.delete_key(api.keys()[0]["id"])
    page.reload()
    expect(view.locator("[data-key-count]")).to_have_text("4 of 5 keys")
    assert api.create_key("script 4").status_code == 201
    log.allow(r"status of 409")
    view.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_label("Key name").fill("one too many")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "You already have the maximum number of API keys; delete one to create another."
    )
    expect(view.locator("[data-key-count]")).to_have_text("5 of 5 keys")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    new_key = view.get_by_role("button", name="New key")
    expect(new_key).to_have_attribute("aria-disabled", "true")
    expect(new_key).to_have_accessible_description(re.compile("5 of 5 keys.*Delete a key"))
    posts_before = len(log.writes("/api/keys"))
    new_key.focus()  # aria-disabled, not disabled: still focusable, and it answers
    page.keyboard.press("Enter")
    # The reason is said once, by the hint under the button, which is pointed at again; not
    # repeated as a red error (issue #12).
    hint = view.locator("[data-cap-hint]")
    expect(hint).to_contain_text("Delete a key to create a new one.")
    expect(hint).to_have_class(re.compile("cap-hint-again"))
    expect(view.locator("[data-error]")).to_be_empty()
    expect(dialog).to_be_hidden()
    assert len(log.writes("/api/keys")) == posts_before  # nothing was sent
    assert len(api.keys()) == 5
    assert api_me(site, raw).status_code == 200


def test_deleting_a_key_asks_by_name_and_revokes_it(page: Page, site, make_user):
    """Cancel keeps the key; confirming deletes it and its next HTTP call gets 401."""
    make_user("pro", email="delete@example.test")
    api = LiveSession(site.url, "delete@example.test")
    doomed = api.create_key("CI deploy").json()["key"]
    kept = api.create_key("Laptop").json()["key"]
    assert api_me(site, doomed).status_code == 200
    log_in(page, "delete@example.test")
    view = key_view(page)
    expect(rows(page)).to_have_count(2)

    button = view.get_by_role("button", name="Delete key “CI deploy”")
    button.click()
    confirm = page.get_by_role("dialog", name="Delete key “CI deploy”?")
    expect(confirm).to_be_visible()
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(button).to_be_focused()
    assert api_me(site, doomed).status_code == 200

    button.click()
    confirm.get_by_role("button", name="Delete key").click()
    expect(confirm).to_be_hidden()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first.locator("th")).to_have_text("Laptop")
    expect(view.get_by_role("status")).to_contain_text("Key “CI deploy” deleted.")
    expect(view.locator("[data-key-count]")).to_have_text("1 of 5 keys")

    gone = api_me(site, doomed)
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"
    assert api_me(site, kept).status_code == 200
    assert [k["name"] for k in api.keys()] == ["Laptop"]


@pytest.mark.parametrize("redis_server", ["sentinel"], indirect=True)
def test_delete_repeats_an_unconfirmed_revocation_then_says_so_plainly(
    page: Page, site, make_user, redis_server, log: BrowserLog
):
    """On Sentinel with the replicas frozen, a revoke answers 503 revocation_unconfirmed: the
    page repeats it by itself (and succeeds once a replica is back), or, when every repeat
    fails, says plainly that the key no longer works but the deletion is not confirmed."""
    log.allow(r"status of 503")
    make_user("pro", email="unconfirmed@example.test")
    api = LiveSession(site.url, "unconfirmed@example.test")
    first = api.create_key("Frozen once").json()
    second = api.create_key("Frozen long").json()
    log_in(page, "unconfirmed@example.test")
    view = key_view(page)
    expect(rows(page)).to_have_count(2)
    replicas = [n for n in redis_server.nodes if n.port != redis_server.primary_port()]

    def delete(name: str):
        view.get_by_role("button", name=f"Delete key “{name}”").click()
        dialog = page.get_by_role("dialog", name=f"Delete key “{name}”?")
        dialog.get_by_role("button", name="Delete key").click()
        return dialog

    for replica in replicas:
        replica.pause()
    try:
        dialog = delete("Frozen once")
        expect(dialog.locator("[data-delete-error]")).to_have_text("Confirming the deletion…")
        assert api_me(site, first["key"]).status_code == 401  # refused already
    finally:
        for replica in replicas:
            replica.resume()
    expect(dialog).to_be_hidden()
    expect(view.get_by_role("status")).to_contain_text("Key “Frozen once” deleted.")
    redis_server.wait_settled(redis_server.primary_port())

    for replica in replicas:
        replica.pause()
    try:
        dialog = delete("Frozen long")
        expect(dialog.locator("[data-delete-error]")).to_contain_text(
            "not confirmed yet", timeout=15_000
        )
        expect(dialog).to_be_visible()
        assert api_me(site, second["key"]).status_code == 401
    finally:
        for replica in replicas:
            replica.resume()
    redis_server.wait_settled(redis_server.primary_port())
    dialog.get_by_role("button", name="Delete key").click()  # the user presses Delete again
    expect(dialog).to_be_hidden()
    assert api.keys() == []


def test_mcp_panel_snippets_carry_the_url_and_the_new_key(page: Page, site, make_user):
    """The app editor's MCP panel: same keys, Claude Desktop and Cursor configs that parse."""
    make_user("pro", email="mcp@example.test")
    api = LiveSession(site.url, "mcp@example.test")
    app = api.http.post(
        f"{site.url}/api/apps",
        json={"name": "Landing page"},
        headers={"X-CSRF-Token": api.csrf},
        timeout=10,
    ).json()
    api.create_key("Existing key")
    mcp_url = f"{site.url}/mcp"

    log_in(page, "mcp@example.test", f"/apps/{app['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Landing page")
    expect(page.get_by_role("link", name="Landing page")).to_have_attribute("aria-current", "page")
    panel = page.locator("#mcp")
    expect(panel.get_by_role("heading", name="MCP Integration")).to_be_visible()
    expect(panel.locator("[data-mcp-url-text]")).to_have_text(mcp_url)
    # The panel links to the key list instead of repeating it (issue #12).
    expect(panel.locator("table")).to_have_count(0)
    expect(panel.get_by_role("link", name="Settings → API Keys")).to_have_attribute(
        "href", "/settings#api-keys"
    )
    expect(key_view(page, "#mcp").locator("[data-key-count]")).to_have_text("1 of 5 keys")

    placeholder = json.loads(panel.locator("[data-snippet=claude]").inner_text())
    assert placeholder["mcpServers"]["genmb"]["args"][:3] == ["-y", "mcp-remote", mcp_url]
    assert not KEY_SHAPE.search(json.dumps(placeholder))

    raw = create_key_in_ui(page, "Claude Desktop", within="#mcp")
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    reveal.get_by_role("button", name="Copy Claude Desktop config").click()
    expect(reveal.get_by_role("status")).to_have_text(
        "Claude Desktop config copied to the clipboard."
    )
    claude = json.loads(page.evaluate("() => navigator.clipboard.readText()"))
    assert claude == {
        "mcpServers": {
            "genmb": {
                "command": "npx",
                "args": [
                    "-y",
                    "mcp-remote",
                    mcp_url,
                    "--header",
                    "X-MCP-API-Key:${GENMB_API_KEY}",
                ],
                "env": {"GENMB_API_KEY": raw},
            }
        }
    }
    reveal.get_by_role("button", name="Copy Cursor config").click()
    expect(reveal.get_by_role("status")).to_have_text("Cursor config copied to the clipboard.")
    cursor = json.loads(page.evaluate("() => navigator.clipboard.readText()"))
    # Never the key in mcp.json (often committed): Cursor reads it from its environment.
    assert cursor == {
        "mcpServers": {
            "genmb": {"url": mcp_url, "headers": {"X-MCP-API-Key": "${env:GENMB_API_KEY}"}}
        }
    }
    close_reveal(page)
    assert_key_gone_from_page(page, raw)
    expect(key_view(page, "#mcp").locator("[data-key-count]")).to_have_text("2 of 5 keys")

    assert api_me(site, raw, header="X-MCP-API-Key").status_code == 200
    page.goto("/settings")  # the same key view: the panel's key is in Settings too
    expect(rows(page).locator("th")).to_have_text(["Existing key", "Claude Desktop"])


def test_keyboard_alone_creates_and_deletes_a_key(page: Page, site, make_user):
    """Log in, create (reveal, Escape) and delete a key with the keyboard only."""
    make_user("business", email="keys@example.test")
    page.goto("/login")
    page.keyboard.type("keys@example.test")  # the login page puts focus in Email
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings")
    new_key = key_view(page).get_by_role("button", name="New key")
    expect(new_key).to_be_visible()

    focused = ""
    for _ in range(15):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.textContent.trim()")
        if focused == "New key":
            break
    assert focused == "New key"
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="New API key").get_by_label("Key name")).to_be_focused()
    page.keyboard.type("Keyboard")
    page.keyboard.press("Enter")
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    expect(reveal.get_by_role("button", name="Copy key")).to_be_focused()
    raw = reveal.locator("[data-reveal-key]").inner_text()
    page.keyboard.press("Escape")
    expect(reveal).to_be_hidden()
    expect(new_key).to_be_focused()
    assert_key_gone_from_page(page, raw)
    expect(rows(page)).to_have_count(1)

    page.keyboard.press("Tab")
    expect(key_view(page).get_by_role("button", name="Delete key “Keyboard”")).to_be_focused()
    page.keyboard.press("Enter")
    confirm = page.get_by_role("dialog", name="Delete key “Keyboard”?")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(confirm.get_by_role("button", name="Delete key")).to_be_focused()
    page.keyboard.press("Enter")
    expect(confirm).to_be_hidden()
    expect(rows(page)).to_have_count(0)
    expect(new_key).to_be_focused()
    assert api_me(site, raw).status_code == 401


def test_validation_errors_are_shown_with_their_fields(page: Page, site, make_user, log):
    """A 422 from the API shows its message and the field's complaint."""
    make_user("pro", email="fields@example.test")
    log_in(page, "fields@example.test")
    log.allow(r"status of 422")
    key_view(page).get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_role("alert")).to_have_text("Enter a name for the key.")
    dialog.get_by_label("Key name").fill("evil\u202ename")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "The request body is invalid. name: Must not contain control characters."
    )
    expect(dialog).to_be_visible()
    assert [m for m, _ in log.writes("/api/keys")] == ["POST"]


def screenshot_path(tmp_path: Path) -> Path:
    """docs/settings-page.png in CI (a fresh clone) or with UPDATE_SCREENSHOTS=1; elsewhere a
    temporary file, so that a developer's `make test` does not leave the work tree dirty."""
    if os.environ.get("CI") or os.environ.get("UPDATE_SCREENSHOTS"):
        return DOCS_SCREENSHOT
    return tmp_path / "settings-page.png"


def test_settings_page_screenshot(page: Page, site, make_user, tmp_path):
    """The README's screenshot: a Pro account with three keys, two of them used."""
    make_user("pro", email="ada@example.com")
    api = LiveSession(site.url, "ada@example.com")
    made = {
        name: api.create_key(name).json()["key"]
        for name in ("Claude Desktop", "CI deploy", "Laptop")
    }
    for name in ("Claude Desktop", "CI deploy"):
        assert api_me(site, made[name]).status_code == 200
    log_in(page, "ada@example.com")
    view = key_view(page)
    expect(view.locator("[data-key-count]")).to_have_text("3 of 5 keys")
    expect(rows(page)).to_have_count(3)
    last_used = rows(page).locator("td:nth-child(4)")
    expect(last_used.nth(2)).to_have_text("Never")
    expect(last_used.nth(0).locator("time")).to_be_visible()
    page.set_viewport_size({"width": 1100, "height": 760})
    page.evaluate("() => document.activeElement.blur()")  # no focus ring in the picture
    shot = screenshot_path(tmp_path)
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 400_000
    width = int.from_bytes(data[16:20], "big")
    assert width == 1100
