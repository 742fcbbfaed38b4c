// Booking an appointment (预约): item, station, day, a free slot, who comes; then the code and
// the slip. An appointment is found again by its code and the phone's last four digits to be
// cancelled or moved (改约: pick another slot above). A signed-in staff member books on the
// resident's behalf with the same page (the server records who).
// @ts-check
import { banner, errorBanner } from "./callview.js";
import { DISTRICT_TZ, el, errorKey, lang, setLang, showText, t } from "./i18n.js";

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
/** @type {{slot: any, found: any, key: {code: string, last4: string} | null, slots: any[], slotsAnswer: any, booked: any}} */
const state = { slot: null, found: null, key: null, slots: [], slotsAnswer: null, booked: null };

/** @param {string} url @param {any} [json] */
async function call(url, json) {
  const response = await fetch(url, json === undefined ? { credentials: "same-origin" } : {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(json) });
  return { ok: response.ok, body: await response.json() };
}

/** An appointment found by its code: code, status and facts. @param {any} a */
function foundText(a) {
  return `${a.code} · ${t(`appointment.status.${a.status}`)} · ${facts(a)}`;
}

/** @param {any} a */
function facts(a) {
  return t("book.facts", { item: a.item.name, station: a.station.name, day: a.day, time: a.time, name: a.name, phone: a.phone });
}

async function loadItems() {
  const { body } = await call("/api/v1/items?cloud=true&limit=200");
  // Under their departments (a district has some 80 items: one flat list was hard to search).
  /** @type {Map<string, HTMLOptGroupElement>} */
  const groups = new Map();
  for (const item of body.items) {
    const name = item.department?.name || "";
    if (!groups.has(name)) groups.set(name, Object.assign(document.createElement("optgroup"), { label: name }));
    groups.get(name)?.append(new Option(item.name, item.code));
  }
  $("b-item").replaceChildren(...groups.values());
  const wanted = new URLSearchParams(location.search).get("item") || "NYNC-002";
  if (body.items.some((/** @type {any} */ i) => i.code === wanted)) $("b-item").value = wanted;
}

async function findSlots() {
  state.slot = null;
  $("person-form").hidden = true;
  const query = new URLSearchParams({ item: $("b-item").value, station: $("b-station").value, date: $("b-date").value });
  const { ok, body } = await call(`/api/v1/appointments/slots?${query}`);
  if (!ok) { errorBanner(body?.error, "book.error"); return; }
  state.slotsAnswer = body;
  renderSlots(body);
}

/** The day's slots as the server answered (drawn again in another language). @param {any} body */
function renderSlots(body) {
  state.slots = body.slots;
  const free = body.slots.filter((/** @type {any} */ s) => s.free > 0).length;
  $("slots-state").textContent = body.calendar_installed === false ? t("book.calendar_not_installed")
    : !body.working_day ? t("book.not_working_day")
    : body.slots.length === 0 ? t(body.passed ? "book.all_passed" : "book.no_slots") : t("book.slots_state", { free, minutes: body.slot_minutes });
  $("slots").replaceChildren(...body.slots.map((/** @type {any} */ s) => {
    const button = /** @type {HTMLButtonElement} */ (el("button"));
    button.type = "button";
    button.append(s.time, el("small", s.free ? t("book.places", { n: s.free }) : t("book.full")));
    button.disabled = s.free === 0;
    button.setAttribute("aria-pressed", "false");
    button.dataset.time = s.time;
    button.onclick = () => choose(s, button);
    return button;
  }));
}

/** The slot at ``time`` chosen again once the slots are drawn again, if it still has a place. @param {string} time */
function chooseAgain(time) {
  const slot = state.slots.find((/** @type {any} */ s) => s.time === time && s.free > 0);
  const button = $("slots").querySelector(`button[data-time="${time}"]`);
  if (slot && button) choose(slot, button);
}

/** @param {any} slot @param {HTMLElement} button */
function choose(slot, button) {
  state.slot = slot;
  $("slots").querySelectorAll("button").forEach((/** @type {HTMLElement} */ b) => b.setAttribute("aria-pressed", String(b === button)));
  $("chosen").textContent = t(state.key ? "book.chosen_rebook" : "book.chosen", { day: $("b-date").value, time: slot.time });
  $("person-form").hidden = false;
  // A rebooking keeps the booking's person: their fields are hidden, and not required (an empty
  // hidden required field stopped the form without a word: 确认改约 did nothing, a walk found).
  for (const id of ["b-name", "b-phone", "b-id"]) $(id).closest("label").hidden = Boolean(state.key);
  for (const id of ["b-name", "b-phone"]) $(id).required = !state.key;
  $("person-form").querySelector("button").textContent = t(state.key ? "book.confirm_rebook" : "book.confirm");
}

/** @param {any} body */
function showBooked(body) {
  const a = body.appointment;
  $("booked").hidden = false;
  $("done-code").textContent = a.code;
  state.booked = a;
  $("done-facts").textContent = facts(a);
  $("done-slip").href = body.slip_url;
  $("person-form").hidden = true;
  $("booked").scrollIntoView({ block: "start" });
  banner(null);
}

/** @type {Record<string, string>} refusals about one field of the person form: its input's id */
const FIELD_OF_ERROR = { bad_applicant: "b-name", bad_phone: "b-phone", bad_id_number: "b-id" };

async function confirm() {
  if (!state.slot) return;
  $("person-error").hidden = true;
  for (const id of Object.values(FIELD_OF_ERROR)) $(id).removeAttribute("aria-invalid");
  const when = { date: $("b-date").value, time: state.slot.time };
  const { ok, body } = state.key
    ? await call("/api/v1/appointments/rebook", { ...state.key, ...when, station: $("b-station").value })
    : await call("/api/v1/appointments", { item: $("b-item").value, station: $("b-station").value, ...when,
      name: $("b-name").value, phone: $("b-phone").value, id_number: $("b-id").value });
  if (!ok) {
    const [key, values] = errorKey(body?.error, "book.error");
    const field = FIELD_OF_ERROR[body?.error?.code];
    if (field) {
      // A field the resident typed wrong: said beside it, the field marked and focused (the
      // banner at the window's top was far from the 确认预约 button pressed).
      showText($("person-error"), key, values);
      $("person-error").hidden = false;
      $(field).setAttribute("aria-invalid", "true");
      $(field).focus();
      return;
    }
    banner(key, "error", values);
    // The slots as they are now; the chosen one stays chosen, with what was typed, while it
    // is still free (a refusal such as 已预约 made the resident start again).
    await findSlots();
    chooseAgain(when.time);
    return;
  }
  // A rebooking has a new code: 改约或取消 finds the booking by it from now on (the old one
  // would find the booking as moved).
  if (state.key) $("m-code").value = body.appointment.code;
  state.key = null;
  $("found").hidden = true;
  showBooked(body);
  await findSlots();  // the place just taken shows as such
}

async function find() {
  state.key = { code: $("m-code").value.replace(/[\s-]/g, ""), last4: $("m-last4").value.trim() };
  const { ok, body } = await call("/api/v1/appointments/find", state.key);
  if (!ok) { state.key = null; $("found").hidden = true; errorBanner(body?.error, "book.error"); return; }
  state.found = body.appointment;
  $("found").hidden = false;
  $("found-facts").textContent = foundText(body.appointment);
  $("cancel").hidden = body.appointment.status !== "booked";
  disarmCancel();
  $("b-item").value = body.appointment.item.code;
  $("b-station").value = body.appointment.station.code;
  banner(null);
}

/** The pending second tap of 取消预约, if any. @type {number | undefined} */
let cancelArmed;

/** @param {string} key */
function labelCancel(key) {
  showText($("cancel"), key);
}

function disarmCancel() {
  clearTimeout(cancelArmed);
  labelCancel("book.cancel");
}

async function cancel() {
  if (!state.key) return;
  const { ok, body } = await call("/api/v1/appointments/cancel", state.key);
  if (!ok) { errorBanner(body?.error, "book.error"); return; }
  banner("book.cancelled", "info", { code: body.appointment.code });
  state.key = null;
  $("found").hidden = true;
}

/**
 * The forms' buttons, wired before anything is awaited: pressed while the catalog or the items
 * still load, a form was sent by the browser itself and the page reloaded, what was typed lost
 * (a CI run's test pressed 查找预约 that early).
 */
function wire() {
  // A new search: what was refused before no longer stands over the page.
  $("slot-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); banner(null); findSlots(); };
  $("person-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); confirm(); };
  $("find-form").onsubmit = (/** @type {Event} */ e) => { e.preventDefault(); find(); };
  $("cancel").onclick = () => {
    // One tap on a phone cancelled at once: the first asks, the second (within 10 s) cancels.
    if ($("cancel").dataset.i18n === "book.cancel_confirm") { disarmCancel(); cancel(); return; }
    labelCancel("book.cancel_confirm");
    cancelArmed = window.setTimeout(disarmCancel, 10_000);
  };
}

async function start() {
  $("b-date").value = new Date(Date.now() + 86400000).toLocaleDateString("sv-SE", { timeZone: DISTRICT_TZ });
  await loadItems();
}

Object.assign(window, { cloudhelp: { state } });
wire();
await setLang(lang);
$("lang").onclick = async () => {
  await setLang(lang === "zh-CN" ? "en" : "zh-CN");
  // What the page drew from the server's answers, in the new language (it stayed in the old).
  const chosen = state.slot;
  if (state.slotsAnswer) renderSlots(state.slotsAnswer);
  if (chosen) chooseAgain(chosen.time);
  if (state.found) $("found-facts").textContent = foundText(state.found);
  if (state.booked) $("done-facts").textContent = facts(state.booked);
};
await start();
