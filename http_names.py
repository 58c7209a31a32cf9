"""Names the HTTP interface is reached by, each written once: the MCP path and our headers.

The session cookie's name is a setting (SESSION_COOKIE_NAME, config.py), read from the app's
config wherever it is needed.
"""

from __future__ import annotations

MCP_PATH = "/mcp"
# An API key may come in this header (it wins over Authorization: Bearer).
MCP_HEADER = "X-MCP-API-Key"
# A session-authenticated write carries the session's CSRF token in this header.
CSRF_HEADER = "X-CSRF-Token"
