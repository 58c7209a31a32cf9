"""Issue #13 in the browser: Settings shows the leaked-key banner and the Security log.

The same Playwright setup as tests/live/test_web.py (the browser, page and log fixtures of
tests/live/conftest.py, Debian's chromium), but gunicorn is started here with
SECRET_SCANNING_KEYS_URL on a local keys server, so the leak is reported the way GitHub reports
it: a signed POST.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Page, expect

from deploy.processes import Gunicorn
from store import security_log
from store.security_log import Policy
from tests.helpers import LiveSession
from tests.live.browser import TIMEZONE, api_me, log_in
from tests.live.helpers import PATH, KeysServer, Signer, report

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]

FOUND_AT = "https://github.com/octocat/hello/blob/abc123/.github/workflows/deploy.yml"


@pytest.fixture(scope="module")
def keys_server() -> Iterator[KeysServer]:
    """The keys document, published for the module's signer."""
    with KeysServer() as server:
        yield server


@pytest.fixture(scope="module")
def signer(keys_server: KeysServer) -> Signer:
    """The module's GitHub stand-in."""
    signer = Signer("web-test-key")
    keys_server.publish(signer.entry())
    return signer


@pytest.fixture(scope="module")
def web_server(redis_server, keys_server, make_gunicorn) -> Iterator[Gunicorn]:
    """gunicorn (2 workers) whose keys document is the local one."""
    with make_gunicorn(
        redis_server.url, "leakweb", 2, env={"SECRET_SCANNING_KEYS_URL": keys_server.url}
    ) as server:
        yield server


@pytest.fixture
def site(web_server: Gunicorn, redis_url: str) -> Gunicorn:
    """The module's gunicorn, with an empty database for this test."""
    return web_server


def leak(site: Gunicorn, signer: Signer, raw: str) -> requests.Response:
    """Report a key as GitHub would."""
    body = report(raw, url=FOUND_AT, source="commit")
    return requests.post(f"{site.url}{PATH}", data=body, headers=signer.headers(body), timeout=10)


def test_leaked_key_banner_and_security_log_on_settings(page: Page, site, signer, make_user):  # noqa: F811 - page is test_web's fixture
    """The banner names the key, the place and the day; Dismiss hides it for good; the log
    tells the whole story; no secret anywhere on the page."""
    user = make_user("pro")
    session = LiveSession(site.url, user.email)
    created = session.create_key("CI deploy").json()
    raw = created["key"]
    other = session.create_key("Laptop").json()
    assert leak(site, signer, raw).json()[0]["label"] == "true_positive"
    assert api_me(site, raw).status_code == 401
    assert api_me(site, other["key"]).status_code == 200

    log_in(page, user.email)
    banner = page.locator(".leak-banner")
    expect(banner).to_have_count(1)
    revoked_on = datetime.now(UTC).astimezone(ZoneInfo(TIMEZONE))
    expect(banner).to_contain_text(
        f"Key 'CI deploy' ({created['prefix']}…) was found in public at {FOUND_AT} and "
        f"revoked on {revoked_on:%b} {revoked_on.day}, {revoked_on.year}."
    )
    expect(banner.get_by_role("link", name=FOUND_AT)).to_have_attribute("href", FOUND_AT)

    section = page.locator("#security-log")
    rows = section.locator("tbody tr[data-event-id]")
    leaked = section.locator("tr[data-event-type='api_key.leaked']")
    expect(leaked).to_contain_text(f"Key found in public and revoked at {FOUND_AT}")
    expect(leaked).to_contain_text("GitHub secret scanning")
    expect(leaked).to_contain_text(f"“CI deploy” ({created['prefix']}…)")
    expect(rows).to_have_count(5)
    types = rows.evaluate_all("rows => rows.map(r => r.dataset.eventType)")
    assert types == [
        "auth.login",
        "api_key.leaked",
        "api_key.created",
        "api_key.created",
        "auth.login",
    ]
    expect(rows.first).to_contain_text("127.0.0.1")

    for secret in (raw, raw[len("genmb_sk_") + 4 :], other["key"]):
        assert secret not in page.content()
    assert not re.search(
        r"genmb_sk_[A-Za-z0-9_-]{32}", page.evaluate("() => document.body.innerText")
    )

    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_have_count(0)
    page.reload()
    expect(leaked).to_contain_text("Key found in public and revoked")
    expect(page.locator(".leak-banner")).to_have_count(0)


def test_deleting_a_key_shows_up_in_the_security_log(page: Page, site, make_user):  # noqa: F811
    """Delete in API Keys: the Security log gains 'Key revoked' by You without a reload."""
    user = make_user("pro")
    session = LiveSession(site.url, user.email)
    created = session.create_key("Old laptop").json()
    log_in(page, user.email)
    keys = page.locator("#api-keys [data-keyview]")
    keys.locator(f"tr[data-key-id='{created['id']}']").get_by_role(
        "button", name=re.compile("Delete")
    ).click()
    page.get_by_role("dialog", name=re.compile("Delete key")).get_by_role(
        "button", name="Delete key"
    ).click()
    first = page.locator("#security-log tbody tr[data-event-id]").first
    expect(first).to_contain_text("Key revoked")
    expect(first).to_contain_text("You")
    expect(first).to_contain_text(f"{created['prefix']}…")
    expect(page.locator(".leak-banner")).to_have_count(0)


def test_show_older_events_pages_the_log_and_refresh_reloads_it(page: Page, site, make_user):  # noqa: F811
    """30 events: the section shows the newest 25, Show older events the other 5 (then
    hides); an event recorded meanwhile appears on Refresh, newest first."""
    user = make_user("pro")
    log_store = make_user.storage
    for n in range(29):
        security_log.record(
            log_store,
            Policy(),
            user.id,
            {"type": "plan.changed", "actor": "operator", "plan": f"p{n}"},
        )
    log_in(page, user.email)  # the 30th event: auth.login
    section = page.locator("#security-log")
    rows = section.locator("tbody tr[data-event-id]")
    more = section.get_by_role("button", name="Show older events")
    expect(rows).to_have_count(25)
    expect(rows.first).to_have_attribute("data-event-type", "auth.login")
    more.click()
    expect(rows).to_have_count(30)
    expect(more).to_be_hidden()
    ids = rows.evaluate_all("rows => rows.map(r => r.dataset.eventId)")
    assert len(set(ids)) == 30
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-")), reverse=True)
    security_log.record(
        log_store,
        Policy(),
        user.id,
        {"type": "plan.changed", "actor": "operator", "plan": "business"},
    )
    section.get_by_role("button", name="Refresh").click()
    expect(rows.first).to_contain_text("Plan changed")
    expect(rows).to_have_count(25)
    expect(more).to_be_visible()
