// What the kiosk page and the staff console show alike during a call: the banner, the remote
// video (camera, or shared screen with the camera in a corner), chat lines.
// @ts-check
import { clockTime, errorKey, showPlain, showText, t } from "./i18n.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/**
 * A status line under the header: a catalog text (`key` with `values`), said again in the other
 * language after a switch; null hides it.
 * @param {string | null} key @param {string} [kind] @param {Record<string, any>} [values]
 */
export function banner(key, kind = "warn", values = {}) {
  const el = $("banner");
  el.hidden = !key;
  el.className = `banner ${kind}`;
  if (key) showText(el, key, values);
  else showPlain(el, "");
}

/** Whether the banner says `key` now. @param {string} key */
export function bannerSays(key) {
  return !$("banner").hidden && $("banner").dataset.i18n === key;
}

/** A server's refusal in the banner (`errorKey`). @param {any} error @param {string} fallback @param {string} [prefix] */
export function errorBanner(error, fallback, prefix) {
  const [key, values] = errorKey(error, fallback, prefix);
  banner(key, "error", values);
}

/**
 * News said for a while (8 s), then gone, unless something else was said meanwhile.
 * @param {string} key @param {string} [kind] @param {Record<string, any>} [values]
 */
export function bannerForAWhile(key, kind = "info", values = {}) {
  banner(key, kind, values);
  const said = $("banner").dataset.i18nValues;
  setTimeout(() => { if (bannerSays(key) && $("banner").dataset.i18nValues === said) banner(null); }, 8000);
}

/**
 * The #hang-up button says the hang-up is on its way (`pending`) and cannot be pressed twice;
 * the call ending, or the connection dropping what the page sent ("unsent"), puts it back.
 * @param {boolean} pending @param {string} idleKey its label otherwise
 */
export function hangingUp(pending, idleKey) {
  const button = $("hangup");
  button.disabled = pending;
  showText(button, pending ? "call.hanging_up" : idleKey);
}

/**
 * 挂断 asks first (a touch by mistake would end the call): #hangup opens #hangup-overlay
 * (_hangup_confirm.html), where 继续通话 is the default and so is Escape; its 挂断 sends the
 * hang-up through `connection` (offline, it goes out once the page is back) when `inCall()`.
 * Returns the function that closes the question (answered, or the call ended meanwhile),
 * giving the focus back to 挂断 while `onCallScreen()`.
 * @param {{ connection: () => import("./protocol.js").Connection | null | undefined,
 *   inCall: () => boolean, onCallScreen: () => boolean, idleKey: string }} page
 */
export function askBeforeHangingUp({ connection, inCall, onCallScreen, idleKey }) {
  const close = () => {
    const open = !$("hangup-overlay").hidden;
    $("hangup-overlay").hidden = true;
    if (open && !$("hangup").disabled && onCallScreen()) $("hangup").focus();
  };
  $("hangup").onclick = () => {
    if (!inCall() || $("hangup").disabled) return;  // no call, or it is ending already
    $("hangup-overlay").hidden = false;
    $("hangup-keep").focus();
  };
  $("hangup-keep").onclick = close;
  $("hangup-overlay").onkeydown = (/** @type {KeyboardEvent} */ e) => { if (e.key === "Escape") close(); };
  $("hangup-confirm").onclick = () => {
    close();
    const link = connection();
    if (!link || !inCall()) return;
    link.send({ type: "call.hangup" });
    hangingUp(true, idleKey);
  };
  return close;
}

/**
 * Show the peer's media in #remote-main / #remote-corner / #remote-audio and say what the
 * connection is doing; a call whose media cannot recover is hung up with `media_failed`.
 * Aborting `signal` detaches both listeners (the console does when the call ends).
 * @param {import("./protocol.js").Call} call @param {import("./protocol.js").Connection} connection
 * @param {AbortSignal} [signal]
 */
export function wireCall(call, connection, signal) {
  call.addEventListener("track", (/** @type {any} */ e) => {
    const { kind, stream } = e.detail;
    if (kind === "audio") $("remote-audio").srcObject = stream;
    else if (kind === "camera") $("remote-main").srcObject = stream;
    else $("remote-corner").srcObject = stream;
  }, { signal });
  call.addEventListener("state", (/** @type {any} */ e) => {
    if (e.detail === "reconnecting") banner("net.media_reconnecting");
    else if (e.detail === "connected") banner(null);
    else if (e.detail === "failed") {
      banner("net.call_failed", "error");
      connection.send({ type: "call.hangup", reason: "media_failed" });
    }
  }, { signal });
}

/** While the peer shares a screen it fills the stage and their camera goes to the corner. */
export function showRemoteScreen(/** @type {import("./protocol.js").Call} */ call, /** @type {boolean} */ on) {
  $("remote-main").srcObject = on ? call.remoteStreams.screen : call.remoteStreams.camera;
  $("remote-corner").srcObject = on ? call.remoteStreams.camera : null;
  $("remote-corner").hidden = !on;
  document.body.classList.toggle("screen-shared", on);
}

/** @typedef {{ key: string } | { name: string }} ChatSender */

/**
 * One chat line: the words, and small above them who said it and when (HH:MM now in the
 * district's time zone, or `time` for a line shown again after a reload). Name and time are the
 * line's data-sender / data-time, shown by call.css; the line's text is the words alone. `sender`
 * is a catalog key (said again after a language switch: data-i18n-sender) or a person's name; it
 * defaults to the console's names (我 / 居民); the kiosk names both sides (您 / the staff
 * member). Returns what was shown, for the call's memory (callmemory.js).
 * @param {string} text @param {"me" | "them"} who @param {ChatSender} [sender] @param {string} [time]
 */
export function addChat(text, who, sender = { key: `call.chat.${who}` }, time = clockTime(new Date())) {
  const li = document.createElement("li");
  li.className = who;
  if ("key" in sender) {
    li.dataset.i18nSender = sender.key;
    li.dataset.sender = t(sender.key);
  } else {
    li.dataset.sender = sender.name;
  }
  li.dataset.time = time;
  li.textContent = text;
  // The list scrolls to its newest line, not the page: a console reviewing a checklist above the
  // chat stays where it is (staff.js says what arrived meanwhile).
  const list = $("chat");
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return { text, who, sender, time };
}

/**
 * The chat lines a call's memory kept, shown again (each field checked: the memory is this
 * page's own, but storage is not a type).
 * @param {unknown} lines
 */
export function addChatLines(lines) {
  if (!Array.isArray(lines)) return;
  for (const line of lines) {
    if (typeof line?.text !== "string" || (line.who !== "me" && line.who !== "them")) continue;
    const sender = line.sender;
    const kept = typeof sender?.key === "string" ? { key: sender.key } : { name: String(sender?.name ?? sender ?? "") };
    addChat(line.text, line.who, kept, String(line.time || ""));
  }
}

/** A byte count as people read it: "512 B", "34.5 KB", "5.0 MB". @param {number} bytes */
export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * What a page says of a received file it does not show (no photo or PDF by its first bytes):
 * its name and size, and that this type cannot be previewed.
 * @param {{name: string, size: number}} file
 */
export function notPreviewable(file) {
  const note = document.createElement("span");
  note.className = "no-preview";
  showText(note, "common.file_not_previewable", { name: file.name, size: fileSize(file.size) });
  return note;
}
