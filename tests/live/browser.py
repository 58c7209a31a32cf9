"""Playwright in the live tier: Debian's chromium, what a page logged (console errors, unsafe
requests), and the steps the page tests share (log in, find the key table, read a reveal)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from playwright.sync_api import Page, expect

from deploy.processes import Gunicorn
from tests.helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
TIMEZONE = "Asia/Tokyo"  # UTC+9 all year: local time visibly differs from UTC
KEY_SHAPE = re.compile(r"genmb_sk_[A-Za-z0-9_-]{32}")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class BrowserLog:
    """What the page said and sent: console errors, every console line, unsafe requests."""

    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    unsafe: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect a console error matching pattern (a response the test provokes on purpose)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        """Console errors and page exceptions that no allow() covers."""
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def writes(self, path: str) -> list[tuple[str, dict[str, str]]]:
        """(method, headers) of every unsafe request the page sent to path."""
        return [(m, h) for m, url, h in self.unsafe if urlsplit(url).path == path]


def on_console(log: BrowserLog, kind: str, text: str) -> None:
    log.lines.append(text)
    if kind == "error":
        log.errors.append(text)


# ---- steps --------------------------------------------------------------------------


def log_in(page: Page, email: str, path: str = "/settings") -> None:
    """Log in through the login form and land on path."""
    page.goto(f"/login?next={path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")


def key_view(page: Page, within: str = "#api-keys"):
    """The key view inside a section (#api-keys on Settings, #mcp in the app editor)."""
    return page.locator(within).locator("[data-keyview]")


def create_key_in_ui(page: Page, name: str, within: str = "#api-keys") -> str:
    """Run the New key flow; returns the revealed raw key with the reveal dialog still open."""
    view = key_view(page, within)
    view.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_label("Key name").fill(name)
    dialog.get_by_role("button", name="Create key").click()
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    expect(reveal).to_be_visible()
    raw = reveal.locator("[data-reveal-key]").inner_text()
    assert KEY_SHAPE.fullmatch(raw), raw
    return raw


def close_reveal(page: Page) -> None:
    """Click Done on the reveal dialog and wait for it to close."""
    reveal = page.get_by_role("dialog", name=re.compile("created"))
    reveal.get_by_role("button", name="Done").click()
    expect(reveal).to_be_hidden()


def assert_key_gone_from_page(page: Page, raw: str) -> None:
    """The raw key is nowhere: not in the DOM, the URL, web storage or the title."""
    assert raw not in page.content()
    assert raw not in page.url
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert stored == "[{},{}]"
    assert raw not in page.evaluate("() => document.body.innerText + document.title")


def rows(page: Page, within: str = "#api-keys"):
    """The key table's data rows."""
    return key_view(page, within).locator("tbody tr[data-key-id]")


def local_text(iso: str) -> str:
    """How en-US Intl shows an ISO instant in TIMEZONE (month, day, year, hour:minute)."""
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(TIMEZONE))
    hour = local.hour % 12 or 12
    return f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M} {local:%p}"


def plain(text: str) -> str:
    """Normalise the narrow and non-breaking spaces ICU puts in formatted times."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def api_me(site: Gunicorn, raw: str, header: str = "Authorization") -> requests.Response:
    """GET /api/me with a key, as a script would."""
    value = f"Bearer {raw}" if header == "Authorization" else raw
    return requests.get(f"{site.url}/api/me", headers={header: value}, timeout=10)
