// Campaigns (集中办理) for supervisors: the list and a new campaign; a campaign's page with its
// roster import (problems named by row and field), scheduling, slips, reminders, progress,
// burn-down and who has not come yet (one-click rebook).
// @ts-check
import { banner, errorBanner } from "./callview.js";
import { el, lang, setLang, showText, t, unbroken } from "./i18n.js";
import { supervisorSignedIn } from "./sitenav.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const campaignId = Number($("page").dataset.campaign || 0);
const COUNTS = ["entries", "booked", "checked_in", "served", "corrected", "concluded", "picked_up", "no_show", "rescheduled"];
/** @type {any} */
let campaign = null;
/** @type {any[]} */
let campaigns = [];
/** The entries of 尚未到场 in the order shown, and whether the next render keeps it. */
let notComeShown = /** @type {number[]} */ ([]);
let keepNotComeOrder = false;

/** @param {string} url @param {RequestInit} [init] */
async function call(url, init = {}) {
  const response = await fetch(url, { credentials: "same-origin", ...init,
    headers: init.body ? { "Content-Type": "application/json" } : {} });
  const body = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  return { ok: response.ok, status: response.status, body };
}

/** A table: heading row, then rows of cells (text or nodes). @param {HTMLTableElement} table @param {string[]} head @param {any[][]} rows */
function fill(table, head, rows) {
  const thead = el("thead");
  const tr = el("tr");
  head.forEach((h) => tr.append(el("th", h)));
  thead.append(tr);
  const tbody = el("tbody");
  rows.forEach((cells) => {
    const row = el("tr");
    cells.forEach((c) => { const td = el("td"); td.append(c instanceof Node ? c : String(c ?? "")); row.append(td); });
    tbody.append(row);
  });
  table.replaceChildren(thead, tbody);
}

// ------------------------------------------------------------------ the list and a new one

async function loadList() {
  const { ok, body } = await call("/api/v1/campaigns");
  if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
  campaigns = body.campaigns;
  renderList();
}

function renderList() {
  $("empty").hidden = campaigns.length > 0;
  fill($("list"), [t("campaigns.name"), t("campaigns.range"), t("campaigns.stations"), t("count.entries"),
    t("count.booked"), t("count.served"), t("count.no_show")],
  campaigns.map((c) => {
    const link = /** @type {HTMLAnchorElement} */ (el("a", c.name));
    link.href = `/campaigns/${c.id}`;
    return [link, `${c.starts_on} – ${c.ends_on}`, c.stations.map((/** @type {any} */ s) => s.name).join("、"),
      c.counts.entries, c.counts.booked, c.counts.served, c.counts.no_show];
  }));
}

async function prepareForm() {
  const [stations, items] = await Promise.all([call("/api/v1/stations"), call("/api/v1/items?cloud=true&limit=200")]);
  const all = stations.body.stations;
  const streets = all.filter((/** @type {any} */ s) => s.tier === "street");
  $("c-street").replaceChildren(...streets.map((/** @type {any} */ s) => new Option(s.name, s.code)));
  // The items as ticks (touch screens have no Ctrl), narrowed by a filter; the fishing-licence
  // renewal, the drive the demo and the docs walk through, ticked to start with.
  const ticks = items.body.items.map((/** @type {any} */ i) => {
    const label = el("label");
    const box = /** @type {HTMLInputElement} */ (el("input"));
    box.type = "checkbox"; box.value = i.code; box.checked = i.code === "NYNC-002";
    box.onchange = () => { $("c-items-missing").hidden = true; sayChosen(); };
    label.append(box, `${i.name}（${unbroken(i.code)}）`);
    label.dataset.search = `${i.name} ${i.code}`.toLowerCase();
    label.dataset.name = i.name;
    return label;
  });
  // What is ticked, said in one line above the list (the list scrolls).
  const sayChosen = () => {
    const names = ticks.filter((l) => l.querySelector("input").checked).map((l) => l.dataset.name);
    $("c-items-chosen").textContent = names.length ? t("campaigns.items_chosen", { n: names.length, names: names.join("、") }) : "";
  };
  // Ticked ones first (the one ticked to start with is in view without scrolling).
  $("c-item-list").replaceChildren(...ticks.filter((l) => l.querySelector("input").checked), ...ticks.filter((l) => !l.querySelector("input").checked));
  sayChosen();
  $("c-item-filter").setAttribute("aria-label", t("campaigns.items_filter"));
  $("c-item-filter").oninput = () => {
    const words = $("c-item-filter").value.trim().toLowerCase();
    for (const label of ticks) label.hidden = Boolean(words) && !label.dataset.search.includes(words) && !label.querySelector("input").checked;
  };
  const showStations = () => {
    const street = $("c-street").value;
    const legend = el("legend", t("campaigns.stations"));
    const boxes = all.filter((/** @type {any} */ s) => s.parent === street).map((/** @type {any} */ s) => {
      const label = el("label");
      const box = /** @type {HTMLInputElement} */ (el("input"));
      box.type = "checkbox"; box.value = s.code; box.checked = true;
      label.append(box, s.name);
      return label;
    });
    $("c-stations").replaceChildren(legend, ...boxes);
  };
  $("c-street").onchange = showStations;
  showStations();
  $("new-campaign").onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const stationCodes = [...$("c-stations").querySelectorAll("input:checked")].map((b) => b.value);
    const itemCodes = [...$("c-item-list").querySelectorAll("input:checked")].map((b) => b.value);
    if (!itemCodes.length) {
      $("c-items-missing").hidden = false;
      $("c-item-filter").focus();
      return;
    }
    const { ok, body } = await call("/api/v1/campaigns", { method: "POST", body: JSON.stringify({
      name: $("c-name").value, street: $("c-street").value, items: itemCodes,
      stations: stationCodes, starts_on: $("c-from").value, ends_on: $("c-to").value }) });
    if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
    location.href = `/campaigns/${body.campaign.id}`;
  };
}

// ------------------------------------------------------------------ one campaign

async function loadCampaign() {
  const { ok, body } = await call(`/api/v1/campaigns/${campaignId}`);
  if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
  campaign = body.campaign;
  renderCampaign();
}

function renderCampaign() {
  const c = campaign;
  $("name").textContent = c.name;
  $("facts").textContent = t("campaigns.facts", {
    street: c.street.name, items: c.items.map((/** @type {any} */ i) => i.name).join("、"),
    stations: c.stations.map((/** @type {any} */ s) => s.name).join("、"),
    from: c.starts_on, to: c.ends_on, days: c.working_days, entries: c.entries });
  $("roster-state").textContent = c.imported_at ? t("campaigns.imported", { n: c.entries }) : t("campaigns.not_imported");
  $("roster-form").hidden = Boolean(c.scheduled_at);
  $("schedule-state").textContent = c.scheduled_at ? t("campaigns.scheduled", { n: c.progress.counts.booked }) : "";
  $("schedule").disabled = !c.entries;
  $("slips").href = `/api/v1/campaigns/${c.id}/slips.pdf`;
  $("reminders").href = `/api/v1/campaigns/${c.id}/reminders.csv`;
  $("slips").hidden = $("reminders").hidden = !c.scheduled_at;
  // Once planned, the campaign runs: its figures, burn-down and 尚未到场 come first, the set-up
  // steps after them (they were two screens down, under the forms: a README walk).
  if (c.scheduled_at && !$("facts").nextElementSibling?.classList.contains("progress")) {
    $("facts").after(...document.querySelectorAll("#page > .progress"));
  }
  const counts = c.progress.counts;
  $("counts").replaceChildren(...COUNTS.map((name) => {
    const box = el("div", "", `kpi count-${name}`);
    box.dataset.count = name;
    box.append(el("span", t(`count.${name}`)), el("strong", String(counts[name])));
    return box;
  }));
  drawBurnDown(c.progress.burn_down, counts.entries);
  renderServed(c.progress.served);
  let waiting = c.progress.not_come;
  // Just after a one-click rebook the rows keep their places (the moved entry sorts by its new
  // time at the next load): the button under the pointer is still the same person's, so a
  // second tap cannot rebook the next one.
  if (keepNotComeOrder) {
    const place = new Map(notComeShown.map((entry, i) => [entry, i]));
    const at = (/** @type {any} */ p) => place.get(p.entry) ?? place.size;
    waiting = [...waiting].sort((a, b) => at(a) - at(b));
    keepNotComeOrder = false;
  }
  notComeShown = waiting.map((/** @type {any} */ p) => p.entry);
  // A roster not scheduled yet lists everyone 未预约 with 一键预约: the step to take first is
  // 自动排期 (everyone at once); 一键预约 is for the odd one left over.
  $("schedule-first").hidden = !counts.entries || Boolean(c.scheduled_at);
  $("not-come-empty").hidden = waiting.length > 0;
  // Nobody to wait for because nobody is on the roster yet is not "everyone has come".
  showText($("not-come-empty"), counts.entries ? "campaigns.not_come_none" : "campaigns.no_roster_yet");
  fill($("not-come"), [t("campaigns.row"), t("campaigns.person"), t("campaigns.phone"), t("campaigns.boat"),
    t("campaigns.appointment"), t("campaigns.status"), ""],
  waiting.map((/** @type {any} */ p) => {
    const a = p.appointment;
    const status = el("span", a ? t(`appointment.status.${a.status}`) : t("campaigns.unbooked"), a ? `status-${a.status}` : "");
    if (p.rescheduled) status.append(el("small", t("campaigns.rescheduled_mark"), "rescheduled"));
    // Not booked yet (before 自动排期): the button books the next free slot, and says so.
    const rebook = el("button", t(a ? "campaigns.rebook" : "campaigns.book_one"), "button");
    rebook.dataset.entry = String(p.entry);
    rebook.onclick = () => rebookEntry(p, rebook);
    return [p.row, p.name, p.phone, p.boat_number, a ? `${a.day} ${a.time} ${a.station} · ${a.code}` : "—", status, rebook];
  }));
}

/** Who has come: the session's ticket and its case (a link), as they are served. @param {any[]} done */
function renderServed(done) {
  $("served-empty").hidden = done.length > 0;
  fill($("served"), [t("campaigns.row"), t("campaigns.person"), t("campaigns.boat"), t("campaigns.day"),
    t("campaigns.ticket"), t("campaigns.case"), t("campaigns.status")],
  done.map((/** @type {any} */ d) => {
    let caseCell = /** @type {any} */ ("—");
    if (d.case) {
      caseCell = /** @type {HTMLAnchorElement} */ (el("a", d.case.number));
      caseCell.href = `/cases/${encodeURIComponent(d.case.number)}`;
    }
    const status = d.case
      ? t(`case.state.${d.case.status}`) + (d.picked_up ? ` · ${t("count.picked_up")}` : "")
      : t("campaigns.no_case");
    return [d.row, d.name, d.boat_number, d.day, d.ticket || "—", caseCell, status];
  }));
}

/** @param {any} p @param {HTMLElement} button */
async function rebookEntry(p, button) {
  button.setAttribute("disabled", "");
  const { ok, body } = await call(`/api/v1/campaigns/${campaignId}/entries/${p.entry}/rebook`, { method: "POST" });
  button.removeAttribute("disabled");
  if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
  const a = body.appointment;
  banner("campaigns.rebooked", "info", { name: p.name, day: a.day, time: a.time, station: a.station.name });
  keepNotComeOrder = true;
  await loadCampaign();
  // The row stays where it was, marked, with its new slot and 已改约.
  const row = document.querySelector(`#not-come button[data-entry="${p.entry}"]`)?.closest("tr");
  row?.classList.add("just-rebooked");
}

/** Planned and actual entries left, per campaign day, as an SVG. @param {any[]} points @param {number} total */
function drawBurnDown(points, total) {
  const w = 900, h = 260, left = 40, bottom = 40, top = 10;
  const x = (/** @type {number} */ i) => left + (points.length > 1 ? i * (w - left - 10) / (points.length - 1) : 0);
  const y = (/** @type {number} */ v) => top + (h - top - bottom) * (1 - (total ? v / total : 0));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  /** @param {string} cls @param {(p: any) => number | null} value */
  const line = (cls, value) => {
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("class", cls);
    path.setAttribute("points", points.map((p, i) => [p, i]).filter(([p]) => value(p) !== null)
      .map(([p, i]) => `${x(i)},${y(/** @type {number} */ (value(p)))}`).join(" "));
    svg.append(path);
  };
  [0, total].forEach((v) => {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "4"); label.setAttribute("y", String(y(v) + 4)); label.textContent = String(v);
    svg.append(label);
  });
  points.forEach((p, i) => {
    if (points.length > 8 && i % 2) return;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(x(i) - 14)); label.setAttribute("y", String(h - 12));
    label.textContent = p.day.slice(5);
    svg.append(label);
  });
  line("planned", (p) => p.planned_remaining);
  line("actual", (p) => p.remaining);
  const legend = el("div", "", "legend");
  legend.append(el("span", t("campaigns.burn_actual")), el("span", t("campaigns.burn_planned"), "planned-key"));
  $("burn").setAttribute("aria-label", t("campaigns.burn_label", { left: points.filter((p) => p.remaining !== null).at(-1)?.remaining ?? total, total }));
  $("burn").replaceChildren(svg, legend);
}

const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];

/** A weekday's hours in the table, the break left out: "09:00–12:00", a new line, "13:30–16:00 × 1". @param {any} h */
function hoursText(h) {
  const periods = h.break_starts ? `${h.opens}–${h.break_starts}\n${h.break_ends}–${h.closes}` : `${h.opens}–${h.closes}`;
  return `${periods} × ${h.staff}`;
}

/** @type {Map<string, any>} each department's hours at each station ("department station"), as loaded */
const hoursAt = new Map();
/** What the form proposes for a station without hours: the hall's day with its lunch break. */
const NEW_HOURS = { opens: "09:00", closes: "16:00", break_starts: "12:00", break_ends: "13:30", staff: 1 };

/** The chosen department's weekday hours at the chosen station, as loaded. @returns {any[]} */
function chosenWeek() {
  return hoursAt.get(`${$("h-department").value} ${$("h-station").value}`)?.week || [];
}

/** @returns {HTMLInputElement[]} the form's weekday ticks, Monday first */
function dayTicks() {
  return [...$("h-days").querySelectorAll("input")];
}

/**
 * The form shows the chosen station's hours (its first weekday's) and ticks the days that have
 * just those, so that changing one figure and saving keeps the others (the form kept whatever
 * was typed last, for any station). A station without hours: the hall's, Monday to Friday.
 */
function fillHoursForm() {
  const week = chosenWeek();
  const h = week[0] || NEW_HOURS;
  $("h-opens").value = h.opens;
  $("h-closes").value = h.closes;
  $("h-break-starts").value = h.break_starts || "";
  $("h-break-ends").value = h.break_ends || "";
  $("h-staff").value = String(h.staff);
  const same = week.length ? week.filter((w) => hoursText(w) === hoursText(h)).map((w) => w.weekday) : [0, 1, 2, 3, 4];
  for (const tick of dayTicks()) tick.checked = same.includes(Number(tick.value));
  $("h-days-error").hidden = true;
}

/**
 * Save the week with the ticked days set to the form's hours (``open``) or closed; the other
 * days keep their hours. Nothing ticked: said beside the buttons.
 * @param {boolean} open
 */
async function saveDays(open) {
  const ticked = dayTicks().filter((tick) => tick.checked).map((tick) => Number(tick.value));
  $("h-days-error").hidden = ticked.length > 0;
  if (!ticked.length) { dayTicks()[0].focus(); return; }
  // No break when both its times are cleared; one of them alone is refused by the server.
  const breakTimes = $("h-break-starts").value || $("h-break-ends").value
    ? { break_starts: $("h-break-starts").value || null, break_ends: $("h-break-ends").value || null } : {};
  const hours = { opens: $("h-opens").value, closes: $("h-closes").value, ...breakTimes, staff: Number($("h-staff").value) };
  const kept = chosenWeek().filter((w) => !ticked.includes(w.weekday));
  const week = [...kept, ...(open ? ticked.map((weekday) => ({ weekday, ...hours })) : [])];
  const { ok, body } = await put("/api/v1/capacity", { department: $("h-department").value, station: $("h-station").value, week });
  if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
  await loadHours();
  banner("campaigns.hours_saved", "info");
}

/** The hours of the campaign's department at each of its stations (weekdays and closed days). */
async function loadHours() {
  const departments = [...new Set(campaign.items.map((/** @type {any} */ i) => i.department))];
  const first = hoursAt.size === 0;
  const rows = [];
  for (const department of departments) for (const station of campaign.stations) {
    const { ok, body } = await call(`/api/v1/capacity?${new URLSearchParams({ department, station: station.code })}`);
    if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
    hoursAt.set(`${department} ${station.code}`, body);
    const byDay = Object.fromEntries(body.week.map((/** @type {any} */ w) => [w.weekday, w]));
    const cells = WEEKDAYS.map((d) => byDay[d] ? hoursText(byDay[d]) : "—");
    const closed = body.exceptions.filter((/** @type {any} */ e) => e.staff === 0).map((/** @type {any} */ e) => e.date).join("、");
    rows.push([departments.length > 1 ? `${station.name} · ${department}` : station.name, ...cells, closed || "—"]);
  }
  const chosenDepartment = $("h-department").value;
  $("h-department").replaceChildren(...departments.map((d) => new Option(d, d)));
  if (chosenDepartment) $("h-department").value = chosenDepartment;
  $("h-department-label").hidden = departments.length < 2;
  fill($("hours"), [t("campaigns.station"), ...WEEKDAYS.map((d) => t(`campaigns.weekday.${d}`)), t("campaigns.closed_days")], rows);
  const chosen = $("h-station").value;  // kept: the list is drawn again after each change
  $("h-station").replaceChildren(...campaign.stations.map((/** @type {any} */ s) => new Option(s.name, s.code)));
  if (chosen) $("h-station").value = chosen;
  // The form shows the first station's hours once; later loads (after a save) leave what the
  // supervisor sees and may be typing alone.
  if (first) fillHoursForm();
}

/** @param {string} url @param {any} body */
async function put(url, body) {
  const response = await fetch(url, { method: "PUT", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { ok: response.ok, body: await response.json() };
}

function wireHours() {
  $("h-station").onchange = $("h-department").onchange = fillHoursForm;
  $("hours-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); saveDays(true); };
  $("hours-close").onclick = () => saveDays(false);
  $("h-days").onchange = () => { if (dayTicks().some((tick) => tick.checked)) $("h-days-error").hidden = true; };
  $("closed-form").onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const { ok, body } = await put("/api/v1/capacity/exceptions", { department: $("h-department").value,
      station: $("h-station").value, date: $("h-closed").value, staff: 0 });
    if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
    banner("campaigns.hours_saved", "info");
    await loadHours();
  };
}

/** @param {ArrayBuffer} buffer */
function base64(buffer) {
  let binary = "";
  new Uint8Array(buffer).forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary);
}

function wireCampaign() {
  $("roster-file").onchange = () => { $("roster-name").textContent = $("roster-file").files[0]?.name || ""; };
  $("roster-form").onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const file = $("roster-file").files[0];
    if (!file) return;
    const content = base64(await file.arrayBuffer());
    const { ok, body } = await call(`/api/v1/campaigns/${campaignId}/roster`, { method: "POST",
      body: JSON.stringify({ filename: file.name, content }) });
    $("problems-wrap").hidden = true;
    $("roster-file").value = "";
    $("roster-name").textContent = "";
    if (!ok && body?.error?.code === "roster_invalid") {
      banner("campaigns.roster_refused", "error", { n: body.error.problems.length });
      fill($("problems"), [t("campaigns.row"), t("campaigns.field"), t("campaigns.problem")],
        body.error.problems.map((/** @type {any} */ p) => [t("campaigns.row_n", { n: p.row }),
          t(`roster.field.${p.field}`), t(`roster.problem.${p.code}`, { row: p.same_as ?? "" })]));
      $("problems-wrap").hidden = false;
      return;
    }
    if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
    banner("campaigns.imported", "info", { n: body.imported });
    await loadCampaign();
  };
  // The hint above the list leads to 自动排期: the step in view, its button focused.
  $("schedule-first-link").onclick = (/** @type {Event} */ e) => {
    e.preventDefault();
    $("step-schedule").scrollIntoView({ block: "center" });
    $("schedule").focus({ preventScroll: true });
  };
  $("schedule").onclick = async () => {
    $("schedule").setAttribute("disabled", "");
    const { ok, body } = await call(`/api/v1/campaigns/${campaignId}/schedule`, { method: "POST" });
    $("schedule").removeAttribute("disabled");
    if (!ok) { errorBanner(body?.error, "campaigns.error"); return; }
    banner("campaigns.scheduled_now", body.unplaced.length ? "warn" : "info", { n: body.booked, unplaced: body.unplaced.length });
    await loadCampaign();
  };
}

async function start() {
  if (!(await supervisorSignedIn())) return;
  $("page").hidden = false;
  if (campaignId) {
    wireCampaign();
    wireHours();
    await loadCampaign();
    if (campaign) await loadHours();
  } else {
    await Promise.all([loadList(), prepareForm()]);
  }
}

Object.assign(window, { cloudhelp: { get campaign() { return campaign; }, get campaigns() { return campaigns; } } });
await setLang(lang);
$("lang").onclick = async () => {
  await setLang(lang === "zh-CN" ? "en" : "zh-CN");
  if (campaign) { renderCampaign(); await loadHours(); } else if (campaigns.length) renderList();
};
await start();
