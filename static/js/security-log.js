// Settings → Security log (GET /api/security-log, newest first, "Show older events" follows
// next_cursor) and the leaked-key banners (GET /api/security-log/alerts; Dismiss posts
// /api/security-log/<id>/dismiss). Everything shown is text: nothing from the API is parsed
// as HTML. No event ever holds a key, only its display prefix.
import { describe, request, timeElement } from "./api.js";

const PAGE = 25;

const EVENT_NAMES = {
  "api_key.created": "Key created",
  "api_key.revoked": "Key revoked",
  "api_key.leaked": "Key found in public and revoked",
  "api_key.refused_plan": "Key refused: plan has no API keys",
  "plan.changed": "Plan changed",
  "auth.login": "Logged in",
  "auth.failed_login_burst": "Failed login attempts",
};

const ACTORS = {
  user: "You",
  operator: "Operator",
  github_secret_scanning: "GitHub secret scanning",
  api_key: "A request with the key",
};

const DATE_FORMAT = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

function cell(tag, text) {
  const element = document.createElement(tag);
  if (text !== undefined) {
    element.textContent = text;
  }
  return element;
}

/** The key an event names: 'name' (genmb_sk_Ab3d…), or just the prefix. */
function keyLabel(event) {
  if (!event.key_prefix) {
    return "";
  }
  const prefix = `${event.key_prefix}…`;
  return event.key_name ? `“${event.key_name}” (${prefix})` : prefix;
}

/** A link to where a leak was found, when it is an http(s) URL; else its text. */
function placeLink(url) {
  let parsed = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
    return cell("span", url || "an unknown place");
  }
  const link = cell("a", url);
  link.href = parsed.href;
  link.rel = "noopener noreferrer";
  link.target = "_blank";
  return link;
}

function eventDetail(event) {
  const name = EVENT_NAMES[event.type] || event.type;
  const parts = [name];
  if (event.type === "plan.changed" && event.plan) {
    parts.push(` to ${event.plan}`);
  }
  const wrap = cell("span", parts.join(""));
  if (event.type === "api_key.leaked") {
    wrap.append(" at ", placeLink(event.url));
  }
  return wrap;
}

/** Wire the Security log section (root = the section element). */
export function mountSecurityLog(root) {
  const rows = root.querySelector("[data-log-rows]");
  const more = root.querySelector("[data-log-more]");
  const error = root.querySelector("[data-log-error]");
  const refresh = root.querySelector("[data-log-refresh]");
  let cursor = null;

  function row(event) {
    const tr = document.createElement("tr");
    tr.dataset.eventId = event.id;
    tr.dataset.eventType = event.type;
    const when = cell("td");
    when.append(timeElement(event.at));
    const what = cell("th");
    what.scope = "row";
    what.append(eventDetail(event));
    tr.append(when, what, cell("td", keyLabel(event)), cell("td", ACTORS[event.actor] || event.actor || ""),
      cell("td", event.ip || "—"));
    return tr;
  }

  async function load(reset) {
    error.textContent = "";
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (!reset && cursor) {
      query.set("cursor", cursor);
    }
    let page;
    try {
      page = await request("GET", `/api/security-log?${query}`);
    } catch (failure) {
      error.textContent = describe(failure);
      return;
    }
    if (reset) {
      rows.replaceChildren();
    }
    rows.append(...page.events.map(row));
    if (!rows.children.length) {
      const empty = cell("td", "No security events yet.");
      empty.colSpan = 5;
      empty.className = "empty";
      const tr = document.createElement("tr");
      tr.append(empty);
      rows.append(tr);
    }
    cursor = page.next_cursor || null;
    more.hidden = !cursor;
  }

  more.addEventListener("click", () => load(false));
  refresh.addEventListener("click", () => load(true));
  document.addEventListener("genmb:keys-changed", () => load(true));
  return load(true);
}

/** Wire the leaked-key banners (root = the container above the sections). */
export async function mountLeakBanners(root) {
  let alerts;
  try {
    alerts = (await request("GET", "/api/security-log/alerts")).alerts;
  } catch (failure) {
    root.append(cell("p", describe(failure)));
    return;
  }
  for (const alert of alerts) {
    const banner = cell("div");
    banner.className = "leak-banner";
    banner.setAttribute("role", "alert");
    banner.dataset.eventId = alert.id;
    const text = cell("p");
    const name = alert.key_name ? `Key '${alert.key_name}' (${alert.key_prefix}…)` : `Key ${alert.key_prefix}…`;
    text.append(`${name} was found in public at `, placeLink(alert.url),
      ` and revoked on ${DATE_FORMAT.format(new Date(alert.at))}.`);
    const hint = cell("p", "Anyone could have used it until then: check the log below, and give "
      + "the clients that used it a new key.");
    hint.className = "hint";
    const failure = cell("p");
    failure.className = "message error";
    const dismiss = cell("button", "Dismiss");
    dismiss.type = "button";
    dismiss.className = "btn btn-small";
    dismiss.addEventListener("click", async () => {
      dismiss.disabled = true;
      try {
        await request("POST", `/api/security-log/${encodeURIComponent(alert.id)}/dismiss`);
        banner.remove();
      } catch (problem) {
        failure.textContent = describe(problem);
        dismiss.disabled = false;
      }
    });
    banner.append(text, hint, failure, dismiss);
    root.append(banner);
  }
}
