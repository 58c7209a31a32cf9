// The app editor: the user's apps, and the MCP Integration panel (the same key view plus
// ready-to-paste client configurations).
import { copyButton, describe, request, startPage, timeElement } from "./api.js";
import { mountKeyView } from "./keys.js";
import { claudeDesktopConfig, cursorConfig, cursorInstallLink } from "./mcp-config.js";

const appId = document.body.dataset.appId;

function appLink(app) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = `/apps/${encodeURIComponent(app.id)}`;
  link.textContent = app.name;
  if (app.id === appId) {
    link.setAttribute("aria-current", "page");
  }
  item.append(link);
  return item;
}

async function loadApps() {
  const list = document.querySelector("[data-app-list]");
  const title = document.querySelector("[data-app-title]");
  const meta = document.querySelector("[data-app-meta]");
  const apps = [];
  try {
    // A page at a time, oldest first; the plan's app cap bounds the number of pages.
    let cursor = null;
    do {
      const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
      const page = await request("GET", `/api/apps${query}`);
      apps.push(...page.apps);
      cursor = page.next_cursor;
    } while (cursor);
  } catch (error) {
    list.replaceChildren();
    document.querySelector("[data-app-error]").textContent = describe(error);
    return;
  }
  list.replaceChildren(...apps.map(appLink));
  if (apps.length === 0) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = "No apps yet.";
    list.append(empty);
  }
  if (!appId) {
    return;
  }
  const current = apps.find((app) => app.id === appId);
  if (!current) {
    title.textContent = "App not found";
    meta.textContent = "This app does not exist, or it belongs to another account.";
    document.querySelector("[data-mcp-panel]").hidden = true; // nothing to connect to here
    return;
  }
  title.textContent = current.name;
  document.title = `${current.name} · GenMB`;
  meta.replaceChildren("Created ", timeElement(current.created_at));
}

function wireNewApp() {
  const form = document.querySelector("[data-new-app-form]");
  const input = form.querySelector("input[name=name]");
  const error = form.querySelector("[data-app-error]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      error.textContent = "Enter a name for the app.";
      input.focus();
      return;
    }
    error.textContent = "";
    try {
      const app = await request("POST", "/api/apps", { name });
      window.location.assign(`/apps/${encodeURIComponent(app.id)}`);
    } catch (err) {
      error.textContent = describe(err);
      input.focus();
    }
  });
}

function wireSnippets(mcpUrl) {
  const status = document.querySelector("[data-snippet-status]");
  const builders = { claude: claudeDesktopConfig, cursor: cursorConfig };
  const names = { claude: "Claude Desktop config", cursor: "Cursor config" };
  for (const [kind, build] of Object.entries(builders)) {
    const code = document.querySelector(`[data-snippet="${kind}"]`);
    code.textContent = build(mcpUrl, null);
    copyButton(document.querySelector(`[data-copy-snippet="${kind}"]`),
      () => code.textContent, names[kind], status);
  }
  document.querySelector("[data-cursor-install-link]").href = cursorInstallLink(mcpUrl);
}

startPage(async ({ user }, options) => {
  wireNewApp();
  wireSnippets(options.mcpUrl);
  await Promise.all([
    loadApps(),
    mountKeyView(document.querySelector("[data-keyview]"), { user, ...options }),
  ]);
});
