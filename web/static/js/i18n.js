// Message catalogs for the pages (web/i18n/*.json): zh-CN first, English selectable.
// @ts-check

/** @type {Record<string, string>} */
let messages = {};
/** The server's pages (/cases, /audit …) read the same choice from this cookie. */
const LANG_COOKIE = "lang";
const cookieLang = document.cookie.split("; ").find((c) => c.startsWith(`${LANG_COOKIE}=`))?.slice(LANG_COOKIE.length + 1);
export let lang = cookieLang || localStorage.getItem("cloudhelp.lang") || "zh-CN";

/** @param {string} next */
export async function setLang(next) {
  const response = await fetch(`/i18n/${next}.json`);
  messages = await response.json();
  lang = next;
  localStorage.setItem("cloudhelp.lang", next);
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `${LANG_COOKIE}=${next}; path=/; max-age=31536000; samesite=lax${secure}`;
  document.documentElement.lang = next;
  translate(document);
}

/** Whether the catalog has a text for key. @param {string} key */
export function hasText(key) {
  return key in messages;
}

/** @param {string} key @param {Record<string, string | number>} [values] */
export function t(key, values = {}) {
  // One of a thing in English ("1 item", not "1 items"): a key's ".one" text when n is 1.
  let text = (values.n === 1 ? messages[`${key}.one`] : undefined) ?? messages[key] ?? key;
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

/**
 * The catalog key and values saying a server error ({code, ...values}: an error frame or an
 * API error body): the page's own wording (`prefix` + code) first, then the shared
 * `error.` + code, else `fallback` — never the server's English message.
 * @param {any} error @param {string} fallback @param {string} [prefix]
 * @returns {[string, Record<string, any>]}
 */
export function errorKey(error, fallback, prefix) {
  const code = error?.code;
  for (const key of code ? [prefix && `${prefix}${code}`, `error.${code}`] : []) {
    if (!key) continue;
    const text = t(key, error);
    // A page's own text whose numbers the error did not carry (a placeholder left) gives way
    // to the shared one.
    if (text !== key && !(key.startsWith(prefix || "\0") && /\{\w+\}/.test(text))) return [key, error];
  }
  return [fallback, error || {}];
}

/** The text of `errorKey` in the page's language. @param {any} error @param {string} fallback @param {string} [prefix] */
export function errorText(error, fallback, prefix) {
  return t(...errorKey(error, fallback, prefix));
}

/**
 * Fill every [data-i18n] element (its [data-i18n-values], JSON, fill the placeholders),
 * [data-i18n-sender] chat line and [data-i18n-placeholder] input under root.
 * @param {ParentNode} root
 */
export function translate(root) {
  root.querySelectorAll("[data-i18n]").forEach((node) => {
    const el = /** @type {HTMLElement} */ (node);
    el.textContent = t(el.dataset.i18n || "", el.dataset.i18nValues ? JSON.parse(el.dataset.i18nValues) : {});
  });
  // A chat line's sender (callview.js addChat), shown by call.css from data-sender.
  root.querySelectorAll("[data-i18n-sender]").forEach((node) => {
    const el = /** @type {HTMLElement} */ (node);
    el.dataset.sender = t(el.dataset.i18nSender || "");
  });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    /** @type {HTMLInputElement} */ (el).placeholder = t(/** @type {HTMLElement} */ (el).dataset.i18nPlaceholder || "");
  });
}

/**
 * Show a catalog text in el, kept for a language switch (translate) with its values.
 * @param {HTMLElement} el @param {string} key @param {Record<string, string | number>} [values]
 */
export function showText(el, key, values = {}) {
  el.dataset.i18n = key;
  el.dataset.i18nValues = JSON.stringify(values);
  el.textContent = t(key, values);
}

/**
 * Show text that is no catalog's (a name, a number) in el, where a catalog text may have been:
 * a language switch leaves it as it is. @param {HTMLElement} el @param {string} text
 */
export function showPlain(el, text) {
  delete el.dataset.i18n;
  delete el.dataset.i18nValues;
  el.textContent = text;
}

/**
 * A value stored in Chinese from a fixed list (a bad rating's reason, cloudhelp/domain/
 * ratings.py) in the page's language: the catalog's text of `prefix` + value when it has one,
 * else the value as stored.
 * @param {string} prefix @param {string} value
 */
export function storedText(prefix, value) {
  return hasText(`${prefix}${value}`) ? t(`${prefix}${value}`) : value;
}

/** `storedText` shown in el, said again after a language switch. @param {HTMLElement} el @param {string} prefix @param {string} value */
export function showStored(el, prefix, value) {
  if (hasText(`${prefix}${value}`)) showText(el, `${prefix}${value}`);
  else showPlain(el, value);
}

/** A select's option showing a catalog text (kept for a language switch). @param {string} key @param {string} [value] */
export function catalogOption(key, value = "") {
  const option = new Option("", value);
  showText(option, key);
  return option;
}

/**
 * The district's time zone (the server's, cloudhelp/core/clock.py): the times the pages show
 * are the district's, whatever zone the machine's clock is set to (a kiosk or wall screen left
 * on UTC showed chat lines eight hours off).
 */
export const DISTRICT_TZ = "Asia/Shanghai";

/** HH:MM in the district. @param {Date} at */
export function clockTime(at) {
  return at.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: DISTRICT_TZ });
}

/** A calendar day ("2026-12-15…") in the reader's language: 2026年12月15日 / 15 December 2026. @param {string} iso */
export function calendarDate(iso) {
  const [year, month, day] = iso.slice(0, 10).split("-").map(Number);
  return new Date(year, month - 1, day).toLocaleDateString(lang, { year: "numeric", month: "long", day: "numeric" });
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
  return warningParts(w, station).join(" · ");
}

/** A code, number or date with non-breaking hyphens: it never wraps at them. @param {unknown} text */
export function unbroken(text) {
  return String(text ?? "").replaceAll("-", "\u2011");
}

const OPENING = /^[（(《“‘【\[]+$/u;
const CLOSING = /^[、，。；：！？）)》”’】\]]+$/u;

/**
 * A Chinese name with line-break chances between its words only, for an element styled
 * `word-break: keep-all` (which breaks a CJK run nowhere else): 出租汽车驾驶 / 员 broke
 * mid-word. Words from Intl.Segmenter; a one-character word stays with the one before
 * (驾驶员, 许可证, 工商户), a closing mark too, an opening mark with the word after (（延续）).
 * @param {string} text @returns {(string | Node)[]} the text's pieces with <wbr> between them
 */
export function phrased(text) {
  if (typeof Intl.Segmenter !== "function") return [text];
  /** @type {string[]} */
  const units = [];
  let opening = "";
  for (const { segment } of new Intl.Segmenter("zh", { granularity: "word" }).segment(text)) {
    if (OPENING.test(segment)) opening += segment;
    else if (units.length && !opening && ([...segment].length === 1 || CLOSING.test(segment))) units[units.length - 1] += segment;
    else { units.push(opening + segment); opening = ""; }
  }
  if (opening) units.push(opening);
  return units.flatMap((unit, i) => (i ? [document.createElement("wbr"), unit] : [unit]));
}

/**
 * A station's name as a crowded line shows it: less its tier's suffix (前关社区驿站 → 前关,
 * 大连湾街道便民服务中心 → 大连湾街道), which every station of the tier shares; the hall's and
 * other names whole. On the board's warning rows the long suffix left the item two characters.
 * @param {string} name
 */
export function shortStation(name) {
  return name.replace(/(社区驿站|便民服务中心)$/u, "") || name;
}

/** The parts of warningSubject: [ticket or case number, item, station], those the warning has. @param {any} w @param {boolean} station */
function warningParts(w, station) {
  const d = w.detail;
  let ticket = d.ticket;
  if (ticket && w.kind === "follow_up_late" && d.since) {
    const day = new Date(d.since);
    const date = unbroken(new Date(day.getTime() - day.getTimezoneOffset() * 60000).toISOString().slice(0, 10));
    ticket = t("warning.ticket_of_day", { ticket, date });
  }
  // A case number (210211-20261119-0047) never wraps at its hyphens either.
  const number = ticket || (typeof d.case === "string" ? unbroken(d.case) : d.case);
  return [number, d.item, station ? d.station : null].filter(Boolean);
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

/** An element with its text and class (the pages' one way to make one). @param {string} tag @param {string} [text] @param {string} [cls] */
export function el(tag, text = "", cls = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

/**
 * One kind of time-out warnings, as the board and the console both show it: a head with the
 * kind, its count and how many are not acknowledged yet; its rows, those not acknowledged first
 * (then the most pressing), the first `shown` of them listed; and 另有 N 条, a button that lists
 * the rest (and folds them again). Kinds listed in full are kept in `expanded` (the page's own
 * set, so a list pushed again stays as the reader left it).
 * @param {{kind: string, list: any[]}} group a group of warningGroups
 * @param {{shown: number, expanded: Set<string>, id: string, station?: boolean, ack: (w: any) => void}} options
 *   `id`: what the page prefixes its element ids with; `station`: name the station in each row
 */
export function renderWarningGroup(group, options) {
  const { kind, list } = group;
  const li = el("li", "", "group");
  li.dataset.kind = kind;
  const head = el("div", "", "group-head");
  const unacked = list.filter((w) => !w.acked_at).length;
  head.append(el("strong", t(`warning.${kind}`), "grow"), el("span", String(list.length), "count"));
  if (unacked < list.length) head.append(el("small", t("board.unacked", { n: unacked }), "unacked"));
  const rows = el("ul", "", "rows");
  rows.id = `${options.id}-${kind}`;
  const ordered = [...list].sort((a, b) => Number(Boolean(a.acked_at)) - Number(Boolean(b.acked_at)));
  const open = options.expanded.has(kind);
  rows.append(...ordered.map((w, n) => {
    const row = warningRow(w, options);
    row.hidden = n >= options.shown && !open;
    return row;
  }));
  li.append(head, rows);
  const more = list.length - options.shown;
  if (more > 0 || kind === "follow_up_late") {
    const foot = el("div", "", "group-foot");
    if (more > 0) {
      const toggle = /** @type {HTMLButtonElement} */ (el("button", "", "more"));
      toggle.type = "button";
      toggle.setAttribute("aria-controls", rows.id);
      const show = (/** @type {boolean} */ all) => {
        toggle.textContent = all ? t("board.fewer") : t("board.more", { n: more });
        toggle.setAttribute("aria-expanded", String(all));
        [...rows.children].forEach((row, n) => { /** @type {HTMLElement} */ (row).hidden = n >= options.shown && !all; });
      };
      toggle.onclick = () => {
        const all = !options.expanded.has(kind);
        if (all) options.expanded.add(kind);
        else options.expanded.delete(kind);
        show(all);
      };
      show(open);
      foot.append(toggle);
    }
    if (kind === "follow_up_late") {
      const link = /** @type {HTMLAnchorElement} */ (el("a", t("board.followups")));
      link.href = "/follow-ups";
      foot.append(link);
    }
    li.append(foot);
  }
  return li;
}

/**
 * Replace the groups shown in `list` (a push, or the board fitting the wall): a 另有 N 条 / 收起
 * button that had the keyboard focus has it again in the new list, so Space or Enter still
 * works on it after a push.
 * @param {HTMLElement} list @param {{kind: string, list: any[]}[]} groups
 * @param {Parameters<typeof renderWarningGroup>[1]} options
 */
export function replaceWarningGroups(list, groups, options) {
  const focused = document.activeElement;
  const kind = focused instanceof HTMLElement && list.contains(focused) && focused.classList.contains("more")
    ? /** @type {HTMLElement | null} */ (focused.closest("li.group"))?.dataset.kind : undefined;
  list.replaceChildren(...groups.map((group) => renderWarningGroup(group, options)));
  if (kind) /** @type {HTMLElement | null} */ (list.querySelector(`li.group[data-kind="${kind}"] button.more`))?.focus();
}

/** One warning's row: what it is about, when it is due (or how long it has lasted), 知悉. @param {any} w @param {{station?: boolean, ack: (w: any) => void}} options */
function warningRow(w, options) {
  const li = el("li", "", w.acked_at ? "acked" : "");
  li.dataset.warning = String(w.id);
  const head = el("div", "", "head");
  const what = el("span", "", "grow subject");
  if (w.kind === "calendar_missing") what.textContent = t("board.calendar_missing", { year: w.detail.year });
  else {
    // The number never wraps inside (nor does the due date below): a row wraps between parts.
    // Each part is an element of its own, so that where a row must stay one line (the board's
    // wall) the item's name is cut and the station stays whole.
    const [number, ...rest] = warningParts(w, Boolean(options.station));
    const last = rest.length - 1;
    const kind = (/** @type {number} */ i) => (options.station && w.detail.station && i === last ? "station" : "item");
    what.append(el("span", String(number ?? ""), "number"), ...rest.map((part, i) => {
      if (kind(i) === "item") return el("span", ` · ${part}`, "item");
      const where = el("span", ` · ${shortStation(part)}`, "station");
      where.title = part;  // the full name (the ack button's label says it too)
      return where;
    }));
  }
  head.append(what);
  if (w.kind !== "calendar_missing") {
    const time = el("small", w.detail.due ? t("board.due", { date: w.detail.due }) : "",
      w.kind === "case_due_soon" ? "hot when" : "late when");  // due soon is not late yet
    if (!w.detail.due) {
      time.classList.add("wait");
      time.dataset.since = w.detail.since || w.raised_at;
      time.dataset.label = "board.lasting"; // "已持续 13 分钟", not a bare duration
    }
    head.append(time);
  }
  if (w.acked_at) head.append(el("small", t("board.acked_by", { name: w.acked_by }), "acked-by"));
  else {
    const ack = el("button", t("board.ack"), "button ack");
    ack.setAttribute("type", "button");
    ack.setAttribute("aria-label", `${t("board.ack")} ${warningSubject(w, Boolean(options.station))}`);
    ack.onclick = () => options.ack(w);
    head.append(ack);
  }
  li.append(head);
  return li;
}

/**
 * Every [data-since] under root says how long ago its ISO moment was ("13 分钟"), or its
 * data-label's sentence with that time ("已持续 13 分钟"). Pages call it every second.
 * @param {ParentNode} root
 */
export function showSince(root) {
  root.querySelectorAll("[data-since]").forEach((node) => {
    const iso = /** @type {HTMLElement} */ (node).dataset.since || "";
    const label = /** @type {HTMLElement} */ (node).dataset.label;
    const time = iso ? duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000)) : "—";
    node.textContent = label && iso ? t(label, { time }) : time;
  });
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
