"""Reading the credential a request presents: an API key header or the session cookie."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Request

from http_names import MCP_HEADER
from store.digest import digest, display_prefix, is_well_formed


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


def presented(request: Request, session_cookie: str) -> Presented:
    """Classify the request's credential; X-MCP-API-Key wins over Authorization.

    A blank header counts as absent (an unset environment variable in a client config
    should read as "missing credentials", not "invalid key"); the query string is never read.
    """
    raw = request.headers.get(MCP_HEADER, "").strip()
    if not raw:
        raw = _bearer_token(request.headers.get("Authorization", "")) or ""
    if raw:
        return Presented("key", raw) if is_well_formed(raw) else Presented("malformed")
    cookie = request.cookies.get(session_cookie, "")
    if cookie:
        return Presented("session", cookie)
    return Presented("none")
