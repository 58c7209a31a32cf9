"""No OAuth here: the paths OAuth clients probe, answered so that they say why they stop.

An MCP client that gets a 401 from /mcp takes it as an OAuth challenge. mcp-remote (the
bridge in the Claude Desktop configuration) then probes the discovery documents
(/.well-known/oauth-protected-resource[/mcp], /.well-known/oauth-authorization-server[/mcp],
/.well-known/openid-configuration[/mcp]) and, finding none, registers a client at
POST /register on the server's origin; it dies printing the registration's status and body:
`RegistrationRejectedError: Dynamic Client Registration rejected (HTTP 400): <body>`.

So the discovery documents stay 404 (JSON, saying why): a client that found OAuth metadata
would start an OAuth flow, and Cursor then stops sending the headers it was configured
with, which are how a key reaches us. The registration answers 400 with the message that
tells the user what is wrong: the key. Its body is sent with the characters as they are
(not \\u escapes), because the client prints it raw.

Outside /api, /auth and /mcp: not counted in the per-IP window, no credential read.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response

from errors import CATALOGUE, api_error

bp = Blueprint("oauth", __name__)

NO_OAUTH = CATALOGUE["oauth_not_supported"].message
DISCOVERY_DOCUMENTS = (
    "oauth-protected-resource",
    "oauth-authorization-server",
    "openid-configuration",
)


def _no_document(rest: str = "") -> Response:
    """404: there is no OAuth metadata, under any path variant."""
    raise api_error("not_found", message=NO_OAUTH)


for _document in DISCOVERY_DOCUMENTS:
    bp.add_url_rule(f"/.well-known/{_document}", f"no_{_document}", _no_document)
    bp.add_url_rule(f"/.well-known/{_document}/<path:rest>", f"no_{_document}_path", _no_document)


@bp.route("/register", methods=["POST"])
def register() -> Response:
    """OAuth dynamic client registration (RFC 7591): refused, with the reason a user needs."""
    raise api_error("oauth_not_supported")


@bp.after_request
def readable_body(response: Response) -> Response:
    """The JSON body with its characters unescaped ("—", "→"), as mcp-remote prints it."""
    if response.is_json:
        body = response.get_json(silent=True)
        if body is not None:
            response.set_data(json.dumps(body, ensure_ascii=False) + "\n")
    return response
