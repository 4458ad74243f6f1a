// The operator's server page: active or standby (and which server is active), uptime,
// connections by client type, interactions by state, the busiest queues and workbins, and
// requests per second as a small live chart; all read from the server's metrics every 2 s.

import * as api from "./api.js";
import { byId, el, fill, say } from "./dom.js";
import { parse, samples, sum } from "./metrics.js";

const PERIOD_MS = 2000;
const POINTS = 60;
let timer = null;
let last = null;
const rates = [];

function duration(secs) {
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

function table(id, head, rows) {
  fill(byId(id),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", { "data-row": r[0] }, r.map((c, i) => (i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, String(c))))))));
}

async function tick() {
  try {
    const s = await api.server();
    byId("op-role").textContent = s.role;
    byId("op-note").textContent = s.note || (s.role === "active" ? "This server is active." : "");
    byId("op-uptime").textContent = duration(s.uptimeSecs);
    byId("op-version").textContent = s.version;
    if (!s.metrics) {
      say("The metrics are not available to this server's web API.", true);
      return;
    }
    const all = parse(s.metrics);
    table("op-clients", ["Client type", "Registered"], samples(all, "ixn_clients").map((x) => [x.labels.type, x.value]));
    table("op-states", ["State", "Interactions"], samples(all, "ixn_interactions").map((x) => [x.labels.state, x.value]));
    const busy = samples(all, "ixn_busiest_interactions").sort((a, b) => b.value - a.value);
    table("op-busiest", ["Queue or workbin", "Kind", "Interactions"], busy.map((x) => [x.labels.name, x.labels.kind, x.value]));
    const now = performance.now();
    const requests = sum(all, "ixn_requests_total");
    if (last) {
      const rate = Math.max(0, (requests - last.requests) / ((now - last.at) / 1000));
      rates.push(rate);
      if (rates.length > POINTS) rates.shift();
      byId("op-rate").textContent = rate.toFixed(1);
      draw();
    }
    last = { at: now, requests };
  } catch (e) {
    say(`Cannot read the server's state: ${e.message}`, true);
  }
}

function draw() {
  const max = Math.max(1, ...rates);
  const step = 240 / (POINTS - 1);
  const points = rates.map((r, i) => `${(i * step).toFixed(1)},${(58 - (r / max) * 56).toFixed(1)}`).join(" ");
  byId("op-line").setAttribute("points", points);
  byId("op-chart").setAttribute("aria-label", `Requests per second, the last two minutes: now ${rates.at(-1).toFixed(1)}, at most ${max.toFixed(1)}`);
}

/** Starts reading (while the page is shown). */
export async function show() {
  stop();
  await tick();
  timer = setInterval(tick, PERIOD_MS);
}

/** Stops reading. */
export function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}
