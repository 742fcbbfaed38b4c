// The header nav of signed-in pages (web/templates/_site_nav.html renders every link with the
// roles that may open it; this shows the ones of the signed-in role).
// @ts-check
import { t } from "./i18n.js";

/** Show the links `role` may open; nothing for a visitor who is not signed in. @param {string | null} role */
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
}
