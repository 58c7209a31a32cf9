// The API key view, shared by Settings → API Keys and the MCP Integration panel: the list,
// the New key flow with its one-time reveal, Delete with a confirmation, Roll (a new key of the
// same name, the old one working for a chosen overlap) and each key's requests per day.
//
// The raw key lives only in the reveal dialog while it is open: never in the URL, storage or
// the console, and its text is wiped from the page as the dialog closes.
import {
  copyButton, describe, planName, relativeTimeElement, request, timeElement,
} from "./api.js";
import { claudeDesktopConfig, cursorConfig, cursorInstallLink, exportLine } from "./mcp-config.js";
import { usageChart } from "./usage-chart.js";

const REVOKE_ATTEMPTS = 4; // the first try and three repeats, a second apart
const REVOKE_RETRY_MS = 1000;

/** Wire one key view (root = its [data-keyview] element). */
export function mountKeyView(root, { user, maxKeys, keyPlans, mcpUrl }) {
  const find = (selector) => root.querySelector(selector);
  const el = {
    planNotice: find("[data-plan-notice]"),
    planName: find("[data-plan-name]"),
    planKept: find("[data-plan-kept]"),
    planCommand: find("[data-plan-command]"),
    table: find("[data-key-table]"),
    count: find("[data-key-count]"),
    newKey: find("[data-new-key]"),
    capHint: find("[data-cap-hint]"),
    error: find("[data-error]"),
    status: find("[data-status]"),
    rows: find("[data-key-rows]"),
    createDialog: find("[data-create-dialog]"),
    createForm: find("[data-create-form]"),
    createName: find("[data-create-form] input[name=name]"),
    createError: find("[data-create-error]"),
    createSubmit: find("[data-create-submit]"),
    revealDialog: find("[data-reveal-dialog]"),
    revealName: find("[data-reveal-name]"),
    revealKey: find("[data-reveal-key]"),
    revealClaude: find("[data-reveal-claude]"),
    revealCursor: find("[data-reveal-cursor]"),
    revealExport: find("[data-reveal-export]"),
    cursorInstall: find("[data-cursor-install]"),
    revealStatus: find("[data-reveal-status]"),
    deleteDialog: find("[data-delete-dialog]"),
    deleteName: find("[data-delete-name]"),
    deletePrefix: find("[data-delete-prefix]"),
    deleteCreated: find("[data-delete-created]"),
    deleteError: find("[data-delete-error]"),
    deleteConfirm: find("[data-delete-confirm]"),
    rollDialog: find("[data-roll-dialog]"),
    rollForm: find("[data-roll-form]"),
    rollName: find("[data-roll-name]"),
    rollError: find("[data-roll-error]"),
    rollConfirm: find("[data-roll-confirm]"),
  };
  const mayHoldKeys = keyPlans.includes(user.plan);
  // The plans that hold keys, for "Paused — needs Pro": the first one is the cheapest.
  const neededPlan = planName(keyPlans[0] || "pro");
  const capMessage = `You have ${maxKeys} of ${maxKeys} keys, the most an account can hold. `
    + "Delete a key to create a new one.";
  let keys = [];
  let loaded = false;
  let pendingDelete = null; // {key, opener}
  let pendingRoll = null; // {key, opener}
  let revealedName = "";
  let revealedMessage = "";

  function say(message) {
    el.error.textContent = "";
    el.status.textContent = message;
  }

  function fail(error) {
    el.status.textContent = "";
    el.error.textContent = typeof error === "string" ? error : describe(error);
  }

  // A rolled key in its overlap: listed (and working) until expires_at, not counted in the cap.
  function liveKeys() {
    return keys.filter((key) => !key.expires_at);
  }

  function atCap() {
    return liveKeys().length >= maxKeys;
  }

  /** "expires in 3 h": how long a rolled key still works, rounded down. */
  function expiresIn(iso) {
    const seconds = Math.max(0, (new Date(iso).getTime() - Date.now()) / 1000);
    if (seconds < 60) {
      return "expires in under a minute";
    }
    if (seconds < 3600) {
      return `expires in ${Math.floor(seconds / 60)} min`;
    }
    if (seconds < 48 * 3600) {
      return `expires in ${Math.floor(seconds / 3600)} h`;
    }
    return `expires in ${Math.floor(seconds / 86400)} days`;
  }

  function renderBar() {
    el.planName.textContent = planName(user.plan);
    el.planNotice.hidden = mayHoldKeys;
    el.planKept.hidden = mayHoldKeys || keys.length === 0;
    el.planCommand.textContent =
      `flask --app app users set-plan ${user.email} ${keyPlans[0] || "pro"}`;
    if (el.table) { // nothing to list, and nothing can be created: no empty table either
      el.table.hidden = !mayHoldKeys && loaded && keys.length === 0;
    }
    el.newKey.hidden = !mayHoldKeys;
    el.count.textContent = loaded && mayHoldKeys ? `${liveKeys().length} of ${maxKeys} keys` : "";
    const full = mayHoldKeys && atCap();
    // aria-disabled, not disabled: the button stays focusable and can say why it does nothing.
    if (full) {
      el.newKey.setAttribute("aria-disabled", "true");
    } else {
      el.newKey.removeAttribute("aria-disabled");
    }
    el.capHint.textContent = full ? capMessage : "";
  }

  function cell(row, content, tag = "td", label = "") {
    const element = document.createElement(tag);
    if (tag === "th") {
      element.scope = "row";
    }
    if (label) { // the card layout of narrow screens shows it before the value
      element.dataset.label = label;
    }
    if (content instanceof Node) {
      element.append(content);
    } else {
      element.textContent = content;
    }
    row.append(element);
    return element;
  }

  // A row's action button: its visible verb, and the key's name for screen readers
  // ("Delete key “CI deploy”"), opening its dialog with the button to return focus to.
  function keyButton(verb, key, className, open) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className;
    const label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = ` key “${key.name}”`;
    button.append(verb, label);
    button.addEventListener("click", () => open(key, button));
    return button;
  }

  function renderRows() {
    if (!el.rows) { // the MCP panel links to the list instead of showing it
      return;
    }
    // A refresh must not steal focus: remember which key's button had it, and give it back.
    const focusedKey = el.rows.contains(document.activeElement)
      ? document.activeElement.closest("tr").dataset.keyId : null;
    el.rows.replaceChildren();
    if (keys.length === 0) {
      const row = document.createElement("tr");
      const empty = cell(row, mayHoldKeys ? "No keys yet. Create one with New key." : "No keys.");
      empty.colSpan = 6;
      empty.className = "empty";
      el.rows.append(row);
      return;
    }
    for (const key of keys) {
      const row = document.createElement("tr");
      row.dataset.keyId = key.id;
      const name = cell(row, key.name, "th");
      if (!mayHoldKeys) {
        const paused = document.createElement("span");
        paused.className = "badge badge-paused";
        paused.textContent = `Paused — needs ${neededPlan}`;
        paused.title = `Requests with this key are refused until the account is on ${neededPlan} `
          + "or a higher plan again.";
        name.append(paused);
      }
      if (key.expires_at) {
        const badge = document.createElement("span");
        badge.className = "badge badge-expiring";
        badge.textContent = expiresIn(key.expires_at);
        badge.title = key.expires_at;
        badge.dataset.expires = "";
        name.append(badge);
      }
      const prefix = document.createElement("code");
      prefix.textContent = `${key.prefix}…`;
      cell(row, prefix, "td", "Key");
      cell(row, timeElement(key.created_at), "td", "Created");
      const used = cell(
        row, key.last_used_at ? relativeTimeElement(key.last_used_at) : "Never", "td", "Last used");
      used.className = key.last_used_at ? "" : "subtle";
      const usage = document.createElement("div");
      usage.className = "usage";
      usage.dataset.usage = "";
      const numbers = document.createElement("span");
      numbers.className = "usage-numbers";
      numbers.textContent = `${key.requests_today} today, ${key.requests_30d} in 30 days`;
      usage.append(numbers);
      cell(row, usage, "td", "Requests");
      const button = keyButton("Delete", key, "btn btn-danger btn-small", openDelete);
      const actions = cell(row, button);
      actions.className = "actions";
      if (!key.expires_at && mayHoldKeys) {
        actions.append(keyButton("Roll", key, "btn btn-small", openRoll));
      }
      el.rows.append(row);
      if (key.id === focusedKey) {
        button.focus();
      }
    }
    loadCharts();
  }

  // Each key's last 30 days, drawn once the list is on the page (a failure leaves the
  // numbers, which came with the list, and says so in the cell).
  async function loadCharts() {
    if (!el.rows) {
      return;
    }
    await Promise.all(keys.map(async (key) => {
      const holder = el.rows.querySelector(`tr[data-key-id="${key.id}"] [data-usage]`);
      if (!holder) {
        return;
      }
      try {
        const usage = await request("GET", `/api/keys/${encodeURIComponent(key.id)}/usage?days=30`);
        if (holder.isConnected) {
          holder.prepend(usageChart(usage.days, key.name));
        }
      } catch (error) {
        holder.append(` (chart unavailable: ${describe(error)})`);
      }
    }));
  }

  async function load() {
    const reloading = loaded;
    try {
      keys = (await request("GET", "/api/keys")).keys;
      loaded = true;
      if (reloading) { // a key was created or deleted: the Security log has news
        root.dispatchEvent(new CustomEvent("genmb:keys-changed", { bubbles: true }));
      }
    } catch (error) {
      fail(error);
    }
    renderBar();
    if (loaded) {
      renderRows();
    }
  }

  // ---- New key -------------------------------------------------------------------------

  el.newKey.addEventListener("click", () => {
    if (atCap()) {
      // The reason is on the page already (the hint under the button, also its description):
      // point at it again, rather than repeat it as an error.
      el.error.textContent = "";
      el.capHint.classList.remove("cap-hint-again");
      void el.capHint.offsetWidth; // restart the highlight
      el.capHint.classList.add("cap-hint-again");
      return;
    }
    el.createForm.reset();
    el.createError.textContent = "";
    el.createSubmit.disabled = false;
    el.createDialog.showModal();
    el.createName.focus();
  });

  find("[data-create-cancel]").addEventListener("click", () => el.createDialog.close());
  el.createDialog.addEventListener("close", () => {
    if (!el.revealDialog.open) {
      el.newKey.focus();
    }
  });

  el.createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = el.createName.value.trim();
    if (!name) {
      el.createError.textContent = "Enter a name for the key.";
      el.createName.focus();
      return;
    }
    // The API allows two keys with one name; the page steers away from it, because two
    // alike names make the list (and the delete confirmation) hard to tell apart.
    if (keys.some((key) => key.name === name)) {
      el.createError.textContent = "You already have a key with this name; choose another name.";
      el.createName.focus();
      return;
    }
    el.createError.textContent = "";
    el.createSubmit.disabled = true;
    let created;
    try {
      created = await request("POST", "/api/keys", { name });
    } catch (error) {
      el.createSubmit.disabled = false;
      el.createError.textContent = describe(error);
      el.createName.focus();
      if (error.code === "key_limit_reached") {
        load(); // another tab or client got there first: show the real count
      }
      return;
    }
    el.createDialog.close();
    reveal(created);
    load();
  });

  // ---- The one-time reveal -------------------------------------------------------------

  function reveal(created) {
    revealedName = created.name;
    el.revealName.textContent = created.name;
    el.revealKey.textContent = created.key;
    if (el.revealClaude) {
      el.revealClaude.textContent = claudeDesktopConfig(mcpUrl, created.key);
      el.revealExport.textContent = exportLine(created.key);
      el.revealCursor.textContent = cursorConfig(mcpUrl);
      el.cursorInstall.href = cursorInstallLink(mcpUrl);
    }
    el.revealStatus.textContent = "";
    el.revealStatus.classList.add("visually-hidden");
    el.revealDialog.showModal();
    find("[data-copy-key]").focus();
  }

  const copies = [
    ["[data-copy-key]", el.revealKey, "Key"],
    ["[data-copy-claude]", el.revealClaude, "Claude Desktop config"],
    ["[data-copy-export]", el.revealExport, "Export line"],
    ["[data-copy-cursor]", el.revealCursor, "Cursor config"],
  ];
  for (const [selector, holder, what] of copies) {
    if (holder) {
      copyButton(find(selector), () => holder.textContent, what, el.revealStatus);
    }
  }
  const planCopy = find("[data-copy-plan-command]");
  copyButton(planCopy, () => el.planCommand.textContent, "Command", null);
  // Wipe the key before the dialog hides (Done, Escape), and again once it has closed: the
  // close event comes a task later, and the key must not outlive the dialog by even that.
  function wipeReveal() {
    const holders = [el.revealKey, el.revealClaude, el.revealExport, el.revealCursor, el.revealName];
    for (const holder of holders) {
      if (holder) {
        holder.textContent = "";
      }
    }
    el.revealStatus.textContent = "";
  }

  find("[data-reveal-done]").addEventListener("click", () => {
    wipeReveal();
    el.revealDialog.close();
  });
  el.revealDialog.addEventListener("cancel", wipeReveal);
  el.revealDialog.addEventListener("close", () => {
    wipeReveal();
    say(revealedMessage || `Key “${revealedName}” created. It is listed below by its prefix only.`);
    revealedName = "";
    revealedMessage = "";
    el.newKey.focus();
  });

  // ---- Roll ----------------------------------------------------------------------------

  const OVERLAP_WORDS = { 0: "now", 3600: "in 1 hour", 86400: "in 24 hours", 604800: "in 7 days" };

  function openRoll(key, opener) {
    pendingRoll = { key, opener };
    el.rollForm.reset();
    el.rollName.textContent = key.name;
    el.rollError.textContent = "";
    el.rollConfirm.disabled = false;
    el.rollDialog.showModal();
    el.rollForm.querySelector("input[name=overlap]:checked").focus();
  }

  find("[data-roll-cancel]").addEventListener("click", () => el.rollDialog.close());
  el.rollDialog.addEventListener("close", () => {
    const pending = pendingRoll;
    pendingRoll = null;
    if (el.revealDialog.open) {
      return;
    }
    if (pending && pending.opener.isConnected) {
      pending.opener.focus();
    } else {
      el.newKey.focus();
    }
  });

  el.rollForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { key } = pendingRoll;
    const overlap = Number(el.rollForm.querySelector("input[name=overlap]:checked").value);
    el.rollConfirm.disabled = true;
    let created;
    try {
      created = await request(
        "POST", `/api/keys/${encodeURIComponent(key.id)}/roll`, { overlap_seconds: overlap });
    } catch (error) {
      el.rollConfirm.disabled = false;
      el.rollError.textContent = describe(error);
      if (error.code === "not_found") {
        load();
      }
      return;
    }
    revealedMessage = overlap
      ? `Key “${key.name}” rolled. The old key stops working ${OVERLAP_WORDS[overlap]}.`
      : `Key “${key.name}” rolled. The old key no longer works.`;
    reveal(created);
    el.rollDialog.close();
    load();
  });

  // ---- Delete --------------------------------------------------------------------------

  function openDelete(key, opener) {
    pendingDelete = { key, opener };
    el.deleteName.textContent = key.name;
    el.deletePrefix.textContent = `${key.prefix}…`;
    el.deleteCreated.replaceChildren(timeElement(key.created_at));
    el.deleteError.textContent = "";
    el.deleteConfirm.disabled = false;
    el.deleteDialog.showModal();
  }

  find("[data-delete-cancel]").addEventListener("click", () => el.deleteDialog.close());
  el.deleteDialog.addEventListener("close", () => {
    const pending = pendingDelete;
    pendingDelete = null;
    if (pending && pending.opener.isConnected) {
      pending.opener.focus();
    } else {
      (el.newKey.hidden && el.table ? root.querySelector("table") : el.newKey).focus();
    }
  });

  // A revoke the server could not yet confirm on its replicas (503 revocation_unconfirmed)
  // is already refused; repeating it is safe, so the page repeats it a few times itself.
  async function revoke(key) {
    const path = `/api/keys/${encodeURIComponent(key.id)}`;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await request("DELETE", path);
      } catch (error) {
        if (error.code !== "revocation_unconfirmed" || attempt >= REVOKE_ATTEMPTS) {
          throw error;
        }
        el.deleteError.textContent = "Confirming the deletion…";
        await new Promise((resolve) => setTimeout(resolve, REVOKE_RETRY_MS));
      }
    }
  }

  el.deleteConfirm.addEventListener("click", async () => {
    const { key } = pendingDelete;
    el.deleteConfirm.disabled = true;
    try {
      await revoke(key);
    } catch (error) {
      el.deleteConfirm.disabled = false;
      el.deleteError.textContent = error.code === "revocation_unconfirmed"
        ? "The key already no longer works, but the deletion is not confirmed yet. " +
          "Press Delete again in a moment."
        : describe(error);
      if (error.code === "not_found") {
        load(); // already gone (deleted elsewhere): refresh the list behind the dialog
      }
      return;
    }
    await load();
    el.deleteDialog.close();
    say(`Key “${key.name}” deleted. Clients using it now get 401 errors.`);
  });

  return load();
}
