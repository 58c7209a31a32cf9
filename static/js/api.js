// The one way the pages talk to the service: same-origin fetch of the JSON API, the session's
// CSRF token on every unsafe request, and every error turned into a readable message.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const NO_SESSION_YET = new Set(["/auth/login", "/auth/signup"]);
// Repeated by the page itself after a 429, once Retry-After has passed: reading is always
// safe to repeat, and so is a revoke (a repeated DELETE of a revoked key answers 204).
const RETRIED_ON_429 = new Set(["GET", "DELETE"]);
const RATE_RETRIES = 6; // at most this many waits (each at most the window, 60 s by default)

/** An error answer from the API (or the network), with its envelope's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, fields, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || null;
    this.retryAfter = retryAfter || 0; // seconds, on a 429
  }
}

// ---- waiting out a spent rate window, with a countdown the user can see ----------------

const waits = new Set(); // the deadlines (ms) of the requests waiting now
let ticker = null;

/** The countdown in every wait line: the page's, and the one in a dialog (Delete). */
function showWaits() {
  const now = Date.now();
  const until = Math.max(0, ...waits);
  const waiting = waits.size > 0 && until > now;
  const seconds = Math.ceil((until - now) / 1000);
  for (const line of document.querySelectorAll("[data-page-wait]")) {
    line.hidden = !waiting;
    line.textContent = waiting
      ? "Too many requests from your network address just now (a script using the same "
        + `address may have spent its limit). Trying again in ${seconds} s…`
      : "";
  }
}

/** Wait `seconds` (a 429's Retry-After), counting down in the page's wait line. */
function waitOut(seconds) {
  const deadline = Date.now() + Math.max(1, seconds) * 1000;
  waits.add(deadline);
  showWaits();
  if (!ticker) {
    ticker = setInterval(showWaits, 1000);
  }
  return new Promise((resolve) => {
    setTimeout(() => {
      waits.delete(deadline);
      if (waits.size === 0) {
        clearInterval(ticker);
        ticker = null;
      }
      showWaits();
      resolve();
    }, deadline - Date.now());
  });
}

let sessionPromise = null;

/** The logged-in session {user, csrf_token}, fetched once per page. */
export function currentSession() {
  if (!sessionPromise) {
    sessionPromise = request("GET", "/auth/session");
  }
  return sessionPromise;
}

/** Send the browser to the login page, coming back here afterwards. */
export function goToLogin() {
  const next = encodeURIComponent(window.location.pathname);
  window.location.assign(`/login?next=${next}`);
}

/** Call the API; resolves to the parsed body (null for 204), rejects with an ApiError.
 * A GET or DELETE refused with 429 is sent again after its Retry-After (a few times), with a
 * visible countdown, instead of failing: the page never hangs on a spent rate window. */
export async function request(method, path, body) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await requestOnce(method, path, body);
    } catch (error) {
      if (error.status !== 429 || !RETRIED_ON_429.has(method) || attempt > RATE_RETRIES) {
        throw error;
      }
      await waitOut(error.retryAfter || 1);
    }
  }
}

async function requestOnce(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (UNSAFE.has(method) && !NO_SESSION_YET.has(path)) {
    headers["X-CSRF-Token"] = (await currentSession()).csrf_token;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network_error",
      "Could not reach the server. Check your connection and try again.");
  }
  if (response.status === 204) {
    return null;
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && !NO_SESSION_YET.has(path)) {
      goToLogin(); // the session ended (expired, or logged out in another tab)
    }
    const retryAfter = Number(response.headers.get("Retry-After")) || 0;
    let message = error.message || `The server answered with HTTP ${response.status}.`;
    if (response.status === 429 && retryAfter) {
      message = `${message} Try again in ${retryAfter} s.`;
    }
    throw new ApiError(response.status, error.code || "http_error", message, error.fields, retryAfter);
  }
  return data;
}

/** The message to show for an error: the API's own sentence, plus any field errors. */
export function describe(error) {
  if (!(error instanceof ApiError)) {
    return `Something went wrong: ${error && error.message ? error.message : error}`;
  }
  if (!error.fields || typeof error.fields !== "object") {
    return error.message;
  }
  const details = Object.entries(error.fields).map(([field, problems]) => {
    const text = [].concat(problems).flatMap((p) => (typeof p === "string" ? [p] : Object.values(p)));
    return field === "_schema" ? text.join(" ") : `${field}: ${text.join(" ")}`;
  });
  return [error.message, ...details].join(" ");
}

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
});

/** A <time> showing an ISO UTC instant in the user's local time, the exact UTC on hover. */
export function timeElement(iso) {
  const element = document.createElement("time");
  element.dateTime = iso;
  element.title = iso;
  element.textContent = TIME_FORMAT.format(new Date(iso));
  return element;
}

// [below this many seconds, count in units of this many seconds, unit]
const UNITS = [[3600, 60, "min"], [86400, 3600, "h"], [86400 * 30, 86400, "day"]];

/** "just now", "2 min ago", "3 h ago", "5 days ago"; a date beyond 30 days. */
export function relativeText(iso, now = Date.now()) {
  const seconds = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  if (seconds < 60) {
    return "just now";
  }
  for (const [limit, size, unit] of UNITS) {
    if (seconds < limit) {
      const count = Math.floor(seconds / size);
      const name = unit === "day" && count !== 1 ? "days" : unit;
      return `${count} ${name} ago`;
    }
  }
  return TIME_FORMAT.format(new Date(iso));
}

/** A <time> showing how long ago an ISO UTC instant was, the exact UTC time on hover. */
export function relativeTimeElement(iso) {
  const element = document.createElement("time");
  element.dateTime = iso;
  element.title = iso;
  element.textContent = relativeText(iso);
  return element;
}

/** Put text on the clipboard; resolves to a message saying how it went. */
export async function copyToClipboard(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    return { ok: true, message: `${what} copied to the clipboard.` };
  } catch (error) {
    return {
      ok: false,
      message: `Could not copy ${what.toLowerCase()} (${error.name}). Select it and copy it by hand.`,
    };
  }
}

const COPIED_MS = 3000;

/** Wire a copy button: it copies text() and says how it went on itself ("Copied ✓" for a few
 * seconds, where the eye is); `status` (a live region) says it too, for screen readers, and
 * shows a failure visibly. */
export function copyButton(button, text, what, status) {
  const label = button.dataset.copyLabel || button.textContent;
  let timer = null;
  button.addEventListener("click", async () => {
    const result = await copyToClipboard(text(), what);
    clearTimeout(timer);
    button.textContent = result.ok ? "Copied ✓" : "Copy failed";
    button.classList.toggle("btn-copied", result.ok);
    timer = setTimeout(() => {
      button.textContent = label;
      button.classList.remove("btn-copied");
    }, COPIED_MS);
    if (status) {
      status.classList.toggle("visually-hidden", result.ok);
      status.classList.toggle("error", !result.ok);
      status.textContent = result.message;
    }
  });
}

/** A plan's display name. */
export function planName(plan) {
  return plan ? plan.charAt(0).toUpperCase() + plan.slice(1) : "";
}

/** Show or clear the page-level error line. */
export function pageError(message) {
  document.querySelector("[data-page-error]").textContent = message || "";
}

/** The top bar of a logged-in page: who is logged in, and a working Log out button. */
export function initTopbar(user) {
  document.querySelector("[data-user-email]").textContent = user.email;
  const button = document.querySelector("[data-logout]");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await request("POST", "/auth/logout");
      window.location.assign("/login");
    } catch (error) {
      pageError(describe(error));
      button.disabled = false;
    }
  });
}

/** Start a logged-in page: the session (or a trip to /login), the top bar, then main(). */
export async function startPage(main) {
  let session;
  try {
    session = await currentSession();
  } catch (error) {
    if (error.status !== 401) {
      pageError(describe(error));
    }
    return;
  }
  initTopbar(session.user);
  const data = document.body.dataset;
  await main(session, {
    maxKeys: Number(data.maxKeys),
    keyPlans: (data.keyPlans || "").split(",").filter(Boolean),
    mcpUrl: data.mcpUrl,
  });
}
