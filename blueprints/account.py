"""Who am I: the account, how this request authenticated, and the month's credits."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from blueprints.docs import COUNTED, KEY_OR_SESSION, errors
from schemas.apps import MeSchema
from security.principal import current_principal
from services.credits import summary

bp = Blueprint("account", __name__, url_prefix="/api", description="The account")


@bp.route("/me", methods=["GET"])
@errors(bp, COUNTED, security=KEY_OR_SESSION)
@bp.response(200, MeSchema)
def me() -> dict[str, Any]:
    """The caller's account, built entirely from the gate's one Redis round trip."""
    principal = current_principal()
    ident = principal.identity
    return {
        "id": ident.user_id,
        "email": ident.email,
        "plan": ident.plan,
        "auth": {"method": principal.method, "key_id": ident.key_id},
        "credits": summary(ident.plan, ident.credits_used),
    }
