"""The MCP server on /mcp: the SDK's streamable-HTTP app, per worker, and the tools it serves.

`tools` builds the MCPServer (what a client can do, as the API key's owner); `runtime` runs
its session manager on one event loop per worker process and adapts it to WSGI (a2wsgi).
The Flask side, which authenticates and counts every request first, is blueprints/mcp.py.
"""

# Where blueprints/mcp.py puts the gate's Principal in the WSGI environ handed to the SDK.
# No client can set it: headers reach the environ only as HTTP_* keys.
PRINCIPAL_ENVIRON_KEY = "genmb.mcp.principal"
