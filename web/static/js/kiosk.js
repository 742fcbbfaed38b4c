// The kiosk page (社区驿站自助终端): find an item, check devices, queue, call, send documents.
// @ts-check
import { Call, Connection, FileChannel, uploadFile } from "./protocol.js";
import { addChat, banner, showRemoteScreen, wireCall } from "./callview.js";
import { beep, duration, lang, setLang, t, translate } from "./i18n.js";

const CREDENTIAL_KEY = "cloudhelp.kiosk.credential";
const IDLE_RETURN_SECONDS = 30;
const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** Everything about the current resident; cleared when the kiosk returns home. */
let visit = fresh();
/** @type {Connection | null} */
let connection = null;

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
    countdown: 0,
    correction: /** @type {string | null} */ (null),
    rating: /** @type {{level: number | null, reasons: string[], sent: boolean}} */ ({ level: null, reasons: [], sent: false }),
  };
}

/** @param {string} name */
function show(name) {
  document.querySelectorAll("[data-screen]").forEach((el) => {
    /** @type {HTMLElement} */ (el).hidden = /** @type {HTMLElement} */ (el).dataset.screen !== name;
  });
  document.body.dataset.current = name;
}


async function api(/** @type {string} */ path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// ------------------------------------------------------------------ enrolment and sign-in

async function enrol(/** @type {string} */ code) {
  const response = await fetch("/api/v1/kiosk/enrol", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }),
  });
  if (!response.ok) {
    $("enrol-error").hidden = false;
    $("enrol-error").textContent = t("kiosk.enrol.failed");
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
    $("station").textContent = `${e.detail.principal.station_name} · ${e.detail.principal.name}`;
  });
  connection.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner(t("net.reconnecting"));
    else if (e.detail === "online") banner(null);
  });
  connection.addEventListener("auth-failed", () => {
    localStorage.removeItem(CREDENTIAL_KEY);
    banner(t("kiosk.revoked"), "error");
    show("enrol");
  });
  connection.addEventListener("message", (/** @type {any} */ e) => onMessage(e.detail));
  connection.connect();
  goHome();
}

// ------------------------------------------------------------------ finding an item

async function goHome() {
  clearVisit();
  show("home");
  $("search").value = "";
  $("results-block").hidden = true;
  const [hot, categories] = await Promise.all([api("/api/v1/items/hot"), api("/api/v1/categories")]);
  renderTiles($("hot"), hot.items);
  $("categories").replaceChildren(...categories.categories.map((/** @type {any} */ c) => {
    const button = document.createElement("button");
    button.className = "chip big";
    button.textContent = `${c.letter} · ${c.name}`;
    button.onclick = () => search({ category: c.code });
    return button;
  }));
}

/** @param {HTMLElement} target @param {any[]} items */
function renderTiles(target, items) {
  target.replaceChildren(...items.map((item) => {
    const tile = document.createElement("button");
    tile.className = "tile";
    tile.dataset.item = item.code;
    const name = document.createElement("strong");
    name.textContent = item.name;
    const meta = document.createElement("span");
    meta.textContent = item.department.name;
    tile.append(name, meta);
    tile.onclick = () => openItem(item.code);
    return tile;
  }));
}

/** @param {{q?: string, category?: string}} query */
async function search(query) {
  const params = new URLSearchParams({ limit: "30", ...query });
  const body = await api(`/api/v1/items?${params}`);
  $("results-block").hidden = false;
  renderTiles($("results"), body.items);
  if (!body.items.length) {
    const none = document.createElement("p");
    none.className = "empty";
    none.textContent = t("kiosk.home.none");
    $("results").append(none);
  }
}

async function openItem(/** @type {string} */ code) {
  const item = await api(`/api/v1/items/${encodeURIComponent(code)}`);
  visit.item = item;
  $("item-name").textContent = item.name;
  $("item-description").textContent = item.description;
  $("item-promised").textContent = t("kiosk.item.promised", { days: item.promised_days });
  $("item-statutory").textContent = t("kiosk.item.statutory", { days: item.statutory_days });
  $("item-materials").replaceChildren(...item.materials.map((/** @type {any} */ m) => {
    const li = document.createElement("li");
    const head = document.createElement("strong");
    head.textContent = m.name;
    const badge = document.createElement("span");
    badge.className = `badge ${m.requirement === "required" ? "ok" : "warn"}`;
    badge.textContent = t(`kiosk.item.${m.requirement}`);
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
  show("item");
}

// ------------------------------------------------------------------ device check

async function checkDevices(/** @type {boolean} */ video = true) {
  show("check");
  $("device-error").hidden = true;
  $("retry-devices").hidden = true;
  $("without-camera").hidden = true;
  stopStream();
  try {
    visit.stream = await navigator.mediaDevices.getUserMedia({
      video: video ? { width: { ideal: 1280 }, height: { ideal: 720 } } : false,
      audio: true,
    });
  } catch (error) {
    const name = /** @type {any} */ (error).name;
    $("device-error").hidden = false;
    $("device-error").textContent = t(name === "NotAllowedError" || name === "SecurityError" ? "kiosk.check.denied" : "kiosk.check.no_camera");
    $("retry-devices").hidden = false;
    $("without-camera").hidden = false;
    visit.stream = null;
    return;
  }
  $("preview").srcObject = visit.stream;
  visit.cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  meter(visit.stream);
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
    analyser.getByteTimeDomainData(data);
    const peak = Math.max(...data.map((v) => Math.abs(v - 128))) / 128;
    $("mic-level").style.width = `${Math.min(100, peak * 160)}%`;
    requestAnimationFrame(draw);
  };
  draw();
}

function stopStream() {
  visit.stream?.getTracks().forEach((track) => track.stop());
  visit.stream = null;
  visit.meter?.close();
  visit.meter = null;
}

// ------------------------------------------------------------------ queue and call

function takeTicket() {
  show("waiting");
  $("ticket-number").textContent = "…";
  $("wait-item").textContent = visit.item.name;
  $("wait-position").textContent = "";
  $("wait-estimate").textContent = "";
  connection?.send(visit.correction
    ? { type: "ticket.take", case: visit.correction }
    : { type: "ticket.take", item: visit.item.code });
}

/** @param {any} frame */
function onMessage(frame) {
  if (frame.type === "ticket") onTicket(frame.ticket);
  else if (frame.type === "joined") onJoined(frame);
  else if (frame.type === "left") onLeft(frame.reason);
  else if (frame.type === "rating.saved") {
    $("rating").hidden = true;
    $("rating-thanks").hidden = false;
  } else if (frame.type === "error" && frame.ref === "ticket.take") {
    banner(frame.message, "error");
  }
}

/** @param {any} ticket */
function onTicket(ticket) {
  visit.ticket = ticket;
  if (ticket.status === "waiting" || ticket.status === "offered") {
    if (document.body.dataset.current !== "waiting") show("waiting");
    $("ticket-number").textContent = ticket.number;
    $("wait-item").textContent = ticket.item.name;
    const ahead = ticket.position - 1;
    $("wait-position").textContent = ticket.status === "offered" ? t("kiosk.wait.ringing")
      : ahead > 0 ? t("kiosk.wait.position", { n: ahead }) : t("kiosk.wait.first");
    $("wait-estimate").textContent = ticket.estimated_wait_seconds === null ? t("kiosk.wait.nobody")
      : ticket.estimated_wait_seconds < 30 ? t("kiosk.wait.soon")
      : t("kiosk.wait.estimate", { time: duration(ticket.estimated_wait_seconds) });
  } else if (ticket.status === "cancelled" || ticket.status === "abandoned") {
    goHome();
  }
}

/** @param {any} frame */
function onJoined(frame) {
  const call = new Call(/** @type {Connection} */ (connection), {
    initiator: frame.initiator, peer: frame.peers[0].session, stream: visit.stream || undefined,
  });
  visit.call = call;
  visit.files = new FileChannel(call);
  $("self-view").srcObject = visit.stream;
  $("chat").replaceChildren();
  $("files").replaceChildren();
  $("switch-camera").hidden = visit.cameras.length < 2;
  wireCall(call, /** @type {Connection} */ (connection));
  call.addEventListener("app", (/** @type {any} */ e) => onApp(e.detail));
  visit.files.addEventListener("progress", (/** @type {any} */ e) => fileProgress(e.detail));
  visit.files.addEventListener("file", (/** @type {any} */ e) => fileReceived(e.detail));
  show("call");
}

/** @param {any} data */
function onApp(data) {
  if (data.kind === "chat") addChat(data.text, "them");
  else if (data.kind === "screen") showStaffScreen(data.on);
  else if (data.kind === "notice") showNotice(data.url);
}

/** The one-time correction notice, shown large with a print button (the resident may photograph its QR code). */
function showNotice(/** @type {string} */ url) {
  $("notice-frame").src = url;
  $("notice-overlay").hidden = false;
}

function showStaffScreen(/** @type {boolean} */ on) {
  if (!visit.call) return;
  showRemoteScreen(visit.call, on);
  $("screen-label").hidden = !on;
}


/** @param {string} id @param {string} text @param {string} [kind] */
function fileLine(id, text, kind = "") {
  let li = document.querySelector(`#files [data-id="${id}"]`);
  if (!li) {
    li = document.createElement("li");
    /** @type {HTMLElement} */ (li).dataset.id = id;
    $("files").append(li);
  }
  li.className = kind;
  const label = li.querySelector(".label") || li.appendChild(Object.assign(document.createElement("span"), { className: "label" }));
  label.textContent = text;
  return /** @type {HTMLElement} */ (li);
}

function fileProgress(/** @type {any} */ p) {
  if (p.direction === "out") {
    fileLine(p.id, t("kiosk.call.sending", { name: p.name, percent: Math.floor((100 * p.done) / Math.max(1, p.size)) }));
  }
}

async function sendFile(/** @type {Blob} */ blob, /** @type {string} */ name) {
  if (!visit.files) return;
  try {
    const result = await visit.files.send(blob, name);
    fileLine(result.id, t(result.ok ? "kiosk.call.sent" : "kiosk.call.send_failed", { name }), result.ok ? "ok" : "error");
  } catch (error) {
    console.error("file transfer failed", name, error);
    const li = fileLine(`failed-${Date.now()}`, t("kiosk.call.send_failed", { name }), "error");
    const retry = document.createElement("button");
    retry.className = "button";
    retry.textContent = t("common.retry");
    retry.onclick = () => { li.remove(); sendFile(blob, name); };
    li.append(retry);
  }
}

/** A file from staff: preview, print, and keep it on the server against the ticket. */
async function fileReceived(/** @type {any} */ file) {
  const url = URL.createObjectURL(file.blob);
  visit.urls.push(url);
  const li = fileLine(file.id, file.name, file.ok ? "ok" : "error");
  if (file.type.startsWith("image/")) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = file.name;
    li.prepend(img);
  }
  const print = document.createElement("button");
  print.className = "button";
  print.textContent = t("common.print");
  print.onclick = () => printFile(url);
  li.append(print);
  if (file.ok && visit.ticket) {
    const credential = localStorage.getItem(CREDENTIAL_KEY) || "";
    uploadFile(visit.ticket.id, file, "staff", { Authorization: `Kiosk ${credential}` }).catch(() => {});
  }
}

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
  const stamp = new Date().toTimeString().slice(0, 8).replaceAll(":", "");
  await sendFile(/** @type {Blob} */ (blob), `材料照片-${stamp}.jpg`);
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
    $("share-screen").textContent = t("kiosk.call.share_screen");
    return;
  }
  const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
  visit.screen = display.getVideoTracks()[0];
  visit.screen.onended = () => { if (visit.screen) toggleScreen(); };
  await visit.call.shareScreen(visit.screen);
  $("share-screen").textContent = t("kiosk.call.stop_share");
}

function onLeft(/** @type {string} */ reason) {
  visit.call?.close();
  visit.call = null;
  if (reason === "transferred") {
    show("waiting");
    banner(t("kiosk.done.transferred"), "info");
    return;
  }
  show("done");
  $("done-number").textContent = visit.ticket ? t("kiosk.done.number", { number: visit.ticket.number }) : "";
  const key = `kiosk.reason.${reason}`;
  $("done-reason").textContent = t(key) === key ? t("kiosk.done.ended") : t(key);
  showRating();
  let left = IDLE_RETURN_SECONDS;
  const tick = () => {
    if (document.body.dataset.current !== "done") return;
    $("done-countdown").textContent = t("kiosk.done.auto", { n: left });
    if (left-- <= 0) {
      submitRating(null);  // no answer is recorded as skipped
      goHome();
    }
    else visit.countdown = window.setTimeout(tick, 1000);
  };
  tick();
}

/** A correction session: find the case by number (or phone and ID digits) and call for it. */
async function findCase() {
  const value = $("case-query").value.trim();
  const last4 = $("case-id-last4").value.trim();
  const body = last4 ? { phone: value, id_last4: last4 } : { number: value };
  const response = await fetch("/api/v1/kiosk/cases/lookup", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Kiosk ${localStorage.getItem(CREDENTIAL_KEY)}` },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    $("case-error").hidden = false;
    $("case-error").textContent = t("kiosk.correction.not_found");
    return;
  }
  $("case-error").hidden = true;
  visit.item = { code: data.case.item.code, name: data.case.item.name, cloud: true };
  visit.correction = data.case.number;
  checkDevices(true);
}

/** Leave no personal data on screen: streams, files, chat and ticket go. */
function clearVisit() {
  stopStream();
  visit.screen?.stop();
  visit.call?.close();
  visit.urls.forEach((url) => URL.revokeObjectURL(url));
  clearTimeout(visit.countdown);
  visit = fresh();
  for (const id of ["chat", "files", "results"]) $(id).replaceChildren();
  for (const id of ["case-query", "case-id-last4"]) $(id).value = "";
  $("notice-overlay").hidden = true;
  $("notice-frame").src = "about:blank";
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
    button.textContent = t(`kiosk.rate.level.${level.value}`);
    button.onclick = () => {
      document.querySelectorAll("#rating-levels .button").forEach((b) => b.classList.remove("chosen"));
      button.classList.add("chosen");
      visit.rating.level = level.value;
      if (options.bad_levels.includes(level.value)) {
        $("rating-reasons").hidden = false;
        $("rating-send").hidden = false;
      } else {
        submitRating(level.value);
      }
    };
    return button;
  }));
  $("rating-reasons").replaceChildren(...options.reasons.map((/** @type {string} */ reason) => {
    const chip = document.createElement("button");
    chip.className = "chip big";
    chip.textContent = reason;
    chip.onclick = () => {
      chip.classList.toggle("chosen");
      const list = visit.rating.reasons;
      const at = list.indexOf(reason);
      if (at >= 0) list.splice(at, 1); else list.push(reason);
    };
    return chip;
  }));
}

/** @param {number | null} level */
function submitRating(level) {
  if (!visit.ticket || visit.rating.sent) return;
  visit.rating.sent = true;
  connection?.send({
    type: "rating.submit", ticket: visit.ticket.id, level,
    reasons: level !== null && (ratingOptions?.bad_levels || []).includes(level) ? visit.rating.reasons : [],
  });
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("enrol-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); enrol($("enrol-code").value.trim()); };
  let typing = 0;
  $("search").oninput = () => {
    clearTimeout(typing);
    const q = $("search").value.trim();
    typing = window.setTimeout(() => (q ? search({ q }) : ($("results-block").hidden = true)), 250);
  };
  document.querySelectorAll("[data-go]").forEach((el) => {
    /** @type {HTMLElement} */ (el).onclick = () => {
      const target = /** @type {HTMLElement} */ (el).dataset.go;
      if (target === "home") goHome();
      else { stopStream(); show(target || "home"); }
    };
  });
  $("call-button").onclick = () => checkDevices(true);
  $("retry-devices").onclick = () => checkDevices(true);
  $("without-camera").onclick = async () => {
    try { visit.stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch { visit.stream = null; }
    takeTicket();
  };
  $("speaker-test").onclick = () => beep(800);
  $("start-call").onclick = () => takeTicket();
  $("cancel-ticket").onclick = () => { connection?.send({ type: "ticket.cancel" }); goHome(); };
  $("hangup").onclick = () => connection?.send({ type: "call.hangup" });
  $("photo").onclick = () => takePhoto();
  $("switch-camera").onclick = () => switchCamera();
  $("share-screen").onclick = () => toggleScreen().catch(() => {});
  $("file-input").onchange = () => {
    for (const file of $("file-input").files) sendFile(file, file.name);
    $("file-input").value = "";
  };
  $("chat-form").onsubmit = (/** @type {Event} */ e) => {
    e.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text || !visit.call) return;
    visit.call.sendApp({ kind: "chat", text });
    addChat(text, "me");
    $("chat-input").value = "";
  };
  $("rating-send").onclick = () => submitRating(visit.rating.level);
  $("notice-print").onclick = () => $("notice-frame").contentWindow?.print();
  $("notice-close").onclick = () => { $("notice-overlay").hidden = true; };
  $("correction-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); findCase(); };
  $("rating-skip").onclick = () => { submitRating(null); goHome(); };
  $("elderly").onclick = () => {
    const on = document.body.classList.toggle("elderly");
    localStorage.setItem("cloudhelp.elderly", on ? "1" : "");
  };
  document.body.classList.toggle("elderly", Boolean(localStorage.getItem("cloudhelp.elderly")));
  $("lang").onclick = () => setLang(lang === "zh-CN" ? "en" : "zh-CN");
}

// For tests and the browser benchmark: the page's own objects.
Object.assign(window, { cloudhelp: { get visit() { return visit; }, get connection() { return connection; }, sendFile } });

await setLang(lang);
translate(document);
wire();
const code = new URLSearchParams(location.search).get("enrol");
if (code && !localStorage.getItem(CREDENTIAL_KEY)) await enrol(code);
else start();
