// Message catalogs for the pages (web/i18n/*.json): zh-CN first, English selectable.
// @ts-check

/** @type {Record<string, string>} */
let messages = {};
export let lang = localStorage.getItem("cloudhelp.lang") || "zh-CN";

/** @param {string} next */
export async function setLang(next) {
  const response = await fetch(`/i18n/${next}.json`);
  messages = await response.json();
  lang = next;
  localStorage.setItem("cloudhelp.lang", next);
  document.documentElement.lang = next;
  translate(document);
}

/** @param {string} key @param {Record<string, string | number>} [values] */
export function t(key, values = {}) {
  let text = messages[key] ?? key;
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

/**
 * Catalog text for a server error ({code, ...values}: an error frame or an API error body):
 * the page's own wording (`prefix` + code) first, then the shared `error.` + code, else
 * `fallback` — never the server's English message.
 * @param {any} error @param {string} fallback @param {string} [prefix]
 */
export function errorText(error, fallback, prefix) {
  const code = error?.code;
  for (const key of code ? [prefix && `${prefix}${code}`, `error.${code}`] : []) {
    if (!key) continue;
    const text = t(key, error);
    // A page's own text whose numbers the error did not carry (a placeholder left) gives way
    // to the shared one.
    if (text !== key && !(key.startsWith(prefix || "\0") && /\{\w+\}/.test(text))) return text;
  }
  return t(fallback, error || {});
}

/** Fill every [data-i18n] element (and [data-i18n-placeholder] input) under root. @param {ParentNode} root */
export function translate(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n || "");
  });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    /** @type {HTMLInputElement} */ (el).placeholder = t(/** @type {HTMLElement} */ (el).dataset.i18nPlaceholder || "");
  });
}

/** Seconds as "3 分钟" / "45 秒". @param {number} seconds */
export function duration(seconds) {
  return seconds >= 60 ? t("common.minutes", { n: Math.round(seconds / 60) }) : t("common.seconds", { n: Math.max(1, Math.round(seconds)) });
}

/**
 * What a warning is about: its ticket (or case), item and station. Ticket numbers start again
 * every day, so a late follow-up's ticket carries its day: "B026（2026-11-28）".
 * @param {any} w a warning as the server sends it @param {boolean} [station]
 */
export function warningSubject(w, station = false) {
  const d = w.detail;
  let ticket = d.ticket;
  if (ticket && w.kind === "follow_up_late" && d.since) {
    const day = new Date(d.since);
    // Non-breaking hyphens: the date never wraps in the middle.
    const date = new Date(day.getTime() - day.getTimezoneOffset() * 60000).toISOString().slice(0, 10).replaceAll("-", "\u2011");
    ticket = t("warning.ticket_of_day", { ticket, date });
  }
  // A case number (210211-20261119-H0047) never wraps at its hyphens either.
  const number = ticket || (typeof d.case === "string" ? d.case.replaceAll("-", "\u2011") : d.case);
  return [number, d.item, station ? d.station : null].filter(Boolean).join(" · ");
}

/**
 * Warnings grouped by kind, in the server's order (most pressing kind first); within a kind the
 * oldest due date or the longest-running first. The board and the console list them so.
 * @param {any[]} warnings
 */
export function warningGroups(warnings) {
  /** @type {Map<string, any[]>} */
  const byKind = new Map();
  for (const w of warnings) byKind.set(w.kind, [...(byKind.get(w.kind) || []), w]);
  const pressing = (/** @type {any} */ w) => w.detail.due || w.detail.since || w.raised_at;
  return [...byKind.entries()].map(([kind, list]) => ({
    kind,
    list: list.sort((a, b) => pressing(a).localeCompare(pressing(b)) || a.id - b.id),
  }));
}

/** A short beep (ring tones, speaker test). @param {number} ms @param {number} [hz] */
export function beep(ms, hz = 660) {
  const audio = new AudioContext();
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  gain.gain.value = 0.2;
  osc.frequency.value = hz;
  osc.connect(gain).connect(audio.destination);
  osc.start();
  setTimeout(() => { osc.stop(); audio.close(); }, ms);
}
