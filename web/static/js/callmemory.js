// What a page showed of the call it is in, kept so that the page reloaded mid-call shows it
// again: the call's start, its chat lines, the notice link, what was decided (docs/browser.md,
// "A reload mid-call").
// @ts-check

/**
 * One call's memory in sessionStorage (this tab only), under one key per page. It belongs to
 * one call: `open` with another room starts empty, and `forget` clears it when the call ends.
 * Invariant: what is stored is what the page itself showed, and is shown again through the
 * same code (as text, URLs checked again), never trusted more than when it first came.
 */
export class CallMemory {
  /** @param {string} key the sessionStorage key */
  constructor(key) {
    this.key = key;
    this.room = "";
    /** @type {Record<string, any>} */
    this.state = {};
  }

  /**
   * The call in `room` (the session and the call's room) begins or resumes: what was kept for
   * it, or nothing for a call this page has not shown before.
   * @param {string} room
   * @returns {Record<string, any>}
   */
  open(room) {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(this.key) || "null");
    } catch { /* nothing readable kept */ }
    const same = saved && saved.room === room && saved.state && typeof saved.state === "object";
    this.room = room;
    this.state = same ? saved.state : {};
    this.write();
    return { ...this.state };
  }

  /** Keep `value` as `name` for this call. @param {string} name @param {any} value */
  set(name, value) {
    if (!this.room) return;
    this.state[name] = value;
    this.write();
  }

  /**
   * Add `value` to the list `name`; only the latest `keep` stay (a long chat cannot fill the
   * tab's storage). @param {string} name @param {any} value
   */
  append(name, value, keep = 200) {
    if (!this.room) return;
    const list = Array.isArray(this.state[name]) ? this.state[name] : [];
    list.push(value);
    this.state[name] = list.slice(-keep);
    this.write();
  }

  /** The call is over: nothing of it is kept. */
  forget() {
    this.room = "";
    this.state = {};
    try {
      sessionStorage.removeItem(this.key);
    } catch { /* storage unavailable */ }
  }

  /** @private */
  write() {
    try {
      sessionStorage.setItem(this.key, JSON.stringify({ room: this.room, state: this.state }));
    } catch { /* storage full or unavailable: a reload shows less, the call goes on */ }
  }
}
