"""Who a request acts for: the Principal the gate sets, and how views and services read it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from errors import api_error
from store.gate import Identity


@dataclass(frozen=True)
class Principal:
    """Who the request acts for, and how it proved it."""

    identity: Identity
    method: str  # "api_key" or "session"
    session_token: str | None = None

    @property
    def user_id(self) -> str:
        """The acting user's id."""
        return self.identity.user_id

    @property
    def key_id(self) -> str | None:
        """The API key's id, when one was used."""
        return self.identity.key_id


def current_principal() -> Principal:
    """The authenticated principal of this request (the gate guarantees one under /api)."""
    principal = g.get("principal")
    if principal is None:
        raise api_error("missing_credentials")
    return principal


def optional_principal() -> Principal | None:
    """The principal, if the request carried a valid credential."""
    return g.get("principal")
