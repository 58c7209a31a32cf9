"""Issue #14 in the browser: Roll beside Delete with a choice of overlap, the rolling key shown
as expiring, and each key's 30-day bar chart (our own inline SVG, under the CSP), in Debian's
Chromium. The fixtures are tests/live/conftest.py's: any console error (a CSP violation is
one) fails.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import LiveSession
from tests.live.browser import KEY_SHAPE, api_me, close_reveal, key_view, log_in, rows

pytestmark = [pytest.mark.integration, pytest.mark.gunicorn]


def test_roll_from_the_page_reveals_the_new_key_and_shows_the_old_one_expiring(
    page: Page, site, make_user, log
):
    """Roll (after Delete in the row) asks how long the old key keeps working; the new key is
    revealed once; the old one is listed as expiring and still works; the count stays 1 of 5."""
    make_user("pro", email="roll@example.test")
    api = LiveSession(site.url, "roll@example.test")
    old = api.create_key("Deploy bot").json()
    log_in(page, "roll@example.test")
    view = key_view(page)
    expect(rows(page)).to_have_count(1)
    row = rows(page).first
    roll = row.get_by_role("button", name="Roll key “Deploy bot”")
    delete = row.get_by_role("button", name="Delete key “Deploy bot”")
    expect(roll).to_be_visible()
    expect(delete).to_be_visible()
    roll.click()
    dialog = page.get_by_role("dialog", name="Roll key “Deploy bot”")
    expect(dialog).to_be_visible()
    choices = dialog.get_by_role("radio")
    expect(choices).to_have_count(4)
    expect(dialog.get_by_label("1 hour")).to_be_checked()
    for label in ("No time: refuse it now", "24 hours", "7 days"):
        expect(dialog.get_by_label(label)).to_be_visible()
    dialog.get_by_label("24 hours").check()
    dialog.get_by_role("button", name="Roll key").click()

    reveal = page.get_by_role("dialog", name=re.compile("created"))
    expect(reveal).to_be_visible()
    raw = reveal.locator("[data-reveal-key]").inner_text()
    assert KEY_SHAPE.fullmatch(raw) and raw != old["key"]
    close_reveal(page)
    expect(view.get_by_role("status")).to_have_text(
        "Key “Deploy bot” rolled. The old key stops working in 24 hours."
    )
    expect(rows(page)).to_have_count(2)
    expect(view.locator("[data-key-count]")).to_have_text("1 of 5 keys")
    old_row = view.locator(f"tr[data-key-id='{old['id']}']")
    expect(old_row.locator("[data-expires]")).to_have_text("expires in 23 h")
    expect(old_row.get_by_role("button", name=re.compile("^Roll"))).to_have_count(0)
    expect(old_row.get_by_role("button", name="Delete key “Deploy bot”")).to_be_visible()
    assert [m for m, _ in log.writes(f"/api/keys/{old['id']}/roll")] == ["POST"]
    assert api_me(site, old["key"]).status_code == 200
    assert api_me(site, raw).status_code == 200


def test_each_key_has_a_30_day_chart_with_a_text_alternative(page: Page, site, make_user, log):
    """The row shows today's and 30 days' requests, and an SVG of 30 bars (role img, a label
    saying what it shows, the days as text); drawn by our own script under the CSP."""
    make_user("pro", email="chart@example.test")
    api = LiveSession(site.url, "chart@example.test")
    busy = api.create_key("Busy").json()
    api.create_key("Idle")
    for _ in range(5):
        assert api_me(site, busy["key"]).status_code == 200
    log_in(page, "chart@example.test")
    view = key_view(page)
    expect(view.get_by_role("columnheader", name="Requests")).to_be_visible()
    busy_row = view.locator(f"tr[data-key-id='{busy['id']}']")
    expect(busy_row.locator(".usage-numbers")).to_have_text("5 today, 5 in 30 days")
    chart = busy_row.get_by_role("img")
    expect(chart).to_be_visible()
    label = chart.get_attribute("aria-label")
    assert label.startswith("Requests per day for key “Busy”: 5 requests in the last 30 days")
    bars = chart.locator("rect")
    expect(bars).to_have_count(30)
    assert bars.nth(29).get_attribute("data-total") == "5"
    assert bars.nth(29).get_attribute("class") == "bar"
    assert bars.nth(0).get_attribute("data-total") == "0"
    tallest = float(bars.nth(29).get_attribute("height"))
    assert tallest > float(bars.nth(0).get_attribute("height"))
    # The numbers as text, for screen readers (visually hidden, in the accessibility tree).
    days = busy_row.locator("figure li")
    expect(days).to_have_count(30)
    expect(days.nth(29)).to_have_text(re.compile(r": 5$"))
    idle = view.locator("tr", has_text="Idle")
    expect(idle.get_by_role("img")).to_have_attribute(
        "aria-label", "Requests per day for key “Idle”: No requests in the last 30 days."
    )
    expect(idle.locator(".usage-numbers")).to_have_text("0 today, 0 in 30 days")
