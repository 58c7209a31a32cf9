"""Who am I: the account, how this request authenticated, and the month's credits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from config import Plan
from openapi import COUNTED, KEY_OR_SESSION, documentation_only, errors
from schemas.account import MeSchema
from security.principal import Principal, current_principal
from services.credits import summary

bp = Blueprint("account", __name__, url_prefix="/api", description="The account")

# What flask's jsonify writes (compact, keys sorted, ASCII), with the encoder built once.
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
ME_PATH = "/api/me"  # also answered, by API key, by security/hot_path.py


def me_body(principal: Principal, plans: Mapping[str, Plan]) -> dict[str, Any]:
    """The account as MeSchema describes it, already in the form MeSchema would dump."""
    ident = principal.identity
    return {
        "id": ident.user_id,
        "email": ident.email,
        "plan": ident.plan,
        "auth": {"method": principal.method, "key_id": ident.key_id},
        "credits": summary(plans, ident.plan, ident.credits_used),
    }


def me_bytes(body: dict[str, Any]) -> bytes:
    """The body as `jsonify(MeSchema().dump(body))` writes it, byte for byte, without the
    schema machinery: this is the hot path of every client (issue #15; the test that the two
    agree: tests/live/test_account_fast_path.py). MeSchema still documents it in
    /openapi.json."""
    return (_ENCODE(body) + "\n").encode("ascii")  # ensure_ascii: nothing beyond ASCII


@bp.route("/me", methods=["GET"])
@errors(bp, COUNTED, security=KEY_OR_SESSION)
@documentation_only(bp.response(200, MeSchema))
def me() -> Response:
    """The caller's account, built entirely from the gate's one Redis round trip."""
    body = me_body(current_principal(), current_app.config["PLANS"])
    return current_app.response_class(me_bytes(body), mimetype="application/json")
