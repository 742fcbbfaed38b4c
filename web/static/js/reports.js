// Date-range reports (效能报表) drawn with ECharts; every table has its CSV.
// @ts-check
import { banner } from "./callview.js";
import { clockTime, duration, el, errorKey, lang, setLang, t, unbroken } from "./i18n.js";
import { supervisorSignedIn } from "./sitenav.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
/** @type {any} */
const echarts = /** @type {any} */ (window).echarts;
/** @type {any} */
let report = null;
const charts = new Map();
const COLUMNS = ["tickets", "answered", "abandon_rate", "wait_mean_s", "wait_p90_s", "handling_mean_s",
  "service_level", "good_rate", "ratings", "cases_opened", "cases_concluded", "first_pass_rate", "trips_saved"];
const RATES = new Set(["abandon_rate", "service_level", "good_rate", "first_pass_rate", "rating_response_rate"]);
const TIMES = new Set(["wait_mean_s", "wait_p90_s", "handling_mean_s", "handling_p90_s"]);
// The server's limits (cloudhelp/http/report_routes.py MAX_DAYS, core/inputs.py date bounds).
/** Figures over the cases that passed pre-review in the range (the KPI says how many). */
const PER_PASSED_CASE = new Set(["first_pass_rate", "correction_rounds_per_case"]);
const MAX_DAYS = 400;
const EARLIEST = "2000-01-01";
const LATEST = "2099-12-31";

/** @param {string} column @param {any} value */
function show(column, value) {
  if (value === null || value === undefined) return "—";
  if (RATES.has(column)) return `${(value * 100).toFixed(1)}%`;
  if (TIMES.has(column)) return duration(value);
  return String(value);
}

/** @param {Date} day */
const iso = (day) => new Date(day.getTime() - day.getTimezoneOffset() * 60000).toISOString().slice(0, 10);

/** @param {string} id */
function chart(id) {
  if (!charts.has(id)) charts.set(id, echarts.init($(id), null, { renderer: "canvas" }));
  return { setOption: (/** @type {any} */ option, /** @type {boolean} */ replace) =>
    charts.get(id).setOption({ animation: false, textStyle: { fontFamily: "inherit" }, ...option }, replace) };
}

function renderKpis() {
  const total = report.total;
  const kpis = ["tickets", "answered", "wait_mean_s", "service_level", "good_rate", "abandon_rate",
    "cases_opened", "first_pass_rate", "correction_rounds_per_case", "trips_saved"];
  $("kpis").replaceChildren(...kpis.map((name) => {
    const box = document.createElement("div");
    box.className = "kpi";
    const label = document.createElement("span");
    label.textContent = t(`metric.${name}`);
    const value = document.createElement("strong");
    value.textContent = name === "correction_rounds_per_case" && total[name] !== null ? total[name].toFixed(2) : show(name, total[name]);
    box.append(label, value);
    if (PER_PASSED_CASE.has(name)) {  // cases still in correction have not passed: not counted
      const basis = document.createElement("small");
      basis.textContent = t("reports.of_passed", { n: total.cases_passed_pre_review ?? 0 });
      box.append(basis);
    }
    return box;
  }));
}

function renderTrend() {
  const days = report.daily;
  // Days before anything was recorded have no rows (docs/metrics.md): say where the line starts.
  const since = days.length && days[0].day > report.from ? days[0].day : "";
  $("trend-since").hidden = !since;
  $("trend-since").textContent = since ? t("reports.trend_since", { day: since }) : "";
  // Today is not over: its point is marked and said to count until now (a walk read one bad
  // rating by noon as a day's 好评率 of 0 %, the line plunging at its end).
  const todayIso = String($("report").dataset.today);
  const partial = days.length > 0 && days[days.length - 1].day === todayIso;
  $("trend-partial").hidden = !partial;
  $("trend-partial").textContent = partial ? t("reports.trend_partial", { day: todayIso, time: clockTime(new Date()) }) : "";
  chart("chart-trend").setOption({
    tooltip: { trigger: "axis" },
    legend: { data: [t("metric.tickets"), t("metric.wait_mean_s"), t("metric.good_rate")] },
    grid: { left: 50, right: 110, bottom: 40 },
    xAxis: { type: "category", data: days.map((/** @type {any} */ d) => (d.day === todayIso ? t("reports.today_day", { day: d.day }) : d.day)) },
    // Three scales, each on an axis of its own: tickets on the left, minutes and 好评率 (%) on
    // the right, the percentage outermost (a line without an axis read as minutes).
    yAxis: [
      { type: "value", name: t("metric.tickets") },
      { type: "value", name: t("reports.minutes"), position: "right" },
      // The axis names stand side by side above the right edge: short ones ("Good %", not
      // "Good-rating rate", which ran into "minute").
      { type: "value", min: 0, max: 100, name: t("reports.axis_good_rate"), position: "right", offset: 55,
        axisLabel: { formatter: "{value}%" }, axisLine: { show: true, lineStyle: { color: "#1f7a4d" } }, splitLine: { show: false } },
    ],
    // Straight lines between days, broken where a day had no tickets (a curve bridging empty
    // days drew waits nobody had, and swung between points).
    series: [
      { name: t("metric.tickets"), type: "bar", data: days.map((/** @type {any} */ d) => d.tickets), itemStyle: { color: "#1f5fa8" } },
      { name: t("metric.wait_mean_s"), type: "line", yAxisIndex: 1, showSymbol: true,
        data: days.map((/** @type {any} */ d) => d.wait_mean_s === null ? null : +(d.wait_mean_s / 60).toFixed(1)), itemStyle: { color: "#e08a00" } },
      { name: t("metric.good_rate"), type: "line", yAxisIndex: 2, showSymbol: true,
        tooltip: { valueFormatter: (/** @type {any} */ v) => (v === null || v === undefined ? "—" : `${v}%`) },
        data: days.map((/** @type {any} */ d) => d.good_rate === null ? null : +(d.good_rate * 100).toFixed(1)), itemStyle: { color: "#1f7a4d" } },
    ],
  }, true);
}

function renderPeak() {
  const weekdays = [0, 1, 2, 3, 4, 5, 6].map((i) => t(`reports.weekday.${i}`));
  const cells = [];
  let max = 1;
  report.peak_hours.forEach((/** @type {number[]} */ hours, /** @type {number} */ w) => hours.forEach((n, h) => {
    cells.push([h, w, n]);
    max = Math.max(max, n);
  }));
  chart("chart-peak").setOption({
    tooltip: { formatter: (/** @type {any} */ p) => `${weekdays[p.value[1]]} ${p.value[0]}:00 — ${p.value[2]}` },
    grid: { left: 50, right: 20, bottom: 70, top: 10 },
    xAxis: { type: "category", data: [...Array(24).keys()].map((h) => `${h}`), splitArea: { show: true } },
    yAxis: { type: "category", data: weekdays, inverse: true, splitArea: { show: true } },
    visualMap: { min: 0, max, calculable: true, orient: "horizontal", left: "center", bottom: 0,
      inRange: { color: ["#f2f6fb", "#9cc3e8", "#1f5fa8", "#0b2a55"] } },
    series: [{ type: "heatmap", data: cells, label: { show: false } }],
  }, true);
}

function renderHot() {
  const items = [...report.hot_items].reverse();
  chart("chart-hot").setOption({
    tooltip: {},
    grid: { left: 10, right: 40, bottom: 20, top: 10, containLabel: true },
    xAxis: { type: "value" },
    // The items' names are what this chart is read for: larger and darker than the axis's default.
    yAxis: { type: "category", data: items.map((/** @type {any} */ i) => i.name.length > 16 ? `${i.name.slice(0, 16)}…` : i.name),
      axisLabel: { fontSize: 14, color: "#1b1f24" } },  // app.css --ink
    series: [{ type: "bar", data: items.map((/** @type {any} */ i) => i.tickets), itemStyle: { color: "#1f5fa8" },
      label: { show: true, position: "right" } }],
  }, true);
}

// A staff member's tickets are those they answered: their 取号 would repeat 接通, and their 放弃率
// always read 0 (a resident who gave up waiting gave up on the queue, not on them). The CSV
// keeps every figure.
const NOT_PER_STAFF = new Set(["tickets", "abandon_rate"]);
/** A table's columns. @param {string} by */
const columnsOf = (by) => ["name", ...(by === "staff" ? COLUMNS.filter((c) => !NOT_PER_STAFF.has(c)) : COLUMNS)];

/** @param {string} by */
function renderTable(by) {
  const rows = report.tables[by];
  const columns = columnsOf(by);
  const head = document.createElement("tr");
  for (const column of columns) {
    const th = document.createElement("th");
    th.textContent = column === "name" ? t(`reports.group.${by}`) : t(`metric.${column}`);
    head.append(th);
  }
  const body = rows.map((/** @type {any} */ row) => {
    const tr = document.createElement("tr");
    for (const column of columns) {
      const td = document.createElement("td");
      td.textContent = column === "name" ? row.name : show(column, row[column]);
      tr.append(td);
    }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns.length;
    td.textContent = t("reports.none");
    tr.append(td);
    body.push(tr);
  }
  $(`table-${by}`).replaceChildren(head, ...body);
}

/** Cases due soon or overdue listed before 另有 N 条. */
const CASES_SHOWN = 12;

function renderCases() {
  const cases = report.cases;
  const wrap = document.createElement("div");
  const states = document.createElement("p");
  states.textContent = Object.entries(cases.by_state).map(([state, n]) => `${t(`case.state.${state}`)} ${n}`).join(" · ");
  const due = document.createElement("ul");
  due.className = "due-list";
  const lines = [];
  for (const [kind, list] of [["overdue", cases.overdue], ["due_soon", cases.due_soon]]) {
    for (const c of list) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/cases/${encodeURIComponent(c.number)}`;
      link.textContent = unbroken(c.number);
      li.append(`${t(`reports.${kind}`)}${t("common.colon")}`, link, ` · ${c.item} · ${unbroken(c.promised_due)}`);
      lines.push(li);
    }
  }
  // The first ones (overdue first), the rest on demand: a district has dozens due at once, and
  // they pushed the rest of the page thousands of pixels down. All are in the CSV.
  due.append(...lines.slice(0, CASES_SHOWN));
  wrap.append(states, due);
  if (lines.length > CASES_SHOWN) {
    const more = document.createElement("button");
    more.className = "link-button";
    more.textContent = t("reports.cases_more", { n: lines.length - CASES_SHOWN });
    more.onclick = () => { due.append(...lines.slice(CASES_SHOWN)); more.remove(); };
    wrap.append(more);
  }
  $("cases").replaceChildren(wrap);
}

/**
 * A table's heading and rows (cells: text or nodes; a row may be given a class); one row saying
 * "none" when there are no rows.
 * @param {HTMLElement} table @param {string[]} headings @param {{cells: (string | Node)[], cls?: string}[]} rows
 */
function fillTable(table, headings, rows) {
  const head = el("tr");
  head.append(...headings.map((h) => el("th", h)));
  const body = rows.map(({ cells, cls }) => {
    const tr = el("tr", "", cls || "");
    tr.append(...cells.map((c) => { const td = el("td"); td.append(c); return td; }));
    return tr;
  });
  if (!body.length) {
    const td = el("td", t("reports.none"));
    td.colSpan = headings.length;
    const tr = el("tr");
    tr.append(td);
    body.push(tr);
  }
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...body);
  table.replaceChildren(thead, tbody);
}

/** Papers on the road: the range's pickups at stations, per station. */
function renderLogistics() {
  const { total, stations } = report.logistics;
  const hours = total.issue_to_pickup_hours_median;
  $("logistics-total").textContent = t("reports.logistics.total", {
    trips: total.trips_saved, hours: hours === null ? "—" : t("board.logistics.hours_value", { hours }),
    transit: total.in_transit, awaiting: total.awaiting_pickup, overdue: total.overdue_pickups });
  const columns = ["station_name", "station_pickups", "issue_to_pickup_hours", "awaiting_pickup", "overdue_pickups"];
  fillTable($("table-logistics"), columns.map((c) => t(`export.column.${c}`)),
    stations.map((/** @type {any} */ row) => ({ cells: columns.map((c) => (row[c] === null ? "—" : String(row[c]))) })));
}

/** Poor calls listed before 另有 N 条. */
const POOR_CALLS_SHOWN = 8;
/** A station with this share of poor calls or more is marked: its link wants looking at. */
const POOR_SHARE = 0.1;

/** @param {number | null} ms */
const rttText = (ms) => (ms === null ? "—" : `${Math.round(ms)} ms`);
/** @param {number | null} loss */
const lossText = (loss) => (loss === null ? "—" : `${(loss * 100).toFixed(1)}%`);

/**
 * Call quality (通话质量): per station, the share of poor calls and its link's medians (the
 * kiosk side's), the worst first; then the poor calls themselves. From the calls' own media
 * figures (docs/protocol.md, call.stats).
 * @param {any} quality
 */
function renderQuality(quality) {
  const { total } = quality;
  $("quality-total").textContent = t("reports.quality.total", total);
  fillTable($("table-quality"), ["station", "calls", "poor", "fair", "relayed", "rtt", "loss", "fps"].map((c) => t(`reports.quality.${c}`)),
    quality.stations.map((/** @type {any} */ s) => ({
      cls: s.poor / s.calls >= POOR_SHARE ? "poor" : "",
      cells: [s.station, String(s.calls), t("reports.quality.poor_share", { n: s.poor, percent: Math.round((100 * s.poor) / s.calls) }), String(s.fair), String(s.relayed),
        rttText(s.rtt_median_ms), lossText(s.loss_median), s.fps_median === null ? "—" : s.fps_median.toFixed(1)],
    })));
  const lines = quality.calls.map((/** @type {any} */ c) => {
    const kiosk = c.sides.kiosk || c.sides.staff;
    const relayed = Object.values(c.sides).some((/** @type {any} */ side) => side.relay);
    return el("li", t("reports.quality.poor_call", { number: c.number, day: c.day, time: clockTime(new Date(c.started_at)),
      station: c.station, staff: c.staff, rtt: rttText(kiosk.rtt_median_ms), loss: lossText(kiosk.loss_median),
      fps: kiosk.fps_median === null ? "—" : kiosk.fps_median.toFixed(1) })
      + (relayed ? ` · ${t("reports.quality.relay")}` : ""));
  });
  const list = $("quality-poor");
  list.replaceChildren(...lines.slice(0, POOR_CALLS_SHOWN));
  $("quality-poor-title").hidden = lines.length === 0;
  $("quality-more").hidden = lines.length <= POOR_CALLS_SHOWN;
  $("quality-more").textContent = t("reports.quality.more", { n: lines.length - POOR_CALLS_SHOWN });
  $("quality-more").onclick = () => { list.append(...lines.slice(POOR_CALLS_SHOWN)); $("quality-more").hidden = true; };
}

/** @type {any} the range's call quality, as last loaded (drawn again in another language) */
let quality = null;

/** @param {number} attempt the load() it belongs to */
async function loadQuality(attempt) {
  const params = new URLSearchParams({ from: $("from").value, to: $("to").value, level: "poor" });
  const response = await fetch(`/api/v1/reports/call-quality?${params}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const body = await response.json();
  if (attempt !== loads) return;  // another range was asked for meanwhile
  quality = body;
  renderQuality(quality);
}

function csvLinks() {
  const all = new URLSearchParams({ from: report.from, to: report.to, format: "xlsx", lang,
    by: "day,department,station,staff,item" });
  $("xlsx").href = `/api/v1/reports?${all}`;
  document.querySelectorAll("a.csv").forEach((node) => {
    const a = /** @type {HTMLAnchorElement} */ (node);
    const params = new URLSearchParams({ from: report.from, to: report.to, format: "csv", lang,
      table: a.dataset.table || "rows", by: a.dataset.by || "day" });
    a.href = `/api/v1/reports?${params}`;
  });
}

/** Scrollable table regions are named for screen readers (they take focus to scroll). */
function nameRegions() {
  document.querySelectorAll("[data-i18n-label]").forEach((node) => {
    const region = /** @type {HTMLElement} */ (node);
    region.setAttribute("aria-label", t("reports.table_region", { name: t(region.dataset.i18nLabel || "") }));
  });
}

function render() {
  nameRegions();
  if (!report) return;
  renderKpis();
  renderTrend();
  renderPeak();
  renderHot();
  for (const by of ["department", "station", "staff"]) renderTable(by);
  renderCases();
  renderLogistics();
  csvLinks();
}

/** The catalog's text for a refusal's code (never the server's English message). @param {any} error */

/**
 * Say why the range was refused and grey out the figures of the previous range (they no longer
 * match the dates in the form); the export links are withdrawn with them.
 * @param {string} key @param {Record<string, any>} [values]
 */
function refuse(key, values = {}) {
  banner(key, "error", values);
  $("report").classList.add("stale");
  $("report").querySelectorAll("section").forEach((/** @type {HTMLElement} */ s) => { s.inert = true; });
  $("xlsx").removeAttribute("href");
}

/**
 * Why the server would refuse the dates in the form (checked before asking): a catalog key and
 * its values, or null.
 * @returns {[string, Record<string, any>] | null}
 */
function rangeProblem() {
  const from = $("from").value;
  const to = $("to").value;
  if (!from || !to || from < EARLIEST || to > LATEST) return ["reports.date_bounds", { first: EARLIEST, last: LATEST }];
  const days = (Date.parse(to) - Date.parse(from)) / 86400000;
  // Which of the two is wrong, said apart (one text for both left the person guessing).
  if (days < 0) return ["reports.range_reversed", {}];
  if (days > MAX_DAYS) return ["reports.range_too_long", { days: MAX_DAYS }];
  return null;
}

/**
 * How many ranges were asked for: a load answers only if no other was asked for after it (a
 * year asked for while the page's first 30 days still loaded was drawn, then overwritten by
 * the 30 days that answered later, under the year's dates: a test on a loaded machine).
 */
let loads = 0;

async function load() {
  const attempt = ++loads;
  const problem = rangeProblem();
  if (problem) { refuse(...problem); return; }
  const params = new URLSearchParams({ from: $("from").value, to: $("to").value, by: "department,station,staff" });
  const response = await fetch(`/api/v1/reports?${params}`, { credentials: "same-origin" });
  const body = await response.json();
  if (attempt !== loads) return;  // another range was asked for meanwhile
  if (!response.ok) { refuse(...errorKey(body.error, "error.bad_request")); return; }
  banner(null);
  $("report").classList.remove("stale");
  $("report").querySelectorAll("section").forEach((/** @type {HTMLElement} */ s) => { s.inert = false; });
  report = body;
  history.replaceState(null, "", `?from=${report.from}&to=${report.to}`);
  render();
  await Promise.all([loadCampaigns(attempt), loadQuality(attempt)]);
}

/**
 * The campaigns (集中办理) whose dates meet the range, with their figures (docs/appointments.md).
 * @param {number} attempt the load() it belongs to
 */
async function loadCampaigns(attempt) {
  const response = await fetch("/api/v1/campaigns", { credentials: "same-origin" });
  if (!response.ok) return;
  const body = await response.json();
  if (attempt !== loads) return;  // another range was asked for meanwhile
  campaigns = body.campaigns.filter((/** @type {any} */ c) => c.starts_on <= $("to").value && c.ends_on >= $("from").value);
  renderCampaigns(campaigns);
}

/** @type {any[]} the campaigns meeting the range, as last loaded */
let campaigns = [];

/** @param {any[]} shown */
function renderCampaigns(shown) {
  $("campaigns-card").hidden = shown.length === 0;
  const names = ["entries", "served", "corrected", "concluded", "picked_up", "no_show", "rescheduled"];
  fillTable($("table-campaigns"), [t("campaigns.name"), t("campaigns.range"), ...names.map((n) => t(`count.${n}`))],
    shown.map((/** @type {any} */ c) => {
      const link = /** @type {HTMLAnchorElement} */ (el("a", c.name));
      link.href = `/campaigns/${c.id}`;
      return { cells: [link, `${c.starts_on} – ${c.ends_on}`, ...names.map((n) => String(c.counts[n]))] };
    }));
}

/** The district's today (the server's, Asia/Shanghai), as a Date at local midnight. */
function today() {
  const [y, m, d] = String($("report").dataset.today).split("-").map(Number);
  return new Date(y, m - 1, d);
}

/** @param {number} days */
function preset(days) {
  const to = today();
  const from = new Date(to.getTime() - (days - 1) * 86400000);
  $("from").value = iso(from);
  $("to").value = iso(to);
  load();
}

async function start() {
  if (!(await supervisorSignedIn())) return;
  $("report").hidden = false;
  const query = new URLSearchParams(location.search);
  const to = today();
  $("to").value = query.get("to") || iso(to);
  $("from").value = query.get("from") || iso(new Date(to.getTime() - 29 * 86400000));
  $("range").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); load(); };
  document.querySelectorAll("[data-days]").forEach((b) => {
    /** @type {HTMLElement} */ (b).onclick = () => preset(Number(/** @type {HTMLElement} */ (b).dataset.days));
  });
  await load();
}

Object.assign(window, { cloudhelp: { get report() { return report; }, charts } });
await setLang(lang);
$("lang").onclick = async () => {
  await setLang(lang === "zh-CN" ? "en" : "zh-CN");
  render();
  // Drawn from what was loaded (every section in the new language: a walk found two left over).
  if (quality) renderQuality(quality);
  renderCampaigns(campaigns);
};
window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
await start();
