// Settings: the account facts and the API Keys section.
import { planName, startPage } from "./api.js";
import { mountKeyView } from "./keys.js";

startPage(async ({ user }, options) => {
  document.querySelector("[data-account-email]").textContent = user.email;
  document.querySelector("[data-account-plan]").textContent = planName(user.plan);
  await mountKeyView(document.querySelector("[data-keyview]"), { user, ...options });
});
