// The hall's logistics desk (/logistics) and the station attendant's page (/station): runs
// arriving and their receipt against the manifest, items waiting to go and the runs being
// packed, items awaiting pickup and the handover (pickup code, ID digits, signature), and one
// scan field that a USB scanner types into (or, where the browser has it, the camera).
// @ts-check
import { errorBanner } from "./callview.js";
import { DISTRICT_TZ, el, errorText, lang, setLang, t } from "./i18n.js";
import { fetchMe, showNav } from "./sitenav.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const PAGE = document.body.dataset.page || "desk";
const API = "/api/v1/logistics";
/** @type {any} */
let view = null;
/** The run being received: its manifest, and the codes scanned so far. @type {{run: any, scanned: Set<string>} | null} */
let receiving = null;
/** The open run that scans of items go into. @type {string | null} */
let packing = null;
/** @type {any} */
let handingOver = null;

/** @param {string} text @param {() => void} action @param {string} [cls] */
function button(text, action, cls = "button") {
  const b = /** @type {HTMLButtonElement} */ (el("button", text, cls));
  b.type = "button";
  b.onclick = action;
  return b;
}

/** A code as scanned or typed: digits only. @param {string} text */
const bare = (text) => text.replace(/[\s-]/g, "").replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
/** 1234 5678 9012. @param {string} code */
const grouped = (code) => code.replace(/(\d{4})(?=\d)/g, "$1 ");
/** Whole days since an ISO time. @param {string} iso */
const daysSince = (iso) => Math.floor((Date.now() - Date.parse(iso)) / 86400000);

/** An item's kind and state in the reader's language. @param {string} code */
const kindName = (code) => t(`logistics.kind.${code}`);
/** @param {string} code */
const stateName = (code) => t(`logistics.state.${code}`);

/** @param {string} method @param {string} path @param {any} [body] */
async function api(method, path, body) {
  const response = await fetch(`${API}${path}`, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  return { ok: response.ok, data };
}

/** What the last scan did, in the field's own line. @param {string} text @param {string} [kind] */
function said(text, kind = "info") {
  const line = $("scan-result");
  line.textContent = text;
  line.className = `scan-result ${kind}`;
  // Pressed far down the page (发出 under 正在装单), the answer is still seen.
  line.scrollIntoView({ block: "nearest" });
}

function modeLine() {
  $("scan-mode").textContent = receiving
    ? t("logistics.mode.receiving", { run: grouped(receiving.run.code) })
    : packing ? t("logistics.mode.packing", { run: grouped(packing) }) : t("logistics.mode.lookup");
}

// ------------------------------------------------------------------------------ the lists

/** @param {any} item */
function itemLine(item) {
  const grow = el("span", "", "grow");
  const code = el("strong", grouped(item.code), "code");
  grow.append(code, " ", el("span", kindName(item.kind.code), "badge"), el("br"),
    el("small", [item.case, item.applicant, item.description].filter(Boolean).join(" · ")));
  return grow;
}

function renderArriving() {
  const runs = view.arriving;
  $("arriving-count").textContent = String(runs.length);
  $("arriving-empty").hidden = runs.length > 0;
  $("arriving").replaceChildren(...runs.map((/** @type {any} */ run) => {
    const li = el("li");
    li.dataset.run = run.code;
    const grow = el("span", "", "grow");
    grow.append(el("strong", t("logistics.run.from", { from: run.from.name })), el("br"),
      el("small", `${grouped(run.code)} · ${t("logistics.run.items", { n: run.items.length })} · ${t("logistics.run.dispatched_at", { at: localMinute(run.dispatched_at) })}`));
    li.append(grow, button(t("logistics.receive.start"), () => startReceiving(run), "button primary"));
    return li;
  }));
}

/** A moment as the district's date and time to the minute ("12/4 16:05", kept on one line). @param {string} iso */
function localMinute(iso) {
  return new Date(iso).toLocaleString(lang, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: DISTRICT_TZ })
    .replaceAll(" ", "\u00a0");
}

/** The hall's desk: every open exception, wherever the item lies. */
function renderExceptions() {
  const items = view.exceptions;
  $("exceptions-count").textContent = String(items.length);
  $("exceptions-empty").hidden = items.length > 0;
  $("exceptions").replaceChildren(...items.map((/** @type {any} */ item) => {
    const li = el("li", "", "late");
    li.dataset.item = item.code;
    const e = item.exception;
    const where = item.at_station ? item.at_station.name : t("logistics.run.state.dispatched");
    li.append(itemLine(item), el("small", t("logistics.exceptions.line",
      { kind: t(`logistics.exception.${e.code}`), reason: e.reason, who: e.responsible, where, date: e.at.slice(0, 10) }), "flag"),
    button(t("logistics.exceptions.show"), () => showItem(item.code)));
    return li;
  }));
}

function renderReady() {
  const items = view.ready;
  $("ready-count").textContent = String(items.length);
  $("ready-empty").hidden = items.length > 0;
  $("ready").replaceChildren(...items.map((/** @type {any} */ item) => {
    const days = daysSince(item.ready_at);
    const late = days >= view.pickup_days;
    const li = el("li", "", late ? "late" : "");
    li.dataset.item = item.code;
    const key = late ? "logistics.ready.overdue" : days ? "logistics.ready.since" : "logistics.ready.today";
    const since = el("small", t(key, { days, date: item.ready_at.slice(0, 10) }), late ? "flag" : "muted");
    li.append(itemLine(item), since, button(t("logistics.handover.button"), () => openHandover(item), "button primary"));
    return li;
  }));
}

function renderWaiting() {
  const here = view.station.code;
  const items = [...view.waiting, ...view.returning];
  $("waiting-count").textContent = String(items.length);
  $("waiting-empty").hidden = items.length > 0;
  const names = Object.fromEntries(view.neighbours.map((/** @type {any} */ s) => [s.code, s.name]));
  $("waiting").replaceChildren(...items.map((/** @type {any} */ item) => {
    const li = el("li", "", item.status.code === "to_return" ? "late" : "");
    li.dataset.item = item.code;
    li.append(itemLine(item));
    if (item.next_hop === null && item.destination.code === here) {
      li.append(button(t("logistics.ready.shelve"), () => shelve(item.code), "button primary"));
    } else {
      const next = names[item.next_hop] || item.next_hop;
      li.append(el("small", item.bundled ? t("logistics.waiting.bundled") : t("logistics.waiting.next", { station: next }), "muted"));
    }
    return li;
  }));
  $("packing-empty").hidden = view.packing.length > 0;
  $("packing").replaceChildren(...view.packing.map((/** @type {any} */ run) => {
    const li = el("li", "", run.code === packing ? "current" : "");
    li.dataset.run = run.code;
    const grow = el("span", "", "grow");
    grow.append(el("strong", t("logistics.run.to", { to: run.to.name })), el("br"),
      el("small", `${grouped(run.code)} · ${t("logistics.run.items", { n: run.items.length })}`));
    const manifest = /** @type {HTMLAnchorElement} */ (el("a", t("logistics.run.manifest"), "button"));
    manifest.href = `${API}/runs/${run.code}/manifest.pdf`;
    manifest.target = "_blank";
    li.append(grow,
      button(t(run.code === packing ? "logistics.run.packing" : "logistics.run.pack"), () => { packing = run.code; modeLine(); renderWaiting(); $("scan").focus(); }),
      manifest,
      button(t("logistics.run.dispatch"), () => dispatch(run.code), "button primary"));
    if (!run.items.length) li.lastElementChild?.setAttribute("disabled", "");
    return li;
  }));
  // A new run to each neighbour that an item waits for (or any neighbour).
  const wanted = new Set(items.map((/** @type {any} */ i) => i.next_hop).filter(Boolean));
  $("new-run").replaceChildren(...view.neighbours
    .filter((/** @type {any} */ s) => wanted.has(s.code))
    .map((/** @type {any} */ s) => button(t("logistics.run.new", { to: s.name }), () => newRun(s.code))));
}

function render() {
  if (!view) return;
  $("where").textContent = t("logistics.where", { station: view.station.name, name: view.viewer.name });
  $("where").title = $("where").textContent;  // a narrow bar cuts it short (app.css)
  renderArriving();
  if (PAGE === "desk") renderExceptions();
  else renderReady();
  renderWaiting();
  renderReceiving();
  modeLine();
  const select = $("destinations");
  if (select) {  // rebuilt in the reader's language, keeping the choice
    const chosen = select.value;
    select.replaceChildren(new Option(t("logistics.register.case_station"), ""),
      ...(view.stations || []).map((/** @type {any} */ s) => new Option(s.name, s.code)));
    select.value = chosen;
  }
}

async function load() {
  const response = await fetch(`${API}/overview`, { credentials: "same-origin" });
  if (!response.ok) { errorBanner((await response.json())?.error, "staff.error.generic"); return; }
  view = await response.json();
  if (packing && !view.packing.some((/** @type {any} */ r) => r.code === packing)) packing = null;
  render();
}

// ------------------------------------------------------------------------------ actions

/** @param {string} to */
async function newRun(to) {
  const { ok, data } = await api("POST", "/runs", { to });
  if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); return; }
  packing = data.run.code;
  said(t("logistics.run.opened", { to: data.run.to.name, run: grouped(packing) }));
  await load();
  $("scan").focus();
}

/** @param {string} code */
async function dispatch(code) {
  const { ok, data } = await api("POST", `/runs/${code}/dispatch`);
  if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); return; }
  if (packing === code) packing = null;
  said(t("logistics.run.dispatched", { to: data.run.to.name, n: data.run.items.length }), "ok");
  await load();
}

/** @param {string} code */
async function shelve(code) {
  const { ok, data } = await api("POST", `/items/${code}/ready`);
  if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); return; }
  said(t("logistics.ready.shelved", { code: grouped(code) }), "ok");
  await load();
}

/** @param {any} run */
function startReceiving(run) {
  receiving = { run, scanned: new Set() };
  packing = null;
  renderReceiving();
  modeLine();
  $("scan").focus();
}

function renderReceiving() {
  $("receiving").hidden = !receiving;
  if (!receiving) return;
  const { run, scanned } = receiving;
  $("receiving-title").textContent = t("logistics.receive.title", { from: run.from.name, run: grouped(run.code) });
  $("receiving-list").replaceChildren(...run.items.map((/** @type {any} */ item) => {
    const seen = scanned.has(item.code);
    const li = el("li", "", seen ? "seen" : "");
    li.dataset.item = item.code;
    li.append(el("span", seen ? "✔" : "○", "tick"), itemLine({ ...item, applicant: "" }),
      el("small", seen ? t("logistics.receive.seen") : t("logistics.receive.not_seen"), seen ? "ok" : "muted"));
    return li;
  }));
  const listed = new Set(run.items.map((/** @type {any} */ i) => i.code));
  const extra = [...scanned].filter((code) => !listed.has(code));
  $("receiving-extra").hidden = extra.length === 0;
  $("receiving-extra").textContent = t("logistics.receive.extra", { codes: extra.map(grouped).join("、") });
}

async function confirmReceipt() {
  if (!receiving) return;
  const { run, scanned } = receiving;
  const { ok, data } = await api("POST", `/runs/${run.code}/receive`, { codes: [...scanned] });
  if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); return; }
  receiving = null;
  const parts = [t("logistics.receive.done", { n: data.received.length })];
  if (data.missing.length) parts.push(t("logistics.receive.missing", { codes: data.missing.map(grouped).join("、") }));
  if (data.extra.length) parts.push(t("logistics.receive.extra", { codes: data.extra.map(grouped).join("、") }));
  said(parts.join(" "), data.missing.length || data.extra.length ? "warn" : "ok");
  await load();
}

/** One scan (Enter in the field, or the camera): a run's code, or an item's. @param {string} raw */
async function scanned(raw) {
  const code = bare(raw);
  if (!code) return;
  if (!/^\d{12}$/.test(code)) { said(t("error.bad_code"), "error"); return; }
  if (code.startsWith("9")) {
    const run = view.arriving.find((/** @type {any} */ r) => r.code === code);
    if (run) { startReceiving(run); said(t("logistics.receive.started", { from: run.from.name })); return; }
    if (view.packing.some((/** @type {any} */ r) => r.code === code)) { packing = code; modeLine(); renderWaiting(); return; }
    const { ok, data } = await api("GET", `/runs/${code}`);
    said(ok ? t("logistics.run.status", { run: grouped(code), status: t(`logistics.run.state.${data.run.status}`) }) : errorText(data?.error, "staff.error.generic"), ok ? "info" : "error");
    return;
  }
  if (receiving) {
    receiving.scanned.add(code);
    const listed = receiving.run.items.some((/** @type {any} */ i) => i.code === code);
    said(listed ? t("logistics.receive.scanned", { code: grouped(code) }) : t("logistics.receive.not_listed", { code: grouped(code) }), listed ? "ok" : "warn");
    renderReceiving();
    return;
  }
  if (packing) {
    const { ok, data } = await api("POST", `/runs/${packing}/items`, { code });
    if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); return; }
    said(t("logistics.run.added", { code: grouped(code), to: data.run.to.name, n: data.run.items.length }), "ok");
    await load();
    return;
  }
  await showItem(code);
}

/** @param {string} code */
async function showItem(code) {
  const { ok, data } = await api("GET", `/items/${code}`);
  if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); $("item").hidden = true; return; }
  const item = data.item;
  said(t("logistics.item.found", { code: grouped(code), status: stateName(item.status.code) }));
  $("item").hidden = false;
  $("item").dataset.item = item.code;
  $("item-title").textContent = `${grouped(item.code)} · ${kindName(item.kind.code)} · ${stateName(item.status.code)}`;
  const facts = [t("logistics.item.case", { case: item.case, name: item.applicant }),
    t("logistics.item.route", { from: item.origin.name, to: item.destination.name })];
  if (item.exception) facts.push(t("logistics.item.exception", { kind: t(`logistics.exception.${item.exception.code}`), reason: item.exception.reason, who: item.exception.responsible }));
  $("item-facts").textContent = facts.join(" · ");
  $("item-events").replaceChildren(...item.events.map((/** @type {any} */ e) => {
    const li = el("li");
    const time = el("time", new Date(e.at).toLocaleString(lang, { hour12: false, timeZone: DISTRICT_TZ }));
    li.append(time, " ", el("strong", t(`logistics.event.${e.kind}`)), ` · ${e.station?.name || ""} · ${e.actor}${e.reason ? ` · ${e.reason}` : ""}`);
    return li;
  }));
}

// ------------------------------------------------------------------------------ handover

/**
 * The signature pad: a finger or a pen draws on the canvas; `onSigned` once a lift of the pen
 * leaves a signature.
 * @param {() => void} onSigned
 */
function signaturePad(onSigned) {
  const canvas = /** @type {HTMLCanvasElement} */ ($("signature"));
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  let drawing = false;
  let strokes = 0;
  const at = (/** @type {PointerEvent} */ e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * (canvas.width / box.width), (e.clientY - box.top) * (canvas.height / box.height)];
  };
  const clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    strokes = 0;
  };
  canvas.onpointerdown = (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); const [x, y] = at(e); ctx.beginPath(); ctx.moveTo(x, y); };
  canvas.onpointermove = (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.strokeStyle = "#111";
    ctx.lineTo(x, y); ctx.stroke();
    strokes += 1;
  };
  canvas.onpointerup = () => {
    drawing = false;
    if (strokes > 5) onSigned();
  };
  clear();
  return { clear, signed: () => strokes > 5, png: () => canvas.toDataURL("image/png") };
}
// Signing takes away the request to sign (it stayed on screen under the signature).
const pad = signaturePad(() => {
  if ($("handover-error").textContent === t("error.signature_required")) $("handover-error").textContent = "";
});

/** @param {any} item */
function openHandover(item) {
  handingOver = item;
  const form = /** @type {HTMLFormElement} */ ($("handover-form"));
  form.reset();
  pad.clear();
  $("handover-error").textContent = "";
  $("handover-title").textContent = t("logistics.handover.title", { kind: kindName(item.kind.code) });
  $("handover-item").textContent = `${grouped(item.code)} · ${item.case} · ${item.applicant} · ${item.description}`;
  $("handover").showModal();
  form.pickup_code.focus();
}

async function confirmHandover(/** @type {Event} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ ($("handover-form"));
  if (!form.reportValidity()) return;
  if (!pad.signed()) { $("handover-error").textContent = t("error.signature_required"); return; }
  const { ok, data } = await api("POST", `/items/${handingOver.code}/pickup`, {
    pickup_code: form.pickup_code.value.trim(), id_last4: form.id_last4.value.trim(),
    collected_by: form.collected_by.value.trim(), signature: pad.png(),
  });
  if (!ok) { $("handover-error").textContent = errorText(data?.error, "staff.error.generic"); return; }
  $("handover").close();
  said(t("logistics.handover.done", { code: grouped(data.item.code), name: form.collected_by.value.trim() || data.item.applicant }), "ok");
  handingOver = null;
  await load();
}

// ------------------------------------------------------------------------------ forms

async function register(/** @type {Event} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ ($("register-form"));
  const body = { case: form.case.value.trim(), kind: form.kind.value, description: form.description.value.trim() };
  if (form.destination?.value) Object.assign(body, { destination: form.destination.value });
  const { ok, data } = await api("POST", "/items", body);
  const box = $("registered");
  box.hidden = false;
  // The answer (the pickup code and 打印标签, or why not) is brought into view: it shows under
  // the form, below a 1366×768 screen, where pressing the button seemed to do nothing.
  const shown = () => box.scrollIntoView({ block: "nearest" });
  if (!ok) { box.className = "registered error"; box.textContent = errorText(data?.error, "staff.error.generic"); shown(); return; }
  box.className = "registered";
  const label = /** @type {HTMLAnchorElement} */ (el("a", t("logistics.register.label"), "button primary"));
  label.href = `${API}/items/${data.item.code}/label.pdf`;
  label.target = "_blank";
  box.replaceChildren(
    el("p", t("logistics.register.done", { code: grouped(data.item.code), to: data.item.destination.name })),
    el("p", t("logistics.register.pickup_code", { code: data.pickup_code }), "pickup-code"),
    label);
  form.reset();
  await load();
  shown();
}

async function reportException(/** @type {Event} */ event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ ($("exception-form"));
  const code = $("item").dataset.item;
  const { ok, data } = await api("POST", `/items/${code}/exception`, {
    kind: form.kind.value, reason: form.reason.value.trim(), responsible: form.responsible.value.trim(),
  });
  if (!ok) { said(errorText(data?.error, "staff.error.generic"), "error"); return; }
  form.reset();
  said(t("logistics.exception.done", { code: grouped(code), status: stateName(data.item.status.code) }), "warn");
  await showItem(code);
  await load();
}

/** The camera reads QR codes where the browser has a BarcodeDetector (Chromium on Android …). */
async function cameraScan() {
  // @ts-ignore: not in every browser's types
  const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  const video = $("camera-view");
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  const stop = () => { stream.getTracks().forEach((track) => track.stop()); video.hidden = true; };
  const until = Date.now() + 20000;
  while (Date.now() < until) {
    const found = await detector.detect(video);
    if (found.length) { stop(); await scanned(found[0].rawValue); return; }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  stop();
}

// ------------------------------------------------------------------------------ sign-in

/** @param {any} me */
async function opened(me) {
  const allowed = PAGE === "station" ? me.role === "attendant" : me.role !== "attendant";
  showNav(me.role);
  if (!allowed) {
    $("login").hidden = false;
    $("login-error").hidden = false;
    $("login-error").textContent = t(PAGE === "station" ? "logistics.station.not_attendant" : "logistics.desk.not_staff");
    return;
  }
  $("login").hidden = true;
  $("desk").hidden = false;
  $("logout").hidden = false;
  await load();
  $("scan").focus();
}

async function signIn(/** @type {Event} */ event) {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
    body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value }),
  });
  const body = await response.json();
  if (!response.ok) {
    $("login-error").hidden = false;
    $("login-error").textContent = response.status === 401 ? t("staff.login.failed") : errorText(body?.error, "staff.error.generic");
    return;
  }
  await opened(body.staff);
}

async function start() {
  await setLang(lang);
  $("lang").onclick = async () => { await setLang(lang === "zh-CN" ? "en" : "zh-CN"); render(); };
  $("login-form").onsubmit = signIn;
  $("scan-form").onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const value = $("scan").value;
    $("scan").value = "";
    await scanned(value);
    $("scan").focus();
  };
  $("receive-confirm").onclick = confirmReceipt;
  $("receive-cancel").onclick = () => { receiving = null; renderReceiving(); modeLine(); };
  $("register-form").onsubmit = register;
  $("exception-form").onsubmit = reportException;
  $("handover-form").onsubmit = confirmHandover;
  $("signature-clear").onclick = pad.clear;
  $("handover-cancel").onclick = () => $("handover").close();
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    $("camera").hidden = false;
    $("camera").onclick = () => cameraScan().catch(() => said(t("logistics.scan.camera_failed"), "error"));
  }
  const me = await fetchMe();
  if (me?.ok) await opened((await me.json()).staff);
  else $("login").hidden = false;
}

Object.assign(window, { cloudhelp: { get view() { return view; }, reload: load } });
await start();
