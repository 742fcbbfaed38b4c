// Bad-rating follow-ups (差评回访) for supervisors: the open ones, most overdue first; record what
// was done and close each one.
// @ts-check
import { bannerForAWhile, errorBanner } from "./callview.js";
import { el, lang, setLang, storedText, t } from "./i18n.js";
import { supervisorSignedIn } from "./sitenav.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
/** @type {any[]} */
let followUps = [];
/** How many follow-ups were closed in all; the page asks for the newest `closedAsked`. */
let closedTotal = 0;
const CLOSED_PAGE = 50;
let closedAsked = CLOSED_PAGE;
/** What has been typed in each open follow-up's note, by its id (kept while the list is drawn again). @type {Map<number, string>} */
const drafts = new Map();
/** The follow-ups whose 办结 was pressed with an empty note (their missing line stays shown). @type {Set<number>} */
const unwritten = new Set();

/** @param {any} f */
function card(f) {
  const li = el("li", "", `card followup${f.overdue ? " overdue" : ""}${f.closed_at ? " closed" : ""}`);
  li.dataset.followUp = String(f.id);
  const head = el("div", "", "head");
  head.append(el("strong", `${f.ticket.number} · ${f.ticket.item}`, "grow"));
  const due = f.closed_at
    ? t("followups.closed", { date: f.closed_at.slice(0, 10), name: f.closed_by_name || f.closed_by || "" })
    : t(f.overdue ? "followups.overdue" : "followups.due", { date: f.due_date });
  head.append(el("span", due, f.overdue ? "due late" : "due"));
  const level = el("p");
  // The level in the reader's language (the server's label is the Chinese one).
  level.append(el("span", f.level.value ? t(`kiosk.rate.level.${f.level.value}`) : t("followups.no_level"), "badge level"));
  if (f.reasons.length) {
    const reasons = f.reasons.map((/** @type {string} */ r) => storedText("rating.reason.", r)).join(t("common.list_separator"));
    level.append(" ", el("span", t("followups.reasons", { reasons })));
  }
  // Ticket numbers repeat every day: which session it was (day, station, who served, the case).
  const session = el("p", "", "session");
  session.append(el("span", [f.ticket.day, f.ticket.station, f.ticket.staff_name ? t("followups.served_by", { name: f.ticket.staff_name }) : ""].filter(Boolean).join(" · ")));
  if (f.ticket.case) {
    const link = /** @type {HTMLAnchorElement} */ (el("a", t("followups.case", { number: f.ticket.case })));
    link.href = `/cases/${encodeURIComponent(f.ticket.case)}`;
    session.append(" · ", link);
  }
  // How to reach the resident (回访 is mostly by phone): the applicant's phone on the session's
  // case; a session without a case recorded none, and the card says so.
  const contact = el("p", "", "contact");
  if (f.ticket.phone) {
    contact.append(t("followups.phone") + t("common.colon"));
    const phone = /** @type {HTMLAnchorElement} */ (el("a", f.ticket.phone));
    phone.href = `tel:${f.ticket.phone}`;
    contact.append(phone);
  } else {
    contact.append(el("span", t("followups.no_phone"), "muted"));
  }
  li.append(head, session, contact, level);
  if (f.closed_at) {
    li.append(el("p", f.note, "note"));
    return li;
  }
  const form = el("form", "", "close-form");
  const id = `note-${f.id}`;
  const label = el("label", t("followups.note"));
  label.setAttribute("for", id);
  const note = /** @type {HTMLTextAreaElement} */ (el("textarea"));
  note.id = id;
  note.required = true;
  note.maxLength = 2000;
  note.rows = 2;
  note.placeholder = t("followups.note_hint");
  note.value = drafts.get(f.id) || "";
  const button = el("button", t("followups.close"), "button primary");
  // An empty note is said in the page's language under the field, not in a browser bubble.
  form.noValidate = true;
  const missing = el("p", t("followups.note_required"), "field-problem");
  missing.id = `${id}-missing`;
  const markMissing = () => {
    missing.hidden = false;
    note.setAttribute("aria-invalid", "true");
    note.setAttribute("aria-describedby", missing.id);
  };
  missing.hidden = true;
  if (unwritten.has(f.id)) markMissing();
  note.oninput = () => {
    drafts.set(f.id, note.value);
    unwritten.delete(f.id);
    missing.hidden = true;
    note.removeAttribute("aria-invalid");
  };
  form.append(label, note, button, missing);
  form.onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!note.value.trim()) {
      unwritten.add(f.id);
      markMissing();
      note.focus();
      return;
    }
    button.setAttribute("disabled", "");
    const response = await fetch(`/api/v1/follow-ups/${f.id}/close`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ note: note.value.trim() }),
    });
    const body = await response.json();
    button.removeAttribute("disabled");
    if (!response.ok) { errorBanner(body?.error, "followups.error"); return; }
    // Said for a while (the banner sticks to the top of the page, over the list), then gone.
    // Ticket numbers start again every day: the day says which B002.
    bannerForAWhile("followups.done", "info", { ticket: f.ticket.number, date: f.ticket.day });
    Object.assign(f, body.follow_up);
    drafts.delete(f.id);
    closedTotal += 1;
    render();
  };
  li.append(form);
  return li;
}

function render() {
  const showClosed = $("show-closed").checked;
  const open = followUps.filter((f) => !f.closed_at);
  const overdue = open.filter((f) => f.overdue).length;
  $("summary").textContent = t("followups.summary", { open: open.length, overdue });
  // Closed ones, newest first, a page at a time: a district closes thousands a year.
  const closed = followUps.filter((f) => f.closed_at);
  const shown = showClosed ? [...open, ...closed] : open;
  $("empty").hidden = shown.length > 0;
  // Drawn again (a language switch, another card closed): what was typed, a note's missing
  // line and the focus stay (a switch lost a half-written note, a README walk found).
  const focused = document.activeElement?.id;
  $("list").replaceChildren(...shown.map(card));
  if (focused?.startsWith("note-")) document.getElementById(focused)?.focus();
  const more = showClosed && closedTotal > closed.length;
  $("more-closed").hidden = !more;
  if (more) $("more-closed").textContent = t("followups.more_closed", { shown: closed.length, total: closedTotal, n: Math.min(CLOSED_PAGE, closedTotal - closed.length) });
}

/**
 * How many times the list was asked for: an answer is drawn only if none was asked for after
 * it (as reports.js does), so an older answer arriving late (a shorter list, or one read before
 * a follow-up was closed) never replaces a newer one.
 */
let loads = 0;

async function load() {
  const attempt = ++loads;
  const response = await fetch(`/api/v1/follow-ups?closed=${closedAsked}`, { credentials: "same-origin" });
  const body = await response.json();
  if (attempt !== loads) return;  // asked for again meanwhile
  if (!response.ok) { errorBanner(body?.error, "followups.error"); return; }
  closedTotal = body.closed_total;
  // Open first (most overdue at the top), then the closed ones, newest first.
  followUps = body.follow_ups.sort((/** @type {any} */ a, /** @type {any} */ b) =>
    (a.closed_at ? 1 : 0) - (b.closed_at ? 1 : 0)
    || (a.closed_at ? b.closed_at.localeCompare(a.closed_at) : a.due_date.localeCompare(b.due_date)));
  render();
}

async function start() {
  if (!(await supervisorSignedIn())) return;
  $("page").hidden = false;
  $("show-closed").onchange = render;
  $("more-closed").onclick = async () => {
    closedAsked += CLOSED_PAGE;
    await load();
  };
  await load();
}

Object.assign(window, { cloudhelp: { get followUps() { return followUps; } } });
await setLang(lang);
$("lang").onclick = async () => { await setLang(lang === "zh-CN" ? "en" : "zh-CN"); render(); };
await start();
