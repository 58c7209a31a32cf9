"""Business rules shared by the REST views and the MCP tools (one implementation for both)."""
