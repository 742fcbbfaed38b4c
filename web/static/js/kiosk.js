// The kiosk page (社区驿站自助终端): find an item, check devices, queue, call, send documents.
// @ts-check
import { Call, Connection, FileChannel, networkCheck, shownType } from "./protocol.js";
import { addChat, addChatLines, askBeforeHangingUp, banner, bannerForAWhile, bannerSays, errorBanner, hangingUp, notPreviewable, showRemoteScreen, wireCall } from "./callview.js";
import { CallMemory } from "./callmemory.js";
import { DISTRICT_TZ, beep, calendarDate, clockTime, duration, errorText, hasText, lang, phrased, setLang, showPlain, showStored, showText, t } from "./i18n.js";

const CREDENTIAL_KEY = "cloudhelp.kiosk.credential";
const ELDERLY_KEY = "cloudhelp.elderly";
const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
/** Idle limits from the server's settings (kiosk_idle_seconds, kiosk_idle_warning_seconds). */
const IDLE = (() => {
  const meta = /** @type {HTMLMetaElement | null} */ (document.querySelector("meta[name=cloudhelp-kiosk]"));
  return {
    seconds: Number(meta?.dataset.idleSeconds) || 90,
    warning: Number(meta?.dataset.idleWarningSeconds) || 20,
  };
})();
/** The thank-you screen asks "还在吗？" after this long without a touch (a touch restarts it). */
const DONE_SECONDS = 30;
/**
 * What the kiosk showed of the call in progress, shown again by a reload mid-call
 * (callmemory.js): when it was answered (通话时长), the item, chat lines, the notice, the case's
 * result. The call's files come back from the server instead (restoreFiles).
 */
const memory = new CallMemory("cloudhelp.kiosk.call");
const TAKE_RETRY_MS = 5000;  // a ticket refused while the service is out is asked for again after this
/** Tickets this kiosk has finished with (cancelled, ended): late queue frames about them are ignored. */
const finishedTickets = new Set();
/** The correction notice pages this kiosk shows: /notices/<case number>/<round> on this server. */
const NOTICE_PATH = /^\/notices\/[A-Za-z0-9][A-Za-z0-9-]{0,39}\/[1-9][0-9]{0,8}$/;
/**
 * The lines of the files sent and received, by transfer id. Ids of received files are the
 * peer's choice: they are looked up here, never put into a CSS selector.
 * @type {{sent: Map<string, HTMLElement>, received: Map<string, HTMLElement>}}
 */
const fileLines = { sent: new Map(), received: new Map() };

/** Everything about the current resident; cleared when the kiosk returns home. */
let visit = fresh();
/** @type {Connection | null} */
let connection = null;
/** Closes the 挂断 question (callview.askBeforeHangingUp), once the page is wired. */
let closeHangupConfirm = () => {};
/** This kiosk's station (from the welcome frame): where a certificate is sent for collection. */
let kioskStation = "";
/** The busy screen's 在本窗口使用 was pressed: its answer is a second look, said as such. */
let askedAgain = false;

function fresh() {
  return {
    item: /** @type {any} */ (null),
    stream: /** @type {MediaStream | null} */ (null),
    ticket: /** @type {any} */ (null),
    call: /** @type {Call | null} */ (null),
    files: /** @type {FileChannel | null} */ (null),
    urls: /** @type {string[]} */ ([]),
    screen: /** @type {MediaStreamTrack | null} */ (null),
    cameras: /** @type {MediaDeviceInfo[]} */ ([]),
    cameraIndex: 0,
    meter: /** @type {AudioContext | null} */ (null),
    /** Which devices work, told to staff when the call starts (docs/protocol.md, app "devices"). */
    devices: { camera: false, microphone: false },
    /** Where the device check's 返回 leads: the item page, or home after a correction lookup. */
    checkFrom: "item",
    correction: /** @type {string | null} */ (null),
    /** The case lookup's grant, shown with ticket.take {case} (docs/protocol.md). */
    grant: /** @type {string | null} */ (null),
    caseNumber: /** @type {string | null} */ (null),
    /** The booking code checked in with ticket.take {appointment} (docs/appointments.md). */
    appointment: /** @type {string | null} */ (null),
    appointmentTime: "",
    noticeUrl: /** @type {string | null} */ (null),
    /** What the staff member decided in this call (已通过预审 / 已受理 …), app "case". */
    caseResult: /** @type {string | null} */ (null),
    /** The status the result stands for (correction_needed, accepted …), for its colour. */
    caseStatus: "",
    /** The staff side's last word on the case (app "case"), said again in a new language. */
    caseData: /** @type {any} */ (null),
    /** The pre-call network check: null before it starts, then its verdict (docs/protocol.md). */
    network: /** @type {string | null} */ (null),
    /** Stops a check still running when the call starts (its own figures replace it). */
    networkStop: /** @type {AbortController | null} */ (null),
    /** The staff member in the call (joined), who their chat lines are from; "" unnamed. */
    staffName: "",
    /** The item the call is about, as the call screen names it. */
    callItem: "",
    /** The highest ticket version applied (frames never go backwards). */
    ticketVersion: -1,
    rating: /** @type {{level: number | null, reasons: string[], sent: boolean}} */ ({ level: null, reasons: [], sent: false }),
  };
}

/** Under the call: who serves the resident, the item and, in a correction session, its case
 * (as the waiting screen said); said again when the language changes. */
function showCallWith() {
  const helper = t(visit.staffName ? "kiosk.call.with" : "kiosk.call.with_staff", { name: visit.staffName });
  const correction = visit.correction || (visit.ticket?.case?.correction ? visit.ticket.case.number : null);
  const lines = [helper, visit.callItem, correction ? t("kiosk.call.correction", { number: correction }) : ""];
  $("call-with").textContent = lines.filter(Boolean).join("\n");
}

/** Show one screen, from its top (a screen never opens scrolled half-way). @param {string} name */
function show(name) {
  document.querySelectorAll("[data-screen]").forEach((el) => {
    /** @type {HTMLElement} */ (el).hidden = /** @type {HTMLElement} */ (el).dataset.screen !== name;
  });
  const changed = document.body.dataset.current !== name;
  document.body.dataset.current = name;
  if (changed) window.scrollTo(0, 0);
  idle.restart();
}

/** Catalog text for a key, or null when the catalog has none. @param {string} key @param {Record<string, any>} [values] */
function known(key, values) {
  return hasText(key) ? t(key, values) : null;
}


// ------------------------------------------------------------------ idle reset ("还在吗？")

/**
 * With nobody touching the kiosk it asks "还在吗？", counts down, and then goes home: every
 * track stops, the visit, language and large-text mode are cleared. Waiting in the queue and
 * calls are never interrupted; the home screen counts only when something of a resident is on it.
 * One deadline is the countdown: the thank-you screen's line and "还在吗？" both show what is
 * left of it.
 */
const idle = {
  timer: 0,
  /** When the kiosk goes home unless touched (performance.now() ms), or 0 when it never does. */
  deadline: 0,
  /** Seconds without a touch before "还在吗？" on the current screen, or null for never. */
  limit() {
    const screen = document.body.dataset.current;
    if (!screen || screen === "enrol" || screen === "call" || screen === "busy") return null;
    if (screen === "waiting") {  // a ticket in the queue waits as long as it takes; no ticket does not
      const status = visit.ticket?.status;
      return status === "waiting" || status === "offered" || status === "connected" ? null : IDLE.seconds;
    }
    if (screen === "done") return DONE_SECONDS;
    if (screen === "home" && !residentOnHome()) return null;
    return IDLE.seconds;
  },
  restart() {
    clearTimeout(idle.timer);
    $("idle-overlay").hidden = true;
    const limit = idle.limit();
    idle.deadline = limit === null ? 0 : performance.now() + (limit + IDLE.warning) * 1000;
    idle.tick();
  },
  /** Whole seconds left before the kiosk goes home. */
  left() {
    return Math.max(0, Math.ceil((idle.deadline - performance.now()) / 1000));
  },
  /** Each second while the deadline runs: the countdowns on screen, "还在吗？" for its last seconds, then home. */
  tick() {
    clearTimeout(idle.timer);
    if (!idle.deadline) return;
    if (idle.limit() === null) {  // e.g. the ticket is now waiting in the queue
      idle.deadline = 0;
      $("idle-overlay").hidden = true;
      return;
    }
    const left = idle.left();
    if (left <= 0) {
      resetKiosk();
      return;
    }
    if (document.body.dataset.current === "done") {
      showText($("done-countdown"), "kiosk.done.auto", { n: countdown(left, DONE_SECONDS + IDLE.warning) });
    }
    if (left <= IDLE.warning) {
      $("idle-overlay").hidden = false;
      // On the home screen there is no "home" to go back to: what is cleared is said instead.
      const key = document.body.dataset.current === "home" ? "kiosk.idle.countdown_home" : "kiosk.idle.countdown";
      showText($("idle-countdown"), key, { n: countdown(left, IDLE.warning) });
    }
    // Next when the whole seconds left change.
    idle.timer = window.setTimeout(idle.tick, idle.deadline - performance.now() - (left - 1) * 1000);
  },
};

/**
 * Seconds of a countdown padded with figure spaces to as many digits as ``most`` has, so that
 * the text around it stays where it is (with tabular figures, .countdown).
 * @param {number} seconds @param {number} most
 */
function countdown(seconds, most) {
  return String(seconds).padStart(String(most).length, "\u2007");
}

/**
 * 大字模式 on or off; the toggles say which (aria-pressed): the header's, and the notice
 * dialog's own (the open notice covers the header's).
 * @param {boolean} on
 */
function setElderly(on) {
  document.body.classList.toggle("elderly", on);
  for (const id of ["elderly", "notice-elderly"]) $(id).setAttribute("aria-pressed", String(on));
  noticeTextSize();
}

/**
 * The resident's choice of 大字模式: kept for this page's later screens and, in a call, in the
 * call's memory, so that a page reloaded mid-call keeps the resident's type size (a page load
 * is otherwise a new resident, in normal type).
 * @param {boolean} on
 */
function chooseElderly(on) {
  setElderly(on);
  if (on) localStorage.setItem(ELDERLY_KEY, "1"); else localStorage.removeItem(ELDERLY_KEY);
  memory.set("elderly", on);
}

/**
 * The notice on a kiosk screen (not on paper): its tags readable, and in 大字模式 its body,
 * table and tags larger too (the A4 page's own sizes are in pt, which body.elderly cannot
 * reach). A constructed style sheet in the notice's own document, switched by a class on it.
 */
const NOTICE_SCREEN_CSS = `@media screen {
  .tag { font-size: 10.5pt; font-weight: 700; white-space: nowrap; }
  html.large .notice { width: auto; max-width: 230mm; padding: 10mm 7mm; font-size: 17pt; line-height: 1.65; }
  html.large h1 { font-size: 25pt; }
  html.large .sub, html.large .qr, html.large header p { font-size: 13pt; }
  html.large .facts th { width: auto; }
  html.large .tag { font-size: 15pt; }
  html.large .facts .number { white-space: nowrap; }
  /* A long ID in brackets goes to a line of its own, whole, rather than off the page (it breaks
     inside only if wider than its cell). */
  html.large .facts td { overflow-wrap: break-word; }
}`;

function noticeTextSize() {
  const frame = /** @type {HTMLIFrameElement} */ ($("notice-frame"));
  const page = frame.contentDocument;
  const view = /** @type {any} */ (frame.contentWindow);
  if (!page || !view || !page.querySelector(".notice")) return;
  if (!page.documentElement.dataset.kiosk) {
    const sheet = new view.CSSStyleSheet();
    sheet.replaceSync(NOTICE_SCREEN_CSS);
    page.adoptedStyleSheets = [...page.adoptedStyleSheets, sheet];
    page.documentElement.dataset.kiosk = "1";
  }
  page.documentElement.classList.toggle("large", document.body.classList.contains("elderly"));
}

function residentOnHome() {
  return Boolean($("search").value || $("case-query").value || $("case-last4").value)
    || lang !== "zh-CN" || document.body.classList.contains("elderly");
}

/** Back to the first screen as a new resident would find it. */
async function resetKiosk() {
  clearTimeout(idle.timer);
  $("idle-overlay").hidden = true;
  settleRating("no_answer");
  setElderly(false);
  localStorage.removeItem(ELDERLY_KEY);
  if (lang !== "zh-CN") await setLang("zh-CN");
  document.body.dataset.current = "";
  await goHome();
}


/** Milliseconds to wait before trying again while the service is out (Retry-After, else 5 s). @param {Response} response */
function retryDelay(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : 5) * 1000;
}

/** A GET of the JSON API; while the service is out (503) it says so and tries again. */
async function api(/** @type {string} */ path) {
  for (;;) {
    const response = await fetch(path);
    if (response.status === 503) {
      banner("error.service_unavailable");
      await new Promise((resolve) => setTimeout(resolve, retryDelay(response)));
      continue;
    }
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    if (!connection?.unavailable && bannerSays("error.service_unavailable")) banner(null);
    return response.json();
  }
}

// ------------------------------------------------------------------ enrolment and sign-in

async function enrol(/** @type {string} */ code) {
  const response = await fetch("/api/v1/kiosk/enrol", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: { code: "" } }));
    const code = body.error?.code || "";
    show("enrol");
    $("enrol-error").hidden = false;
    showText($("enrol-error-what"), hasText(`kiosk.enrol.error.${code}`) ? `kiosk.enrol.error.${code}` : "kiosk.enrol.failed");
    showText($("enrol-error-todo"), "kiosk.enrol.new_code");
    return;
  }
  const body = await response.json();
  localStorage.setItem(CREDENTIAL_KEY, body.credential);
  history.replaceState(null, "", "/kiosk");
  start();
}

function start() {
  const credential = localStorage.getItem(CREDENTIAL_KEY);
  if (!credential) {
    show("enrol");
    return;
  }
  connection = new Connection({ auth: { kind: "kiosk", credential } });
  connection.addEventListener("welcome", (/** @type {any} */ e) => {
    // A reloaded page that resumed its session serves the same resident: 大字模式 stays as
    // they chose it (their ticket may still be waiting; a call's own memory keeps it too).
    if (connection?.reloaded && elderlyBeforeLoad) chooseElderly(true);
    elderlyBeforeLoad = false;
    kioskStation = String(e.detail.principal.station_name || "");
    $("station").textContent = `${e.detail.principal.station_name} · ${e.detail.principal.name}`;
    askedAgain = false;
    if (document.body.dataset.current === "busy") goHome();  // that call is over: this window serves
  });
  connection.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner(connection?.unavailable ? "error.service_unavailable" : "net.reconnecting");
    else if (e.detail === "online") banner(null);
  });
  connection.addEventListener("unavailable", () => banner("error.service_unavailable"));
  connection.addEventListener("auth-failed", () => {
    localStorage.removeItem(CREDENTIAL_KEY);
    banner("kiosk.revoked", "error");
    show("enrol");
  });
  // This kiosk was opened in another window (its ticket went there): this one stops — its
  // camera, its visit, its countdowns — and says so, with the button that takes the kiosk back
  // (a walk found a replaced window still counting down on its thank-you screen).
  connection.addEventListener("replaced", () => standAside("kiosk.replaced"));
  // Opened while this kiosk is in a call in another window: refused (taking over would cut the
  // resident off). The screen says so; its button asks again, once that call is over.
  connection.addEventListener("busy", () => {
    const again = askedAgain;  // this refusal answers the press
    askedAgain = false;
    standAside("kiosk.busy");
    $("busy-checked").hidden = !again;
    // Kept with its time: a language switch says it again in the other language.
    if (again) showText($("busy-checked"), "kiosk.busy.checked", { time: clockTime(new Date()) });
  });
  connection.addEventListener("message", (/** @type {any} */ e) => onMessage(e.detail));
  // The server no longer knew this kiosk's session (it restarted, or the network was gone for
  // longer than the grace period): a call it was in is over. A waiting ticket comes back with
  // the new session's snapshot.
  connection.addEventListener("session-lost", () => {
    if (visit.call || document.body.dataset.current === "call") onLeft("session_lost");
  });
  connection.addEventListener("unsent", () => hangingUp(false, "kiosk.call.hangup"));
  connection.connect();
  goHome();
}

/**
 * This window does not serve the kiosk (it is open in another one): nothing of a resident is
 * left running here, and the screen says why (``key``.title, ``key``.help) with 在本窗口使用.
 * @param {string} key
 */
function standAside(key) {
  clearVisit();
  banner(null);
  $("busy-checked").hidden = true;
  for (const [id, part] of [["busy-title", "title"], ["busy-help", "help"]]) {
    showText($(id), `${key}.${part}`);
  }
  show("busy");
  $("busy-retry").focus();
}

// ------------------------------------------------------------------ finding an item

async function goHome() {
  settleRating("no_answer");
  clearVisit();
  $("search").value = "";
  $("results-block").hidden = true;
  show("home");
  const [hot, categories] = await Promise.all([api("/api/v1/items/hot"), api("/api/v1/categories")]);
  renderTiles($("hot"), hot.items);
  $("hot-block").hidden = !hot.items.length;  // no history and nothing featured: no heading alone
  $("categories").replaceChildren(...categories.categories.map((/** @type {any} */ c) => {
    const button = document.createElement("button");
    button.className = "chip big";
    button.dataset.category = c.code;
    button.setAttribute("aria-pressed", "false");
    button.textContent = `${c.letter} · ${c.name}`;
    button.onclick = () => search({ category: c.code }, button.textContent || "");  // its name heads the list
    return button;
  }));
  // Shown once its chips are here: while the service is away (api() waits for it) the heading
  // stood alone over nothing.
  $("categories-block").hidden = !categories.categories.length;
}

/** @param {HTMLElement} target @param {any[]} items */
function renderTiles(target, items) {
  target.replaceChildren(...items.map((item) => {
    const tile = document.createElement("button");
    tile.className = "tile";
    tile.dataset.item = item.code;
    const name = document.createElement("strong");
    // Broken between words only: "换发（延 / 续）" and "驾驶 / 员从业" read badly.
    name.append(...phrased(item.name));
    const meta = document.createElement("span");
    meta.textContent = item.department.name;
    tile.append(name, meta);
    tile.onclick = () => openItem(item.code);
    return tile;
  }));
}

/**
 * The items found by words (headed 搜索结果, under the search box), or in a category (headed
 * `heading`, its chip's text, under the chips: brought into view with the chips above it, so
 * another category is one touch away).
 * @param {{q?: string, category?: string}} query @param {string} [heading]
 */
async function search(query, heading) {
  const params = new URLSearchParams({ limit: "30", ...query });
  const body = await api(`/api/v1/items?${params}`);
  const title = $("results-title");
  if (heading) {
    delete title.dataset.i18n;  // a category's name, not a catalog text
    title.textContent = heading;
  } else {
    showText(title, "kiosk.home.results");
  }
  const block = $("results-block");
  if (query.category) $("categories").after(block);
  else $("search").after(block);
  block.hidden = false;
  markCategory(query.category);
  renderTiles($("results"), body.items);
  if (!body.items.length) {
    const none = document.createElement("p");
    none.className = "empty";
    showText(none, "kiosk.home.none");
    $("results").append(none);
  }
  if (heading) $("categories-title").scrollIntoView({ block: "start", behavior: "smooth" });
}

/** The chip of the category listed is marked chosen; none while words are searched. @param {string} [code] */
function markCategory(code) {
  document.querySelectorAll("#categories .chip").forEach((chip) => {
    const on = /** @type {HTMLElement} */ (chip).dataset.category === code;
    chip.classList.toggle("chosen", on);
    chip.setAttribute("aria-pressed", String(on));
  });
}

/**
 * Counts item openings and the browser's Back presses: an item whose details arrive after
 * another was touched, or after Back was pressed while it loaded, is not shown.
 */
let itemOpens = 0;

async function openItem(/** @type {string} */ code) {
  const attempt = ++itemOpens;
  const item = await api(`/api/v1/items/${encodeURIComponent(code)}`);
  if (attempt !== itemOpens) return;
  visit.item = item;
  $("item-name").textContent = item.name;
  $("item-description").textContent = item.description;
  showText($("item-promised"), "kiosk.item.promised", { days: item.promised_days });
  showText($("item-statutory"), "kiosk.item.statutory", { days: item.statutory_days });
  $("item-materials").replaceChildren(...item.materials.map((/** @type {any} */ m) => {
    const li = document.createElement("li");
    const head = document.createElement("strong");
    head.textContent = m.name;
    const badge = document.createElement("span");
    badge.className = `badge ${m.requirement === "required" ? "ok" : "warn"}`;
    showText(badge, `kiosk.item.${m.requirement}`);
    li.append(head, " ", badge);
    for (const line of [m.condition, m.notes]) {
      if (!line) continue;
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = line;
      li.append(p);
    }
    return li;
  }));
  $("item-not-cloud").hidden = item.cloud;
  $("call-button").hidden = !item.cloud;
  visit.checkFrom = "item";
  show("item");
}

// ------------------------------------------------------------------ device check

/**
 * Camera and microphone before the call. A resident needs at least the microphone: without it
 * the call cannot start and the page says, at the top, to ask the station's attendant. Without a
 * camera the call can go on as a voice call (staff are told which device is missing).
 */
let deviceChecks = 0;

async function checkDevices() {
  const attempt = ++deviceChecks;
  show("check");
  if (visit.network === null) checkNetwork();  // once per resident; 重新检测网络 runs it again
  // The item the call is about, unless the case or the appointment below names it.
  $("check-item").hidden = Boolean(visit.correction || visit.appointment || !visit.item);
  $("check-item-name").textContent = visit.item?.name || "";
  // A correction lookup says which case it found before the call starts.
  $("check-case").hidden = !visit.correction;
  $("check-case-number").textContent = visit.correction || "";
  $("check-case-item").textContent = visit.correction ? visit.item?.name || "" : "";
  $("check-notice").hidden = !(visit.correction && visit.noticeUrl);
  // So does an appointment whose code was accepted: the resident sees it was found.
  $("check-appointment").hidden = !visit.appointment;
  $("check-appointment-time").textContent = visit.appointment ? visit.appointmentTime : "";
  $("check-appointment-item").textContent = visit.appointment ? visit.item?.name || "" : "";
  $("device-problem").hidden = true;
  $("retry-devices").hidden = true;
  $("start-call").disabled = true;
  showText($("start-call"), "kiosk.check.start");
  $("preview-off").hidden = true;
  stopStream();
  let stream = null;
  let refused = false;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true,
    });
  } catch (error) {
    const name = /** @type {any} */ (error).name;
    refused = name === "NotAllowedError" || name === "SecurityError";
    // One of the two may still work: find out which, to say exactly what is missing.
    for (const constraints of [{ audio: true }, { video: { width: { ideal: 1280 }, height: { ideal: 720 } } }]) {
      if (stream) break;
      try { stream = await navigator.mediaDevices.getUserMedia(constraints); } catch { /* still missing */ }
    }
  }
  if (attempt !== deviceChecks || document.body.dataset.current !== "check") {
    stream?.getTracks().forEach((track) => track.stop());  // the resident left or checked again meanwhile
    return;
  }
  visit.stream = stream;
  const camera = Boolean(stream?.getVideoTracks().length);
  const microphone = Boolean(stream?.getAudioTracks().length);
  visit.devices = { camera, microphone };
  $("preview").srcObject = camera ? stream : null;
  $("preview-off").hidden = camera;
  if (stream) meter(stream);
  if (camera) visit.cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  $("start-call").disabled = !microphone;
  if (camera && microphone) return;
  const problem = !microphone && !camera ? (refused ? "refused" : "none") : !microphone ? "no_microphone" : "no_camera";
  $("device-problem").hidden = false;
  $("device-problem").dataset.problem = problem;
  showText($("device-problem-what"), `kiosk.check.problem.${problem}`);
  showText($("device-problem-todo"), microphone ? "kiosk.check.todo_voice" : "kiosk.check.todo_attendant");
  $("retry-devices").hidden = false;
  if (microphone) showText($("start-call"), "kiosk.check.start_voice");
}

let networkChecks = 0;

/**
 * The path the call will take, checked while the resident looks at the camera: the signaling
 * round trip and a short loop through the ICE servers to the server's echo peer (protocol.js
 * networkCheck). The server judges; the resident reads it in plain words. The call is never
 * held back: a failed check says to ask the station's staff.
 */
async function checkNetwork() {
  const attempt = ++networkChecks;
  const held = visit;
  held.network = "checking";
  $("net-check").dataset.verdict = "checking";
  showText($("net-status"), "kiosk.net.checking");
  $("net-retry").hidden = true;
  held.networkStop?.abort();
  const stop = new AbortController();
  held.networkStop = stop;
  const result = connection ? await networkCheck(connection, { signal: stop.signal }) : { verdict: "failed" };
  if (attempt !== networkChecks || held !== visit) return;  // checked again, or a new resident
  visit.networkStop = null;
  visit.network = result.verdict;
  $("net-check").dataset.verdict = result.verdict;
  showText($("net-status"), `kiosk.net.${result.verdict}`);
  $("net-retry").hidden = result.verdict === "good" || result.verdict === "busy";
}

function meter(/** @type {MediaStream} */ stream) {
  if (!stream.getAudioTracks().length) return;
  const audio = new AudioContext();
  visit.meter = audio;
  const analyser = audio.createAnalyser();
  audio.createMediaStreamSource(stream).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  const draw = () => {
    if (visit.meter !== audio) return;
    if (document.body.dataset.current !== "check") {
      // The check is over (waiting, in the call): nobody sees the level, so the meter stops
      // rather than analysing the microphone every frame for the rest of the visit.
      audio.close();
      visit.meter = null;
      return;
    }
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
    $("mic-level").style.width = `${Math.min(100, (peak / 128) * 160)}%`;
    requestAnimationFrame(draw);
  };
  draw();
}

function stopStream() {
  visit.stream?.getTracks().forEach((track) => track.stop());
  visit.stream = null;
  visit.meter?.close();
  visit.meter = null;
  $("preview").srcObject = null;
}

// ------------------------------------------------------------------ queue and call

function takeTicket() {
  if (!visit.devices.microphone) return;
  show("waiting");
  $("ticket-number").textContent = "…";
  $("wait-item").textContent = visit.item.name;
  // A correction session says so, with its case, while it waits and while staff are rung.
  $("wait-case").hidden = !visit.correction;
  $("wait-case-number").textContent = visit.correction || "";
  // An appointment checked in says so: it is served ahead of walk-ins of the same item.
  $("wait-appointment").hidden = !visit.appointment;
  $("wait-appointment-time").textContent = visit.appointmentTime;
  showPlain($("wait-position"), "");
  $("wait-estimate").textContent = "";
  $("wait-nobody").hidden = true;
  $("wait-busy").hidden = true;
  sendTake();
}

function sendTake() {
  connection?.send(visit.appointment
    ? { type: "ticket.take", appointment: visit.appointment }
    : visit.correction
      ? { type: "ticket.take", case: visit.correction, grant: visit.grant }
      : { type: "ticket.take", item: visit.item.code });
}

/** The ticket could not be taken because the service is out for a moment: try again while
 * the resident still waits for one. */
function retryTake() {
  banner("error.service_unavailable");
  const item = visit.item;
  setTimeout(() => {
    if (document.body.dataset.current === "waiting" && !visit.ticket && visit.item === item) sendTake();
  }, TAKE_RETRY_MS);
}

/** @param {any} frame */
function onMessage(frame) {
  if (frame.type === "ticket") onTicket(frame.ticket);
  else if (frame.type === "joined") onJoined(frame);
  else if (frame.type === "left") onLeft(frame.reason);

  else if (frame.type === "rating.saved") {
    $("rating").hidden = true;
    $("rating-send").hidden = true;
    $("rating-thanks").hidden = false;
  } else if (frame.type === "error" && frame.ref === "ticket.take" && frame.code === "service_unavailable") {
    retryTake();
  } else if (frame.type === "error" && frame.ref === "ticket.take") {
    errorBanner(frame, "kiosk.error.generic", "kiosk.error.");
    $("ticket-number").textContent = "";
    showText($("wait-position"), "kiosk.wait.failed");
  }
}

/**
 * The kiosk's ticket changed. A queue frame never takes the resident out of a live call or off
 * the thank-you screen, and frames never go backwards (per-ticket version, docs/protocol.md).
 * @param {any} ticket
 */
function onTicket(ticket) {
  if (finishedTickets.has(ticket.id)) return;
  const versioned = typeof ticket.version === "number";
  if (versioned && visit.ticket?.id === ticket.id && ticket.version < visit.ticketVersion) return;
  const screen = document.body.dataset.current;
  const queued = ticket.status === "waiting" || ticket.status === "offered";
  if (queued && (visit.call || screen === "call" || screen === "done")) return;
  visit.ticketVersion = versioned ? ticket.version : -1;
  visit.ticket = ticket;
  if (ticket.case?.number) {
    visit.caseNumber = ticket.case.number;
    if (screen === "done") {  // the wrap-up frame may come after the call ended
      $("done-case-number").textContent = ticket.case.number;
      $("done-case").hidden = false;
    }
  }
  if (queued) {
    if (screen !== "waiting") show("waiting");
    showWait(ticket);
  } else if (ticket.status === "cancelled" || ticket.status === "abandoned") {
    finishedTickets.add(ticket.id);
    if (!visit.call && screen !== "done") goHome();
  }
}

/**
 * Position and estimate, never two texts that contradict each other:
 * - being rung (offered): "connecting you", nothing else;
 * - nobody who handles the item on duty (estimate null): no position or estimate that promises
 *   a soon answer — only that nobody can take the call now, the hours, and 取消排队;
 * - on duty but all busy (no one idle): position and estimate, and that staff are busy;
 * - someone idle: position, and "you are next" / the estimate.
 * @param {any} ticket
 */
function showWait(ticket) {
  $("ticket-number").textContent = ticket.number;
  $("wait-item").textContent = ticket.item.name;
  const ahead = Math.max(0, (ticket.position || 1) - 1);
  const offered = ticket.status === "offered";
  const nobody = !offered && (ticket.estimated_wait_seconds === null || ticket.staff_on_duty === 0);
  // Staff are on duty but none is free: the estimate is a whole number of handling times.
  const busy = !offered && !nobody && ticket.estimated_wait_seconds > 0;
  let position = "";
  let estimate = "";
  if (offered) {
    position = t("kiosk.wait.ringing");  // a staff member is being rung: no estimate beside it
  } else if (nobody) {
    position = "";  // "下一位就是您" would promise what nobody on duty can keep
  } else if (ahead > 0) {
    position = t("kiosk.wait.position", { n: ahead });
    estimate = t("kiosk.wait.estimate", { time: duration(ticket.estimated_wait_seconds) });
  } else if (ticket.estimated_wait_seconds < 30) {
    position = t("kiosk.wait.first");
  } else {
    position = t("kiosk.wait.next");
    estimate = t("kiosk.wait.estimate", { time: duration(ticket.estimated_wait_seconds) });
  }
  showPlain($("wait-position"), position);
  $("wait-position").hidden = !position;
  $("wait-estimate").textContent = estimate;
  $("wait-estimate").hidden = !estimate;
  $("wait-busy").hidden = !busy;
  $("wait-nobody").hidden = !nobody;
  document.body.classList.toggle("nobody-on-duty", nobody);
}

/**
 * The call is set up, or set up again after this page was reloaded mid-call (the Connection
 * resumed its session; ``joined`` comes again with ``resumed``). A reload of the staff page is
 * handled inside Call (a new RTCPeerConnection, docs/protocol.md).
 * @param {any} frame
 */
async function onJoined(frame) {
  // A check still running would only compete with the call's set-up (and, out of time, tell
  // staff of a failed network that was a busy kiosk): the call's own quality replaces it.
  visit.networkStop?.abort();
  if (!visit.stream) {
    // This page was reloaded mid-call, or while its ticket waited (the check screen, which
    // opens them, was before the reload): camera and microphone come back before media
    // negotiates. Without this the resident was answered with neither.
    await openDevices();
  }
  const staff = frame.peers[0];
  visit.staffName = typeof staff.name === "string" ? staff.name : "";
  // A reload mid-call: what this page showed of the call comes back (callmemory.js).
  const kept = memory.open(`${connection?.sessionId}/${frame.room}`);
  chooseElderly(kept.elderly === true || document.body.classList.contains("elderly"));
  // The resident's language stays for the call, across a reload (a new visit starts in Chinese).
  if (kept.lang === "en" && lang !== "en") await setLang("en");
  memory.set("lang", lang);
  const itemName = visit.item?.name || visit.ticket?.item?.name || (typeof kept.item === "string" ? kept.item : "");
  memory.set("item", itemName);
  if (!visit.noticeUrl && kept.notice) visit.noticeUrl = noticePath(kept.notice);
  if (visit.noticeUrl) memory.set("notice", visit.noticeUrl);  // a correction's notice too
  startCall(staff.session, Boolean(frame.initiator));
  visit.callItem = itemName;
  showCallWith();
  hangingUp(false, "kiosk.call.hangup");
  callClock.start(typeof kept.since === "number" ? kept.since : 0);
  if (!$("chat").children.length) addChatLines(kept.chat);
  if (kept.case && !visit.caseResult) showCaseResult(kept.case);
  if (frame.resumed) restoreFiles();
  show("call");
}

/**
 * How long the call has lasted (通话时长 mm:ss), beside who is serving. It counts from the
 * first `joined` of the call's room; a page reloaded mid-call goes on from there (the start is
 * in the call's memory), a transfer to another department starts again.
 */
const callClock = {
  timer: 0,
  since: 0,
  /** @param {number} kept the call's start as its memory kept it (ms), or 0 for now */
  start(kept) {
    clearTimeout(callClock.timer);
    callClock.since = kept > 0 && kept <= Date.now() ? kept : Date.now();
    memory.set("since", callClock.since);
    callClock.tick();
  },
  tick() {
    const ms = Math.max(0, Date.now() - callClock.since);
    const seconds = Math.floor(ms / 1000);
    const two = (/** @type {number} */ n) => String(n).padStart(2, "0");
    $("call-elapsed").textContent = `${two(Math.floor(seconds / 60))}:${two(seconds % 60)}`;
    callClock.timer = window.setTimeout(callClock.tick, 1000 - (ms % 1000));
  },
  /** Off the screen. */
  stop() {
    clearTimeout(callClock.timer);
    $("call-elapsed").textContent = "00:00";
  },
};

/** Camera and microphone without the check screen (a page reloaded since it). */
async function openDevices() {
  for (const constraints of [{ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true }, { audio: true }]) {
    try {
      visit.stream = await navigator.mediaDevices.getUserMedia(constraints);
      break;
    } catch { /* try with less */ }
  }
  visit.devices = { camera: Boolean(visit.stream?.getVideoTracks().length), microphone: Boolean(visit.stream?.getAudioTracks().length) };
}

/** The call with the staff member's session; a previous Call object is closed. @param {string} peer @param {boolean} initiator */
function startCall(peer, initiator) {
  visit.call?.close();
  const call = new Call(/** @type {Connection} */ (connection), {
    initiator, peer, stream: visit.stream || undefined,
  });
  const fresh = !visit.files;
  visit.call = call;
  visit.files = new FileChannel(call);
  $("self-view").srcObject = visit.devices.camera ? visit.stream : null;
  $("self-view").hidden = !visit.devices.camera;
  $("no-camera-note").hidden = visit.devices.camera;
  $("photo").hidden = !visit.devices.camera;
  if (fresh) {
    $("chat").replaceChildren();
    $("files-sent").replaceChildren();
    $("files-received").replaceChildren();
    fileLines.sent.clear();
    fileLines.received.clear();
  }
  $("switch-camera").hidden = visit.cameras.length < 2;
  $("show-notice").hidden = !noticeApplies();
  wireCall(call, /** @type {Connection} */ (connection));
  call.reportStats();  // call.stats every 5 s: staff see the signal, the ticket keeps the figures
  // Staff see which devices the resident has (a badge, and chat offered without them).
  call.sendApp({ kind: "devices", camera: visit.devices.camera, microphone: visit.devices.microphone });
  call.addEventListener("app", (/** @type {any} */ e) => onApp(e.detail));
  // The staff member's page went away: say so (not "unstable video") until it is back.
  call.addEventListener("peer", (/** @type {any} */ e) => banner(e.detail === "reconnecting" ? "kiosk.call.peer_reconnecting" : null));
  visit.files.addEventListener("progress", (/** @type {any} */ e) => fileProgress(e.detail));
  visit.files.addEventListener("file", (/** @type {any} */ e) => fileReceived(e.detail));
}

/** An app message from the staff side: data, each field checked before it is used. @param {any} data */
function onApp(data) {
  if (data.kind === "chat" && typeof data.text === "string") memory.append("chat", addChat(data.text, "them", visit.staffName ? { name: visit.staffName } : { key: "kiosk.call.staff" }));
  else if (data.kind === "screen") showStaffScreen(data.on === true);
  else if (data.kind === "notice") showNotice(data.url);
  else if (data.kind === "case" && typeof data.status === "string") showCaseResult(data);
}

/**
 * The case's new state, from the staff console after a verdict or 受理 (app "case",
 * docs/protocol.md): said in the call's side panel and again on the thank-you screen.
 * @param {any} data
 */
function showCaseResult(data) {
  const key = `kiosk.case.${data.status}`;
  const date = typeof data.due_date === "string" && /^\d{4}-\d{2}-\d{2}/.test(data.due_date) ? calendarDate(data.due_date) : "";
  const text = known(key, { date });
  if (!text) return;
  const gap = lang === "zh-CN" ? "" : " ";  // Chinese sentences follow each other without a space
  let due = data.status === "accepted" && date ? gap + t("kiosk.case.due", { date }) : "";
  // Where the certificate will be ready: the station of the kiosk the resident calls from
  // (the case's latest session: docs/logistics.md).
  if (data.status === "accepted" && date && kioskStation) {
    due += gap + t("kiosk.case.collect", { station: kioskStation, date });
  }
  visit.caseResult = text + due;
  visit.caseData = data;
  memory.set("case", data);
  if (typeof data.number === "string" && data.number) visit.caseNumber = data.number;
  // Coloured by what it means: more to do (补正, 不予受理) is not shown as a success.
  visit.caseStatus = data.status;
  $("call-case-result").textContent = visit.caseResult;
  $("call-case-result").dataset.status = data.status;
  $("call-case-result").hidden = false;
  $("done-result").textContent = visit.caseResult;
  $("done-result").dataset.status = data.status;
  $("done-result").hidden = false;
  $("show-notice").hidden = !noticeApplies();
  $("done-notice").hidden = !noticeApplies();
}

/** Whether the call's correction notice still says what to do: the case needs correction (or
 * its state is not known yet). Once it passes the pre-review, is accepted or refused, the notice
 * is history and is no longer offered (再看一次告知书 beside 已受理 misled residents). */
function noticeApplies() {
  return Boolean(visit.noticeUrl) && (!visit.caseStatus || visit.caseStatus === "correction_needed");
}


/**
 * A notice URL from the staff side as a path and query on this server, or null: only this
 * origin's /notices/<case number>/<round> pages are shown (never javascript:, data:, another
 * origin or another path).
 * @param {unknown} url
 */
function noticePath(url) {
  if (typeof url !== "string") return null;
  let parsed;
  try {
    parsed = new URL(url, location.origin);
  } catch {
    return null;
  }
  if (parsed.origin !== location.origin || !NOTICE_PATH.test(parsed.pathname)) return null;
  return parsed.pathname + parsed.search;
}

/**
 * The chat list scrolls inside its own box (call.css), its newest line in view: a new line
 * scrolls it to the end, and so does the box growing smaller (the notice's result or a file
 * shown above it), unless the resident had scrolled up to read an earlier line.
 */
function keepChatAtItsEnd() {
  const chat = $("chat");
  let atEnd = true;
  const toEnd = () => { chat.scrollTop = chat.scrollHeight; atEnd = true; };
  chat.addEventListener("scroll", () => {
    atEnd = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 8;
  }, { passive: true });
  new MutationObserver(toEnd).observe(chat, { childList: true });
  new ResizeObserver(() => { if (atEnd) toEnd(); }).observe(chat);
}

/** The one-time correction notice, shown large with a print button (the resident may photograph its QR code). */
function showNotice(/** @type {unknown} */ url) {
  const path = noticePath(url);
  if (!path) {
    console.warn("dropped a notice that is not a /notices/ page of this server", url);
    return;
  }
  visit.noticeUrl = path;
  memory.set("notice", path);
  loadNotice(path);
  $("notice-overlay").hidden = false;
  $("show-notice").hidden = false;
  $("done-notice").hidden = false;
}

/** A closed notice opens again from the call's toolbar or the thank-you screen. */
function reopenNotice() {
  if (!visit.noticeUrl) return;
  $("notice-overlay").hidden = false;
  if (!$("notice-frame").src.endsWith(visit.noticeUrl)) loadNotice(visit.noticeUrl);
}

/** Load the notice page into the overlay's frame, saying so until it is there (打印 waits). @param {string} path */
function loadNotice(path) {
  $("notice-loading").hidden = false;
  $("notice-print").disabled = true;
  $("notice-frame").onload = () => {
    $("notice-loading").hidden = true;
    $("notice-print").disabled = false;
    hideNoticeActions();
  };
  $("notice-frame").src = path;
}

/**
 * The notice page has its own 打印 and 下载 PDF for staff and home use; on a public kiosk the
 * overlay's one 打印 is enough and nothing is downloaded onto the machine.
 */
function hideNoticeActions() {
  const page = /** @type {HTMLIFrameElement} */ ($("notice-frame")).contentDocument;
  page?.querySelectorAll(".actions").forEach((el) => el.remove());
  noticeTextSize();
}

function showStaffScreen(/** @type {boolean} */ on) {
  if (!visit.call) return;
  showRemoteScreen(visit.call, on);
  $("screen-label").hidden = !on;
}


/**
 * One line in the list of files sent (#files-sent) or received (#files-received); its label is a
 * catalog key with its values (said again after a language switch) or a file's own name.
 * @param {"sent" | "received"} list @param {string} id
 * @param {[string, Record<string, any>] | string} label @param {string} [kind]
 */
function fileLine(list, id, label, kind = "") {
  let li = fileLines[list].get(id);
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = id;
    fileLines[list].set(id, li);
    $(`files-${list}`).append(li);
    $(`files-${list}`).scrollTop = $(`files-${list}`).scrollHeight;  // its own box: the newest in view
  }
  $(`files-${list}-block`).hidden = false;
  li.className = kind;
  const shown = li.querySelector(".label") || li.appendChild(Object.assign(document.createElement("span"), { className: "label" }));
  if (typeof label === "string") showPlain(shown, label);
  else showText(shown, ...label);
  return /** @type {HTMLElement} */ (li);
}

function fileProgress(/** @type {any} */ p) {
  if (p.direction === "out") {
    fileLine("sent", p.id, ["kiosk.call.sending", { name: p.name, percent: Math.floor((100 * p.done) / Math.max(1, p.size)) }]);
  }
}

async function sendFile(/** @type {Blob} */ blob, /** @type {string} */ name) {
  if (!visit.files) return;
  try {
    const result = await visit.files.send(blob, name);
    fileLine("sent", result.id, [result.ok ? "kiosk.call.sent" : "kiosk.call.send_failed", { name }], result.ok ? "ok" : "error");
  } catch (error) {
    console.error("file transfer failed", name, error);
    if (/** @type {Error} */ (error).message === "file_too_large") {
      fileLine("sent", `failed-${Date.now()}`, ["kiosk.call.too_large", { name }], "error");
      return;
    }
    const li = fileLine("sent", `failed-${Date.now()}`, ["kiosk.call.send_failed", { name }], "error");
    const retry = document.createElement("button");
    retry.className = "button";
    showText(retry, "common.retry");
    retry.onclick = () => { li.remove(); sendFile(blob, name); };
    li.append(retry);
  }
}

/**
 * A file from staff (the console keeps it on the server). A photo or PDF — told by its first
 * bytes, its blob typed so (protocol.js sniffType) — is shown and can be printed; anything else
 * is only listed with its name and size, and nothing of it is opened or saved on the kiosk.
 */
async function fileReceived(/** @type {any} */ file) {
  const li = fileLine("received", file.id, file.name, file.ok ? "ok" : "error");
  if (!file.ok) return;
  if (!file.type) {
    li.querySelector(".label")?.replaceChildren(notPreviewable(file));
    return;
  }
  const url = URL.createObjectURL(file.blob);
  visit.urls.push(url);
  if (file.type.startsWith("image/")) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = file.name;
    li.prepend(img);
  }
  const print = document.createElement("button");
  print.className = "button";
  showText(print, "common.print");
  print.onclick = () => printFile(url);
  li.append(print);
}

/**
 * A kiosk reloaded mid-call lists the call's files again from the server, where the console
 * kept each one (what was still on its way is lost with the page): the resident's by name, the
 * staff member's photos and PDFs shown and printable again, other files listed by name and size
 * (not fetched: a public kiosk opens and keeps nothing of them).
 */
async function restoreFiles() {
  const ticket = visit.ticket?.id;
  if (!ticket) return;
  const auth = { Authorization: `Kiosk ${localStorage.getItem(CREDENTIAL_KEY)}` };
  try {
    const response = await fetch(`/api/v1/tickets/${ticket}/files`, { headers: auth });
    if (!response.ok) return;
    const { files } = await response.json();
    for (const kept of files) {
      const id = `kept-${kept.id}`;
      if (kept.purged_at || fileLines.sent.has(id) || fileLines.received.has(id)) continue;
      if (kept.sender === "kiosk") {
        fileLine("sent", id, ["kiosk.call.sent", { name: kept.name }], "ok");
        continue;
      }
      if (!shownType(kept.content_type)) {
        await fileReceived({ id, name: kept.name, size: kept.size, type: null, ok: true });
        continue;
      }
      const body = await fetch(kept.url, { headers: auth });
      if (!body.ok || visit.ticket?.id !== ticket) continue;
      await fileReceived({ id, name: kept.name, size: kept.size, type: kept.content_type, blob: await body.blob(), ok: true });
    }
  } catch { /* the files stay on the server, where staff see them */ }
}

/**
 * Print a received photo or PDF from a hidden frame. The frame is not sandboxed: a sandboxed
 * frame shows no PDF in Chromium and cannot be told to print. Its blob has the sniffed type, so
 * it only ever holds an image or Chromium's PDF viewer — never a document of the sender's making.
 */
function printFile(/** @type {string} */ url) {
  const frame = document.createElement("iframe");
  frame.style.display = "none";
  frame.src = url;
  frame.onload = () => frame.contentWindow?.print();
  document.body.append(frame);
}

/** A full-resolution still of the (document) camera, sent as a JPEG. */
async function takePhoto() {
  const track = visit.stream?.getVideoTracks()[0];
  if (!track) return;
  const video = $("self-view");
  const settings = track.getSettings();
  const canvas = document.createElement("canvas");
  canvas.width = settings.width || video.videoWidth;
  canvas.height = settings.height || video.videoHeight;
  canvas.getContext("2d")?.drawImage(video, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  const stamp = new Date().toLocaleTimeString("zh-CN", { hourCycle: "h23", timeZone: DISTRICT_TZ }).replaceAll(":", "");
  showPhoto(/** @type {Blob} */ (blob), `材料照片-${stamp}.jpg`);
}

/**
 * The photo just taken, shown before it goes: 发送给工作人员 sends it, 不发送 (or Escape) drops
 * it — a blurred page or a face caught by mistake never reaches staff. 重拍一张 shows the live
 * picture with a countdown of RETAKE_SECONDS (time to hold the page straight, both hands on
 * it), then takes the new photo and shows it the same way; 不发送 stops the countdown. The
 * call ending meanwhile drops it.
 */
const photoCheck = {
  /** @type {{blob: Blob, name: string, url: string} | null} */
  pending: null,
  countdown: 0,  // the retake's interval, while it counts
};
const RETAKE_SECONDS = 3;

/** @param {Blob} blob @param {string} name */
function showPhoto(blob, name) {
  clearPhoto();
  const url = URL.createObjectURL(blob);
  photoCheck.pending = { blob, name, url };
  $("photo-preview").src = url;
  $("photo-preview").alt = t("kiosk.photo.title");
  photoStage(false);
  $("photo-overlay").hidden = false;
  $("photo-send").focus();
}

/**
 * What the photo question shows: the photo taken, with 发送给工作人员 and 重拍一张 (`live`
 * false), or the live picture and the retake's countdown (`live` true); 不发送 always. Its
 * heading is kept as a catalog key, for a change of language.
 * @param {boolean} live
 */
function photoStage(live) {
  for (const id of ["photo-preview", "photo-send", "photo-retake"]) $(id).hidden = live;
  for (const id of ["photo-live", "photo-countdown"]) $(id).hidden = !live;
  $("photo-live").srcObject = live ? visit.stream : null;
  const key = live ? "kiosk.photo.hold" : "kiosk.photo.title";
  showText($("photo-title"), key);
}

/** The photo shown (or the retake's countdown) goes; the question stays open. */
function clearPhoto() {
  if (photoCheck.pending) URL.revokeObjectURL(photoCheck.pending.url);
  photoCheck.pending = null;
  clearInterval(photoCheck.countdown);
  photoCheck.countdown = 0;
  $("photo-preview").removeAttribute("src");
  $("photo-live").srcObject = null;
}

/** The photo shown is not sent (or has been), or the retake is given up: the question goes. */
function dropPhoto() {
  clearPhoto();
  $("photo-overlay").hidden = true;
}

/** 重拍一张: the live picture and a countdown, then a new photo (none without a camera). */
function retakePhoto() {
  clearPhoto();
  if (!visit.stream?.getVideoTracks()[0]) { dropPhoto(); return; }
  let left = RETAKE_SECONDS;
  const say = () => { $("photo-countdown").textContent = t("kiosk.photo.countdown", { seconds: left }); };
  say();
  photoStage(true);
  $("photo-cancel").focus();  // 不发送 (or Escape) gives up
  photoCheck.countdown = window.setInterval(() => {
    left -= 1;
    if (left > 0) { say(); return; }
    clearInterval(photoCheck.countdown);
    photoCheck.countdown = 0;
    takePhoto().catch(() => dropPhoto());
  }, 1000);
}

function sendPhoto() {
  const photo = photoCheck.pending;
  if (!photo) return;
  dropPhoto();  // lets the preview's URL go; the blob itself is sent
  sendFile(photo.blob, photo.name);
}

async function switchCamera() {
  if (visit.cameras.length < 2 || !visit.call) return;
  visit.cameraIndex = (visit.cameraIndex + 1) % visit.cameras.length;
  const next = await navigator.mediaDevices.getUserMedia({
    video: { deviceId: { exact: visit.cameras[visit.cameraIndex].deviceId }, width: { ideal: 1920 } },
  });
  const track = next.getVideoTracks()[0];
  const old = visit.stream?.getVideoTracks()[0];
  if (old) { visit.stream?.removeTrack(old); old.stop(); }
  visit.stream?.addTrack(track);
  await visit.call.replaceCamera(track);
}

async function toggleScreen() {
  if (!visit.call) return;
  if (visit.screen) {
    visit.screen.stop();
    visit.screen = null;
    await visit.call.shareScreen(null);
    showText($("share-screen"), "kiosk.call.share_screen");
    return;
  }
  const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
  visit.screen = display.getVideoTracks()[0];
  visit.screen.onended = () => { if (visit.screen) toggleScreen(); };
  await visit.call.shareScreen(visit.screen);
  showText($("share-screen"), "kiosk.call.stop_share");
}

function onLeft(/** @type {string} */ reason) {
  closeHangupConfirm();
  dropPhoto();
  hangingUp(false, "kiosk.call.hangup");
  callClock.stop();
  memory.forget();
  visit.call?.close();
  visit.call = null;
  visit.screen?.stop();
  visit.screen = null;
  if (reason === "transferred") {
    show("waiting");
    banner("kiosk.done.transferred", "info");
    return;
  }
  if (visit.ticket) finishedTickets.add(visit.ticket.id);
  stopStream();  // the call is over: camera and microphone go off
  banner(null);  // no stale "unstable network" line on the thank-you screen
  show("done");
  if (visit.ticket) showText($("done-number"), "kiosk.done.number", { number: visit.ticket.number });
  else showPlain($("done-number"), "");
  const caseNumber = visit.caseNumber || visit.correction;
  $("done-case").hidden = !caseNumber;
  $("done-case-number").textContent = caseNumber || "";
  $("done-notice").hidden = !noticeApplies();
  $("done-result").textContent = visit.caseResult || "";
  $("done-result").dataset.status = visit.caseStatus || "";
  $("done-result").hidden = !visit.caseResult;
  const key = `kiosk.reason.${reason}`;
  showText($("done-reason"), hasText(key) ? key : "kiosk.done.ended");
  showRating();
}

/**
 * Say what went wrong with the case lookup right under the inputs, scrolled into view, with the
 * input to correct focused. @param {string} text @param {string} field
 */
function lookupProblem(text, field) {
  $("case-error").hidden = false;
  $("case-error").textContent = text;
  for (const id of ["case-query", "case-last4"]) $(id).removeAttribute("aria-invalid");
  $(field).setAttribute("aria-invalid", "true");
  $("case-error").scrollIntoView({ block: "center" });
  $(field).focus({ preventScroll: true });
}

/**
 * A correction session: find the case by its number and the last four digits of the
 * applicant's phone or ID number, then call for it with the grant the lookup gave.
 */
async function findCase() {
  // Full-width digits from an input method (５６７８) are the digits they look like.
  const number = $("case-query").value.normalize("NFKC").trim();
  const last4 = $("case-last4").value.normalize("NFKC").trim();
  if (!number || !/^\d{3}[\dXx]$/.test(last4)) {
    lookupProblem(t("error.lookup_incomplete"), number ? "case-last4" : "case-query");
    return;
  }
  let response, data;
  try {
    response = await fetch("/api/v1/kiosk/cases/lookup", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Kiosk ${localStorage.getItem(CREDENTIAL_KEY)}` },
      body: JSON.stringify({ number, last4 }),
    });
    data = await response.json();
  } catch {
    lookupProblem(t("kiosk.error.generic"), "case-query");
    return;
  }
  if (!response.ok) {
    const code = data?.error?.code;
    if (code === "not_found") lookupProblem(t("kiosk.correction.not_found"), "case-query");
    else lookupProblem(errorText({ ...data?.error, code }, "kiosk.error.generic", "kiosk.error."), code === "lookup_incomplete" && number ? "case-last4" : "case-query");
    return;
  }
  $("case-error").hidden = true;
  for (const id of ["case-query", "case-last4"]) $(id).removeAttribute("aria-invalid");
  visit.item = { code: data.case.item.code, name: data.case.item.name, cloud: true };
  visit.correction = data.case.number;
  visit.grant = data.case.grant;
  visit.caseNumber = data.case.number;
  // The notice can be read again before the call (from the device check).
  visit.noticeUrl = noticePath(data.case.notice_url);
  visit.checkFrom = "home";  // 返回 leads home, not to an item seen earlier
  checkDevices();
}

/**
 * 我的材料/证照: the case's papers by its number and the phone's last four digits: where each
 * is, where to collect it, the pickup code once it is ready (docs/logistics.md).
 */
async function findPapers() {
  const number = $("papers-number").value.normalize("NFKC").trim();
  const last4 = $("papers-last4").value.normalize("NFKC").trim();
  const problem = (/** @type {string} */ text) => { $("papers-error").hidden = false; $("papers-error").textContent = text; };
  if (!number || !/^\d{4}$/.test(last4)) { problem(t("kiosk.papers.incomplete")); return; }
  let response, data;
  try {
    response = await fetch("/api/v1/kiosk/items/lookup", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Kiosk ${localStorage.getItem(CREDENTIAL_KEY)}` },
      body: JSON.stringify({ number, last4 }),
    });
    data = await response.json();
  } catch {
    problem(t("kiosk.error.generic"));
    return;
  }
  if (!response.ok) {
    const code = data?.error?.code;
    problem(code === "not_found" ? t("kiosk.papers.not_found") : errorText(data?.error, "kiosk.error.generic", "kiosk.error."));
    return;
  }
  $("papers-error").hidden = true;
  shownPapers = data.case;
  showPapers(data.case);
  show("papers");
}

/** The case whose papers the papers screen shows (drawn again in the other language). @type {any} */
let shownPapers = null;

/** The papers screen's lines for case ``c``, in the page's language. @param {any} c */
function showPapers(c) {
  showText($("papers-case"), "kiosk.papers.case", { number: c.number, item: c.item, status: t(`case.state.${c.status.code}`) });
  const expected = c.expected.date && !c.items.some((/** @type {any} */ i) => i.kind.code === "certificate");
  $("papers-expected").hidden = !expected;
  $("papers-expected").textContent = expected
    ? t("kiosk.case.collect", { station: c.expected.station.name, date: calendarDate(c.expected.date) }) : "";
  const list = c.items.map((/** @type {any} */ i) => {
    const li = document.createElement("li");
    li.className = `paper ${i.status.code}`;
    const head = document.createElement("strong");
    head.textContent = `${t(`logistics.kind.${i.kind.code}`)} · ${i.description}`;
    const state = document.createElement("span");
    state.className = "badge";
    showText(state, `logistics.state.${i.status.code}`);
    const where = document.createElement("p");
    /** @type {HTMLElement | null} */
    let code = null;
    if (i.pickup_code) {
      showText(where, "kiosk.papers.ready", { station: i.collect_at.name, address: i.collect_at.address });
      // The code on a line of its own, large: what the resident copies down or photographs.
      code = document.createElement("p");
      code.className = "pickup-code";
      const digits = document.createElement("strong");
      digits.textContent = i.pickup_code;
      code.append(t("kiosk.papers.code"), " ", digits);
    } else if (i.status.code === "picked_up") {
      showText(where, "kiosk.papers.picked_up");
    } else if (i.status.code === "returned") {
      showText(where, "kiosk.papers.returned", { station: i.collect_at.name });
    } else if (i.where && i.where.code === i.collect_at.code) {
      showText(where, "kiosk.papers.here", { station: i.where.name });
    } else if (i.where) {
      showText(where, i.status.code === "to_return" ? "kiosk.papers.returning" : "kiosk.papers.at", { station: i.where.name, to: i.collect_at.name });
    } else {
      showText(where, "kiosk.papers.on_road", { to: i.collect_at.name });
    }
    li.append(head, " ", state, where);
    if (code) li.append(code);
    if (i.overdue) {
      // Past the pickup limit, as the station's shelf says (已超期): it may go back to the hall.
      const late = document.createElement("p");
      late.className = "paper-overdue";
      showText(late, "kiosk.papers.overdue");
      li.append(late);
    }
    return li;
  });
  if (!list.length) {
    const li = document.createElement("li");
    showText(li, "kiosk.papers.none");
    list.push(li);
  }
  $("papers-list").replaceChildren(...list);
}

/** What went wrong with the appointment code, under its input. @param {string} text */
function appointmentProblem(text) {
  $("appointment-error").hidden = false;
  $("appointment-error").textContent = text;
  $("appointment-code").setAttribute("aria-invalid", "true");
  $("appointment-error").scrollIntoView({ block: "center" });
  $("appointment-code").focus({ preventScroll: true });
}

/**
 * Check in an appointment (预约签到): the code is checked here first (right station, within its
 * window), then the device check, then ticket.take {appointment} checks it in for good.
 */
async function checkInAppointment() {
  const code = $("appointment-code").value.normalize("NFKC").replace(/[\s-]/g, "");
  if (!/^\d{8}$/.test(code)) { appointmentProblem(t("kiosk.appointment.incomplete")); return; }
  let response, data;
  try {
    response = await fetch("/api/v1/kiosk/appointments/check", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Kiosk ${localStorage.getItem(CREDENTIAL_KEY)}` },
      body: JSON.stringify({ code }),
    });
    data = await response.json();
  } catch {
    appointmentProblem(t("kiosk.error.generic"));
    return;
  }
  if (!response.ok) {
    const e = data?.error;
    // The too-early text says when the window opens (opens, day); from the server's check.
    appointmentProblem(errorText(e, "kiosk.error.generic", "kiosk.error."));
    return;
  }
  $("appointment-error").hidden = true;
  $("appointment-code").removeAttribute("aria-invalid");
  const a = data.appointment;
  visit.item = { code: a.item.code, name: a.item.name, cloud: true };
  visit.appointment = code;
  visit.appointmentTime = `${a.day} ${a.time}`;
  visit.checkFrom = "home";
  checkDevices();
}

/** Leave no personal data on screen: streams, files, chat and ticket go. */
function clearVisit() {
  dropPhoto();
  closeHangupConfirm();
  stopStream();
  visit.screen?.stop();
  visit.call?.close();
  visit.urls.forEach((url) => URL.revokeObjectURL(url));
  visit = fresh();
  fileLines.sent.clear();
  fileLines.received.clear();
  for (const id of ["chat", "files-sent", "files-received", "results", "item-materials", "rating-levels", "rating-reasons"]) $(id).replaceChildren();
  for (const id of ["files-sent-block", "files-received-block", "done-case", "done-notice", "show-notice", "case-error", "check-case", "check-appointment", "call-case-result", "done-result", "wait-busy", "wait-case", "check-notice"]) $(id).hidden = true;
  $("case-query").removeAttribute("aria-invalid");
  for (const id of ["case-query", "case-last4", "papers-number", "papers-last4", "appointment-code"]) $(id).value = "";
  for (const id of ["papers-list"]) $(id).replaceChildren();
  for (const id of ["papers-case", "papers-expected"]) $(id).textContent = "";
  $("papers-error").hidden = true;
  $("appointment-error").hidden = true;
  $("wait-appointment").hidden = true;
  $("appointment-code").removeAttribute("aria-invalid");
  $("case-last4").removeAttribute("aria-invalid");
  for (const id of ["item-name", "item-description", "item-promised", "item-statutory", "done-number", "done-case-number", "ticket-number", "wait-item", "wait-position", "wait-estimate", "check-case-number", "check-case-item", "check-appointment-time", "check-appointment-item", "call-case-result", "done-result", "wait-case-number"]) showPlain($(id), "");
  $("notice-overlay").hidden = true;
  $("notice-frame").src = "about:blank";
  callClock.stop();
  document.body.classList.remove("nobody-on-duty", "screen-shared");
  for (const id of ["remote-main", "remote-corner", "self-view", "preview"]) $(id).srcObject = null;
  banner(null);
}

// ------------------------------------------------------------------ rating (好差评)

/** @type {{levels: {value: number, label: string}[], bad_levels: number[], reasons: string[]} | null} */
let ratingOptions = null;

async function showRating() {
  ratingOptions = ratingOptions || await api("/api/v1/ratings/options");
  const options = /** @type {any} */ (ratingOptions);
  $("rating").hidden = !visit.ticket;
  $("rating-thanks").hidden = true;
  $("rating-reasons").hidden = true;
  $("rating-send").hidden = true;
  $("rating-levels").replaceChildren(...options.levels.map((/** @type {any} */ level) => {
    const button = document.createElement("button");
    button.className = `button big level-${level.value}`;
    button.dataset.level = String(level.value);
    showText(button, `kiosk.rate.level.${level.value}`);
    button.onclick = () => {
      document.querySelectorAll("#rating-levels .button").forEach((b) => b.classList.remove("chosen"));
      button.classList.add("chosen");
      visit.rating.level = level.value;
      if (options.bad_levels.includes(level.value)) {
        $("rating-reasons").hidden = false;
        $("rating-send").hidden = false;
      } else {
        settleRating("no_answer");
      }
    };
    return button;
  }));
  $("rating-reasons").replaceChildren(...options.reasons.map((/** @type {string} */ reason) => {
    const chip = document.createElement("button");
    chip.className = "chip big";
    showStored(chip, "rating.reason.", reason);
    chip.onclick = () => {
      chip.classList.toggle("chosen");
      const list = visit.rating.reasons;
      const at = list.indexOf(reason);
      if (at >= 0) list.splice(at, 1); else list.push(reason);
    };
    return chip;
  }));
}

/**
 * Send the rating once. A chosen level is never dropped (sent with whatever reasons are ticked);
 * with none chosen the session is recorded as not rated: ``declined`` (返回首页) or ``no_answer``.
 * @param {"declined" | "no_answer"} unrated
 */
function settleRating(unrated) {
  if (!visit.ticket || visit.rating.sent || document.body.dataset.current !== "done" || $("rating").hidden) return;
  const level = visit.rating.level;
  visit.rating.sent = true;
  const bad = level !== null && (ratingOptions?.bad_levels || []).includes(level);
  connection?.send(level === null
    ? { type: "rating.submit", ticket: visit.ticket.id, level: null, outcome: unrated }
    : { type: "rating.submit", ticket: visit.ticket.id, level, reasons: bad ? [...visit.rating.reasons] : [], outcome: "rated" });
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("enrol-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); enrol($("enrol-code").value.trim()); };
  let typing = 0;
  $("search").oninput = () => {
    clearTimeout(typing);
    const q = $("search").value.trim();
    typing = window.setTimeout(() => {
      if (q) search({ q });
      else {
        $("results-block").hidden = true;
        markCategory();
      }
    }, 250);
  };
  document.querySelectorAll("[data-go=home]").forEach((el) => {
    /** @type {HTMLElement} */ (el).onclick = () => goHome();
  });
  $("call-button").onclick = () => checkDevices();
  $("retry-devices").onclick = () => checkDevices();
  $("net-retry").onclick = () => checkNetwork();
  $("check-back").onclick = () => {
    stopStream();
    if (visit.checkFrom === "item" && visit.item?.materials) show("item");
    else goHome();
  };
  $("speaker-test").onclick = () => beep(800);
  $("start-call").onclick = () => takeTicket();
  $("cancel-ticket").onclick = () => {
    if (visit.ticket) finishedTickets.add(visit.ticket.id);
    connection?.send({ type: "ticket.cancel" });
    goHome();
    // Said on the home screen for a while: the place in the queue is given up.
    bannerForAWhile("kiosk.wait.cancelled");
  };
  // 挂断 asks first: a touch by mistake would cost the resident their place.
  closeHangupConfirm = askBeforeHangingUp({
    connection: () => connection,
    inCall: () => Boolean(visit.call),
    onCallScreen: () => document.body.dataset.current === "call",
    idleKey: "kiosk.call.hangup",
  });
  $("photo").onclick = () => takePhoto();
  $("photo-send").onclick = () => sendPhoto();
  $("photo-retake").onclick = () => retakePhoto();
  $("photo-cancel").onclick = () => dropPhoto();
  $("photo-overlay").onkeydown = (/** @type {KeyboardEvent} */ e) => { if (e.key === "Escape") dropPhoto(); };
  $("switch-camera").onclick = () => switchCamera();
  $("share-screen").onclick = () => toggleScreen().catch(() => {});
  $("send-file").onclick = () => $("file-input").click();
  $("file-input").onchange = () => {
    for (const file of $("file-input").files) sendFile(file, file.name);
    $("file-input").value = "";
  };
  keepChatAtItsEnd();
  $("chat-form").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text || !visit.call) return;
    visit.call.sendApp({ kind: "chat", text });
    memory.append("chat", addChat(text, "me", { key: "kiosk.call.chat_me" }));
    $("chat-input").value = "";
  };
  $("rating-send").onclick = () => settleRating("no_answer");
  $("notice-print").onclick = () => $("notice-frame").contentWindow?.print();
  $("notice-close").onclick = () => { $("notice-overlay").hidden = true; };
  $("show-notice").onclick = () => reopenNotice();
  $("check-notice").onclick = () => reopenNotice();
  $("done-notice").onclick = () => reopenNotice();
  // 再次来办: the check-in, correction and papers forms lie below the items; a touch brings
  // the form's heading into view and its first field ready for typing.
  document.querySelectorAll("[data-jump]").forEach((el) => {
    const { jump, field } = /** @type {HTMLElement} */ (el).dataset;
    /** @type {HTMLElement} */ (el).onclick = () => {
      $(jump || "").scrollIntoView({ block: "start", behavior: "smooth" });
      $(field || "").focus({ preventScroll: true });
    };
  });
  // The home screen's three "again" forms: one used takes away what another one said (two
  // errors on one screen, the older about something no longer being done).
  const again = [
    { form: "correction-form", error: "case-error", action: findCase },
    { form: "papers-form", error: "papers-error", action: findPapers },
    { form: "appointment-form", error: "appointment-error", action: checkInAppointment },
  ];
  for (const { form, action } of again) {
    $(form).onsubmit = (/** @type {Event} */ e) => {
      e.preventDefault();
      for (const other of again) if (other.form !== form) $(other.error).hidden = true;
      action();
    };
  }
  // The thank-you screen's way out ends the resident's visit: the next resident finds the kiosk
  // as new (normal type, Chinese), as after the idle countdown. With a level chosen it sends it;
  // without one the resident declined to rate (a 跳过 beside it did the same, and two buttons
  // doing one thing made a resident stop and choose, a README walk found).
  $("done-home").onclick = () => { settleRating("declined"); resetKiosk(); };
  $("elderly").onclick = $("notice-elderly").onclick = () => {
    chooseElderly(!document.body.classList.contains("elderly"));
    idle.restart();
  };
  setElderly(Boolean(localStorage.getItem(ELDERLY_KEY)));
  $("lang").onclick = async () => {
    await setLang(lang === "zh-CN" ? "en" : "zh-CN");
    // What the papers screen drew from the server is said again (it stayed Chinese).
    if (document.body.dataset.current === "papers" && shownPapers) showPapers(shownPapers);
    if (document.body.dataset.current === "call") {
      showCallWith();
      memory.set("lang", lang);
    }
    // The case's result (in the call and on the thank-you screen) stayed Chinese.
    if (visit.caseData) showCaseResult(visit.caseData);
    idle.restart();
  };
  $("idle-stay").onclick = () => idle.restart();
  $("busy-retry").onclick = () => {
    askedAgain = true;
    connection?.connect();
  };
  // The browser's Back (a touch screen's back swipe) never leaves the kiosk for the page before
  // it (a blank page, a README walk found): it is the shown screen's own 返回, or nothing (in a
  // call, on the home screen). Back pops an entry pushed at a touch: one pushed before any
  // touch is one Chromium's Back may skip, together with the page that pushed it.
  const guardHistory = () => { if (history.state?.kiosk !== true) history.pushState({ kiosk: true }, ""); };
  window.addEventListener("popstate", () => {
    guardHistory();
    itemOpens += 1;  // an item still loading is not shown
    const back = /** @type {HTMLButtonElement | null} */ (document.querySelector("[data-screen]:not([hidden]) .back"));
    if (back && !back.hidden && !back.disabled) back.click();
  });
  // Any touch or key on the kiosk restarts the idle countdown (the overlay's own button too).
  for (const type of ["pointerdown", "keydown", "input"]) {
    document.addEventListener(type, () => { idle.restart(); guardHistory(); }, { capture: true, passive: true });
  }
}

// For tests and the browser benchmark: the page's own objects.
Object.assign(window, { cloudhelp: { get visit() { return visit; }, get connection() { return connection; }, sendFile, idle: IDLE } });

// A page load is a new resident: Chinese, normal type size (unless it resumes the session of
// the page it reloads: the welcome handler above).
let elderlyBeforeLoad = Boolean(localStorage.getItem(ELDERLY_KEY));
localStorage.removeItem(ELDERLY_KEY);
await setLang("zh-CN");
wire();
const code = new URLSearchParams(location.search).get("enrol");
if (code && !localStorage.getItem(CREDENTIAL_KEY)) await enrol(code);
else {
  if (code) history.replaceState(null, "", "/kiosk");  // already enrolled: the code is not needed
  start();
}
