"""Reading the credential a request presents: an API key header or the session cookie."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Request, g

from http_names import MCP_HEADER
from store.digest import KEY_PREFIX, digest, display_prefix, is_well_formed

# Added to a 401's message when the Authorization header holds a key in another form (no
# scheme, or "Token"): the key is not used, and the message names the form that works.
SCHEME_HINT = (
    f"Send the key as 'Authorization: Bearer {KEY_PREFIX}...' (or in the {MCP_HEADER} header): "
    "this request's Authorization header {found}."
)


@dataclass(frozen=True)
class Presented:
    """What the request carries: kind is "none", "key", "malformed" or "session"."""

    kind: str
    secret: str = ""

    def lookup(self) -> tuple[str, str] | None:
        """The (kind, digest) the gate script looks up; None when there is nothing to look up."""
        if self.kind == "key":
            return ("key", digest(self.secret))
        if self.kind == "session":
            return ("session", digest(self.secret))
        return None

    @property
    def display_prefix(self) -> str:
        """The part of a presented key that is safe to log (never the random part beyond 4)."""
        return display_prefix(self.secret) if self.kind == "key" else ""


def _bearer_token(authorization: str) -> str | None:
    """The token of a Bearer Authorization header (scheme case-insensitive), else None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _scheme_hint(authorization: str) -> str | None:
    """What to tell a client whose Authorization header holds a key without "Bearer"."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.startswith(KEY_PREFIX):
        return SCHEME_HINT.format(found="has the key but no scheme")
    if token.strip().startswith(KEY_PREFIX) and scheme.lower() != "bearer":
        return SCHEME_HINT.format(found=f"uses the scheme {scheme[:20]!r}, not Bearer")
    return None


def header_secret(mcp_header: str, authorization: str) -> str:
    """The secret the request's headers present ("" for none): X-MCP-API-Key's value, else
    a Bearer token. A blank header counts as absent."""
    return mcp_header.strip() or _bearer_token(authorization) or ""


def presented(request: Request, session_cookie: str) -> Presented:
    """Classify the request's credential; X-MCP-API-Key wins over Authorization.

    A blank header counts as absent (an unset environment variable in a client config
    should read as "missing credentials", not "invalid key"); the query string is never read.
    """
    headers = request.headers
    authorization = headers.get("Authorization", "")
    raw = header_secret(headers.get(MCP_HEADER, ""), authorization)
    if not raw and authorization:
        g.credential_hint = _scheme_hint(authorization)  # errors.error_response adds it
    if raw:
        return Presented("key", raw) if is_well_formed(raw) else Presented("malformed")
    cookie = request.cookies.get(session_cookie, "")
    if cookie:
        return Presented("session", cookie)
    return Presented("none")
