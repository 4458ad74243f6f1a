// The media server and other agents, over the native TCP protocol (`ixn send`).

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const here = path.dirname(fileURLToPath(import.meta.url));
const IXN_BIN = process.env.IXN_BIN || path.resolve(here, "../../../../target/release/ixn");

/** Sends `messages` as `as` (one `ixn send`, messages on standard input); resolves to the
 * replies, each with `at` (performance.now() when its line arrived). Refusals are replies too. */
export function send(tcp, messages, as = "emailsrv:MediaServer") {
  return new Promise((resolve, reject) => {
    const child = spawn(IXN_BIN, ["send", "--addr", tcp, "--as", as, "-"], { stdio: ["pipe", "pipe", "pipe"] });
    const replies = [];
    let stderr = "";
    createInterface({ input: child.stdout }).on("line", (line) => {
      const at = performance.now();
      try {
        replies.push({ ...JSON.parse(line), at });
      } catch {
        // not a reply line
      }
    });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("error", reject);
    child.on("close", (code) => {
      if (replies.length === 0) reject(new Error(`ixn send printed no reply (exit ${code}): ${stderr}`));
      else resolve(replies);
    });
    child.stdin.end(messages.map((m) => JSON.stringify(m)).join("\n") + "\n");
  });
}

/** A new e-mail in queue Inbound. */
export const submit = (id, userData = {}) => ({
  message: "RequestSubmit", TenantId: 101, MediaType: "email", InteractionType: "Inbound", Queue: "Inbound",
  InteractionId: id, UserData: { Subject: `About ${id}`, FromAddress: `${id}@example.com`, ...userData },
});

/** Places `id` in agent `agent`'s workbin `type`. */
export const place = (id, agent, type = "Drafts") => ({
  message: "RequestPlaceInWorkbin", InteractionId: id, Workbin: { WorkbinTypeId: type, WorkbinAgentId: agent },
});
