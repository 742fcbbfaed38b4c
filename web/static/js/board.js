// The supervisor board (效能监控): queues, staff, calls and time-out warnings, pushed live.
// @ts-check
import { Connection } from "./protocol.js";
import { banner } from "./callview.js";
import { duration, lang, setLang, t, translate } from "./i18n.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
/** @type {any} */
let board = null;
/** @type {Connection | null} */
let connection = null;

/** @param {string} tag @param {string} [text] @param {string} [cls] */
function el(tag, text = "", cls = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

/** @param {number | null} value */
const percent = (value) => (value === null || value === undefined ? "—" : `${Math.round(value * 100)}%`);
/** @param {string | null} iso */
const since = (iso) => (iso ? (Date.now() - Date.parse(iso)) / 1000 : 0);

function render() {
  if (!board) return;
  const today = board.today;
  $("f-tickets").textContent = today.tickets;
  $("f-answered").textContent = today.answered;
  $("f-abandoned").textContent = today.abandoned;
  $("f-wait").textContent = today.wait_mean_s === null ? "—" : duration(today.wait_mean_s);
  $("f-good").textContent = percent(today.good_rate);
  $("f-trips").textContent = today.trips_saved;
  $("f-cases").textContent = `${today.cases_opened} / ${today.cases_concluded}`;

  $("departments").replaceChildren(...board.departments.map((/** @type {any} */ d) => {
    const row = el("tr");
    const wait = el("td", "", "num wait");
    wait.dataset.since = d.oldest_enqueued_at || "";
    const duty = Object.entries(d.staff).map(([state, n]) => `${t(`staff.state.${state}`)} ${n}`).join(" · ");
    row.append(el("td", d.name), el("td", String(d.waiting), d.waiting ? "num hot" : "num"), wait, el("td", duty || t("board.nobody")));
    return row;
  }));

  $("calls-count").textContent = String(board.calls.length);
  $("calls-empty").hidden = board.calls.length > 0;
  $("calls").replaceChildren(...board.calls.map((/** @type {any} */ c) => {
    const li = el("li");
    const grow = el("span", "", "grow");
    grow.append(el("strong", c.station), el("br"), el("small", `${c.ticket} · ${c.item}`));
    const time = el("span", "", "wait");
    time.dataset.since = c.connected_at || "";
    li.append(grow, el("span", c.staff), time);
    return li;
  }));

  $("staff-empty").hidden = board.staff.length > 0;
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
  $("warnings-count").textContent = String(open.length);
  $("warnings-count").hidden = open.length === 0;
  $("warnings-empty").hidden = open.length > 0;
  $("warnings").replaceChildren(...open.map((/** @type {any} */ w) => {
    const li = el("li", "", w.acked_at ? "acked" : "");
    li.dataset.warning = String(w.id);
    const head = el("div", "", "head");
    const time = el("small", w.detail.due ? t("board.due", { date: w.detail.due }) : "", "late");
    if (!w.detail.due) {
      time.classList.add("wait");
      time.dataset.since = w.detail.since || w.raised_at;
    }
    head.append(el("strong", t(`warning.${w.kind}`), "grow"), time);
    if (w.acked_at) head.append(el("small", t("board.acked_by", { name: w.acked_by })));
    else {
      const ack = el("button", t("board.ack"), "button");
      ack.onclick = () => connection?.send({ type: "warning.ack", warning: w.id });
      head.append(ack);
    }
    const what = [w.detail.ticket || w.detail.case, w.detail.item, w.detail.station].filter(Boolean).join(" · ");
    li.append(head, el("small", what));
    return li;
  }));
  tick();
}

function tick() {
  $("clock").textContent = new Date().toLocaleString(lang, { hour12: false });
  document.querySelectorAll("[data-since]").forEach((node) => {
    const iso = /** @type {HTMLElement} */ (node).dataset.since || "";
    node.textContent = iso ? duration(since(iso)) : "—";
  });
}

async function start() {
  const me = await fetch("/api/v1/auth/me", { credentials: "same-origin" });
  const role = me.ok ? (await me.json()).staff.role : null;
  if (role !== "supervisor" && role !== "admin") {
    $("signin").hidden = false;
    if (role) $("signin").querySelector("p").textContent = t("board.signin.forbidden");
    return;
  }
  $("wall").hidden = false;
  connection = new Connection({ auth: { kind: "staff" } });
  connection.addEventListener("welcome", () => connection?.send({ type: "board.watch" }));
  connection.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner(t("net.reconnecting"));
    else if (e.detail === "online") banner(null);
  });
  connection.addEventListener("message", (/** @type {any} */ e) => {
    const frame = e.detail;
    if (frame.type === "board") { board = frame; render(); }
    else if (frame.type === "error") banner(frame.message, "error");
  });
  connection.connect();
}

Object.assign(window, { cloudhelp: { get board() { return board; } } });
await setLang(lang);
translate(document);
$("lang").onclick = async () => { await setLang(lang === "zh-CN" ? "en" : "zh-CN"); render(); };
setInterval(tick, 1000);
tick();
await start();
