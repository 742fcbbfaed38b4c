// How the pages show network quality: the pre-call check's verdict and figures, and a call's
// signal-strength bars (staff console, board). The server judges; these only say what it said.
// @ts-check
import { t } from "./i18n.js";

/** Call-quality levels, best first (cloudhelp/domain/netquality.py LEVELS). */
export const LEVELS = ["good", "fair", "poor"];
const PATHS = ["host", "srflx", "prflx", "relay"];

/** @param {unknown} value @param {number} places */
const figure = (value, places = 0) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(places) : "—");

/** "直连" / "经TURN中转", from a candidate type. @param {unknown} candidate */
export function pathText(candidate) {
  return typeof candidate === "string" && PATHS.includes(candidate) ? t(`net.path.${candidate}`) : "—";
}

/**
 * A line about the resident's pre-call check (`netcheck` of a ticket), or null when there was
 * none: the verdict, then its figures.
 * @param {any} check
 * @returns {{verdict: string, title: string, detail: string} | null}
 */
export function netcheckText(check) {
  if (!check || typeof check !== "object" || !["good", "poor", "failed"].includes(check.verdict)) return null;
  const loss = typeof check.loss === "number" ? check.loss * 100 : null;
  return {
    verdict: check.verdict,
    title: t(`staff.net.${check.verdict}`),
    detail: check.connected
      ? t("staff.net.detail", { rtt: figure(check.rtt_ms), loss: figure(loss, 1), path: pathText(check.candidate) })
      : "",
  };
}

/**
 * Signal-strength bars (3 good, 2 fair, 1 poor) with their label; `level` null: no figures yet.
 * @param {HTMLElement} target @param {string | null} level @param {string} label
 */
export function renderBars(target, level, label) {
  const known = typeof level === "string" && LEVELS.includes(level) ? level : "";
  const bars = known ? 3 - LEVELS.indexOf(known) : 0;
  target.dataset.level = known;
  target.dataset.bars = String(bars);
  const icon = document.createElement("span");
  icon.className = "bars";
  icon.setAttribute("aria-hidden", "true");
  for (let i = 1; i <= 3; i += 1) {
    const bar = document.createElement("i");
    if (i <= bars) bar.className = "on";
    icon.append(bar);
  }
  const text = document.createElement("span");
  text.className = "label";
  text.textContent = label;
  target.replaceChildren(icon, text);
}

/**
 * The figures of one side's latest `call.stats` summary, in words.
 * @param {any} sample
 */
export function sampleText(sample) {
  if (!sample || typeof sample !== "object") return "";
  const loss = typeof sample.loss === "number" ? sample.loss * 100 : null;
  return t("staff.quality.detail", {
    rtt: figure(sample.rtt_ms), loss: figure(loss, 1), fps: figure(sample.fps), path: pathText(sample.candidate),
  });
}
