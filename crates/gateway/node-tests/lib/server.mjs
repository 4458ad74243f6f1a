// What the Node tests share: the real ixn-server started on ephemeral ports, and the e-mail
// media server's requests over the native TCP protocol (`ixn send`).

import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const here = path.dirname(fileURLToPath(import.meta.url));
const workspace = path.resolve(here, "../../../..");
const SERVER_BIN = process.env.IXN_SERVER_BIN || path.join(workspace, "target/release/ixn-server");
const IXN_BIN = process.env.IXN_BIN || path.join(workspace, "target/release/ixn");
const CONFIG = path.resolve(here, "../config.toml");

/** Starts ixn-server on ephemeral ports; resolves to { tcp, http, child }. `config`: this
 * folder's configuration, or `null` for the built-in demo one; `extra`: more flags. */
export async function startServer({ config = CONFIG, extra = [] } = {}) {
  const child = spawn(
    SERVER_BIN,
    [...(config ? ["--config", config] : []), "--ephemeral", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", process.env.IXN_LOG || "warn", ...extra],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  let tcp, http;
  for await (const line of lines) {
    const t = line.match(/^ixn-server listening on (\S+)/);
    if (t) tcp = t[1];
    const h = line.match(/^web API listening on http:\/\/(\S+)/);
    if (h) http = h[1];
    if (tcp && http) break;
  }
  assert.ok(tcp && http, "the server printed its addresses");
  child.stdout.resume();
  return { tcp, http, child };
}

/** `ixn send` as the e-mail media server (the native TCP protocol). */
export function ixnSend(tcp, ...messages) {
  return new Promise((resolve, reject) => {
    execFile(IXN_BIN, ["send", "--addr", tcp, "--as", "emailsrv:MediaServer", ...messages.map((m) => JSON.stringify(m))], (err, stdout, stderr) => {
      if (err) reject(new Error(`ixn send failed: ${stderr}${stdout}`));
      else resolve(stdout);
    });
  });
}

/** Submits interaction `id` and places it in `agent`'s Drafts. */
export function submitAndPlace(tcp, id, agent) {
  return ixnSend(
    tcp,
    { message: "RequestSubmit", TenantId: 101, MediaType: "email", InteractionType: "Inbound", Queue: "Inbound", InteractionId: id, UserData: { Subject: `About ${id}` } },
    { message: "RequestPlaceInWorkbin", InteractionId: id, Workbin: { WorkbinTypeId: "Drafts", WorkbinAgentId: agent } },
  );
}
