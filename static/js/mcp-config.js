// Ready-to-paste MCP client configurations for the service's /mcp endpoint.

export const KEY_PLACEHOLDER = "YOUR_GENMB_API_KEY";

/** claude_desktop_config.json: the mcp-remote bridge, the key in the env block. */
export function claudeDesktopConfig(mcpUrl, key) {
  return JSON.stringify({
    mcpServers: {
      genmb: {
        command: "npx",
        args: ["mcp-remote", mcpUrl, "--header", "X-MCP-API-Key:${GENMB_API_KEY}"],
        env: { GENMB_API_KEY: key || KEY_PLACEHOLDER },
      },
    },
  }, null, 2);
}

/** Cursor's mcp.json: Streamable HTTP straight to the URL, the key in a header. */
export function cursorConfig(mcpUrl, key) {
  return JSON.stringify({
    mcpServers: {
      genmb: {
        url: mcpUrl,
        headers: { "X-MCP-API-Key": key || KEY_PLACEHOLDER },
      },
    },
  }, null, 2);
}
