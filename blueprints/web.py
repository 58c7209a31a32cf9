"""The web app: server-rendered page shells whose scripts call the JSON API.

Pages are outside /api, /auth and /mcp, so the gate neither counts nor authenticates them.
A page only checks that a live session exists (to redirect without a round of 401s); every
piece of data, and the CSRF token, is fetched by the page's script from the API. Nothing
secret is ever rendered into the HTML.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from config import plans_with_keys
from extensions import storage
from http_names import MCP_PATH
from logs import KEY_SHAPE, remove_keys
from store import sessions

bp = Blueprint("web", __name__)

# No inline script or style anywhere: every script and stylesheet is a file under /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# Where a login may send the user back to: our own pages only, never an arbitrary URL.
SAFE_NEXT = re.compile(r"^/(settings|apps(/[A-Za-z0-9_-]{1,64})?)$")


def _logged_in() -> bool:
    """True when the request's session cookie names a live session."""
    token = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"], "")
    if not token:
        return False
    return sessions.exists(storage(), token)


def _to_login() -> Response:
    """Redirect to the login page, remembering which page to come back to."""
    return redirect(url_for("web.login", next=_no_key(request.path) or "/apps"))


def _no_key(text: str) -> str:
    """The text, or "" when it holds something key-shaped: a page never reflects a key."""
    return "" if KEY_SHAPE.search(text) else text


def _page(template: str, **context: object) -> str:
    """Render a page with what every page's script needs (none of it secret)."""
    config = current_app.config
    return render_template(
        template,
        max_keys=config["MAX_KEYS_PER_USER"],
        key_plans=",".join(plans_with_keys(config["PLANS"])),
        mcp_url=mcp_url(),
        **context,
    )


def mcp_url() -> str:
    """The public URL of the MCP endpoint: PUBLIC_URL when set, else this request's host."""
    base = current_app.config.get("PUBLIC_URL") or remove_keys(request.host_url)
    return base.rstrip("/") + MCP_PATH


@bp.route("/")
def index() -> Response:
    """Home: the settings page when logged in, else the login page."""
    return redirect(url_for("web.settings" if _logged_in() else "web.login"))


@bp.route("/login")
def login() -> Response | str:
    """The login form."""
    if _logged_in():
        return redirect(url_for("web.settings"))
    next_page = request.args.get("next", "")
    return _page("login.html", next_page=_no_key(next_page) if SAFE_NEXT.match(next_page) else "")


@bp.route("/signup")
def signup() -> Response | str:
    """The signup form."""
    if _logged_in():
        return redirect(url_for("web.settings"))
    return _page("signup.html")


@bp.route("/settings")
def settings() -> Response | str:
    """Account settings with the API Keys section."""
    if not _logged_in():
        return _to_login()
    return _page("settings.html")


@bp.route("/apps", defaults={"app_id": ""})
@bp.route("/apps/<app_id>")
def app_editor(app_id: str) -> Response | str:
    """The app editor: the user's apps and the MCP Integration panel."""
    if not _logged_in():
        return _to_login()
    return _page("app.html", app_id=_no_key(app_id))


@bp.after_app_request
def page_headers(response: Response) -> Response:
    """Lock pages and their static files down: strict CSP, no sniffing, no referrer."""
    if request.blueprint == bp.name or request.endpoint == "static":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.blueprint == bp.name:
            response.headers["Cache-Control"] = "no-store"
    return response
