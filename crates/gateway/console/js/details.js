// One interaction in a dialog: its properties and user data (editable), and what may be done
// to it: move it to another workbin, place it in a queue, complete it, and, for a supervisor,
// lock or unlock it. Every change is the server's to refuse; its message is shown.

import * as api from "./api.js";
import { byId, el, fill, say, when } from "./dom.js";
import { where } from "./table.js";

const dialog = () => byId("details");
let current = null;
let context = { workbins: [], queues: [], supervisor: false, changed: () => {} };

/** What the dialog offers: the workbins it may move to, the queues, whether the caller
 * supervises (lock and unlock), and what to call after a change. */
export function setContext(c) {
  context = c;
}

/** Wires the dialog's buttons (once). */
export function init() {
  byId("details-data").addEventListener("submit", (e) => { e.preventDefault(); saveUserData(); });
  byId("details-move").addEventListener("click", () => {
    const w = context.workbins[Number(byId("details-workbin").value)];
    if (w) run("move", { workbin: w.workbin }, `moved to ${w.label}`);
  });
  byId("details-queue-go").addEventListener("click", () => {
    const q = byId("details-queue").value;
    if (q) run("move", { queue: q }, `placed in queue ${q}`);
  });
  byId("details-complete").addEventListener("click", () => run("complete", {}, "completed"));
  byId("details-lock").addEventListener("click", () => run("lock", {}, "locked", true));
  byId("details-unlock").addEventListener("click", () => run("unlock", {}, "unlocked", true));
}

/** Opens interaction `id`. */
export async function open(id) {
  fill(byId("details-error"));
  try {
    const { interaction } = await api.details(id);
    current = interaction;
    render();
    if (!dialog().open) dialog().showModal();
  } catch (e) {
    say(`Cannot open ${id}: ${e.message}`, true);
  }
}

function render() {
  const r = current;
  byId("details-title").textContent = `Interaction ${r.id}`;
  const props = [
    ["Media", r.mediatype], ["Type", r.interactionType], ["Subtype", r.interactionSubtype],
    ["Where", where(r)], ["Received", when(r.receivedAt)], ["Submitted by", r.submittedBy],
    ["Locked", r.isLocked ? "yes" : "no"],
  ].filter(([, v]) => v);
  fill(byId("details-props"), props.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  fill(byId("details-data-rows"), (r.userData || []).map((p, i) => el("tr", {},
    el("th", { scope: "row" }, p.key),
    el("td", {}, p.type === "str" || p.type === "int"
      ? el("input", { id: `ud-${i}`, value: String(p.value ?? ""), "aria-label": `Value of ${p.key}`, "data-key": p.key })
      : el("code", {}, JSON.stringify(p.value))),
    el("td", {}, el("input", { type: "checkbox", "aria-label": `Delete ${p.key}`, "data-delete": p.key })))));
  byId("details-new-key").value = "";
  byId("details-new-value").value = "";
  const mine = context.workbins.map((w, i) => ({ w, i })).filter(({ w }) => !isHere(r, w));
  fill(byId("details-workbin"), mine.map(({ w, i }) => el("option", { value: String(i) }, w.label)));
  byId("details-move").disabled = mine.length === 0;
  fill(byId("details-queue"), context.queues.map((q) => el("option", { value: q }, q)));
  byId("details-queue-go").disabled = context.queues.length === 0;
  byId("details-lock").hidden = !context.supervisor || r.isLocked;
  byId("details-unlock").hidden = !context.supervisor || !r.isLocked;
}

/** Whether the interaction is in that workbin instance now. */
function isHere(r, w) {
  const i = w.workbin;
  return r.state === "InWorkbin" && r.workbinTypeId === i.WorkbinTypeId &&
    (r.agentId ?? null) === (i.WorkbinAgentId ?? null) && (r.placeId ?? null) === (i.WorkbinPlaceId ?? null) &&
    (r.agentGroupId ?? null) === (i.WorkbinGroupId ?? null) && (r.placeGroupId ?? null) === (i.WorkbinPlaceGroupId ?? null);
}

async function saveUserData() {
  const set = {};
  const del = [];
  for (const input of byId("details-data-rows").querySelectorAll("input[data-key]")) {
    const key = input.dataset.key;
    const before = (current.userData || []).find((p) => p.key === key);
    if (String(before?.value ?? "") !== input.value) set[key] = before?.type === "int" && /^-?\d+$/.test(input.value) ? Number(input.value) : input.value;
  }
  for (const box of byId("details-data-rows").querySelectorAll("input[data-delete]")) if (box.checked) del.push(box.dataset.delete);
  const k = byId("details-new-key").value.trim();
  if (k) set[k] = byId("details-new-value").value;
  if (Object.keys(set).length === 0 && del.length === 0) {
    fill(byId("details-error"), "Nothing changed.");
    return;
  }
  await run("user-data", { set, delete: del }, "user data saved", true);
}

/** Runs `action`; keeps the dialog open (re-read) when `stay`, else closes it. */
async function run(action, body, done, stay = false) {
  const id = current.id;
  try {
    await api.act(id, action, body);
    say(`${id}: ${done}.`);
    context.changed();
    if (stay) await open(id);
    else dialog().close();
  } catch (e) {
    fill(byId("details-error"), e.message);
  }
}
