// The staff console (区大厅坐席): queue, ringing, the call, files, chat, transfer, wrap-up.
// @ts-check
import { Call, Connection, FileChannel, uploadFile } from "./protocol.js";
import { addChat, banner, showRemoteScreen, wireCall } from "./callview.js";
import { beep, duration, lang, setLang, t, translate } from "./i18n.js";

const LONG_WAIT_SECONDS = 300;
const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @type {Connection | null} */
let connection = null;
/** @type {Call | null} */
let call = null;
/** @type {FileChannel | null} */
let files = null;
/** @type {any} */
let ringing = null;
let ringTimer = 0;
let wrapupTimer = 0;
/** The ticket of the current (or just ended) call, for keeping its files. */
let callTicket = 0;
let presence = "offline";
/** @type {MediaStream | null} */
let stream = null;
/** @type {MediaStreamTrack | null} */
let screen = null;
/** @type {any[]} */
let queue = [];
/** @type {Map<string, any>} */
const received = new Map();
/** The ticket of the current call, as rung or picked (its item and, for a correction, case). */
/** @type {any} */
let callSummary = null;
/** @type {any} */
let currentCase = null;
const CHECKS = ["ok", "needs_correction", "missing", "not_applicable"];


async function signIn(/** @type {string} */ username, /** @type {string} */ password) {
  const response = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }), credentials: "same-origin",
  });
  const body = await response.json();
  if (!response.ok) {
    $("login-error").hidden = false;
    // Catalog text for the error code (e.g. error.too_many_attempts with {minutes}), never the server's English.
    $("login-error").textContent = response.status === 401 ? t("staff.login.failed") : t(`error.${body.error.code}`, body.error);
    return;
  }
  open(body.staff);
}

/** @param {any} me */
async function open(me) {
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  $("toggle-state").hidden = false;
  $("me").textContent = `${me.name}（${me.username}）`;
  const departments = await (await fetch("/api/v1/departments")).json();
  $("transfer-to").replaceChildren(...departments.departments.map((/** @type {any} */ d) => new Option(d.name, d.code)));
  connection = new Connection({ auth: { kind: "staff" } });
  connection.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner(t("net.reconnecting"));
    else if (e.detail === "online") banner(null);
  });
  connection.addEventListener("auth-failed", () => showLogin());
  connection.addEventListener("message", (/** @type {any} */ e) => onMessage(e.detail));
  connection.connect();
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    stream = null;  // staff can still talk by text; the resident sees no video
  }
}

function showLogin() {
  $("login").hidden = false;
  $("console").hidden = true;
  $("logout").hidden = true;
  $("toggle-state").hidden = true;
}

/** @param {any} frame */
function onMessage(frame) {
  switch (frame.type) {
    case "presence": return onPresence(frame);
    case "queue": queue = frame.tickets; return renderQueue();
    case "ring": return onRing(frame);
    case "ring.cancelled": return stopRinging();
    case "joined": return onJoined(frame);
    case "left": return onLeft();
    case "wrapup": return onWrapup(frame);
    case "warnings": return renderWarnings(frame.warnings);
    case "error": return banner(frame.message, "error");
  }
}

function onPresence(/** @type {any} */ frame) {
  presence = frame.state;
  if (frame.ticket) callTicket = frame.ticket;
  $("state").textContent = t(`staff.state.${frame.state}`);
  $("state").dataset.state = frame.state;
  const canToggle = frame.state === "available" || frame.state === "away";
  $("toggle-state").hidden = !canToggle;
  $("toggle-state").textContent = t(frame.state === "available" ? "staff.go_away" : "staff.go_available");
  if (frame.state !== "wrapup") $("wrapup").hidden = true;
  $("idle").hidden = frame.state === "in_call" || frame.state === "wrapup";
}

/** Time-out warnings that concern this staff member, each with an acknowledge button. */
function renderWarnings(/** @type {any[]} */ warnings) {
  $("my-warnings").hidden = warnings.length === 0;
  $("warning-list").replaceChildren(...warnings.map((w) => {
    const li = document.createElement("li");
    const what = [w.detail.ticket || w.detail.case, w.detail.item].filter(Boolean).join(" · ");
    li.textContent = `${t(`warning.${w.kind}`)}：${what} `;
    if (!w.acked_at) {
      const ack = document.createElement("button");
      ack.className = "button";
      ack.textContent = t("board.ack");
      ack.onclick = () => connection?.send({ type: "warning.ack", warning: w.id });
      li.append(ack);
    }
    return li;
  }));
}

function renderQueue() {
  $("queue-count").textContent = String(queue.length);
  $("queue-empty").hidden = queue.length > 0;
  const started = Date.now();
  $("queue").replaceChildren(...queue.map((ticket) => {
    const li = document.createElement("li");
    li.dataset.ticket = String(ticket.id);
    li.dataset.since = String(started - ticket.waiting_seconds * 1000);
    const number = document.createElement("strong");
    number.textContent = ticket.number;
    const item = document.createElement("span");
    item.textContent = ticket.item.name;
    const where = document.createElement("small");
    where.textContent = ticket.station.name;
    const wait = document.createElement("span");
    wait.className = "wait";
    const pick = document.createElement("button");
    pick.className = "button";
    pick.textContent = t("staff.queue.pick");
    pick.disabled = ticket.status !== "waiting";
    pick.onclick = () => {
      callSummary = ticket;
      connection?.send({ type: "ticket.pick", ticket: ticket.id });
    };
    li.append(number, item, where, wait, pick);
    return li;
  }));
  tickQueue();
}

function tickQueue() {
  document.querySelectorAll("#queue li").forEach((li) => {
    const seconds = (Date.now() - Number(/** @type {HTMLElement} */ (li).dataset.since)) / 1000;
    const wait = li.querySelector(".wait");
    if (wait) wait.textContent = t("staff.queue.waiting", { time: duration(seconds) });
    li.classList.toggle("long", seconds > LONG_WAIT_SECONDS);
  });
}

function onRing(/** @type {any} */ frame) {
  ringing = frame.ticket;
  $("ring").hidden = false;
  $("ring-ticket").textContent = ringing.number;
  $("ring-item").textContent = ringing.item.name;
  $("ring-station").textContent = ringing.station.name;
  let left = frame.ring_seconds;
  const tick = () => {
    $("ring-countdown").textContent = t("common.seconds", { n: left });
    if (left % 2 === 0) { try { beep(300, 880); } catch { /* no audio device */ } }
    left -= 1;
    if (left >= 0) ringTimer = window.setTimeout(tick, 1000);
  };
  clearTimeout(ringTimer);
  tick();
}

function stopRinging() {
  ringing = null;
  clearTimeout(ringTimer);
  $("ring").hidden = true;
}

function onJoined(/** @type {any} */ frame) {
  stopRinging();
  const peer = frame.peers[0];
  $("call-caption").textContent = `${t("staff.call.resident")} · ${peer.station || ""}`;
  call = new Call(/** @type {Connection} */ (connection), { initiator: frame.initiator, peer: peer.session, stream: stream || undefined });
  files = new FileChannel(call);
  $("self-view").srcObject = stream;
  $("call").hidden = false;
  $("idle").hidden = true;
  $("chat").replaceChildren();
  $("files").replaceChildren();
  wireCall(call, /** @type {Connection} */ (connection));
  call.addEventListener("app", (/** @type {any} */ e) => {
    const data = e.detail;
    if (data.kind === "chat") addChat(data.text, "them");
    else if (data.kind === "screen" && call) showRemoteScreen(call, data.on);
  });
  files.addEventListener("progress", (/** @type {any} */ e) => onProgress(e.detail));
  files.addEventListener("file", (/** @type {any} */ e) => onFile(e.detail));
  openCasePanel();
}

// ------------------------------------------------------------------ pre-review (材料预审)

async function caseApi(/** @type {string} */ path, /** @type {string} */ method = "GET", /** @type {any} */ body = undefined) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  if (!response.ok) throw Object.assign(new Error(data.error.message), { code: data.error.code });
  return data;
}

async function openCasePanel() {
  $("case-panel").hidden = false;
  $("notice-link").hidden = true;
  $("case-history").hidden = true;
  currentCase = null;
  const number = callSummary?.case?.number;
  if (number) {
    await loadCase(number);
  } else {
    $("case-form").hidden = false;
    $("case-number").textContent = "";
    $("case-status").textContent = "";
    $("checklist").replaceChildren();
    $("verdict").hidden = true;
  }
}

async function loadCase(/** @type {string} */ number) {
  const { case: found } = await caseApi(`/api/v1/cases/${number}`);
  currentCase = found;
  $("case-form").hidden = true;
  $("case-number").textContent = found.number;
  $("case-status").textContent = found.status.label;
  $("case-history").hidden = false;
  $("case-history").querySelector("a").href = `/cases/${found.number}`;
  const { materials } = await caseApi(`/api/v1/cases/${number}/checklist`);
  renderChecklist(materials);
  $("verdict").hidden = found.status.code !== "pre_review";
}

/** @param {any[]} materials */
function renderChecklist(materials) {
  $("checklist").replaceChildren(...materials.map((m) => {
    const li = document.createElement("li");
    li.dataset.position = String(m.position);
    li.dataset.status = m.status || "";
    const name = document.createElement("strong");
    name.textContent = m.name;
    const buttons = document.createElement("div");
    buttons.className = "checks";
    for (const status of CHECKS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `chip check ${m.status === status ? "chosen" : ""}`;
      b.dataset.check = status;
      b.textContent = t(`check.${status}`);
      b.onclick = () => {
        li.dataset.status = status;
        buttons.querySelectorAll(".check").forEach((x) => x.classList.toggle("chosen", x === b));
        reason.hidden = status !== "needs_correction";
        typed.hidden = reason.hidden;
      };
      buttons.append(b);
    }
    const reason = document.createElement("select");
    reason.className = "reason";
    reason.hidden = m.status !== "needs_correction";
    reason.append(new Option(t("staff.case.pick_reason"), ""));
    for (const mistake of m.common_mistakes) reason.append(new Option(mistake, mistake));
    if (m.reason && !m.common_mistakes.includes(m.reason)) reason.append(new Option(m.reason, m.reason));
    reason.value = m.reason || "";
    // Or type a reason of one's own (it wins over the pick).
    const typed = document.createElement("input");
    typed.className = "typed-reason";
    typed.placeholder = t("staff.case.type_reason");
    typed.maxLength = 500;
    typed.hidden = reason.hidden;
    reason.addEventListener("change", () => { typed.value = ""; });
    const file = document.createElement("select");
    file.className = "file";
    file.dataset.chosen = String(m.files[0] || "");
    li.append(name, buttons, reason, typed, file);
    return li;
  }));
  refreshFileChoices();
}

/** Each material can point at a file the resident sent (kept on the server). */
function refreshFileChoices() {
  const saved = [...received.values()].filter((f) => f.serverId);
  document.querySelectorAll("#checklist .file").forEach((el) => {
    const select = /** @type {HTMLSelectElement} */ (el);
    const chosen = select.value || select.dataset.chosen || "";
    select.replaceChildren(new Option(t("staff.case.attach_file"), ""), ...saved.map((f) => new Option(f.name, String(f.serverId))));
    select.value = chosen;
    select.hidden = saved.length === 0;
  });
}

function checklistMarks() {
  /** @type {any[]} */
  const marks = [];
  document.querySelectorAll("#checklist li").forEach((li) => {
    const el = /** @type {HTMLElement} */ (li);
    if (!el.dataset.status) return;
    const typed = /** @type {HTMLInputElement} */ (el.querySelector(".typed-reason")).value.trim();
    const reason = typed || /** @type {HTMLSelectElement} */ (el.querySelector(".reason")).value;
    const file = /** @type {HTMLSelectElement} */ (el.querySelector(".file")).value;
    marks.push({ position: Number(el.dataset.position), status: el.dataset.status, reason, files: file ? [Number(file)] : [] });
  });
  return marks;
}

async function issueVerdict(/** @type {string} */ verdict, /** @type {string} */ reason = "") {
  if (!currentCase) return;
  try {
    const marks = checklistMarks();
    if (marks.length) await caseApi(`/api/v1/cases/${currentCase.number}/checklist`, "PUT", { materials: marks });
    const { case: result } = await caseApi(`/api/v1/cases/${currentCase.number}/verdict`, "POST", { verdict, reason });
    $("case-status").textContent = result.status.label;
    $("verdict").hidden = true;
    if (result.notice) {
      const link = $("notice-link").querySelector("a");
      link.href = result.notice.url;
      $("notice-link").hidden = false;
      call?.sendApp({ kind: "notice", url: result.notice.url, case: result.number });
    }
  } catch (error) {
    banner(/** @type {any} */ (error).message, "error");
  }
}

function onLeft() {
  call?.close();
  call = null;
  files = null;
  screen?.stop();
  screen = null;
  $("call").hidden = true;
  $("share-screen").textContent = t("staff.call.share_screen");
}

function onWrapup(/** @type {any} */ frame) {
  $("wrapup").hidden = false;
  $("note").value = "";
  let left = frame.seconds;
  clearTimeout(wrapupTimer);
  const tick = () => {
    $("wrapup-left").textContent = t("staff.wrapup.left", { n: left });
    if (left-- > 0 && !$("wrapup").hidden) wrapupTimer = window.setTimeout(tick, 1000);
  };
  tick();
}


function fileItem(/** @type {string} */ id) {
  let li = document.querySelector(`#files [data-id="${id}"]`);
  if (!li) {
    li = document.createElement("li");
    /** @type {HTMLElement} */ (li).dataset.id = id;
    li.innerHTML = '<span class="label"></span><progress max="100" value="0"></progress>';
    $("files").prepend(li);
  }
  return /** @type {HTMLElement} */ (li);
}

function onProgress(/** @type {any} */ p) {
  const li = fileItem(p.id);
  const percent = Math.floor((100 * p.done) / Math.max(1, p.size));
  /** @type {any} */ (li.querySelector("progress")).value = percent;
  /** @type {any} */ (li.querySelector(".label")).textContent = p.direction === "in"
    ? t("staff.call.receiving", { name: p.name, percent }) : `${p.name} ${percent}%`;
}

/** A file from the resident: preview it inline and keep it on the server against the ticket. */
async function onFile(/** @type {any} */ file) {
  received.set(file.id, file);
  const li = fileItem(file.id);
  li.querySelector("progress")?.remove();
  const label = /** @type {any} */ (li.querySelector(".label"));
  li.dataset.sha256 = file.sha256;
  if (!file.ok) {
    label.textContent = t("staff.call.checksum_failed", { name: file.name });
    li.className = "error";
    return;
  }
  label.textContent = file.name;
  const url = URL.createObjectURL(file.blob);
  if (file.type.startsWith("image/")) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = file.name;
    li.append(img);
  } else if (file.type === "application/pdf") {
    const frame = document.createElement("iframe");
    frame.src = url;
    frame.title = file.name;
    li.append(frame);
  }
  const link = document.createElement("a");
  link.href = url;
  link.download = file.name;
  link.textContent = t("common.download");
  li.append(link);
  if (callTicket) {
    try {
      const stored = await uploadFile(callTicket, file, "kiosk");
      file.serverId = stored.id;
      refreshFileChoices();
      const saved = document.createElement("span");
      saved.className = "badge ok";
      saved.textContent = t("common.saved");
      li.append(saved);
      li.dataset.saved = "1";
    } catch (error) {
      const retry = document.createElement("button");
      retry.className = "button";
      retry.textContent = t("common.retry");
      retry.onclick = () => { retry.remove(); onFile(file); };
      li.append(retry);
    }
  }
}

async function toggleScreen() {
  if (!call) return;
  if (screen) {
    screen.stop();
    screen = null;
    await call.shareScreen(null);
    $("share-screen").textContent = t("staff.call.share_screen");
    return;
  }
  const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
  screen = display.getVideoTracks()[0];
  screen.onended = () => { if (screen) toggleScreen(); };
  await call.shareScreen(screen);
  $("share-screen").textContent = t("staff.call.stop_share");
}

function wire() {
  $("login-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); signIn($("username").value.trim(), $("password").value); };
  $("toggle-state").onclick = () => connection?.send({ type: "staff.status", status: presence === "available" ? "away" : "available" });
  $("ring-accept").onclick = () => {
    if (!ringing) return;
    callSummary = ringing;
    connection?.send({ type: "ring.accept", ticket: ringing.id });
  };
  $("ring-decline").onclick = () => ringing && connection?.send({ type: "ring.decline", ticket: ringing.id });
  $("hangup").onclick = () => connection?.send({ type: "call.hangup" });
  $("transfer").onclick = () => connection?.send({ type: "ticket.transfer", department: $("transfer-to").value });
  $("share-screen").onclick = () => toggleScreen().catch(() => {});
  $("file-input").onchange = async () => {
    for (const file of $("file-input").files) if (files) await files.send(file, file.name);
    $("file-input").value = "";
  };
  $("chat-form").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text || !call) return;
    call.sendApp({ kind: "chat", text });
    addChat(text, "me");
    $("chat-input").value = "";
  };
  $("case-form").onsubmit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    try {
      const { case: opened } = await caseApi("/api/v1/cases", "POST", {
        item: callSummary.item.code, ticket: callSummary.id,
        applicant: { name: $("applicant-name").value, phone: $("applicant-phone").value, id_number: $("applicant-id").value },
      });
      $("case-error").hidden = true;
      ["applicant-name", "applicant-phone", "applicant-id"].forEach((id) => { $(id).value = ""; });
      await loadCase(opened.number);
    } catch (error) {
      $("case-error").hidden = false;
      $("case-error").textContent = /** @type {any} */ (error).message;
    }
  };
  $("verdict-correction").onclick = () => issueVerdict("correction_needed");
  $("verdict-passed").onclick = () => issueVerdict("passed");
  $("verdict-reject").onclick = () => {
    const reason = prompt(t("staff.case.reject_reason"));
    if (reason) issueVerdict("not_accepted", reason);
  };
  $("wrapup").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    connection?.send({ type: "wrapup.done", outcome: $("outcome").value, note: $("note").value });
    $("wrapup").hidden = true;
  };
  $("logout").onclick = async () => {
    connection?.close();
    await fetch("/api/v1/auth/logout", { method: "POST", credentials: "same-origin" });
    location.reload();
  };
  $("lang").onclick = () => setLang(lang === "zh-CN" ? "en" : "zh-CN");
  setInterval(tickQueue, 1000);
}

Object.assign(window, { cloudhelp: { get connection() { return connection; }, get call() { return call; }, received } });

await setLang(lang);
translate(document);
wire();
const me = await fetch("/api/v1/auth/me", { credentials: "same-origin" });
if (me.ok) open((await me.json()).staff);
else showLogin();
