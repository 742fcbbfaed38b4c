// The header nav of signed-in pages (web/templates/_site_nav.html renders every link with the
// roles that may open it; this shows the ones of the signed-in role).
// @ts-check
import { t } from "./i18n.js";

/** Show the links `role` may open, and 退出; nothing for a visitor who is not signed in. @param {string | null} role */
export function showNav(role) {
  const nav = document.getElementById("site-nav");
  if (!nav) return;
  let shown = 0;
  nav.querySelectorAll("a").forEach((link) => {
    const allowed = Boolean(role) && (link.dataset.roles || "").split(" ").includes(String(role));
    link.hidden = !allowed;
    if (allowed) shown += 1;
  });
  nav.setAttribute("aria-label", t(nav.dataset.i18nLabel || "nav.label"));
  nav.hidden = shown === 0;
  const signOut = document.getElementById("logout");  // templates/_signout.html
  if (signOut) signOut.hidden = !role;
}

/**
 * GET /api/v1/auth/me (who is signed in), or null without asking when the page was served to a
 * browser holding no sign-in cookie (no `data-session` on <html>, cloudhelp/http/pages.py):
 * nobody is signed in then, and asking would only log a 401 in the browser's console.
 * @returns {Promise<Response | null>}
 */
export async function fetchMe() {
  if (!("session" in document.documentElement.dataset)) return null;
  return fetch("/api/v1/auth/me", { credentials: "same-origin" });
}

/**
 * The signed-in staff member's role, with the nav shown; for anyone but a supervisor or an
 * admin the page's sign-in card (#signin) is shown instead and false is returned.
 * @returns {Promise<boolean>} whether a supervisor page may show itself
 */
export async function supervisorSignedIn() {
  const me = await fetchMe();
  const role = me?.ok ? (await me.json()).staff.role : null;
  showNav(role);
  if (role === "supervisor" || role === "admin") return true;
  const card = /** @type {HTMLElement} */ (document.getElementById("signin"));
  card.hidden = false;
  if (role) /** @type {HTMLElement} */ (card.querySelector("p")).textContent = t("board.signin.forbidden");
  return false;
}
