// The agent's view: my workbins with their counts, one workbin's interactions as a paged,
// sortable, filterable table that follows changes live, and each interaction in a dialog.

import * as api from "./api.js";
import * as details from "./details.js";
import * as live from "./live.js";
import { byId, el, fill, say } from "./dom.js";
import { SnapshotTable } from "./table.js";

let me = null;
let bins = [];
let openIndex = -1;
let table = null;
let subscribed = new Set();
let pending = null;

/** A condition's string literal. */
export const quote = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** The filter box as a condition: the text in the subject, the sender or the id. */
function filterCondition(text) {
  const t = text.trim();
  if (!t) return "";
  const like = quote(`%${t}%`);
  return ` AND (UserData.Subject LIKE ${like} OR UserData.FromAddress LIKE ${like} OR InteractionId LIKE ${like})`;
}

export function init(profile) {
  me = profile;
  if (table) return;
  table = new SnapshotTable(byId("agent-table"), byId("agent-pager"), {
    caption: () => (openIndex >= 0 ? `Interactions in ${bins[openIndex].label}` : "Interactions"),
    onOpen: (r) => {
      details.setContext({ workbins: bins.filter((b) => b.mine), queues: me.queues, supervisor: false, changed: refreshSoon });
      details.open(r.id);
    },
    pageSize: 50,
  });
  byId("agent-filter-form").addEventListener("submit", (e) => { e.preventDefault(); showOpen(); });
  live.onChange(onChange);
}

/** Loads my workbins (and subscribes to each, so counts and the open table stay live). */
export async function show() {
  const data = await api.workbins();
  bins = data.workbins;
  for (const b of bins.filter((x) => x.mine)) {
    const key = JSON.stringify(b.workbin);
    if (!subscribed.has(key)) {
      subscribed.add(key);
      await api.subscribe(b.workbin);
    }
  }
  renderBins();
  const mine = bins.filter((b) => b.mine);
  if (openIndex < 0 && mine.length) await openBin(bins.indexOf(mine[0]));
  else if (openIndex >= 0) await showOpen(true);
}

function countText(b) {
  return b.capped ? `${b.count}+` : String(b.count);
}

function renderBins() {
  fill(byId("agent-bins"), bins.map((b, i) => b.mine ? el("li", {},
    el("button", { type: "button", className: "bin", "aria-pressed": String(i === openIndex), "data-workbin": b.label, onclick: () => openBin(i) },
      el("span", {}, b.label), el("span", { className: "count", "aria-label": `${countText(b)} interactions` }, countText(b)))) : null));
}

async function openBin(i) {
  openIndex = i;
  renderBins();
  byId("agent-title").textContent = bins[i].label;
  await showOpen();
}

async function showOpen(keepPage = false) {
  if (openIndex < 0) return;
  const b = bins[openIndex];
  try {
    await table.show(b.condition + filterCondition(byId("agent-filter").value), keepPage);
  } catch (e) {
    say(`Cannot read ${b.label}: ${e.message}`, true);
  }
}

/** A change to one of my workbins: its count, and the open table (re-read, at most every
 * 50 ms; a row that left goes at once). */
function onChange(change) {
  const id = live.changedId(change);
  for (const b of bins) {
    if (!live.isAbout(change, b.workbin) || b.capped) continue;
    if (change.action === "ItemAdded") b.count += 1;
    if (change.action === "ItemRemoved") b.count = Math.max(0, b.count - 1);
  }
  renderBins();
  if (openIndex >= 0 && live.isAbout(change, bins[openIndex].workbin)) {
    if (change.action === "ItemRemoved" && id) table.drop(id);
    refreshSoon();
  }
}

function refreshSoon() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    try {
      await table.refresh();
    } catch (e) {
      say(`Cannot refresh: ${e.message}`, true);
    }
  }, 50);
}

/** Forgets everything (at sign-out). */
export function reset() {
  table?.close(false);
  bins = [];
  openIndex = -1;
  subscribed = new Set();
}
