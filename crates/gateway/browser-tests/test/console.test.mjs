// The browser console (/console/) in Debian's headless Chromium, against the release server on
// its built-in demo configuration: an agent, a supervisor and an operator at work, what the
// console sends and refuses, and that it can be turned off. Every page ends with no console
// error and no failed request; screenshots of each view are kept (target/console-screenshots).

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startServer } from "../../node-tests/lib/server.mjs";
import { finish, launch, newPage, shot, signIn } from "../lib/browser.mjs";
import { place, send, submit } from "../lib/native.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const rowOf = (page, id) => page.locator(`tr[data-id="${id}"]`);
const binButton = (page, label) => page.locator(`#agent-bins button[data-workbin="${label}"]`);

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

describe("an agent", () => {
  let server;
  before(async () => { server = await startServer({ config: null }); });
  after(() => server?.child.kill());

  it("sees a placement live, edits its user data and moves it to another workbin", async () => {
    const page = await newPage(browser);
    await signIn(page, server.http, "a1", "demo-a1", "p1");
    await binButton(page, "Drafts").waitFor();
    await page.getByRole("table").waitFor();
    // A media server places an e-mail in a1's Drafts over the native protocol.
    const replies = await send(server.tcp, [submit("live-1", { Subject: "Where is my refund?" }), place("live-1", "a1")]);
    assert.equal(replies[1].message, "EventAck");
    await rowOf(page, "live-1").waitFor();
    const latency = performance.now() - replies[1].at;
    console.log(`the placed interaction appeared in the open workbin ${latency.toFixed(0)} ms after its EventAck`);
    assert.ok(latency < 500, `appeared after ${latency.toFixed(0)} ms (at most 500)`);
    await assert.doesNotReject(page.locator("#agent-bins .bin[aria-pressed=true] .count").filter({ hasText: "1" }).waitFor());
    await shot(page, "agent-workbin");

    // Open it by keyboard, change the subject, add a key.
    await page.getByRole("button", { name: "Open live-1" }).focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await dialog.getByLabel("Value of Subject").fill("Refund sent");
    await dialog.getByLabel("New key").fill("Priority");
    await dialog.getByLabel("Value", { exact: true }).fill("3");
    await dialog.getByRole("button", { name: "Save user data" }).click();
    await page.getByRole("status").filter({ hasText: "live-1: user data saved." }).waitFor();
    await assert.doesNotReject(dialog.getByLabel("Value of Priority").waitFor());
    assert.equal(await dialog.getByLabel("Value of Subject").inputValue(), "Refund sent");
    await shot(page, "agent-details");

    // Move it to Review: it leaves Drafts, and Review has it.
    await dialog.getByLabel("Workbin").selectOption({ label: "Review" });
    await dialog.getByRole("button", { name: "Move to workbin" }).click();
    await rowOf(page, "live-1").waitFor({ state: "detached" });
    await binButton(page, "Review").locator(".count").filter({ hasText: "1" }).waitFor();
    await binButton(page, "Review").click();
    await rowOf(page, "live-1").waitFor();
    assert.match(await rowOf(page, "live-1").innerText(), /Refund sent/);
    await finish(page);
  });

  it("is readable on a phone (390 px): nothing wider than the screen", async () => {
    const page = await newPage(browser, { width: 390, height: 844 });
    await signIn(page, server.http, "a2", "demo-a2", "p2");
    await send(server.tcp, [submit("phone-1"), place("phone-1", "a2")]);
    await rowOf(page, "phone-1").waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width} px wide`);
    await shot(page, "agent-phone");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await finish(page);
  });
});

describe("a supervisor", () => {
  let server;
  before(async () => {
    server = await startServer({ config: null });
    // 120 e-mails in Inbound, Priority 0, 1, 2 in turn.
    const batch = [];
    for (let i = 0; i < 120; i++) batch.push(submit(`q-${String(i).padStart(3, "0")}`, { Priority: i % 3 }));
    const replies = await send(server.tcp, batch);
    assert.ok(replies.every((r) => r.message === "EventAck"));
  });
  after(() => server?.child.kill());

  it("filters a queue, pages, moves several, locks one; a bad condition shows where", async () => {
    const page = await newPage(browser);
    await signIn(page, server.http, "sup1", "demo-sup1", "p4");
    await page.getByRole("link", { name: "Supervisor" }).click();
    await page.locator("#sup-queues button[data-source=Inbound] .count").filter({ hasText: "120" }).waitFor();

    await page.getByLabel("Condition").fill("Queue = 'Inbound' AND UserData.Priority >= 1");
    await page.getByLabel("Order").fill("ReceivedAt");
    await page.getByRole("button", { name: "Show" }).click();
    await page.locator("#sup-pager .range").filter({ hasText: "1–50 of 80" }).waitFor();
    await page.getByRole("button", { name: "Next page" }).click();
    await page.locator("#sup-pager .range").filter({ hasText: "51–80 of 80" }).waitFor();
    await shot(page, "supervisor-queue");

    // Select three on this page and move them to a1's Drafts.
    const picked = ["q-100", "q-103", "q-106"];
    for (const id of picked) await page.getByLabel(`Select ${id}`).check();
    await page.locator("#sup-selected").filter({ hasText: "3 selected" }).waitFor();
    await page.getByLabel("Move to").selectOption({ label: "Drafts of a1" });
    await page.getByRole("button", { name: "Move", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "3 moved to Drafts of a1" }).waitFor();
    await page.locator("#sup-bins button[data-source='Drafts of a1'] .count").filter({ hasText: "3" }).waitFor();
    const moved = await send(server.tcp, picked.map((id) => ({ message: "RequestGetInteractionProperties", InteractionId: id })));
    for (const r of moved) assert.equal(r.Interaction.InteractionWorkbinTypeId, "Drafts");

    // Lock one still queued: another agent's pull of it is refused.
    await page.getByLabel("Select q-109").check();
    await page.getByRole("button", { name: "Lock", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "1 locked" }).waitFor();
    await rowOf(page, "q-109").getByText("Locked").waitFor();
    const pull = await send(server.tcp, [
      { message: "RequestAgentLogin", TenantId: 101, AgentId: "a2", PlaceId: "p2" },
      { message: "RequestPull", ViewId: "_system_", PullParameters: { id: "q-109" } },
    ], "desk:AgentApplication");
    assert.equal(pull[1].message, "EventError");
    assert.equal(pull[1].ErrorCode, 22, `the pull was refused as InteractionLocked: ${pull[1].ErrorDescription}`);

    // A condition that does not parse: the server's message, with a caret at its position.
    const bad = "Queue = 'Inbound' AND";
    await page.getByLabel("Condition").fill(bad);
    await page.getByRole("button", { name: "Show" }).click();
    const error = page.locator("#sup-condition-error");
    await error.getByText("at position 22: expected").waitFor();
    const caret = await error.locator(".caret").innerText();
    assert.equal(caret.split("\n")[1], `${" ".repeat(21)}^`);
    assert.equal(await page.getByLabel("Condition").getAttribute("aria-invalid"), "true");
    await shot(page, "supervisor-bad-condition");
    await finish(page);
  });
});

describe("an operator", () => {
  let server;
  before(async () => {
    server = await startServer({ config: null });
    await send(server.tcp, [submit("op-1"), submit("op-2"), submit("op-3"), place("op-3", "a1")]);
  });
  after(() => server?.child.kill());

  it("sees the counts /metrics reports", async () => {
    const page = await newPage(browser);
    await signIn(page, server.http, "sup1", "demo-sup1", "p4");
    await page.getByRole("link", { name: "Server" }).click();
    await page.locator("#op-role").filter({ hasText: "active" }).waitFor();
    await page.locator("#op-busiest tr[data-row=Inbound]").waitFor();
    // The page reads the metrics every 2 s; the figures it shows are /metrics's.
    await page.locator("#op-line[points*=',']").waitFor();
    const metrics = await (await fetch(`http://${server.http}/metrics`)).text();
    const value = (re) => Number(metrics.match(re)?.[1]);
    const shown = async (table, row) => Number(await page.locator(`#${table} tr[data-row="${row}"] td`).last().innerText());
    assert.equal(await shown("op-states", "queued"), value(/^ixn_interactions\{state="queued"\} (\d+)/m));
    assert.equal(await shown("op-states", "in_workbin"), value(/^ixn_interactions\{state="in_workbin"\} (\d+)/m));
    assert.equal(await shown("op-states", "queued"), 2);
    assert.equal(await shown("op-clients", "Proxy"), value(/^ixn_clients\{type="Proxy"\} (\d+)/m));
    assert.equal(await shown("op-busiest", "Inbound"), 2);
    assert.equal(await shown("op-busiest", "Drafts of a1"), 1);
    await shot(page, "operator");
    await finish(page);
  });

  it("is refused to an agent who is not an operator, and the link is not shown", async () => {
    const page = await newPage(browser);
    await signIn(page, server.http, "a3", "demo-a3", "p3");
    assert.equal(await page.getByRole("link", { name: "Server" }).isVisible(), false);
    const status = await page.evaluate(async () => { const r = await fetch("api/server"); return `${r.status} ${await r.text()}`; });
    assert.match(status, /^403 .*is not an operator/);
    page.problems = page.problems.filter((p) => !p.includes("403"));
    await finish(page);
  });
});

describe("a large workbin", () => {
  let server;
  before(async () => {
    server = await startServer({ config: null });
    const batch = [];
    for (let i = 0; i < 10_000; i++) batch.push(submit(`big-${i}`), place(`big-${i}`, "a3"));
    const replies = await send(server.tcp, batch);
    assert.equal(replies.filter((r) => r.message === "EventAck").length, 20_000);
  });
  after(() => server?.child.kill());

  it("shows its first page of 10,000 in under a second", async () => {
    const page = await newPage(browser);
    const started = performance.now();
    await signIn(page, server.http, "a3", "demo-a3", "p3");
    await page.locator("#agent-table tbody tr").first().waitFor();
    const ms = performance.now() - started;
    console.log(`a workbin of 10,000: first page shown ${ms.toFixed(0)} ms after signing in`);
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
    assert.equal(await page.locator("#agent-table tbody tr").count(), 50);
    await page.locator("#agent-pager .range").filter({ hasText: "1–50 of 500+" }).waitFor();
    await finish(page);
  });
});

describe("serving", () => {
  it("sends the console with its security and caching headers, and the official cometd client unchanged", async () => {
    const server = await startServer({ config: null });
    try {
      const page = await fetch(`http://${server.http}/console/`);
      assert.equal(page.status, 200);
      const csp = page.headers.get("content-security-policy");
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      assert.equal(page.headers.get("x-content-type-options"), "nosniff");
      assert.equal(page.headers.get("cache-control"), "no-cache");
      const again = await fetch(`http://${server.http}/console/`, { headers: { "If-None-Match": page.headers.get("etag") } });
      assert.equal(again.status, 304);
      const vendor = await fetch(`http://${server.http}/console/vendor/cometd-9.0.0/Client.js`);
      assert.match(vendor.headers.get("cache-control"), /immutable/);
      const dir = path.resolve(here, "../../console/vendor/cometd-9.0.0");
      for (const f of readdirSync(dir)) {
        const pinned = readFileSync(path.resolve(here, "../node_modules/cometd", f));
        assert.deepEqual(readFileSync(path.join(dir, f)), pinned, `vendor/cometd-9.0.0/${f} is the npm package's`);
      }
      // A state-changing call from a foreign page is refused before it is read.
      const foreign = await fetch(`http://${server.http}/console/api/session`, {
        method: "POST", headers: { "Content-Type": "application/json", Origin: "http://evil.example" },
        body: JSON.stringify({ agent: "a1", password: "demo-a1" }),
      });
      assert.equal(foreign.status, 403);
      const form = await fetch(`http://${server.http}/console/api/session`, {
        method: "POST", headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ agent: "a1", password: "demo-a1" }),
      });
      assert.equal(form.status, 415);
    } finally {
      server.child.kill();
    }
  });

  it("is off with --console off", async () => {
    const server = await startServer({ config: null, extra: ["--console", "off"] });
    try {
      assert.equal((await fetch(`http://${server.http}/console/`)).status, 404);
      assert.equal((await fetch(`http://${server.http}/api/v2/me`)).status, 401);
    } finally {
      server.child.kill();
    }
  });
});
