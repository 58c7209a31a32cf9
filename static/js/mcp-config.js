// Ready-to-paste MCP client configurations for the service's /mcp endpoint.

export const KEY_PLACEHOLDER = "YOUR_GENMB_API_KEY";
export const KEY_VARIABLE = "GENMB_API_KEY";
const CURSOR_KEY = `\${env:${KEY_VARIABLE}}`;

/** claude_desktop_config.json: the mcp-remote bridge, the key in the env block. "-y" lets
 * npx install mcp-remote without asking (it refuses outright when npm's yes=false). */
export function claudeDesktopConfig(mcpUrl, key) {
  return JSON.stringify({
    mcpServers: {
      genmb: {
        command: "npx",
        args: ["-y", "mcp-remote", mcpUrl, "--header", `X-MCP-API-Key:\${${KEY_VARIABLE}}`],
        env: { [KEY_VARIABLE]: key || KEY_PLACEHOLDER },
      },
    },
  }, null, 2);
}

/** Cursor's server entry: Streamable HTTP straight to the URL, the key read from Cursor's
 * environment, never written in mcp.json (a file often committed with a project). */
export function cursorServer(mcpUrl) {
  return { url: mcpUrl, headers: { "X-MCP-API-Key": CURSOR_KEY } };
}

/** Cursor's mcp.json. */
export function cursorConfig(mcpUrl) {
  return JSON.stringify({ mcpServers: { genmb: cursorServer(mcpUrl) } }, null, 2);
}

/** Cursor's one-click install link (the same entry, without any key). */
export function cursorInstallLink(mcpUrl) {
  const config = btoa(JSON.stringify(cursorServer(mcpUrl)));
  return `cursor://anysphere.cursor-deeplink/mcp/install?name=genmb&config=${encodeURIComponent(config)}`;
}

/** The shell line that puts a key where Cursor's configuration reads it. */
export function exportLine(key) {
  return `export ${KEY_VARIABLE}=${key}`;
}
