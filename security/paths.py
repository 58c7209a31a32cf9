"""Which requests the gate counts, which it authenticates, and which methods write."""

from __future__ import annotations

from http_names import MCP_PATH

COUNTED_PREFIXES = ("/api", "/auth", MCP_PATH)
# Under a counted prefix but outside the gate: GitHub's signed secret-scanning reports are
# neither authenticated by key or session nor counted in the sender's IP window (the view
# has its own limit and body cap: blueprints/secret_scanning.py).
UNCOUNTED_PATHS = frozenset({"/api/secret-scanning/github"})
AUTHENTICATED_PREFIXES = ("/api", MCP_PATH)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a logged-in page needs to stop a runaway script: the account, the key list, a revoke.
# A live session may still make these once its client IP's window is spent, within its own
# small allowance (RATELIMIT_SESSION_RESCUE; security/gate.py).
RESCUE_READS = frozenset({"/auth/session", "/api/keys"})
RESCUE_REVOKE_PREFIX = "/api/keys/"


def under(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether the path is one of the prefixes or below one (/api/x, not /apix)."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def counted(path: str) -> bool:
    """Whether the gate counts (and authenticates) a request to this path."""
    return under(path, COUNTED_PREFIXES) and path not in UNCOUNTED_PATHS


def authenticated(path: str) -> bool:
    """Whether a request to this path needs a principal (a key, or a session)."""
    return under(path, AUTHENTICATED_PREFIXES)


def rescue_route(method: str, path: str) -> bool:
    """Whether a session may still make this request beyond a spent client IP window."""
    if method == "GET":
        return path in RESCUE_READS
    if method == "DELETE" and path.startswith(RESCUE_REVOKE_PREFIX):
        return "/" not in path[len(RESCUE_REVOKE_PREFIX) :]  # /api/keys/<id>, nothing below
    return False
