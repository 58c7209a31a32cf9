"""Issue #12 in Chromium: the key flow at 320, 390 and 1280 px (no sideways scroll, every
control on screen and clicked), the feedback where the eye is, the dead ends, and the pages
waiting out a spent rate window with a visible countdown instead of hanging.

Like tests/live/test_web.py: Debian's chromium under Playwright, against gunicorn on the
suite's redis-server (the live tier's browser and web_server fixtures); any browser console
error fails a test unless the test provoked it and says so.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, ElementHandle, Locator, Page, expect

from deploy.processes import Gunicorn
from store import users
from tests.helpers import PASSWORD, LiveSession
from tests.live.browser import KEY_SHAPE, TIMEOUT_MS, BrowserLog, on_console

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

WIDTHS = (320, 390, 1280)
WINDOW = "14 per minute"  # the spent-window test's IP limit: it stays spent for the test
RESCUE = "3 per 6 seconds"  # its session rescue allowance: short, so waiting is brief


@pytest.fixture(scope="module")
def small_window_server(redis_server, make_gunicorn) -> Iterator[Gunicorn]:
    """The app with a small IP window and a short session rescue, for the spent-window test."""
    env = {"RATELIMIT_GLOBAL": WINDOW, "RATELIMIT_SESSION_RESCUE": RESCUE}
    with make_gunicorn(redis_server.url, "window", 2, env) as server:
        yield server


def open_page(browser: Browser, url: str, width: int, console: BrowserLog) -> Page:
    """A fresh context at this width (a phone's height for narrow ones), clipboard allowed."""
    context = browser.new_context(
        base_url=url,
        viewport={"width": width, "height": 844 if width < 700 else 800},
        permissions=["clipboard-read", "clipboard-write"],
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("console", lambda m: on_console(console, m.type, m.text))
    page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
    return page


def no_sideways_scroll(page: Page, where: str) -> None:
    """The page is no wider than the window."""
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width <= inner, f"{where}: the page is {width} px wide in a {inner} px window"


def click_on_screen(page: Page, control: Locator | ElementHandle) -> None:
    """Scroll the control into view, check it lies inside the window's width, click it."""
    control.scroll_into_view_if_needed()
    box = control.bounding_box()
    inner = page.evaluate("() => innerWidth")
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= inner + 0.5, (
        control,
        box,
        inner,
    )
    control.click()


def log_in(page: Page, email: str, path: str = "/settings") -> None:
    """The login form, clicked."""
    page.goto(f"/login?next={path}")
    no_sideways_scroll(page, "login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    click_on_screen(page, page.get_by_role("button", name="Log in"))
    page.wait_for_url(f"**{path}")


def copy_and_check(page: Page, button: Locator, label: str) -> str:
    """Click a copy button: its own label says "Copied ✓", then returns; the clipboard's text.
    (The button is held as an element: its accessible name changes with its label.)"""
    handle = button.element_handle()
    click_on_screen(page, handle)
    page.wait_for_function("b => b.textContent === 'Copied ✓'", arg=handle)
    text = page.evaluate("() => navigator.clipboard.readText()")
    page.wait_for_function("([b, l]) => b.textContent === l", arg=[handle, label], timeout=6_000)
    return text


@pytest.fixture
def console() -> BrowserLog:
    """This test's browser console (the live tier's log; the page is opened per width here)."""
    return BrowserLog()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_key_flow_fits_and_every_control_works(
    browser, web_server, redis_url, make_user, console, width
):
    """Log in, create a key (copy it), the MCP panel's New key and every button of its
    dialog, the panel's own copy buttons, and Delete with a confirmation naming the key and
    its prefix: at every step the page is no wider than the window."""
    email = f"phone{width}@example.test"
    make_user("pro", email=email)
    api = LiveSession(web_server.url, email)
    app = api.http.post(
        f"{web_server.url}/api/apps",
        json={"name": "Landing page"},
        headers={"X-CSRF-Token": api.csrf},
        timeout=10,
    ).json()
    used = api.create_key("Claude Desktop on the laptop").json()["key"]
    assert requests.get(
        f"{web_server.url}/api/me", headers={"Authorization": f"Bearer {used}"}, timeout=10
    ).ok
    page = open_page(browser, web_server.url, width, console)
    log_in(page, email)
    view = page.locator("#api-keys [data-keyview]")
    rows = view.locator("tbody tr[data-key-id]")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row.locator("th")).to_contain_text("Claude Desktop on the laptop")
    last_used = row.locator("td[data-label='Last used'] time")
    expect(last_used).to_have_text(re.compile(r"^(just now|1 min ago)$"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", last_used.get_attribute("title"))
    if width < 700:  # a stacked card: the name on a line of its own, every field labelled
        name_box, row_box = row.locator("th").bounding_box(), row.bounding_box()
        assert name_box["width"] > row_box["width"] * 0.8, (name_box, row_box)
        labels = row.locator("td[data-label]")
        expect(labels).to_have_count(4)
    else:  # a table row whose dates do not wrap
        created = row.locator("td[data-label='Created'] time")
        assert created.bounding_box()["height"] < 30
    no_sideways_scroll(page, "settings")

    # New key, copy, Done.
    click_on_screen(page, view.get_by_role("button", name="New key"))
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_label("Key name").fill("CI deploy")
    no_sideways_scroll(page, "create dialog")
    click_on_screen(page, dialog.get_by_role("button", name="Create key"))
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    expect(reveal).to_be_visible()
    no_sideways_scroll(page, "reveal dialog")
    raw = copy_and_check(page, reveal.get_by_role("button", name="Copy key"), "Copy key")
    assert KEY_SHAPE.fullmatch(raw)
    click_on_screen(page, reveal.get_by_role("button", name="Done"))
    expect(reveal).to_be_hidden()
    expect(rows).to_have_count(2)
    no_sideways_scroll(page, "settings with two keys")

    # The MCP panel: New key, and every button of its dialog.
    page.goto(f"/apps/{app['id']}")
    panel = page.locator("#mcp")
    expect(panel.locator("[data-mcp-url-text]")).to_have_text(f"{web_server.url}/mcp")
    expect(panel.locator("table")).to_have_count(0)
    no_sideways_scroll(page, "app editor")
    click_on_screen(page, panel.get_by_role("button", name="New key"))
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_label("Key name").fill("Claude Desktop")
    click_on_screen(page, dialog.get_by_role("button", name="Create key"))
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    expect(reveal).to_be_visible()
    no_sideways_scroll(page, "MCP reveal dialog")
    mcp_key = copy_and_check(page, reveal.get_by_role("button", name="Copy key"), "Copy key")
    claude = json.loads(
        copy_and_check(
            page,
            reveal.get_by_role("button", name="Copy Claude Desktop config"),
            "Copy Claude Desktop config",
        )
    )
    server = claude["mcpServers"]["genmb"]
    assert server["args"][:2] == ["-y", "mcp-remote"] and server["env"]["GENMB_API_KEY"] == mcp_key
    export = copy_and_check(
        page, reveal.get_by_role("button", name="Copy the export line"), "Copy the export line"
    )
    assert export == f"export GENMB_API_KEY={mcp_key}"
    cursor = copy_and_check(
        page, reveal.get_by_role("button", name="Copy Cursor config"), "Copy Cursor config"
    )
    assert mcp_key not in cursor and "${env:GENMB_API_KEY}" in cursor
    install = reveal.get_by_role("link", name="Add to Cursor")
    install.scroll_into_view_if_needed()
    assert_install_link(install.get_attribute("href"), f"{web_server.url}/mcp", mcp_key)
    click_on_screen(page, reveal.get_by_role("button", name="Done"))
    expect(reveal).to_be_hidden()
    assert mcp_key not in page.content()
    for kind, label in (("claude", "Copy Claude Desktop config"), ("cursor", "Copy Cursor config")):
        button = panel.locator(f"[data-copy-snippet={kind}]")
        text = copy_and_check(page, button, label)
        assert not KEY_SHAPE.search(text)
    assert_install_link(
        panel.get_by_role("link", name="Add to Cursor").get_attribute("href"),
        f"{web_server.url}/mcp",
        mcp_key,
    )
    click_on_screen(page, panel.get_by_role("link", name="Settings → API Keys"))
    page.wait_for_url("**/settings#api-keys")

    # Delete, with a confirmation naming the key and showing its prefix.
    expect(rows).to_have_count(3)
    doomed = rows.filter(has_text="CI deploy")
    prefix = doomed.locator("td[data-label='Key'] code").inner_text()
    assert prefix == raw[:13] + "…"
    click_on_screen(page, doomed.get_by_role("button", name="Delete key “CI deploy”"))
    confirm = page.get_by_role("dialog", name="Delete key “CI deploy”?")
    expect(confirm.locator("[data-delete-prefix]")).to_have_text(prefix)
    no_sideways_scroll(page, "delete dialog")
    click_on_screen(page, confirm.get_by_role("button", name="Cancel"))
    expect(confirm).to_be_hidden()
    click_on_screen(page, doomed.get_by_role("button", name="Delete key “CI deploy”"))
    click_on_screen(page, confirm.get_by_role("button", name="Delete key"))
    expect(confirm).to_be_hidden()
    expect(rows).to_have_count(2)
    assert (
        requests.get(
            f"{web_server.url}/api/me", headers={"Authorization": f"Bearer {raw}"}, timeout=10
        ).status_code
        == 401
    )
    no_sideways_scroll(page, "settings after delete")
    click_on_screen(page, page.get_by_role("button", name="Log out"))
    page.wait_for_url("**/login")
    page.context.close()
    assert console.unexpected() == []


def assert_install_link(href: str | None, mcp_url: str, key: str) -> None:
    """Cursor's one-click link: its config is the server entry reading the key from the
    environment, never the key."""
    assert href and href.startswith("cursor://anysphere.cursor-deeplink/mcp/install?"), href
    query = parse_qs(urlsplit(href).query)
    assert query["name"] == ["genmb"]
    config = json.loads(base64.b64decode(query["config"][0]))
    assert config == {"url": mcp_url, "headers": {"X-MCP-API-Key": "${env:GENMB_API_KEY}"}}
    assert key not in href


@pytest.mark.parametrize("width", (320, 1280))
def test_dead_ends_have_a_way_out(
    browser, web_server, redis_url, make_user, storage, console, width
):
    """Free plan: a notice with the operator's command and no empty table; a downgraded
    account's keys show "Paused — needs Pro"; a name the list already has is refused in the
    dialog (the API would allow it); an invalid email names the form; an unknown page is a
    page; all without sideways scroll."""
    console.allow(r"status of 404")  # the 404 page, on purpose
    make_user("free", email=f"free{width}@example.test")
    page = open_page(browser, web_server.url, width, console)
    page.goto("/login")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("[data-form-error]")).to_have_text(
        "Enter an email address like name@example.com."
    )
    log_in(page, f"free{width}@example.test")
    view = page.locator("#api-keys [data-keyview]")
    notice = view.locator("[data-plan-notice]")
    expect(notice).to_be_visible()
    expect(notice.locator("[data-plan-command]")).to_have_text(
        f"flask --app app users set-plan free{width}@example.test pro"
    )
    command = copy_and_check(
        page, notice.get_by_role("button", name="Copy command"), "Copy command"
    )
    assert command.startswith("flask --app app users set-plan")
    expect(view.locator("[data-key-table]")).to_be_hidden()
    no_sideways_scroll(page, "free plan")

    email = f"down{width}@example.test"
    make_user("pro", email=email)
    api = LiveSession(web_server.url, email)
    assert api.create_key("Nightly job").status_code == 201
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    log_in(page, email)
    click_on_screen(page, view.get_by_role("button", name="New key"))
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_label("Key name").fill("Nightly job")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "You already have a key with this name; choose another name."
    )
    dialog.get_by_role("button", name="Cancel").click()
    assert len(api.http.get(f"{web_server.url}/api/keys", timeout=10).json()["keys"]) == 1
    users.set_plan(storage, email, "free")
    page.reload()
    row = view.locator("tbody tr[data-key-id]").first
    expect(row.locator(".badge-paused")).to_have_text("Paused — needs Pro")
    expect(view.get_by_role("button", name="Delete key “Nightly job”")).to_be_visible()
    no_sideways_scroll(page, "downgraded")

    page.goto("/apps/app_0000000000000000")
    expect(page.get_by_role("heading", level=1)).to_have_text("App not found")
    expect(page.locator("#mcp")).to_be_hidden()  # no MCP panel under "App not found"
    no_sideways_scroll(page, "app not found")

    page.goto("/setings")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    no_sideways_scroll(page, "404 page")
    page.get_by_role("link", name="Go to Settings").click()
    page.wait_for_url("**/settings")
    page.context.close()
    assert console.unexpected() == []


def spend_the_window(url: str) -> None:
    """What a runaway script does: requests from this address until one is refused (429)."""
    for _ in range(100):
        if requests.get(f"{url}/api/me", timeout=10).status_code == 429:
            return
    raise AssertionError("the window was never spent")


def test_a_spent_window_is_waited_out_with_a_countdown(
    browser, small_window_server, redis_url, make_user, console
):
    """A script spends the IP's window: Settings still loads the account and the key list at
    once (the session rescue), instead of "…" and "Loading keys…" forever. With the session's
    own allowance spent too, a Delete counts down in its dialog, then goes through by itself."""
    console.allow(r"status of 429")
    make_user("pro", email="spent@example.test")
    site = small_window_server
    LiveSession(site.url, "spent@example.test").create_key("Runaway script")
    page = open_page(browser, site.url, 390, console)
    log_in(page, "spent@example.test")
    rows = page.locator("#api-keys tbody tr[data-key-id]")
    expect(rows).to_have_count(1)

    spend_the_window(site.url)
    page.reload()
    # Well before the IP window (a minute) has room again.
    expect(page.locator("[data-account-email]")).to_have_text("spent@example.test", timeout=5_000)
    expect(rows).to_have_count(1, timeout=5_000)
    no_sideways_scroll(page, "spent window")

    # The runaway script's key is deleted with the rescue allowance spent as well: the
    # dialog counts down, then the DELETE goes through once the allowance has room.
    page.get_by_role("button", name="Delete key “Runaway script”").click()
    confirm = page.get_by_role("dialog", name="Delete key “Runaway script”?")
    spent = page.evaluate(
        """async () => {
            for (let i = 0; i < 10; i++) {  // the page's own fetches, as the page makes them
                if ((await fetch("/api/keys")).status === 429) return true;
            }
            return false;
        }"""
    )
    assert spent, "the rescue allowance was never spent"
    confirm.get_by_role("button", name="Delete key").click()
    expect(confirm.locator("[data-page-wait]")).to_contain_text(
        re.compile(r"Trying again in \d+ s")
    )
    no_sideways_scroll(page, "waiting")
    expect(confirm).to_be_hidden(timeout=30_000)
    expect(rows).to_have_count(0, timeout=30_000)
    page.context.close()
    assert console.unexpected() == []
