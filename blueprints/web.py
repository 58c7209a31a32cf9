"""The web app: server-rendered page shells whose scripts call the JSON API.

Pages are outside /api, /auth and /mcp, so the gate neither counts nor authenticates them.
A page only checks that a live session exists (to redirect without a round of 401s); every
piece of data, and the CSRF token, is fetched by the page's script from the API. Nothing
secret is ever rendered into the HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

import swagger_ui_bundle
from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from werkzeug.exceptions import NotFound

from config import key_plans_text, plans_with_keys
from errors import http_exception_response
from extensions import storage
from http_names import MCP_PATH
from logs import KEY_SHAPE, remove_keys
from store import sessions

bp = Blueprint("web", __name__)
PAGE_ENDPOINTS = f"{bp.name}."  # the endpoints of this blueprint's pages

# No inline script or style anywhere: every script and stylesheet is a file under /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# /docs: Swagger UI's stylesheet draws its icons as data: images.
DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self';", "img-src 'self' data:;"
)
# Swagger UI's files, from the pinned swagger-ui-bundle package (no CDN): only these two.
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})
# Paths of the APIs and of machines: a 404 there is JSON whatever the client accepts.
MACHINE_PREFIXES = (
    "/api",
    "/auth",
    MCP_PATH,
    "/.well-known",
    "/register",
    "/static",
    "/docs/assets",
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
    plans = config["PLANS"]
    key_plans = plans_with_keys(plans)
    return render_template(
        template,
        max_keys=config["MAX_KEYS_PER_USER"],
        key_plans=",".join(key_plans),
        key_plans_or=key_plans_text(plans, "or"),
        key_plans_and=key_plans_text(plans, "and"),
        key_plan_count=len(key_plans),
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


@bp.route("/docs")
def api_docs() -> str:
    """The API reference: Swagger UI over /openapi.json, for anyone (no secret in it)."""
    return _page("docs.html")


@bp.route("/docs/assets/<filename>")
def api_docs_asset(filename: str) -> Response:
    """Swagger UI's stylesheet and script, served from the installed package."""
    if filename not in SWAGGER_UI_FILES:
        raise NotFound()
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=3600)


def _wants_page(path: str) -> bool:
    """A browser asking for a page: not an API or machine path, and HTML preferred to JSON."""
    if any(path == p or path.startswith(p + "/") for p in MACHINE_PREFIXES):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


@bp.app_errorhandler(404)
def not_found(error: NotFound) -> Response:
    """A page for a browser on a path that names no page; the JSON envelope for anything else."""
    if not _wants_page(request.path):
        return http_exception_response(error)
    html = _page("not_found.html", path=_no_key(request.path))
    response = current_app.response_class(html, 404, mimetype="text/html")
    _lock_down(response, CONTENT_SECURITY_POLICY)
    return response


def _lock_down(response: Response, policy: str) -> None:
    """The headers every page carries."""
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"


@bp.after_app_request
def page_headers(response: Response) -> Response:
    """Lock pages and their static files down: strict CSP, no sniffing, no referrer."""
    # Runs after every response, the API's too: read the endpoint once, through one lookup.
    endpoint = request._get_current_object().endpoint  # type: ignore[attr-defined]
    page = endpoint is not None and endpoint.startswith(PAGE_ENDPOINTS)
    if page or endpoint == "static":
        docs = endpoint in ("web.api_docs", "web.api_docs_asset")
        _lock_down(response, DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY)
        if page and not docs:
            response.headers["Cache-Control"] = "no-store"
    return response
