"""Fixtures of the live tier's page tests (test_web, test_usage_web, test_security_log_web):
the app under gunicorn, Debian's chromium, a fresh page per test and what it logged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from deploy.processes import Gunicorn
from tests.live.browser import (
    CHROMIUM,
    LAUNCH_ARGS,
    TIMEOUT_MS,
    TIMEZONE,
    UNSAFE,
    BrowserLog,
    on_console,
)


@pytest.fixture(scope="module")
def web_server(redis_server, make_gunicorn) -> Iterator[Gunicorn]:
    """The app under gunicorn with 2 workers on the suite's redis-server."""
    with make_gunicorn(redis_server.url, "web", 2) as server:
        yield server


@pytest.fixture
def site(web_server: Gunicorn, redis_url: str) -> Gunicorn:
    """The module's gunicorn, with an empty database for this test."""
    return web_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless; Playwright's own browser download is never used."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def log() -> BrowserLog:
    """The current test's browser log."""
    return BrowserLog()


@pytest.fixture
def page(browser: Browser, site: Gunicorn, log: BrowserLog) -> Iterator[Page]:
    """A fresh browser context (own cookies, clipboard allowed) on the test's site."""
    context = browser.new_context(
        base_url=site.url,
        permissions=["clipboard-read", "clipboard-write"],
        locale="en-US",
        timezone_id=TIMEZONE,
        viewport={"width": 1200, "height": 800},
    )
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.on("console", lambda m: on_console(log, m.type, m.text))
    tab.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
    tab.on(
        "request",
        lambda r: log.unsafe.append((r.method, r.url, r.headers)) if r.method in UNSAFE else None,
    )
    yield tab
    context.close()
    assert log.unexpected() == [], "browser console errors"
    for method, url, headers in log.unsafe:
        if urlsplit(url).path not in ("/auth/login", "/auth/signup"):
            assert re.fullmatch(r"[0-9a-f]{64}", headers.get("x-csrf-token", "")), (method, url)
