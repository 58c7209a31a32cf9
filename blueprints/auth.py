"""Session auth for the web app: signup, login, logout, and the current session."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, make_response, request

import metrics
from config import SIGNUP_PLAN
from errors import api_error
from extensions import Blueprint, storage
from openapi import (
    ANONYMOUS,
    AUTH_WRITE,
    BODY_CHECKED,
    COUNTED,
    JSON_BODY,
    OPTIONAL_SESSION_WRITE,
    SESSION,
    errors,
)
from schemas.users import CredentialsSchema, LoginSchema, SessionSchema, UserEnvelopeSchema
from security import csrf
from security.paths import UNSAFE_METHODS
from security.principal import optional_principal
from services import security_events
from store import sessions, users

bp = Blueprint("auth", __name__, url_prefix="/auth", description="Session authentication")


# Sec-Fetch-Site values of a request the user's own pages (or the user, typing) started.
OWN_SITE = frozenset({"same-origin", "none"})


def _own_origin(origin: str) -> bool:
    """True when an Origin header names this service: the request's own host, or PUBLIC_URL."""
    public = current_app.config.get("PUBLIC_URL") or ""
    parts = urlsplit(origin)
    return bool(parts.netloc) and (parts.netloc == request.host or origin == public)


@bp.before_request
@metrics.access_refusal
def refuse_cross_site() -> None:
    """No state-changing request on /auth from another site, whatever it carries.

    SameSite=Lax keeps the cookie off a cross-site POST, so CSRF checks never even ran: a
    cross-site form could log a browser in to an attacker's account or make it drop its
    cookie. Browsers say where a request comes from (Sec-Fetch-Site, Origin); a client that
    sends neither (curl, a script) is not a browser being abused.
    """
    if request.method not in UNSAFE_METHODS:
        return
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if (site is not None and site not in OWN_SITE) or (
        origin is not None and not _own_origin(origin)
    ):
        security_events.log_event(
            "auth.cross_site_refused", path=request.path, ip=request.remote_addr
        )
        raise api_error("cross_site_request")


def _user_dict(user_id: str, email: str, plan: str) -> dict[str, str]:
    return {"id": user_id, "email": email, "plan": plan}


@bp.route("/signup", methods=["POST"])
@errors(bp, COUNTED, AUTH_WRITE, BODY_CHECKED, JSON_BODY, "email_taken", security=ANONYMOUS)
@bp.arguments(CredentialsSchema)
@bp.response(201, UserEnvelopeSchema)
def signup(body: dict[str, Any]) -> dict[str, Any]:
    """Create an account on the free plan."""
    user = users.create(
        storage(),
        body["email"],
        body["password"],
        SIGNUP_PLAN,
        current_app.config["PASSWORD_SCRYPT_N"],
    )
    security_events.log_event("user.created", user_id=user.id, ip=request.remote_addr)
    return {"user": _user_dict(user.id, user.email, user.plan)}


@bp.route("/login", methods=["POST"])
@errors(bp, COUNTED, AUTH_WRITE, BODY_CHECKED, JSON_BODY, "invalid_credentials", security=ANONYMOUS)
@bp.arguments(LoginSchema)
@bp.response(200, SessionSchema)
def login(body: dict[str, Any]) -> Response:
    """Check the password and start a server-side session (a new token every login)."""
    config = current_app.config
    user = users.authenticate(
        storage(), body["email"], body["password"], config["PASSWORD_SCRYPT_N"]
    )
    if user is None:
        security_events.log_event(
            "auth.failed", reason="invalid_credentials", ip=request.remote_addr
        )
        _record_failed_login(body["email"])
        raise api_error("invalid_credentials")
    old = request.cookies.get(config["SESSION_COOKIE_NAME"])
    if old:
        sessions.destroy(storage(), old)
    token = sessions.create(storage(), user.id, config["SESSION_LIFETIME_SECONDS"])
    security_events.log_event("auth.login", user_id=user.id, ip=request.remote_addr)
    security_events.record(user.id, "auth.login", security_events.USER)
    body_out = SessionSchema().dump(
        {"user": _user_dict(user.id, user.email, user.plan), "csrf_token": csrf.token_for(token)}
    )
    response = make_response(body_out, 200)
    response.set_cookie(
        config["SESSION_COOKIE_NAME"],
        token,
        max_age=config["SESSION_LIFETIME_SECONDS"],
        httponly=True,
        samesite="Lax",
        secure=config["SESSION_COOKIE_SECURE"],
        path="/",
    )
    return response


def _record_failed_login(email: str) -> None:
    """A failed login to an existing account: one event per account per minute (a burst)."""
    user_id = users.id_for_email(storage(), email)
    if user_id:
        security_events.record_throttled(
            user_id, "failed_login", "auth.failed_login_burst", security_events.USER
        )


@bp.route("/session", methods=["GET"])
@errors(bp, COUNTED, "not_logged_in", security=SESSION)
@bp.response(200, SessionSchema)
def current_session() -> dict[str, Any]:
    """The logged-in user and the CSRF token for their writes."""
    principal = optional_principal()
    if principal is None or principal.method != "session":
        raise api_error("not_logged_in")
    ident = principal.identity
    return {
        "user": _user_dict(ident.user_id, ident.email, ident.plan),
        "csrf_token": csrf.token_for(principal.session_token or ""),
    }


@bp.route("/logout", methods=["POST"])
@errors(bp, COUNTED, AUTH_WRITE, "csrf_failed", BODY_CHECKED, security=OPTIONAL_SESSION_WRITE)
@bp.response(204)
def logout() -> Response:
    """End the session on the server (every worker) and clear the cookie.

    Only a request that proves it owns the session (its cookie and its CSRF token) clears
    the cookie: otherwise a browser could be made to drop a cookie whose session lives on.
    Without a live session there is nothing to end: 204, and the cookie is left alone.
    """
    principal = optional_principal()
    response = make_response("", 204)
    if principal is None or principal.method != "session":
        return response
    csrf.require_valid(principal.session_token)
    sessions.destroy(storage(), principal.session_token or "")
    security_events.log_event("auth.logout", user_id=principal.user_id, ip=request.remote_addr)
    config = current_app.config
    response.delete_cookie(
        config["SESSION_COOKIE_NAME"],
        path="/",
        httponly=True,
        samesite="Lax",
        secure=config["SESSION_COOKIE_SECURE"],
    )
    return response
