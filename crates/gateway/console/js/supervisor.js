// The supervisor's view: the queues and the workbins of the agents and groups supervised,
// with their counts; a condition box (the server's condition language: a condition that does
// not parse shows the server's message under it, at the position it names), an order, pages,
// and actions on the selected interactions: move to a queue or a workbin, lock, unlock,
// complete.

import * as api from "./api.js";
import * as details from "./details.js";
import { byId, el, fill, say } from "./dom.js";
import { SnapshotTable } from "./table.js";

let me = null;
let queues = [];
let bins = [];
let table = null;

export function init(profile) {
  me = profile;
  if (table) return;
  table = new SnapshotTable(byId("sup-table"), byId("sup-pager"), {
    caption: () => `Interactions where ${table.condition ?? "…"}`,
    selectable: true,
    onSelect: (ids) => { byId("sup-selected").textContent = `${ids.length} selected`; },
    onOpen: (r) => {
      details.setContext({ workbins: bins, queues: me.queues, supervisor: true, changed: () => rerun() });
      details.open(r.id);
    },
    onInvalid: showInvalid,
    onSort: (order) => { byId("sup-order").value = order; },
    pageSize: 50,
  });
  byId("sup-query").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  byId("sup-refresh").addEventListener("click", () => counts());
  byId("sup-move").addEventListener("click", () => {
    const v = byId("sup-target").value;
    if (!v) return;
    const [kind, index] = v.split(":");
    const body = kind === "q" ? { queue: queues[Number(index)].queue } : { workbin: bins[Number(index)].workbin };
    act("move", body, kind === "q" ? `moved to queue ${body.queue}` : `moved to ${bins[Number(index)].label}`);
  });
  byId("sup-lock").addEventListener("click", () => act("lock", {}, "locked"));
  byId("sup-unlock").addEventListener("click", () => act("unlock", {}, "unlocked"));
  byId("sup-complete").addEventListener("click", () => act("complete", {}, "completed"));
}

/** Loads the queues and workbins with their counts, and shows the first queue. */
export async function show() {
  await counts();
  if (table.condition === null) {
    const first = queues[0] || bins[0];
    if (first) {
      byId("sup-condition").value = first.condition;
      await run();
    }
  }
}

async function counts() {
  const [q, w] = await Promise.all([api.queues(), api.workbins()]);
  queues = q.queues;
  bins = w.workbins;
  const item = (x, label) => el("li", {}, el("button", {
    type: "button", className: "bin", "data-source": label,
    onclick: () => { byId("sup-condition").value = x.condition; run(); },
  }, el("span", {}, label), el("span", { className: "count", "aria-label": `${x.capped ? `${x.count}+` : x.count} interactions` }, x.capped ? `${x.count}+` : String(x.count))));
  fill(byId("sup-queues"), queues.map((x) => item(x, x.queue)));
  fill(byId("sup-bins"), bins.map((x) => item(x, x.label)));
  fill(byId("sup-target"),
    el("optgroup", { label: "Queues" }, queues.map((x, i) => el("option", { value: `q:${i}` }, x.queue))),
    el("optgroup", { label: "Workbins" }, bins.map((x, i) => el("option", { value: `w:${i}` }, x.label))));
}

/** Shows the condition's error under it: the server's message, and a caret at its position. */
function showInvalid(invalid) {
  const text = byId("sup-condition").value;
  const box = byId("sup-condition-error");
  const parts = [el("p", {}, invalid.message)];
  if (invalid.position) {
    const p = Math.max(1, Math.min(invalid.position, text.length + 1));
    parts.push(el("pre", { className: "caret", "aria-hidden": "true" }, text, "\n", " ".repeat(p - 1), "^"));
    parts.push(el("p", { className: "position" }, `At position ${invalid.position}.`));
  }
  fill(box, parts);
  byId("sup-condition").setAttribute("aria-invalid", "true");
}

async function run() {
  fill(byId("sup-condition-error"));
  byId("sup-condition").removeAttribute("aria-invalid");
  table.extraOrder = byId("sup-order").value.trim();
  try {
    if (await table.show(byId("sup-condition").value)) {
      byId("sup-selected").textContent = "0 selected";
      table.selected.clear();
    }
  } catch (e) {
    say(`Cannot show: ${e.message}`, true);
  }
}

async function rerun() {
  try {
    await table.refresh();
    await counts();
  } catch (e) {
    say(`Cannot refresh: ${e.message}`, true);
  }
}

async function act(action, extra, done) {
  const ids = [...table.selected];
  if (ids.length === 0) {
    say("Select interactions first.", true);
    return;
  }
  try {
    const r = await api.bulk(action, { ids, ...extra });
    const failed = r.failed.map((f) => `${f.id}: ${f.message}`).join("; ");
    say(`${r.done.length} ${done}${r.failed.length ? `; ${r.failed.length} not: ${failed}` : ""}.`, r.failed.length > 0);
    table.selected.clear();
    byId("sup-selected").textContent = "0 selected";
    await rerun();
  } catch (e) {
    say(`Cannot do that: ${e.message}`, true);
  }
}

export function reset() {
  table?.close(false);
  queues = [];
  bins = [];
}
