// Settings: the account facts, the API Keys section, the Security log and leak banners.
import { planName, startPage } from "./api.js";
import { mountKeyView } from "./keys.js";
import { mountLeakBanners, mountSecurityLog } from "./security-log.js";

startPage(async ({ user }, options) => {
  document.querySelector("[data-account-email]").textContent = user.email;
  document.querySelector("[data-account-plan]").textContent = planName(user.plan);
  mountLeakBanners(document.querySelector("[data-leak-banners]"));
  mountSecurityLog(document.querySelector("#security-log"));
  await mountKeyView(document.querySelector("[data-keyview]"), { user, ...options });
});
