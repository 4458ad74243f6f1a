// Live changes: the official CometD client (vendored, unchanged, from the `cometd` npm
// package) on the web API's CometD endpoint. The server sends each change to a workbin the
// agent subscribed to as a GWS WorkbinStateChangeMessage on /v2/me/workbins.

import { CometD } from "../vendor/cometd-9.0.0/Client.js";

const CHANNEL = "/v2/me/workbins";
let cometd = null;
const listeners = new Set();

/** Calls `f(change)` for each workbin change; returns a function that stops it. */
export function onChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Connects (once) to the CometD endpoint at `path`; subscribes again after each handshake. */
export function connect(path) {
  if (cometd) return;
  cometd = new CometD();
  // Timers on the page's own thread: the client's Worker scheduler would need a `blob:` worker,
  // which the console's Content-Security-Policy does not allow.
  cometd.configure({ url: new URL(path, window.location.origin).href, logLevel: "warn", useWorkerScheduler: false });
  cometd.addListener("/meta/handshake", (reply) => {
    if (!reply.successful) return;
    cometd.batch(() => {
      cometd.subscribe(CHANNEL, (message) => {
        const data = message.data;
        if (data && data.messageType === "WorkbinStateChangeMessage") {
          for (const f of listeners) f(data);
        }
      });
    });
  });
  cometd.handshake();
}

/** Disconnects (at sign-out). */
export function disconnect() {
  if (cometd) {
    const c = cometd;
    cometd = null;
    c.disconnect();
  }
}

/** The interaction a change is about: its id (GWS puts it in the message's one
 * `...StateResourceV2` member, named after its media). */
export function changedId(change) {
  for (const [k, v] of Object.entries(change)) {
    if (k.endsWith("StateResourceV2") && v && typeof v === "object") return v.id;
  }
  return undefined;
}

/** Whether a change is about the workbin instance `info` (WorkbinTypeId and its owner): GWS
 * names the workbin in the message itself (`name`, `workbinAgentId`, `workbinPlaceId`,
 * `agentGroup`, `placeGroup`). */
export function isAbout(change, info) {
  if (change.name !== info.WorkbinTypeId) return false;
  const pairs = [
    ["WorkbinAgentId", "workbinAgentId"],
    ["WorkbinPlaceId", "workbinPlaceId"],
    ["WorkbinGroupId", "agentGroup"],
    ["WorkbinPlaceGroupId", "placeGroup"],
  ];
  return pairs.every(([k, c]) => info[k] === undefined || info[k] === change[c]);
}
