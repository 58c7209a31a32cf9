"""Issue #12, items 6 and 7: /docs (Swagger UI, served from this host, under the pages' CSP),
page 404s that are pages, duplicate key names allowed by the API, and messages that name what
to do."""

from __future__ import annotations

import re

import pytest

from tests.helpers import create_key


def test_docs_page_and_its_assets_are_local_and_locked_down(client, pro):
    """/docs: Swagger UI's files from this host (never a CDN), the pages' CSP plus data: images."""
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/docs/assets/swagger-ui-bundle.js" in sources
    assert "/docs/assets/swagger-ui.css" in sources
    assert all(s.startswith(("/", "#")) for s in sources), sources  # nothing from elsewhere
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # no inline script
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "img-src 'self' data:;" in csp
    assert "unsafe" not in csp and "cdn" not in csp
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        with client.get(f"/docs/assets/{name}") as asset:
            assert asset.status_code == 200 and kind in asset.headers["Content-Type"]
            assert asset.headers["X-Content-Type-Options"] == "nosniff"
    missing = client.get("/docs/assets/index.html", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and missing.is_json  # only the two files, as JSON
    settings = pro[0].get("/settings").get_data(as_text=True)  # pro logs `client` in
    assert settings.count('href="/docs"') == 2  # the top bar, and Settings → API Keys


def test_unknown_pages_are_pages_and_api_paths_stay_json(client):
    """A browser gets an HTML 404 page; scripts, and every API path, get the JSON envelope."""
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get("/setings", headers=browser)
    assert page.status_code == 404 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "Page not found" in text and "/setings" in text and 'href="/settings"' in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    key_shaped = client.get("/genmb_sk_" + "a" * 32, headers=browser).get_data(as_text=True)
    assert "genmb_sk_" + "a" * 32 not in key_shaped  # a page never reflects a key
    for path, headers in (
        ("/setings", {}),
        ("/setings", {"Accept": "application/json"}),
        ("/api/nope", browser),
        ("/auth/nope", browser),
        ("/static/nope.js", browser),
        ("/.well-known/security.txt", browser),
    ):
        r = client.get(path, headers=headers)
        assert r.status_code in (401, 404) and r.is_json, (path, r.status_code)


def test_two_keys_may_share_a_name_in_the_api(pro):
    """The contract allows duplicate names (the settings page steers away from them): both
    keys are created and listed, told apart by id and prefix."""
    client, csrf, _ = pro
    first = create_key(client, csrf, "CI deploy")
    again = create_key(client, csrf, " CI deploy ")
    assert again["name"] == "CI deploy" and again["id"] != first["id"]
    assert again["prefix"] != first["prefix"] or again["key"] != first["key"]
    names = [k["name"] for k in client.get("/api/keys").json["keys"]]
    assert names == ["CI deploy", "CI deploy"]


def test_an_authorization_header_without_bearer_is_told_the_form(app, pro):
    """`Authorization: <key>` and `Token <key>` name the form that works; the key is not
    echoed; a Basic header (not a key) keeps the plain message."""
    session, csrf, _ = pro
    raw = create_key(session, csrf)["key"]
    client = app.test_client()  # no session cookie
    for value in (raw, f"Token {raw}", f"token   {raw}"):
        r = client.get("/api/me", headers={"Authorization": value})
        assert r.status_code == 401
        message = r.json["error"]["message"]
        assert "Authorization: Bearer genmb_sk_..." in message, message
        assert raw not in r.get_data(as_text=True)
    basic = client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert "Bearer genmb_sk_" not in basic.json["error"]["message"]
    assert client.get("/api/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_an_invalid_email_names_the_expected_form(client):
    """The API's own message for a malformed email (the login form says the same)."""
    r = client.post("/auth/signup", json={"email": "nobody", "password": "long enough pw"})
    assert r.status_code == 422
    assert r.json["error"]["fields"]["email"] == ["Enter an email address like name@example.com."]


# ---- in Chromium ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.gunicorn
def test_swagger_ui_renders_every_operation_without_a_csp_error(browser, web_server, redis_url):
    """In Chromium: the viewer shows the API's operations; no console error (a CSP refusal
    would be one), no request to another host."""
    errors: list[str] = []
    hosts: set[str] = set()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        page.goto(f"{web_server.url}/docs")
        operations = page.locator(".opblock-summary-path")
        operations.first.wait_for(timeout=15_000)
        paths = {p.strip().replace("\u200b", "") for p in operations.all_inner_texts()}
        assert {"/api/keys", "/api/me", "/auth/login"} <= paths, paths
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    finally:
        page.context.close()
    assert errors == []
    assert hosts <= {web_server.url.split("/")[2]}, hosts
