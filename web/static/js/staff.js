// The staff console (区大厅坐席): queue, ringing, the call, files, chat, transfer, wrap-up.
// @ts-check
import { Call, Connection, FileChannel, OTHER_TYPE, shownType, sniffType, uploadFile } from "./protocol.js";
import { addChat, addChatLines, askBeforeHangingUp, banner, bannerForAWhile, errorBanner, hangingUp, notPreviewable, showRemoteScreen, wireCall } from "./callview.js";
import { CallMemory } from "./callmemory.js";
import { LEVELS, netcheckText, renderBars, sampleText } from "./netview.js";
import { DISTRICT_TZ, beep, calendarDate, catalogOption, clockTime, duration, errorText, lang, replaceWarningGroups, setLang, showPlain, showSince, showText, t, warningGroups } from "./i18n.js";
import { fetchMe, showNav } from "./sitenav.js";

const LONG_WAIT_SECONDS = 300;
const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @type {Connection | null} */
let connection = null;
/** Closes the 挂断 question (callview.askBeforeHangingUp), once the page is wired. */
let closeHangupConfirm = () => {};
/** The ticket ringing at this console (its `ring` frame's ticket), while it rings. @type {any} */
let ringing = null;
let ringTimer = 0;
let presence = "offline";
/** Set away by the server after unanswered rings (not by the staff member's own choice). */
let autoPaused = false;
/** Whether this staff member has items or a department to answer for (else never rung). */
let answersCalls = true;
/**
 * The console's camera and microphone, opened at sign-in and used by every call: a reload
 * mid-call needs them ready for the resumed `joined`. Not part of a visit.
 * @type {MediaStream | null}
 */
let stream = null;
/** @type {any[]} */
let queue = [];
/** The ticket about to be answered, until its call starts; it then moves into the visit. */
let answering = noTicket();
/** The resident being served: their call, then its wrap-up (see newVisit). @type {Visit | null} */
let visit = null;
/**
 * What the console showed of the call in progress (who calls about what, chat lines, the
 * notice link), shown again by a reload mid-call; forgotten when the wrap-up is over. Files
 * come back from the server instead (restoreFiles).
 */
const memory = new CallMemory("cloudhelp.staff.call");
const CHECKS = ["ok", "needs_correction", "missing", "not_applicable"];
/** The marks that send a material back (a notice lists them; prereview.TO_CORRECT). */
const TO_CORRECT = ["needs_correction", "missing"];
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/** @returns {{summary: any, ticket: number}} */
function noTicket() {
  return {
    /** The ticket as rung or picked: its item and, for a correction, its case. */
    summary: null,
    /** Its id as the server last said (presence), e.g. after a reload. */
    ticket: 0,
  };
}

/**
 * Everything about one resident's call at this console, like kiosk.js's `visit`: created when
 * the call starts (`joined`, or a wrap-up resumed after a reload). It ends in two steps: when
 * the call ends (`left`) its listeners are detached, the call closed and its tracks stopped
 * (endCall); when the wrap-up is over its object URLs are revoked and its timer cleared
 * (endVisit) — until then its files, chat and case stay on screen for the wrap-up.
 * @param {{summary: any, ticket: number}} from
 */
function newVisit(from) {
  return {
    summary: from.summary,
    /** The ticket's id, for keeping its files and finding its case. */
    ticket: /** @type {number} */ (from.summary?.id || from.ticket),
    call: /** @type {Call | null} */ (null),
    files: /** @type {FileChannel | null} */ (null),
    /** The screen this console shares. */
    screen: /** @type {MediaStreamTrack | null} */ (null),
    /** The session's case, once opened or found. */
    case: /** @type {any} */ (null),
    /** Files received, by transfer id. */
    received: /** @type {Map<string, any>} */ (new Map()),
    /**
     * The lines of the files list by transfer id. The ids are the peer's choice: they are
     * looked up here, never put into a CSS selector.
     */
    fileItems: /** @type {Map<string, HTMLElement>} */ (new Map()),
    /** Object URLs of the files shown. */
    urls: /** @type {string[]} */ ([]),
    wrapupTimer: 0,
    /** Why the call ended (`left`'s reason), for the wrap-up to say. */
    endReason: "",
    /** Aborted when the call ends: every listener put on the call and its file channel goes. */
    listeners: new AbortController(),
    /** The resident's side as `joined` named it, and the latest `call.quality`: shown again in
     * a new language. */
    peer: /** @type {any} */ ({}),
    quality: /** @type {any} */ ({ level: null }),
  };
}
/** @typedef {ReturnType<typeof newVisit>} Visit */

/** The visit, creating it from the ticket being answered if there is none. */
function currentVisit() {
  if (!visit) {
    visit = newVisit(answering);
    answering = noTicket();
  }
  return visit;
}

/** The catalog text of an error code the server sent (never its English message). */


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
  // Sent here to sign in by a supervisor's page: back there (a path of this site, checked by
  // the server: pages.site_path).
  const next = $("login-form").dataset.next;
  if (next) {
    location.assign(next);
    return;
  }
  open(body.staff);
}

/** @param {any} me */
async function open(me) {
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  // 开始接听 appears with the first presence frame (onPresence): pressed before the connection
  // is up, it would do nothing and say nothing.
  // Name and username; a narrow bar shows the name only (app.css), the whole as its tooltip.
  const username = document.createElement("span");
  username.className = "username";
  username.textContent = `（${me.username}）`;
  $("me").replaceChildren(me.name, username);
  $("me").title = `${me.name}（${me.username}）`;
  showNav(me.role);
  answersCalls = me.answers_calls !== false;
  clearCallWork();
  // The checklist is as long as the item's materials (the page scrolls, never the list).
  $("checklist").setAttribute("aria-label", t("cases.checklists"));
  connection = new Connection({ auth: { kind: "staff" } });
  let lostCall = false;  // the session the call was in is gone: say so once back online
  connection.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner(connection?.unavailable ? "error.service_unavailable" : "net.reconnecting");
    else if (e.detail === "online") banner(lostCall ? "staff.session_lost" : null, "info");
    if (e.detail === "online") lostCall = false;
  });
  // The server no longer knew this console's session (it restarted, or the network was gone
  // for longer than the grace period): the call or wrap-up it was in was closed there.
  connection.addEventListener("unsent", () => hangingUp(false, "staff.call.hangup"));
  connection.addEventListener("session-lost", () => {
    stopRinging();
    if (!visit) return;
    lostCall = true;
    dropCall();
  });
  // The console was opened in another window or on another computer: calls ring there, not
  // here. Said in place of the queue's work, with the way to take it back (a console left
  // showing 可接听 that never rang kept residents waiting, a README walk found).
  connection.addEventListener("replaced", () => standAside("staff.replaced"));
  // Opened while the console in another window is in a call: refused (taking over would cut
  // the resident off). Said the same way; the button asks again, once that call is over.
  connection.addEventListener("busy", () => {
    const again = askedAgain;  // this refusal answers the press (a reconnect's does not)
    askedAgain = false;
    standAside("staff.busy_elsewhere");
    // Asked again with 在本窗口继续接听: the same words would look as if nothing happened.
    $("replaced-checked").hidden = !again;
    // Kept with its time: a language switch says it again in the other language.
    if (again) showText($("replaced-checked"), "staff.busy_checked", { time: clockTime(new Date()) });
  });
  connection.addEventListener("unavailable", () => banner("error.service_unavailable"));
  connection.addEventListener("auth-failed", () => showLogin());
  connection.addEventListener("message", (/** @type {any} */ e) => onMessage(e.detail));
  // The camera first, then the connection: after a reload mid-call the resumed `joined` comes at
  // once, and a call built before the stream is ready would send the resident no video.
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    stream = null;  // staff can still talk by text; the resident sees no video
  }
  connection.connect();
}

/**
 * This window does not answer calls (the console is open in another one): say why in place of
 * the queue's work, with the button that takes the console back here.
 * @param {string} key the reason's catalog key
 */
function standAside(key) {
  $("replaced-checked").hidden = true;
  stopRinging();
  if (visit) dropCall();
  // Not 离线: the staff member is on duty, in the other window (a README walk read 离线 as
  // signed out).
  onPresence({ state: "elsewhere" });
  $("idle").hidden = true;  // the notice says it all
  queue = [];
  renderQueue();
  banner(null);
  showText($("replaced-text"), key);
  $("replaced").hidden = false;
  $("take-back").focus();
}

/** The console's line between calls: how calls come, or that none will. */
function idleLine() {
  if (!answersCalls) return t("staff.call.no_items");
  return t(presence === "available" ? "staff.call.idle_available" : "staff.call.idle");
}

/** The call (or wrap-up) this console showed is over on the server: nothing of it stays. */
function dropCall() {
  onLeft();
  $("wrapup").hidden = true;
  clearCallWork();
  memory.forget();
}

function showLogin() {
  showNav(null);
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
    case "ring.cancelled": return onRingCancelled(frame);
    case "joined": return onJoined(frame);
    case "left": return onLeft(frame);
    case "wrapup": return onWrapup(frame);
    case "warnings": return renderWarnings(frame.warnings);
    case "call.quality": return showQuality(frame);
    case "error": return onError(frame);
  }
}

/**
 * A message the server refused, said in a banner — unless it is the call's figures sent as the
 * call ended (`call.stats`, sent in the background: the server had ended the call before the
 * page knew), which the staff member never did and can do nothing about.
 * @param {any} frame
 */
function onError(frame) {
  if (frame.ref === "call.stats") return;
  errorBanner(frame, "staff.error.generic");
}

function onPresence(/** @type {any} */ frame) {
  const before = presence;
  presence = frame.state;
  const holder = visit || answering;
  if (frame.ticket && frame.ticket !== holder.ticket) {
    holder.ticket = frame.ticket;
    // A reloaded console in a call: show the case this session already has.
    const v = visit;
    if (v && frame.state === "in_call" && !v.case && !$("case-form").hidden) {
      caseOfTicket(v.ticket).then((number) => { if (number && visit === v && !v.case) loadCase(v, number); });
    }
  }
  // A wrap-up that ended (by hand or by its timer) leaves nothing of that resident on screen.
  if ((before === "wrapup" || before === "in_call") && (frame.state === "available" || frame.state === "away")) {
    clearCallWork();
    memory.forget();
  }
  // Unanswered rings set the staff member away: say so plainly, with the way back.
  // (Only a ring that ends in away is the server's doing; away by the staff member's own hand,
  // even after a missed ring, is not.)
  if (frame.state !== "away") autoPaused = false;
  else if (before === "ringing" && frame.missed_offers > 0) autoPaused = true;
  const autopaused = autoPaused;
  $("autopaused").hidden = !autopaused;
  if (autopaused) {
    showText($("autopaused-text"), "staff.autopaused", { n: frame.missed_offers });
    banner(null);  // the box says it all
    if (before === "ringing") { try { beep(600, 440); } catch { /* no audio device */ } }
  }
  showText($("state"), `staff.state.${frame.state}`);
  $("state").dataset.state = frame.state;
  // No 开始接听 for someone no call is routed to (no item, no department: a supervisor).
  const canToggle = (frame.state === "available" || frame.state === "away") && (answersCalls || frame.state === "available");
  $("toggle-state").hidden = !canToggle;
  showText($("toggle-state"), frame.state === "available" ? "staff.go_away" : "staff.go_available");
  if (frame.state !== "wrapup") $("wrapup").hidden = true;
  const working = frame.state === "in_call" || frame.state === "wrapup";
  $("idle").hidden = working || autopaused || frame.state === "ringing";
  $("idle").textContent = idleLine();
  showCallSide(working, frame.state === "in_call");
}

/**
 * Files and chat belong to a call and its wrap-up (what was said and sent stays to read);
 * between residents there is nothing to show. The chat's input only while the call is on: in
 * the wrap-up nothing reaches the resident (a walk typed there, and nothing happened).
 * @param {boolean} shown @param {boolean} chatting
 */
function showCallSide(shown, chatting) {
  $("call-side").hidden = !shown;
  $("chat-form").hidden = !chatting;
  $("side-idle").hidden = shown;
}

/** How many warnings of each kind the console lists; 另有 N 条 lists the rest. */
const WARNINGS_PER_KIND = 3;
/** The kinds whose every warning the staff member chose to list. @type {Set<string>} */
const expandedWarnings = new Set();
/** The warnings last pushed, said again when the language changes. @type {any[]} */
let shownWarnings = [];

/**
 * Time-out warnings that concern this staff member, by kind, as the board shows them
 * (i18n.js replaceWarningGroups): a count and how many are not acknowledged, the first few —
 * those not yet acknowledged first — with their due date and an acknowledge button.
 * @param {any[]} warnings
 */
function renderWarnings(warnings) {
  shownWarnings = warnings;
  $("my-warnings").hidden = warnings.length === 0;
  const options = {
    shown: WARNINGS_PER_KIND, expanded: expandedWarnings, id: "my-warnings",
    ack: (/** @type {any} */ w) => connection?.send({ type: "warning.ack", warning: w.id }),
  };
  replaceWarningGroups($("warning-list"), warningGroups(warnings), options);
  showSince($("warning-list"));
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
    if (ticket.case?.correction) {
      li.classList.add("correction");
      const tag = document.createElement("span");
      tag.className = "badge correction";
      showText(tag, "staff.correction.tag", { number: ticket.case.number });
      item.append(" ", tag);
    }
    if (ticket.appointment) {
      // Checked in by appointment: served ahead of walk-ins of the same item (docs/appointments.md).
      li.classList.add("appointment");
      const tag = document.createElement("span");
      tag.className = "badge appointment";
      const at = new Date(ticket.appointment.starts_at);
      showText(tag, "staff.appointment.tag", { time: at.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", timeZone: DISTRICT_TZ }) });
      item.append(" ", tag);
    }
    const where = document.createElement("small");
    where.textContent = ticket.station.name;
    const wait = document.createElement("span");
    wait.className = "wait";
    const pick = document.createElement("button");
    pick.className = "button";
    showText(pick, "staff.queue.pick");
    pick.disabled = ticket.status !== "waiting";
    pick.onclick = () => {
      answering.summary = ticket;
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
    if (wait) showText(wait, "staff.queue.waiting", { time: duration(seconds) });
    li.classList.toggle("long", seconds > LONG_WAIT_SECONDS);
  });
  showSince($("warning-list"));
}

function onRing(/** @type {any} */ frame) {
  ringing = frame.ticket;
  $("ring").hidden = false;
  $("autopaused").hidden = true;
  $("idle").hidden = true; // "switch to available…" makes no sense while a call rings
  banner(null);
  // A correction session (补正) says so, with the case number, before it is answered.
  const correction = Boolean(ringing.case?.correction);
  $("ring").classList.toggle("correction", correction);
  showText($("ring-title"), correction ? "staff.ring.correction_title" : "staff.ring.title");
  // An appointment checked in says so too (served ahead of walk-ins of its item).
  const booked = ringing.appointment
    ? t("staff.appointment.tag", { time: new Date(ringing.appointment.starts_at).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", timeZone: DISTRICT_TZ }) })
    : "";
  // A call another console sent on (转办) says who, and from which department.
  const by = frame.transferred_by;
  const transferred = by && typeof by.name === "string" ? t("staff.ring.transferred", { name: by.name, department: by.department || "" }) : "";
  const said = [correction ? t("staff.ring.correction_case", { number: ringing.case.number, round: ringing.case.round }) : booked, transferred].filter(Boolean);
  $("ring-case").hidden = !said.length;
  $("ring-case").textContent = said.join(" · ");
  $("ring-ticket").textContent = ringing.number;
  $("ring-item").textContent = ringing.item.name;
  $("ring-station").textContent = ringing.station.name;
  showNetcheck($("ring-net"), ringing.netcheck);
  let left = frame.ring_seconds;
  const tick = () => {
    showText($("ring-countdown"), "staff.ring.countdown", { n: left });
    if (left % 2 === 0) { try { beep(300, 880); } catch { /* no audio device */ } }
    left -= 1;
    if (left >= 0) ringTimer = window.setTimeout(tick, 1000);
  };
  clearTimeout(ringTimer);
  tick();
}

function onRingCancelled(/** @type {any} */ frame) {
  // A cancel older than the ring shown (from another node, overtaken by the ticket's next
  // offer to this console) is about a ring already replaced: it stops nothing.
  if (ringing && frame.ticket === ringing.id && typeof frame.version === "number" && frame.version < ringing.version) return;
  stopRinging();
  // Why the ring went: not answered in time, or the resident cancelled (or their kiosk went).
  const why = { timeout: "staff.ring.missed", resident_cancelled: "staff.ring.resident_cancelled", kiosk_gone: "staff.ring.kiosk_gone" }[/** @type {string} */ (frame.reason)];
  if (why) {
    bannerForAWhile(why, frame.reason === "timeout" ? "warn" : "info");
  }
}

/**
 * Who is calling and about what: ticket number, item, 居民 and the station (the ticket as rung
 * or picked, or as the call's memory kept it after a reload).
 * @param {Visit} v @param {any} peer
 */
function showCaption(v, peer) {
  const summary = v.summary;
  const station = summary?.station?.name || peer.station || "";
  $("call-caption").textContent = summary
    ? t("staff.call.caption", { number: summary.number, item: summary.item?.name || "", station })
    : `${t("staff.call.resident")} · ${station}`;
}

function stopRinging() {
  ringing = null;
  clearTimeout(ringTimer);
  $("ring").hidden = true;
}

/** The call starts: a new visit (a call still held ends first; none does in the normal course). */
function onJoined(/** @type {any} */ frame) {
  stopRinging();
  endVisit();
  clearScreen();
  const v = currentVisit();
  const peer = frame.peers[0];
  // A reload mid-call: what the console showed of this call comes back (callmemory.js).
  const kept = memory.open(`${connection?.sessionId}/${frame.room}`);
  if (v.summary) memory.set("summary", v.summary);
  else if (kept.summary && (!v.ticket || kept.summary.id === v.ticket)) v.summary = kept.summary;
  v.peer = peer;
  showCaption(v, peer);
  const call = new Call(/** @type {Connection} */ (connection), { initiator: frame.initiator, peer: peer.session, stream: stream || undefined });
  const files = new FileChannel(call);
  v.call = call;
  v.files = files;
  $("self-view").srcObject = stream;
  $("call").hidden = false;
  showCallSide(true, true);
  $("idle").hidden = true;
  const { signal } = v.listeners;
  wireCall(call, /** @type {Connection} */ (connection), signal);
  call.reportStats();  // call.stats every 5 s (the server pushes call.quality back)
  showQuality({ level: null });
  showNetcheck($("peer-net"), v.summary?.netcheck);
  call.addEventListener("app", (/** @type {any} */ e) => {
    const data = e.detail;  // the resident's data: each field checked before it is used
    if (data.kind === "chat" && typeof data.text === "string") {
      memory.append("chat", addChat(data.text, "them"));
      showUnseenChat(data.text);
    }
    else if (data.kind === "screen") showRemoteScreen(call, data.on === true);
    else if (data.kind === "devices") showPeerDevices(data);
  }, { signal });
  files.addEventListener("progress", (/** @type {any} */ e) => onProgress(v, e.detail), { signal });
  files.addEventListener("file", (/** @type {any} */ e) => onFile(v, e.detail), { signal });
  addChatLines(kept.chat);
  openCasePanel(v).then(() => {
    if (visit === v && typeof kept.notice === "string" && kept.notice.startsWith("/notices/")) showNoticeLink(kept.notice);
  });
  if (frame.resumed) restoreFiles(v);
}

// ------------------------------------------------------------------ pre-review (材料预审)

async function caseApi(/** @type {string} */ path, /** @type {string} */ method = "GET", /** @type {any} */ body = undefined) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  if (!response.ok) throw Object.assign(new Error(data.error.code), data.error);
  return data;
}

/** The case the session (ticket) belongs to, if any: after a reload the console finds it again. */
async function caseOfTicket(/** @type {number} */ ticket) {
  if (!ticket) return null;
  try {
    const { cases } = await caseApi(`/api/v1/cases?ticket=${ticket}`);
    return cases.length ? cases[0].number : null;
  } catch {
    return null;
  }
}

async function openCasePanel(/** @type {Visit} */ v) {
  $("case-panel").hidden = false;
  $("case-actions").style.minHeight = "";
  $("notice-link").hidden = true;
  $("case-history").hidden = true;
  v.case = null;
  const number = v.summary?.case?.number || await caseOfTicket(v.ticket);
  if (visit !== v) return;  // the visit ended meanwhile
  if (number) {
    await loadCase(v, number);
  } else {
    $("case-form").hidden = false;
    $("case-number").textContent = "";
    showText($("case-status"), "");
    $("checklist").replaceChildren();
    $("verdict").hidden = true;
  }
}

/** Show the case's state: the verdict buttons while in pre-review, acceptance once it passed. */
function showCaseState(/** @type {Visit} */ v, /** @type {any} */ found) {
  v.case = found;
  $("case-number").textContent = found.number;
  showText($("case-status"), `case.state.${found.status.code}`);
  $("case-status").className = `badge state-${found.status.code}`;
  const reviewing = found.status.code === "pre_review";
  $("verdict").hidden = !reviewing;
  $("acceptance").hidden = found.status.code !== "awaiting_acceptance";
  showCaseResult(found);
  // Marks are made in pre-review only; after the verdict the checklist is a record (and the
  // round's "请重新核验" is done: the previous marks stay beside each material).
  if (!reviewing) {
    $("carry-ok").hidden = true;
    $("round-info").hidden = true;
  }
  document.querySelectorAll("#checklist button, #checklist select, #checklist input").forEach((el) => {
    const control = /** @type {any} */ (el);
    control.disabled = !reviewing;
    // A record shows what was chosen or typed, not empty pickers.
    if (!reviewing && control.tagName !== "BUTTON" && !control.value) control.hidden = true;
  });
}

/**
 * What the case's last step came to, beside the buttons that took it: 预审通过，待受理; 已受理 with
 * the date and time, and the promised completion date; 不予受理 with its reason; after a notice,
 * that it was issued and is on the resident's screen. Nothing while in pre-review (the buttons
 * are the news).
 * @param {any} found
 */
function showCaseResult(found) {
  const status = found.status.code;
  let text = "";
  if (status === "awaiting_acceptance") text = t("staff.case.result.awaiting_acceptance");
  else if (status === "correction_needed") text = t("staff.case.result.correction_needed", { round: found.rounds });
  else if (status === "accepted" && found.accepted_at) {
    const time = new Date(found.accepted_at).toLocaleString(lang, {
      year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: DISTRICT_TZ,
    });
    const due = found.time_limits?.promised_due;
    const gap = lang === "zh-CN" ? "" : " ";  // Chinese sentences follow each other without a space
    text = t("staff.case.result.accepted", { time })
      + (typeof due === "string" ? gap + t("staff.case.result.due", { date: calendarDate(due) }) : "");
  } else if (status === "not_accepted") text = t("staff.case.result.not_accepted", { reason: found.not_accepted_reason || "" });
  $("case-result").hidden = !text;
  $("case-result").textContent = text;
  $("case-result").dataset.status = status;
}


/**
 * Show a step's result without moving the side column: the verdict hides the checklist's empty
 * pickers (the rows above the buttons shrink) and swaps the buttons, and a column scrolled down
 * to them jumped — shorter content clamps the scroll — taking what the reviewer was looking at
 * away. The buttons' box is put back where it was on screen, and the focus, on a button just
 * hidden, goes to the result (without scrolling).
 * @param {() => void} change
 */
function keepCaseActionsInPlace(change) {
  const actions = $("case-actions");
  const { top: before, height } = actions.getBoundingClientRect();
  change();
  // The buttons give way to a shorter status line: the box keeps its height for the visit, or a
  // column scrolled to its bottom would get shorter and the browser would pull it down.
  if (actions.getBoundingClientRect().height < height) actions.style.minHeight = `${height}px`;
  const moved = actions.getBoundingClientRect().top - before;
  if (Math.abs(moved) >= 1) (sideScrollsInside() ? $("side-scroll") : window).scrollBy({ top: moved, behavior: "instant" });
  const focused = /** @type {HTMLElement | null} */ (document.activeElement);
  if (!$("case-result").hidden && (!focused || focused === document.body || !focused.offsetParent)) {
    $("case-result").focus({ preventScroll: true });
  }
}

/** Show the visit's case: its state and checklist (nothing if the visit ended meanwhile). */
async function loadCase(/** @type {Visit} */ v, /** @type {string} */ number) {
  const { case: found } = await caseApi(`/api/v1/cases/${number}`);
  if (visit !== v) return;
  $("case-form").hidden = true;
  $("case-history").hidden = false;
  $("case-history").querySelector("a").href = `/cases/${found.number}`;
  const { round, materials, previous } = await caseApi(`/api/v1/cases/${number}/checklist`);
  if (visit !== v) return;
  // A correction round: the previous round's marks stand beside each material for reference.
  $("round-info").hidden = !previous;
  if (previous) showText($("round-info"), "staff.case.round_info", { round, previous: previous.round });
  else showPlain($("round-info"), "");
  renderChecklist(v, materials, previous ? previous.materials : null);
  showCaseState(v, found);
}

/** @param {Visit} v @param {any[]} materials @param {any[] | null} previous */
function renderChecklist(v, materials, previous) {
  const before = new Map((previous || []).map((m) => [m.position, m]));
  $("checklist").replaceChildren(...materials.map((m) => {
    const li = document.createElement("li");
    li.dataset.position = String(m.position);
    li.dataset.status = m.status || "";
    li.dataset.requirement = m.requirement || "";
    const name = document.createElement("strong");
    name.textContent = m.name;
    li.append(name);
    const earlier = before.get(m.position);
    // Sent back by the last notice: checked again before a verdict, whatever its requirement.
    if (earlier && TO_CORRECT.includes(earlier.status)) li.dataset.asked = "1";
    if (earlier && earlier.status) {
      const note = document.createElement("p");
      note.className = "previous";
      note.dataset.previous = earlier.status;
      note.textContent = earlier.reason && earlier.status !== "ok"
        ? t("staff.case.previous_mark_reason", { status: t(`check.${earlier.status}`), reason: earlier.reason })
        : t("staff.case.previous_mark", { status: t(`check.${earlier.status}`) });
      li.append(note);
    }
    const buttons = document.createElement("div");
    buttons.className = "checks";
    buttons.setAttribute("role", "group");
    buttons.setAttribute("aria-label", m.name);
    for (const status of CHECKS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `chip check ${m.status === status ? "chosen" : ""}`;
      b.dataset.check = status;
      showText(b, `check.${status}`);
      b.setAttribute("aria-pressed", String(m.status === status));
      b.onclick = () => choose(status);
      buttons.append(b);
    }
    const choose = (/** @type {string} */ status) => {
      li.dataset.status = status;
      li.classList.remove("unmarked");
      buttons.querySelectorAll(".check").forEach((x) => {
        const on = /** @type {HTMLElement} */ (x).dataset.check === status;
        x.classList.toggle("chosen", on);
        x.setAttribute("aria-pressed", String(on));
      });
      box.hidden = status !== "needs_correction";
      showReasonMissing(li, false);
      showVerdictError(null);  // a message about the marks before this one no longer holds
      emphasiseVerdict();
      // 需补正 asks for its reason at once, in the box that opens under the material.
      if (!box.hidden && !reason.value && !typed.value) {
        // Focused where it is, the box brought just into view (focus() alone centred it,
        // moving the column by a third of the window).
        (reason.options.length > 1 ? reason : typed).focus({ preventScroll: true });
        box.scrollIntoView({ block: "nearest" });
      }
    };
    // The reason of a 需补正 mark, required: a box of its own under the material, open while
    // the mark is 需补正 — pick one of the item's common mistakes or type one.
    const box = document.createElement("fieldset");
    box.className = "reason-box";
    box.hidden = m.status !== "needs_correction";
    const legend = document.createElement("legend");
    showText(legend, "staff.case.reason_label");
    const reason = document.createElement("select");
    reason.className = "reason";
    reason.setAttribute("aria-label", t("staff.case.pick_reason_for", { name: m.name }));
    reason.append(catalogOption("staff.case.pick_reason"));
    for (const mistake of m.common_mistakes) reason.append(new Option(mistake, mistake));
    if (m.reason && !m.common_mistakes.includes(m.reason)) reason.append(new Option(m.reason, m.reason));
    reason.value = m.reason || "";
    // Or type a reason of one's own (it wins over the pick).
    const typed = document.createElement("input");
    typed.className = "typed-reason";
    typed.dataset.i18nPlaceholder = "staff.case.type_reason";  // said again after a language switch
    typed.placeholder = t("staff.case.type_reason");
    typed.setAttribute("aria-label", t("staff.case.type_reason_for", { name: m.name }));
    typed.maxLength = 500;
    const missing = document.createElement("p");
    missing.className = "reason-missing";
    missing.hidden = true;
    showText(missing, "staff.case.reason_missing");
    missing.id = `reason-missing-${m.position}`;
    if (m.common_mistakes.length === 0) reason.hidden = true;  // nothing to pick: type it
    box.append(legend, reason, typed, missing);
    const changed = () => { showReasonMissing(li, false); showVerdictError(null); };
    reason.addEventListener("change", () => { typed.value = ""; changed(); });
    typed.addEventListener("input", changed);
    const file = document.createElement("select");
    file.className = "file";
    file.setAttribute("aria-label", t("staff.case.attach_file_for", { name: m.name }));
    file.dataset.chosen = String(m.files[0] || "");
    li.append(buttons, box, file);
    /** @type {any} */ (li).choose = choose;
    return li;
  }));
  $("carry-ok").hidden = !previous || ![...before.values()].some((m) => m.status === "ok" || m.status === "not_applicable");
  refreshFileChoices(v);
  emphasiseVerdict();
}

/**
 * The verdict the marks point to is the filled button: 出具一次性告知书 once a material needs
 * correction or is missing, 预审通过 once every required one is marked and none does; neither
 * while the required ones are not all judged.
 */
function emphasiseVerdict() {
  const marks = [...document.querySelectorAll("#checklist li")].map((li) => /** @type {HTMLElement} */ (li).dataset);
  const bad = marks.some((m) => TO_CORRECT.includes(m.status));
  const judged = marks.filter((m) => m.requirement === "required").every((m) => m.status);
  $("verdict-correction").classList.toggle("primary", bad);
  $("verdict-passed").classList.toggle("primary", !bad && judged);
}

/**
 * What the resident sends while it is out of view (a long case panel above it) is said above
 * the chat's input: pressing it goes there. It goes once that is seen, by hand too: the whole
 * chat line, any part of a file's line.
 * @param {HTMLElement} target @param {string} text @param {boolean} whole
 */
function showUnseen(target, text, whole) {
  const box = target.getBoundingClientRect();
  // On a desk's window the side column scrolls inside itself, above the chat's input; on a
  // small one the page scrolls and the input sticks to the bottom of the window.
  const region = $("side-scroll");
  const inside = sideScrollsInside();
  const edges = region.getBoundingClientRect();
  const top = inside ? Math.max(0, edges.top) : 0;
  const bottom = Math.min(window.innerHeight, $("chat-form").getBoundingClientRect().top, inside ? edges.bottom : Infinity);
  const seen = whole ? box.top >= top - 1 && box.bottom <= bottom + 1 : box.bottom > top && box.top < bottom;
  if (seen) return;
  unseenTarget = target;
  unseenSeen?.disconnect();
  // Scrolled to by hand: what it said is in view (inside the side column, or above the input).
  // Nearly whole: a line flush with the column's edge measured 0.99 of itself, and stayed
  // "unseen" at threshold 1 (a walk scrolled to it with the wheel).
  const threshold = whole ? 0.95 : 0;
  unseenSeen = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting && e.intersectionRatio >= threshold)) $("chat-unseen").hidden = true;
  }, { root: inside ? region : null, threshold, rootMargin: inside ? "0px" : "0px 0px -80px 0px" });
  unseenSeen.observe(target);
  $("chat-unseen").textContent = text;
  $("chat-unseen").hidden = false;
}

/**
 * Whether the side column scrolls inside itself (a desk's window: call.css) rather than with
 * the page (a small window, where the chat's input sticks to the window's bottom).
 */
function sideScrollsInside() {
  return getComputedStyle($("side-scroll")).overflowY !== "visible";
}

/** Whether 在本窗口继续接听 was pressed (the console asked again to answer here). */
let askedAgain = false;

/** What the notice above the chat's input leads to. @type {HTMLElement | null} */
let unseenTarget = null;
/** @type {IntersectionObserver | null} */
let unseenSeen = null;

/** @param {string} text */
function showUnseenChat(text) {
  // The line itself (the newest: the list scrolls to it), not the whole list, which is seldom
  // all in view in a low window.
  const line = /** @type {HTMLElement} */ ($("chat").lastElementChild);
  showUnseen(line, t("staff.call.chat_unseen", { text }), true);
}

/** In a correction round, mark again as before every material that was fine last round. */
function carryOverPassedMarks() {
  document.querySelectorAll("#checklist li").forEach((li) => {
    const el = /** @type {any} */ (li);
    const earlier = el.querySelector(".previous")?.dataset.previous;
    if (!el.dataset.status && (earlier === "ok" || earlier === "not_applicable")) el.choose(earlier);
  });
}

/** Each material can point at a file the resident sent (kept on the server). */
function refreshFileChoices(/** @type {Visit} */ v) {
  const saved = [...v.received.values()].filter((f) => f.serverId);
  document.querySelectorAll("#checklist .file").forEach((el) => {
    const select = /** @type {HTMLSelectElement} */ (el);
    const chosen = select.value || select.dataset.chosen || "";
    select.replaceChildren(catalogOption("staff.case.attach_file"), ...saved.map((f) => new Option(f.name, String(f.serverId))));
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

/**
 * The materials a verdict needs marked and not yet marked, in checklist order: the required
 * ones and those the last notice sent back (a conditional one too: the resident was told to
 * bring it). @returns {HTMLElement[]}
 */
function unmarkedToCheck() {
  return /** @type {HTMLElement[]} */ ([...document.querySelectorAll("#checklist li")])
    .filter((li) => !li.dataset.status && (li.dataset.requirement === "required" || li.dataset.asked === "1"));
}

/** The first material marked 需补正 without a reason (picked or typed), or null. */
function markWithoutReason() {
  for (const li of document.querySelectorAll("#checklist li[data-status=needs_correction]")) {
    const typed = /** @type {HTMLInputElement} */ (li.querySelector(".typed-reason"));
    const pick = /** @type {HTMLSelectElement} */ (li.querySelector(".reason"));
    if (!typed.value.trim() && !pick.value) return { li, field: pick.hidden ? typed : pick };
  }
  return null;
}

/**
 * A 需补正 mark's reason box says its reason is missing (or no longer does).
 * @param {Element} li @param {boolean} on
 */
function showReasonMissing(li, on) {
  li.querySelector(".reason-box")?.classList.toggle("invalid", on);
  const missing = /** @type {HTMLElement | null} */ (li.querySelector(".reason-missing"));
  if (missing) missing.hidden = !on;
  li.querySelectorAll(".reason, .typed-reason").forEach((field) => {
    if (on) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", missing?.id || "");
    } else {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    }
  });
}

function showVerdictError(/** @type {any} */ error) {
  $("verdict-error").hidden = !error;
  $("verdict-error").textContent = error ? errorText(error, "staff.error.generic") : "";
}

async function issueVerdict(/** @type {string} */ verdict, /** @type {string} */ reason = "") {
  const v = visit;
  if (!v?.case) return;
  showVerdictError(null);
  const unexplained = markWithoutReason();
  if (unexplained) {  // named, its box marked and its reason field focused, before asking the server
    $("verdict-error").hidden = false;
    $("verdict-error").textContent = t("staff.case.reason_needed_for", { name: unexplained.li.querySelector("strong")?.textContent || "" });
    showReasonMissing(unexplained.li, true);
    unexplained.li.scrollIntoView({ block: "nearest" });
    unexplained.field.focus();
    return;
  }
  // 预审通过 needs every required material checked, and every one the last notice sent back:
  // name those still unmarked and mark their rows, before anything is sent (the marks made so
  // far are not sent half-way).
  const unmarked = verdict === "passed" ? unmarkedToCheck() : [];
  if (unmarked.length) {
    $("verdict-error").hidden = false;
    $("verdict-error").textContent = t("staff.case.unmarked_for", {
      names: unmarked.map((li) => t("staff.case.quoted", { name: li.querySelector("strong")?.textContent || "" })).join("、"),
      n: unmarked.length,
    });
    unmarked.forEach((li) => li.classList.add("unmarked"));
    unmarked[0].scrollIntoView({ block: "nearest" });
    /** @type {HTMLElement | null} */ (unmarked[0].querySelector(".check"))?.focus();
    return;
  }
  try {
    const marks = checklistMarks();
    if (marks.length) await caseApi(`/api/v1/cases/${v.case.number}/checklist`, "PUT", { materials: marks });
    const { case: result } = await caseApi(`/api/v1/cases/${v.case.number}/verdict`, "POST", { verdict, reason });
    if (visit !== v) return;  // the console moved on to the next resident meanwhile
    keepCaseActionsInPlace(() => showCaseState(v, result));
    tellKioskCase(v, result);
    if (result.notice) {
      showNoticeLink(result.notice.url);
      memory.set("notice", result.notice.url);
      v.call?.sendApp({ kind: "notice", url: result.notice.url, case: result.number });
    }
  } catch (error) {
    if (visit === v) showVerdictError(error);
  }
}

/** The link to the correction notice just issued (the server's own URL). @param {string} url */
function showNoticeLink(url) {
  $("notice-link").querySelector("a").href = url;
  $("notice-link").hidden = false;
}

/**
 * The resident's screen shows the case's new state (app "case", docs/protocol.md).
 * @param {Visit} v @param {any} result
 */
function tellKioskCase(v, result) {
  v.call?.sendApp({ kind: "case", number: result.number, status: result.status.code, due_date: result.time_limits?.promised_due || null });
}

/** Move the case on from the console: 待受理 → 已受理, or 不予受理 with a reason. */
async function moveCase(/** @type {string} */ to, /** @type {string} */ reason = "") {
  const v = visit;
  if (!v?.case) return;
  showVerdictError(null);
  try {
    const { case: result } = await caseApi(`/api/v1/cases/${v.case.number}/transitions`, "POST", { to, reason });
    if (visit !== v) return;
    keepCaseActionsInPlace(() => showCaseState(v, result));
    tellKioskCase(v, result);
  } catch (error) {
    if (visit === v) showVerdictError(error);
  }
}

/** 不予受理 asks for its reason in the page (a dialog), not in a browser prompt. */
function askRejectReason() {
  $("reject-reason").value = "";
  $("reject-error").hidden = true;
  $("reject-dialog").showModal();
  $("reject-reason").focus();
}

function confirmReject(/** @type {Event} */ e) {
  const submitter = /** @type {any} */ (e).submitter;
  if (submitter?.value !== "confirm") return;  // 取消 closes the dialog
  e.preventDefault();
  const reason = $("reject-reason").value.trim();
  if (!reason) {
    $("reject-error").hidden = false;
    showText($("reject-error"), "staff.case.reject_reason_required");
    return;
  }
  $("reject-dialog").close();
  if (visit?.case?.status.code === "pre_review") issueVerdict("not_accepted", reason);
  else moveCase("not_accepted", reason);
}

/**
 * The applicant's details checked in the page first, in the reader's language: every field
 * that is wrong, in the form's order (one at a time took a press per mistake).
 */
function applicantErrors(/** @type {string} */ name, /** @type {string} */ phone, /** @type {string} */ id) {
  const problems = [];
  if (!name) problems.push({ field: "applicant-name", code: "bad_applicant" });
  if (!/^1\d{10}$/.test(phone)) problems.push({ field: "applicant-phone", code: "bad_phone" });
  const upper = id.toUpperCase();
  const valid = /^\d{17}[\dX]$/.test(upper)
    && "10X98765432"[ID_WEIGHTS.reduce((sum, w, i) => sum + w * Number(upper[i]), 0) % 11] === upper[17];
  if (!valid) problems.push({ field: "applicant-id", code: "bad_id_number" });
  return problems;
}

async function openCase(/** @type {Event} */ e) {
  e.preventDefault();
  const name = $("applicant-name").value.trim();
  const phone = $("applicant-phone").value.trim();
  const id = $("applicant-id").value.trim();
  ["applicant-name", "applicant-phone", "applicant-id"].forEach((f) => $(f).removeAttribute("aria-invalid"));
  const problems = applicantErrors(name, phone, id);
  if (problems.length) {
    problems.forEach((problem) => $(problem.field).setAttribute("aria-invalid", "true"));
    $(problems[0].field).focus();
    $("case-error").hidden = false;
    $("case-error").textContent = problems.map((problem) => errorText(problem, "staff.error.generic")).join(lang === "zh-CN" ? "" : " ");
    return;
  }
  const v = visit;
  if (!v) return;
  // Working, said on the button (a second or two on a busy server showed nothing happening).
  showText($("case-open"), "staff.case.opening");
  $("case-open").disabled = true;
  try {
    const { case: opened } = await caseApi("/api/v1/cases", "POST", {
      ticket: v.summary?.id || v.ticket,  // the case is for the ticket's item
      applicant: { name, phone, id_number: id },
    });
    if (visit !== v) return;
    $("case-error").hidden = true;
    ["applicant-name", "applicant-phone", "applicant-id"].forEach((f) => { $(f).value = ""; });
    await loadCase(v, opened.number);
  } catch (error) {
    if (visit !== v) return;
    $("case-error").hidden = false;
    $("case-error").textContent = errorText(error, "staff.error.generic");
  } finally {
    showText($("case-open"), "staff.case.open");
    $("case-open").disabled = false;
  }
}

// ------------------------------------------------------------------ the resident's devices

/** The kiosk said it has no camera and/or no microphone: a badge, and the chat offered. */
function showPeerDevices(/** @type {any} */ devices) {
  const noCamera = devices.camera === false;
  const noMicrophone = devices.microphone === false;
  const key = noCamera && noMicrophone ? "staff.peer.no_camera_no_microphone"
    : noCamera ? "staff.peer.no_camera" : noMicrophone ? "staff.peer.no_microphone" : "";
  $("peer-devices").hidden = !key;
  if (key) showText($("peer-devices"), key);
  $("chat-hint").hidden = !key;
  if (key) {
    showText($("chat-hint"), noMicrophone ? "staff.call.chat_hint_no_microphone" : "staff.call.chat_hint_no_camera");
    $("chat-form").scrollIntoView({ block: "nearest" });
    $("chat-input").focus();
  }
}

// ------------------------------------------------------------------ network quality

/**
 * What the resident's pre-call check found (ticket `netcheck`), in one line: verdict, then its
 * figures; hidden when the kiosk made none. @param {HTMLElement} target @param {any} check
 */
function showNetcheck(target, check) {
  const text = netcheckText(check);
  target.hidden = !text;
  target.dataset.verdict = text?.verdict || "";
  target.textContent = text ? [text.title, text.detail].filter(Boolean).join(" · ") : "";
}

/** A side's shown level as a number (good 0 … poor 2; -1 without figures). @param {any} sample */
function sideLevel(sample) {
  return LEVELS.indexOf(sample?.shown_level ?? sample?.level);
}

/**
 * The call's signal strength (`call.quality`: the worse of both sides' latest summaries) as
 * bars with a word, the figures under it, and the pre-call check beside them.
 * @param {any} frame
 */
function showQuality(frame) {
  if (visit) visit.quality = frame;
  const level = typeof frame.level === "string" ? frame.level : null;
  $("signal").hidden = false;
  // A level held after a bad moment (it gets better only after 15 s of better figures) while
  // the latest figures are fine already says so, rather than contradicting them.
  const latest = [frame.kiosk?.level, frame.staff?.level].filter((l) => LEVELS.includes(l));
  const recovering = level !== null && latest.length > 0 && latest.every((l) => LEVELS.indexOf(l) < LEVELS.indexOf(level));
  const label = t(level ? `staff.quality.${level}` : "staff.quality.none") + (recovering ? t("staff.quality.recovering") : "");
  renderBars($("signal"), level, label);
  // The figures of the side whose level the bars show (the resident's, unless this side's is
  // worse): bars saying 信号差 over the resident's good figures contradicted themselves.
  const side = sideLevel(frame.staff) > sideLevel(frame.kiosk) ? "staff" : "kiosk";
  const figures = sampleText(frame[side]);
  const detail = figures && t("staff.quality.detail_side", { side: t(`staff.quality.side.${side}`), detail: figures });
  $("signal").title = detail;
  // Shown from the call's start (measuring, until the first figures): the line appearing a
  // few seconds in pushed the call's buttons down under the pointer.
  $("signal-detail").hidden = false;
  $("signal-detail").textContent = detail || t("staff.quality.detail_pending");
  if (frame.netcheck) showNetcheck($("peer-net"), frame.netcheck);  // else: as the ticket said
}

// ------------------------------------------------------------------ end of a call, wrap-up

/** The call is over: `left` said so (its `reason`), or the session holding it is gone (none). */
function onLeft(/** @type {any} */ frame = {}) {
  closeHangupConfirm();
  hangingUp(false, "staff.call.hangup");
  if (visit) {
    visit.endReason = frame.reason || "";
    endCall(visit);
  }
  $("call").hidden = true;
  // A chat line not seen yet is in the chat list; its pointer would cover the wrap-up. What
  // the chat hint said of the resident's microphone or camera held for the call only.
  $("chat-unseen").hidden = true;
  $("chat-hint").hidden = true;
  $("chat-form").hidden = true;
  showText($("share-screen"), "staff.call.share_screen");
  if ($("transfer-dialog").open) $("transfer-dialog").close();
}

/** The wrap-up form with its countdown (after a reload in the wrap-up, the visit starts here). */
function onWrapup(/** @type {any} */ frame) {
  const v = currentVisit();
  $("wrapup").hidden = false;
  // Into view: the page may be scrolled down to the case's buttons, leaving the wrap-up's title,
  // countdown and outcome above the screen.
  $("wrapup").scrollIntoView({ block: "nearest" });
  $("note").value = "";
  // Why the call ended (居民已挂断, 网络中断 …), as `left` said or, after a reload, the frame.
  const reason = frame.end_reason || v.endReason || "";
  const known = ["kiosk_hangup", "staff_hangup", "peer_gone", "media_failed"].includes(reason);
  $("wrapup-reason").hidden = !known;
  if (known) showText($("wrapup-reason"), `staff.wrapup.ended.${reason}`);
  // The server proposes what the session implies (cloudhelp/outcomes.py); it records the
  // same outcome if the wrap-up times out. Without evidence (其他, its neutral proposal) the
  // staff member chooses: a quick 完成整理 would otherwise record 其他 for a resolved visit.
  const proposed = frame.outcome && frame.outcome !== "other" ? frame.outcome : "";
  $("outcome").value = proposed;
  $("outcome").querySelector("option[value='']").hidden = proposed !== "";
  $("outcome-error").hidden = true;
  let left = frame.seconds;
  clearTimeout(v.wrapupTimer);
  const tick = () => {
    showText($("wrapup-left"), "staff.wrapup.left", { n: left });
    if (left-- > 0 && !$("wrapup").hidden) v.wrapupTimer = window.setTimeout(tick, 1000);
  };
  tick();
}

/**
 * The call is over: the listeners put on the call and its file channel are detached (a late
 * message or file of this call reaches nothing), the call is closed, the resident's tracks and
 * the screen this console shared are stopped. The console's own camera stays for the next
 * call; the visit's files, chat and case stay for the wrap-up.
 * @param {Visit} v
 */
function endCall(v) {
  v.listeners.abort();
  const call = v.call;
  v.call = null;
  v.files = null;
  if (call) {
    call.close();
    for (const remote of Object.values(call.remoteStreams)) remote.getTracks().forEach((track) => track.stop());
  }
  if (v.screen) {
    v.screen.onended = null;
    v.screen.stop();
    v.screen = null;
  }
}

/** The visit is over: its call ended if it was not, its object URLs revoked, its timer cleared. */
function endVisit() {
  const v = visit;
  if (!v) return;
  visit = null;
  endCall(v);
  $("chat-unseen").hidden = true;
  v.urls.forEach((url) => URL.revokeObjectURL(url));
  v.urls = [];
  clearTimeout(v.wrapupTimer);
}

/** Once a resident's wrap-up is over (or at sign-in) the visit ends and the screen is cleared. */
function clearCallWork() {
  endVisit();
  answering = noTicket();
  clearScreen();
}

/**
 * Nothing of the previous resident stays on screen: checklist, case, files (their object URLs
 * are revoked with the visit, so none can be offered for the next case), chat, video.
 */
function clearScreen() {
  $("files").replaceChildren();
  $("chat").replaceChildren();
  $("chat-input").value = "";
  $("checklist").replaceChildren();
  $("case-panel").hidden = true;
  $("case-form").hidden = true;
  $("case-form").reset();
  $("case-error").hidden = true;
  $("case-number").textContent = "";
  showText($("case-status"), "");
  $("round-info").hidden = true;
  $("carry-ok").hidden = true;
  $("verdict").hidden = true;
  $("acceptance").hidden = true;
  $("case-result").hidden = true;
  $("case-result").textContent = "";
  showVerdictError(null);
  $("notice-link").hidden = true;
  $("case-history").hidden = true;
  $("peer-devices").hidden = true;
  for (const id of ["signal", "signal-detail", "peer-net"]) $(id).hidden = true;
  $("chat-hint").hidden = true;
  $("wrapup").hidden = true;
  for (const id of ["remote-main", "remote-corner", "remote-audio"]) $(id).srcObject = null;
  document.body.classList.remove("screen-shared");
}

// ------------------------------------------------------------------ transfer

/** Departments with who is on duty and available now; the choice is confirmed in a dialog. */
async function openTransfer() {
  $("transfer-error").hidden = true;
  let targets = [];
  try {
    targets = (await caseApi("/api/v1/console/transfer-targets")).departments;
  } catch (error) {
    errorBanner(error, "staff.error.generic");
    return;
  }
  const options = targets.map((/** @type {any} */ d) => {
    const here = d.current;
    const label = document.createElement("label");
    label.className = `transfer-target ${d.available ? "" : "nobody"}`;
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "department";
    radio.value = d.code;
    radio.disabled = here;
    const name = document.createElement("strong");
    name.textContent = d.name;
    const who = document.createElement("span");
    who.className = "availability";
    who.textContent = here ? t("staff.transfer.current")
      : d.available ? t("staff.transfer.available", { n: d.available, waiting: d.waiting })
      : d.on_duty ? t("staff.transfer.busy", { n: d.on_duty, waiting: d.waiting })
      : t("staff.transfer.nobody");
    label.append(radio, name, who);
    return label;
  });
  const legend = $("transfer-list").querySelector("legend");
  $("transfer-list").replaceChildren(legend, ...options);
  $("transfer-dialog").showModal();
}

function confirmTransfer(/** @type {Event} */ e) {
  const submitter = /** @type {any} */ (e).submitter;
  if (submitter?.value !== "confirm") return;
  e.preventDefault();
  const chosen = /** @type {HTMLInputElement | null} */ ($("transfer-list").querySelector("input:checked"));
  if (!chosen) {
    $("transfer-error").hidden = false;
    showText($("transfer-error"), "staff.transfer.pick");
    return;
  }
  $("transfer-dialog").close();
  connection?.send({ type: "ticket.transfer", department: chosen.value });
}

// ------------------------------------------------------------------ files

/** The visit's line in the files list for a transfer. @param {Visit} v @param {string} id */
function fileItem(v, id) {
  let li = v.fileItems.get(id);
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = id;
    li.innerHTML = '<span class="label"></span><progress max="100" value="0"></progress>';
    v.fileItems.set(id, li);
    $("files").prepend(li);
  }
  return li;
}

function onProgress(/** @type {Visit} */ v, /** @type {any} */ p) {
  const li = fileItem(v, p.id);
  const percent = Math.floor((100 * p.done) / Math.max(1, p.size));
  /** @type {any} */ (li.querySelector("progress")).value = percent;
  const label = /** @type {HTMLElement} */ (li.querySelector(".label"));
  if (p.direction === "in") showText(label, "staff.call.receiving", { name: p.name, percent });
  else showPlain(label, `${p.name} ${percent}%`);
}

/**
 * A file from the resident, kept on the server against the ticket: a photo or PDF — told by its
 * first bytes, its blob typed so (protocol.js sniffType) — is shown inline; anything else is
 * listed with its name and size, not shown, with a download link for a blob of type
 * application/octet-stream (and kept as such: the server only ever serves it as a download).
 * @param {Visit} v @param {any} file
 */
function onFile(v, file) {
  v.received.set(file.id, file);
  const li = fileItem(v, file.id);
  li.querySelector("progress")?.remove();
  const label = /** @type {any} */ (li.querySelector(".label"));
  li.dataset.sha256 = file.sha256;
  if (!file.ok) {
    showText(label, "staff.call.checksum_failed", { name: file.name });
    li.className = "error";
    return;
  }
  showPlain(label, file.name);
  const url = URL.createObjectURL(file.blob);
  v.urls.push(url);
  if (file.type) showFile(li, file, url);
  else showNotPreviewable(li, file, url);
  keepReceived(v, file, li);
  showUnseen(li, t("staff.call.file_unseen", { name: file.name }), false);
}

/**
 * A file that is no photo or PDF on its line: its name and size, and a link that saves it
 * (never opens it).
 * @param {HTMLElement} li @param {{name: string, size: number}} file @param {string} url
 */
function showNotPreviewable(li, file, url) {
  /** @type {any} */ (li.querySelector(".label")).replaceChildren(notPreviewable(file));
  li.append(downloadLink(url, file.name));
}

/**
 * A photo or PDF inline on its line, with a link that saves it.
 * @param {HTMLElement} li @param {{name: string, type: string}} file @param {string} url
 */
function showFile(li, file, url) {
  if (file.type.startsWith("image/")) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = file.name;
    li.append(img);
  } else if (file.type === "application/pdf") {
    // Not sandboxed: Chromium shows no PDF in a sandboxed frame. The blob's type is the sniffed
    // application/pdf, so the frame only ever holds Chromium's PDF viewer (docs/browser.md).
    const frame = document.createElement("iframe");
    frame.src = url;
    frame.title = file.name;
    li.append(frame);
  }
  li.append(downloadLink(url, file.name));
}

/**
 * A console reloaded mid-call lists the call's files again from the server, where each was
 * kept when it arrived or was sent (what was still on its way is lost with the page): the
 * resident's photos and PDFs inline, other files by name with a link that downloads them, all
 * ready to attach to a material; this console's by name.
 * @param {Visit} v
 */
async function restoreFiles(v) {
  let files = [];
  try {
    ({ files } = await caseApi(`/api/v1/tickets/${v.ticket}/files`));
  } catch {
    return;  // the files stay on the server; the case page lists them
  }
  if (visit !== v) return;
  for (const kept of files) {
    const id = `kept-${kept.id}`;
    if (v.fileItems.has(id) || kept.purged_at) continue;
    const li = fileItem(v, id);
    li.querySelector("progress")?.remove();
    const label = /** @type {HTMLElement} */ (li.querySelector(".label"));
    if (kept.sender === "staff") showText(label, "staff.call.sent_file", { name: kept.name });
    else showPlain(label, kept.name);
    if (kept.sender === "kiosk") {
      const file = { id, name: kept.name, type: shownType(kept.content_type), size: kept.size, sha256: kept.sha256, serverId: kept.id, ok: true };
      v.received.set(id, file);
      li.dataset.sha256 = kept.sha256;
      if (file.type) showFile(li, file, kept.url);
      else showNotPreviewable(li, file, kept.url);
    }
    markSaved(li);
  }
  refreshFileChoices(v);
}

/**
 * Keep a received file on the server against the ticket; if that fails, 重试 uploads it again
 * (the file stays shown as it is).
 * @param {Visit} v @param {any} file @param {HTMLElement} li
 */
async function keepReceived(v, file, li) {
  if (!v.ticket) return;
  try {
    const stored = await uploadFile(v.ticket, file, "kiosk");
    file.serverId = stored.id;
    if (visit === v) refreshFileChoices(v);
    markSaved(li);
  } catch (error) {
    offerRetry(li, () => keepReceived(v, file, li));
  }
}

/** Send the files picked, one after another, each kept on the server (keepSent). @param {File[]} picked */
async function sendFiles(picked) {
  for (const file of picked) {
    const v = visit;
    if (!v?.files) continue;
    let sent;
    try {
      sent = await v.files.send(file, file.name);
    } catch (error) {
      console.error("file transfer failed", file.name, error);
      const li = fileItem(v, `failed-${Date.now()}`);
      li.querySelector("progress")?.remove();
      li.className = "error";
      const key = /** @type {Error} */ (error).message === "file_too_large" ? "staff.call.too_large" : "staff.call.send_failed";
      showText(/** @type {HTMLElement} */ (li.querySelector(".label")), key, { name: file.name });
      continue;
    }
    // Sent: the line says so, its progress bar gone (a full bar read as still sending).
    const li = v.fileItems.get(sent.id);
    li?.querySelector("progress")?.remove();
    const label = li?.querySelector(".label");
    if (label) showText(label, "staff.call.sent", { name: file.name });
    if (v.ticket) await keepSent(v, file, sent);
  }
}

/**
 * Keep a file this console sent on the server against the ticket (a kiosk may not store staff
 * files). Its type is told by its first bytes (sniffType), as for received files — never the
 * type the file picker guessed from its name, so a PNG named .html is kept as the PNG it is and
 * HTML named .png (like any file that is no photo or PDF) as application/octet-stream, which the
 * server only ever serves as a download. Kept, its line says so; if the upload fails, 重试
 * uploads it again.
 * @param {Visit} v @param {File} file @param {{id: string, sha256: string}} sent
 */
async function keepSent(v, file, sent) {
  const type = sniffType(new Uint8Array(await file.slice(0, 16).arrayBuffer())) || OTHER_TYPE;
  const li = v.fileItems.get(sent.id);
  try {
    await uploadFile(v.ticket, { name: file.name, blob: file.slice(0, file.size, type), sha256: sent.sha256 }, "staff");
    if (li) markSaved(li);
  } catch (error) {
    if (li) offerRetry(li, () => keepSent(v, file, sent));
  }
}

/** A file's line says it is kept on the server. @param {HTMLElement} li */
function markSaved(li) {
  const saved = document.createElement("span");
  saved.className = "badge ok";
  showText(saved, "common.saved");
  li.append(saved);
  li.dataset.saved = "1";
}

/** A 重试 button on a file's line that runs `again` once. @param {HTMLElement} li @param {() => void} again */
function offerRetry(li, again) {
  const retry = document.createElement("button");
  retry.className = "button";
  showText(retry, "common.retry");
  retry.onclick = () => { retry.remove(); again(); };
  li.append(retry);
}

/** A link that saves a received file (never opens it). @param {string} url @param {string} name */
function downloadLink(url, name) {
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  showText(link, "common.download");
  return link;
}

/** Share this console's screen in the call, or stop sharing it. */
async function toggleScreen() {
  const v = visit;
  const call = v?.call;
  if (!v || !call) return;
  if (v.screen) {
    v.screen.stop();
    v.screen = null;
    await call.shareScreen(null);
    showText($("share-screen"), "staff.call.share_screen");
    return;
  }
  const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
  const track = display.getVideoTracks()[0];
  if (v.call !== call) {  // the call ended while the screen was being chosen
    track.stop();
    return;
  }
  v.screen = track;
  track.onended = () => { if (v.screen === track) toggleScreen(); };
  await call.shareScreen(track);
  showText($("share-screen"), "staff.call.stop_share");
}

function wire() {
  $("login-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); signIn($("username").value.trim(), $("password").value); };
  $("take-back").onclick = () => {
    askedAgain = true;
    $("replaced").hidden = true;
    connection?.connect();
  };
  $("toggle-state").onclick = () => connection?.send({ type: "staff.status", status: presence === "available" ? "away" : "available" });
  $("ring-accept").onclick = () => {
    if (!ringing) return;
    answering.summary = ringing;
    connection?.send({ type: "ring.accept", ticket: ringing.id });
  };
  $("ring-decline").onclick = () => ringing && connection?.send({ type: "ring.decline", ticket: ringing.id });
  // 挂断 asks first, as the kiosk does.
  closeHangupConfirm = askBeforeHangingUp({
    connection: () => connection,
    inCall: () => Boolean(visit?.call),
    onCallScreen: () => !$("call").hidden,
    idleKey: "staff.call.hangup",
  });
  $("transfer").onclick = () => { openTransfer(); };
  $("transfer-form").onsubmit = confirmTransfer;
  $("resume").onclick = () => connection?.send({ type: "staff.status", status: "available" });
  $("share-screen").onclick = () => toggleScreen().catch(() => {});
  $("send-file").onclick = () => $("file-input").click();
  $("file-input").onchange = async () => {
    await sendFiles([...$("file-input").files]);
    $("file-input").value = "";
  };
  $("chat-unseen").onclick = () => {
    (unseenTarget || $("chat")).scrollIntoView({ block: "end", behavior: "smooth" });
    $("chat-unseen").hidden = true;
    // The keyboard's place is where the answer is typed (the notice it was on is gone).
    if (!$("chat-form").hidden) $("chat-input").focus({ preventScroll: true });
  };
  $("chat-form").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const text = $("chat-input").value.trim();
    const call = visit?.call;
    if (!text || !call) return;
    call.sendApp({ kind: "chat", text });
    memory.append("chat", addChat(text, "me"));
    $("chat-input").value = "";
    // An answer in the chat is a sign the resident's line was read: its notice goes (it stayed
    // above the input after the reply, a README walk found). A file's notice stays.
    if (unseenTarget && $("chat").contains(unseenTarget)) $("chat-unseen").hidden = true;
    // On a small window the line just sent is shown above the input pinned to the window's
    // bottom (the chat may be under it). On a desk's window the side column stays where the
    // reviewer is (the checklist, say: a walk lost it at each reply); the input is not over
    // anything, and the list shows its newest line when scrolled to.
    const chat = $("chat");
    if (!sideScrollsInside() && chat.getBoundingClientRect().bottom > $("chat-form").getBoundingClientRect().top + 1) {
      chat.scrollIntoView({ block: "end" });
    }
  };
  $("outcome").onchange = () => { if ($("outcome").value) $("outcome-error").hidden = true; };
  $("case-form").onsubmit = openCase;
  $("verdict-correction").onclick = () => issueVerdict("correction_needed");
  $("verdict-passed").onclick = () => issueVerdict("passed");
  $("verdict-reject").onclick = askRejectReason;
  $("case-accept").onclick = () => moveCase("accepted");
  $("case-reject").onclick = askRejectReason;
  $("carry-ok").onclick = carryOverPassedMarks;
  $("reject-form").onsubmit = confirmReject;
  $("wrapup").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!$("outcome").value) {
      $("outcome-error").hidden = false;
      $("outcome").focus();
      return;
    }
    connection?.send({ type: "wrapup.done", outcome: $("outcome").value, note: $("note").value });
    $("wrapup").hidden = true;
  };
  // 退出 is a form (templates/_signout.html): the server signs out and sends the page back.
  $("logout").onclick = () => {
    connection?.close();
    memory.forget();
  };
  $("lang").onclick = async () => {
    await setLang(lang === "zh-CN" ? "en" : "zh-CN");
    $("idle").textContent = idleLine();
    // Texts set with showText (the state, its button …) setLang said again; what was drawn
    // from the server's words is drawn again.
    if (visit?.case) showCaseResult(visit.case);
    if (visit?.call) {  // the caption and the signal, as last shown
      showCaption(visit, visit.peer);
      showQuality(visit.quality);
      if (!visit.quality.netcheck) showNetcheck($("peer-net"), visit.summary?.netcheck);
    }
    renderWarnings(shownWarnings);
  };
  setInterval(tickQueue, 1000);
}

Object.assign(window, {
  cloudhelp: { get connection() { return connection; }, get call() { return visit?.call || null; }, get visit() { return visit; } },
});

await setLang(lang);
wire();
/** Who is signed in (null: nobody); while the service is out (503) the console says so and asks again. */
async function whoAmI() {
  for (;;) {
    const response = await fetchMe();
    if (response?.status !== 503) return response;
    banner("error.service_unavailable");
    const seconds = Number(response.headers.get("Retry-After")) || 5;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }
}

const me = await whoAmI();
banner(null);
if (me?.ok) open((await me.json()).staff);
else showLogin();
