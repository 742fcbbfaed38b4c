// The supervisor board (效能监控): queues, staff, calls and time-out warnings, pushed live.
// @ts-check
import { Connection } from "./protocol.js";
import { banner, errorBanner } from "./callview.js";
import { DISTRICT_TZ, duration, el, lang, replaceWarningGroups, setLang, showSince, t, warningGroups } from "./i18n.js";
import { supervisorSignedIn } from "./sitenav.js";
import { pathText, renderBars } from "./netview.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
/** @type {any} */
let board = null;
/** @type {Connection | null} */
let connection = null;

/** @param {number | null} value */
const percent = (value) => (value === null || value === undefined ? "—" : `${Math.round(value * 100)}%`);

/** Papers on the road: pickups at stations today (trips saved), items by hop, overdue pickups. @param {any} l */
function renderLogistics(l) {
  if (!l) return;
  $("l-trips").textContent = l.trips_saved;
  $("l-transit").textContent = l.in_transit;
  $("l-awaiting").textContent = l.awaiting_pickup;
  $("l-overdue").textContent = l.overdue_pickups;
  $("l-overdue").className = l.overdue_pickups ? "late" : "";
  $("l-hours").textContent = l.issue_to_pickup_hours_median === null ? "—" : t("board.logistics.hours_value", { hours: l.issue_to_pickup_hours_median });
  $("l-hops").replaceChildren(...l.in_transit_by_hop.map((/** @type {any} */ hop) => {
    const li = el("li");
    li.append(el("span", `${hop.from} → ${hop.to}`, "grow"), el("strong", t("logistics.run.items", { n: hop.items })));
    return li;
  }));
}

function render() {
  if (!board) return;
  const today = board.today;
  $("f-tickets").textContent = today.tickets;
  $("f-answered").textContent = today.answered;
  $("f-abandoned").textContent = today.abandoned;
  // Tickets given up within seconds (a mistaken tap) are not counted as abandoned: said here,
  // so that 取号 still adds up to 接通 + 放弃 + these + those still waiting.
  $("f-short").textContent = t("board.today.short_abandons", { n: today.short_abandons });
  $("f-short").title = t("board.today.short_abandons_title");
  $("f-short").hidden = !today.short_abandons;
  $("f-wait").textContent = today.wait_mean_s === null ? "—" : duration(today.wait_mean_s);
  $("f-good").textContent = percent(today.good_rate);
  $("f-trips").textContent = today.trips_saved;
  $("f-cases").textContent = `${today.cases_opened} / ${today.cases_concluded}`;
  renderLogistics(board.logistics);

  $("departments").replaceChildren(...board.departments.map((/** @type {any} */ d) => {
    const row = el("tr");
    const wait = el("td", "", "num wait");
    wait.dataset.since = d.oldest_enqueued_at || "";
    const duty = Object.entries(d.staff).map(([state, n]) => `${t(`staff.state.${state}`)} ${n}`).join(" · ");
    const seats = el("td", duty || t("board.nobody"));
    // A seat serving several departments is counted under each: marked, and said below the table.
    if (d.shared) seats.append(el("sup", "*", "shared"));
    row.append(el("td", d.name), el("td", String(d.waiting), d.waiting ? "num hot" : "num"), wait, seats);
    return row;
  }));
  const shared = board.departments.some((/** @type {any} */ d) => d.shared);
  $("departments-shared").hidden = !shared;
  $("departments-shared").textContent = shared ? t("board.shared_seats", { n: board.staff.length }) : "";

  $("calls-count").textContent = String(board.calls.length);
  $("calls-empty").hidden = board.calls.length > 0;
  // Calls with poor quality first, marked and counted: a supervisor sees them at a glance.
  const poor = (/** @type {any} */ c) => (c.quality?.level === "poor" ? 0 : 1);
  const calls = [...board.calls].sort((a, b) => poor(a) - poor(b));
  const poorCount = calls.filter((c) => poor(c) === 0).length;
  $("calls-poor").hidden = poorCount === 0;
  $("calls-poor").textContent = t("board.quality.count", { n: poorCount });
  $("calls").replaceChildren(...calls.map((/** @type {any} */ c) => {
    const li = el("li", "", poor(c) === 0 ? "poor" : "");
    li.dataset.ticket = c.ticket;
    const grow = el("span", "", "grow");
    grow.append(el("strong", c.station), el("br"), el("small", `${c.ticket} · ${c.item}`));
    const time = el("span", "", "wait");
    time.dataset.since = c.connected_at || "";
    const signal = el("span", "", "signal");
    const level = c.quality?.level || null;
    renderBars(signal, level, level ? t(`board.quality.${level}`) : "");
    if (c.quality) signal.title = `${Math.round(c.quality.rtt_ms ?? 0)} ms · ${pathText(c.quality.relay ? "relay" : "host")}`;
    li.append(grow, signal, el("span", c.staff), time);
    return li;
  }));

  // Campaigns under way (集中办理): served of the roster, today's appointments checked in.
  const running = board.campaigns || [];
  $("campaigns-panel").hidden = running.length === 0;
  $("campaigns").replaceChildren(...running.map((/** @type {any} */ c) => {
    const li = el("li");
    const grow = el("span", "", "grow");
    const link = /** @type {HTMLAnchorElement} */ (el("a", c.name));
    link.href = `/campaigns/${c.id}`;
    grow.append(link, el("br"), el("small", t("board.campaign.today", { checked: c.today_checked_in, booked: c.today_booked, no_show: c.no_show })));
    li.append(grow, el("strong", `${c.served} / ${c.entries}`, "num"));
    return li;
  }));

  $("staff-empty").hidden = board.staff.length > 0;
  $("staff-count").textContent = String(board.staff.length);
  $("staff").replaceChildren(...board.staff.map((/** @type {any} */ s) => {
    const li = el("li");
    const state = el("span", t(`staff.state.${s.state}`), "state");
    state.dataset.state = s.state;
    const time = el("small", "", "wait");
    time.dataset.since = s.since || "";
    li.append(el("span", s.name, "grow"), state, el("small", s.ticket || ""), time);
    return li;
  }));

  const open = board.warnings;
  const unacked = open.filter((/** @type {any} */ w) => !w.acked_at).length;
  // The red badge counts what is still to see, and says so (a bare number read as the total,
  // which the groups' counts add up to, and did not match it after a 知悉).
  $("warnings-count").textContent = t("board.unacked", { n: unacked });
  $("warnings-count").hidden = unacked === 0;
  $("warnings-empty").hidden = open.length > 0;
  // The wall screen never scrolls: with many kinds, each shows fewer (the rest are counted,
  // 另有 N 条 lists them); a kind a supervisor opened stays listed in full.
  const grouped = warningGroups(open);
  for (let shown = SHOWN_PER_KIND; shown >= 1; shown -= 1) {
    const options = { shown, expanded, id: "warnings", station: true, ack: acknowledge };
    replaceWarningGroups($("warnings"), grouped, options);
    if (document.documentElement.scrollHeight <= window.innerHeight) break;
  }
  tick();
}

/** How many warnings of each kind the wall shows at most; the rest are counted. */
const SHOWN_PER_KIND = 3;
/** The kinds whose every warning the supervisor chose to list (另有 N 条). @type {Set<string>} */
const expanded = new Set();
/** @param {any} w */
const acknowledge = (w) => connection?.send({ type: "warning.ack", warning: w.id });

function tick() {
  // The month by name in English (12/8/2026 reads as 12 August to many, a README walk found).
  $("clock").textContent = new Date().toLocaleString(lang, {
    year: "numeric", month: lang === "en" ? "short" : "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: DISTRICT_TZ,
  });
  showSince(document);
}

async function start() {
  if (!(await supervisorSignedIn())) return;
  $("wall").hidden = false;
  connection = new Connection({ auth: { kind: "staff", purpose: "board" } });  // never replaces the console
  connection.addEventListener("welcome", () => connection?.send({ type: "board.watch" }));
  connection.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner("net.reconnecting");
    else if (e.detail === "online") banner(null);
  });
  connection.addEventListener("message", (/** @type {any} */ e) => {
    const frame = e.detail;
    if (frame.type === "board") { board = frame; render(); }
    else if (frame.type === "error") errorBanner(frame, "board.error");
  });
  connection.connect();
}

Object.assign(window, { cloudhelp: { get board() { return board; } } });
await setLang(lang);
$("lang").onclick = async () => { await setLang(lang === "zh-CN" ? "en" : "zh-CN"); render(); };
setInterval(tick, 1000);
tick();
await start();
