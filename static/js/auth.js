// The login and signup forms: POST to /auth/*, show the API's message on failure.
import { describe, request } from "./api.js";

// Something@something.something, no spaces: the shape a mistyped address most often lacks
// (the server checks it fully).
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const form = document.querySelector("[data-auth-form]");
const mode = form.dataset.authForm;
const email = form.querySelector("#email");
const password = form.querySelector("#password");
const error = form.querySelector("[data-form-error]");
const submit = form.querySelector("button[type=submit]");

function fail(message, field) {
  error.textContent = message;
  (field || email).focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const credentials = { email: email.value.trim(), password: password.value };
  if (!credentials.email) {
    return fail("Enter your email address.", email);
  }
  if (!EMAIL_SHAPE.test(credentials.email)) {
    return fail("Enter an email address like name@example.com.", email);
  }
  if (!credentials.password) {
    return fail("Enter your password.", password);
  }
  if (mode === "signup" && credentials.password.length < 8) {
    return fail("Use a password of at least 8 characters.", password);
  }
  submit.disabled = true;
  try {
    if (mode === "signup") {
      await request("POST", "/auth/signup", credentials);
    }
    await request("POST", "/auth/login", credentials);
    window.location.assign(document.body.dataset.next || "/settings");
  } catch (err) {
    submit.disabled = false;
    fail(describe(err), err.code === "invalid_credentials" ? password : email);
  }
});

email.focus();
