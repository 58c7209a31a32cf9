// The one way the pages talk to the service: same-origin fetch of the JSON API, the session's
// CSRF token on every unsafe request, and every error turned into a readable message.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const NO_SESSION_YET = new Set(["/auth/login", "/auth/signup"]);

/** An error answer from the API (or the network), with its envelope's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || null;
  }
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

/** Call the API; resolves to the parsed body (null for 204), rejects with an ApiError. */
export async function request(method, path, body) {
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
    throw new ApiError(response.status, error.code || "http_error",
      error.message || `The server answered with HTTP ${response.status}.`, error.fields);
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
