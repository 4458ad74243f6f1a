// The web API with the official CometD JavaScript client (npm `cometd` + `cometd-nodejs-client`),
// over long-polling and over WebSocket, against the real `ixn-server` binary.
//
// Run: `npm ci && npm test` in this folder, with IXN_SERVER_BIN and IXN_BIN pointing at the
// built binaries (default: target/release of the workspace). `.ci/run` does this.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { ixnSend, startServer, submitAndPlace } from "../lib/server.mjs";
import { adapt } from "cometd-nodejs-client";
import { CometD, AckExtension } from "cometd";
import * as ws from "ws";

const USERS = {
  a1: "802396ae32494a8b8a617a9103d968bb",
  a2: "e6f2ad1b26ea4e9b8dd907eabe167522",
  a3: "5b1f0c4e2a7d4f6c9e8b7a6d5c4b3a21",
};

adapt();
// Browsers send the page's credentials with a WebSocket upgrade; the Node adapter's WebSocket
// does not, so this one adds the Authorization header of the agent under test.
let wsAuthorization = null;
globalThis.window.WebSocket = class extends ws.WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: wsAuthorization ? { Authorization: wsAuthorization } : {} });
  }
};

const basic = (agent) => "Basic " + Buffer.from(`${agent}:demo-${agent}`).toString("base64");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP proxy that can stop forwarding for a while (a network outage): the server then sees no
 * `/meta/connect` and expires the CometD session.
 */
async function startProxy(target) {
  const [host, port] = [target.split(":")[0], Number(target.split(":")[1])];
  const pairs = new Set();
  let paused = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (paused) { client.pause(); upstream.pause(); }
    const end = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    client.on("error", end); upstream.on("error", end); client.on("close", end); upstream.on("close", end);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    addr: `127.0.0.1:${server.address().port}`,
    pause() { paused = true; for (const p of pairs) { p.client.pause(); p.upstream.pause(); } },
    resume() { paused = false; for (const p of pairs) { p.client.resume(); p.upstream.resume(); } },
    close() { for (const p of pairs) { p.client.destroy(); p.upstream.destroy(); } server.close(); },
  };
}

/** REST calls as one agent: Basic first, then the session cookie the server sets. */
class Rest {
  constructor(http, agent) { this.base = `http://${http}`; this.agent = agent; this.cookie = null; }
  async call(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (this.cookie) headers.Cookie = this.cookie; else headers.Authorization = basic(this.agent);
    const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const set = res.headers.get("set-cookie");
    if (set) this.cookie = set.split(";")[0];
    return { status: res.status, body: await res.json() };
  }
  post(path, body) { return this.call("POST", path, body); }
  get(path) { return this.call("GET", path); }
}

/** Waits until `pick()` returns something, or fails after `ms`. */
async function waitFor(what, pick, ms = 8000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = pick();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

for (const transport of ["long-polling", "websocket"]) {
  describe(`web API over ${transport}`, () => {
    const agent = transport === "long-polling" ? "a1" : "a2";
    const place = transport === "long-polling" ? "p1" : "p2";
    let server, proxy, rest, cometd;
    const messages = [];
    const handshakes = [];
    let drafts;
    let review;
    const data = (pred) => messages.map((m) => m.data).find(pred);

    before(async () => {
      server = await startServer();
      proxy = await startProxy(server.http);
      rest = new Rest(server.http, agent);
      wsAuthorization = basic(agent);
      cometd = new CometD();
      if (transport === "long-polling") {
        cometd.unregisterTransport("websocket");
        // The acknowledgement extension: batches lost in flight are sent again.
        cometd.registerExtension("ack", new AckExtension());
      }
      cometd.configure({
        url: `http://${proxy.addr}/api/v2/notifications`,
        requestHeaders: { Authorization: basic(agent) },
        logLevel: "warn",
      });
      // Subscribe again after every (re)handshake, as CometD applications do.
      cometd.addListener("/meta/handshake", (m) => {
        handshakes.push(m);
        if (m.successful) {
          cometd.subscribe("/v2/me/workbins", (msg) => messages.push(msg));
        }
      });
    });

    after(async () => {
      if (cometd) await new Promise((r) => cometd.disconnect(r));
      proxy?.close();
      server?.child.kill("SIGTERM");
      if (server) await once(server.child, "exit");
    });

    test("sign in, start a session, handshake, subscribe, REST Subscribe gives Subscribed", async () => {
      const me = await rest.get("/api/v2/me");
      assert.equal(me.status, 200);
      assert.equal(me.body.user.id, USERS[agent]);
      const start = await rest.post("/api/v2/me", { operationName: "StartContactCenterSession", place });
      assert.equal(start.body.statusCode, 0, JSON.stringify(start.body));
      const list = await rest.get("/api/v2/me/workbins");
      drafts = list.body.workbins.find((w) => w.name === "Drafts").id;
      review = list.body.workbins.find((w) => w.name === "Review").id;

      cometd.handshake();
      await waitFor("a successful handshake", () => handshakes.find((h) => h.successful));
      assert.equal(cometd.getTransport().type, transport);
      await waitFor("the Bayeux subscription", () => cometd.getStatus() === "connected" && cometd.getClientId());
      await sleep(200); // the subscribe reply

      const sub = await rest.post(`/api/v2/me/workbins/${drafts}`, { operationName: "Subscribe" });
      assert.equal(sub.body.statusCode, 0);
      const got = await waitFor("Subscribed", () => data((d) => d.referenceId === sub.body.referenceId));
      assert.equal(got.messageType, "WorkbinSubscriptionStateChangeMessage");
      assert.equal(got.stateResource, "Subscribed");
      assert.equal(got.id, drafts);
    });

    test("an interaction placed over TCP arrives as ItemAdded with emailStateResourceV2", async () => {
      const id = `IX-${transport}-1`;
      await submitAndPlace(server.tcp, id, agent);
      const added = await waitFor("ItemAdded", () => data((d) => d.action === "ItemAdded" && d.emailStateResourceV2?.id === id));
      assert.equal(added.messageType, "WorkbinStateChangeMessage");
      assert.equal(added.id, drafts);
      assert.equal(added.workbinAgentId, agent);
      assert.equal(added.workbinUserId, USERS[agent]);
      assert.equal(added.emailStateResourceV2.subject, `About ${id}`);
      assert.deepEqual(added.emailStateResourceV2.userData, { Subject: `About ${id}` });
      // GWS writes dates as 2016-04-15 20:52:35.000+0300.
      assert.match(added.emailStateResourceV2.receivedDate, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000\+0000$/);
      assert.deepEqual(added.emailStateResourceV2.capabilities, []);
    });

    test("a pull arrives as ItemRemoved", async () => {
      const id = `IX-${transport}-1`;
      const pulled = await rest.post(`/api/v2/me/workbins/${drafts}`, { operationName: "PullInteraction", interactionId: id });
      assert.equal(pulled.body.statusCode, 0, JSON.stringify(pulled.body));
      const removed = await waitFor("ItemRemoved", () => data((d) => d.action === "ItemRemoved" && d.emailStateResourceV2?.id === id));
      assert.equal(removed.id, drafts);
    });

    test("the multi-workbin form gives one message per workbin", async () => {
      const sub = await rest.post(`/api/v2/me/workbins?workbinIds=${drafts},${review}`, { operationName: "Subscribe" });
      assert.equal(sub.body.statusCode, 0);
      const refs = sub.body.referenceIds;
      assert.deepEqual(Object.keys(refs).sort(), [drafts, review].sort());
      const forDrafts = await waitFor("Drafts outcome", () => data((d) => d.referenceId === refs[drafts]));
      const forReview = await waitFor("Review outcome", () => data((d) => d.referenceId === refs[review]));
      assert.equal(forDrafts.id, drafts);
      assert.equal(forReview.id, review);
      assert.equal(forDrafts.stateResource, "Subscribed");
      assert.equal(forReview.stateResource, "Subscribed");
      assert.equal(messages.filter((m) => m.data.referenceId === refs[drafts]).length, 1);
    });

    test("a forbidden workbin gives RequestFailed with the reason", async () => {
      const sub = await rest.post(`/api/v2/users/${USERS.a3}/workbins/${drafts}`, { operationName: "Subscribe" });
      assert.equal(sub.body.statusCode, 0);
      const failed = await waitFor("RequestFailed", () => data((d) => d.referenceId === sub.body.referenceId));
      assert.equal(failed.stateResource, "RequestFailed");
      assert.equal(failed.workbinUserId, USERS.a3);
      assert.match(failed.statusMessage, /Forbidden/);
    });

    test("a session expired by the server recovers through 402 and a new handshake", async () => {
      const before = handshakes.filter((h) => h.successful).length;
      const oldClientId = cometd.getClientId();
      proxy.pause(); // no connect reaches the server: it expires the session
      await sleep(4500);
      proxy.resume();
      await waitFor("a new handshake", () => handshakes.filter((h) => h.successful).length > before, 15000);
      assert.notEqual(cometd.getClientId(), oldClientId);
      await sleep(300); // the new Bayeux subscription
      // The REST subscription lives in the engine: the next change arrives on the new session.
      const id = `IX-${transport}-2`;
      await submitAndPlace(server.tcp, id, agent);
      await waitFor("ItemAdded after recovery", () => data((d) => d.action === "ItemAdded" && d.emailStateResourceV2?.id === id), 10000);
    });

    test("REST Unsubscribe gives Unsubscribed, then silence", async () => {
      for (const wb of [drafts, review]) {
        const unsub = await rest.post(`/api/v2/me/workbins/${wb}`, { operationName: "Unsubscribe" });
        assert.equal(unsub.body.statusCode, 0);
        const got = await waitFor("Unsubscribed", () => data((d) => d.referenceId === unsub.body.referenceId));
        assert.equal(got.stateResource, "Unsubscribed");
      }
      const id = `IX-${transport}-3`;
      await submitAndPlace(server.tcp, id, agent);
      await sleep(1500);
      assert.equal(data((d) => d.emailStateResourceV2?.id === id), undefined, "no notification after Unsubscribe");
      // The interaction is there all the same.
      const content = await rest.get(`/api/v2/me/workbins/${drafts}?subresources=*`);
      assert.ok(content.body.workbin.emails.some((i) => i.id === id));
    });

    test("GetWorkbins lists GWS workbin resources, with or without fields=*", async () => {
      for (const path of ["/api/v2/workbins", "/api/v2/workbins?fields=*", "/api/v2/me/workbins", "/api/v2/me/workbins?fields=*"]) {
        const list = await rest.get(path);
        assert.equal(list.body.statusCode, 0, path);
        const d = list.body.workbins.find((w) => w.id === drafts);
        assert.ok(d, `${path}: Drafts listed`);
        for (const key of ["name", "workbinName", "id", "displayName", "uri", "type"]) {
          assert.ok(key in d, `${path}: ${key} in ${JSON.stringify(d)}`);
        }
        assert.equal(d.type, "Agent");
        assert.equal(d.uri, `http://${server.http}/api/v2/workbins/${drafts}`);
      }
      const bad = await rest.get("/api/v2/workbins?fields=colour");
      assert.equal(bad.body.statusCode, 1);
    });

    test("GetWorkbinContent: the workbin alone, then its subresources in GWS's state-resource shape", async () => {
      const id = `CH-${transport}`;
      await ixnSend(
        server.tcp,
        { message: "RequestSubmit", TenantId: 101, MediaType: "chat", InteractionType: "Inbound", Queue: "Inbound", InteractionId: id, UserData: { Nickname: "Bob" } },
        { message: "RequestPlaceInWorkbin", InteractionId: id, Workbin: { WorkbinTypeId: "Team", WorkbinGroupId: "Sales" } },
      );
      const bare = await rest.get(`/api/v2/me/workbins/${drafts}`);
      assert.deepEqual(Object.keys(bare.body.workbin).sort(), ["displayName", "id", "name", "type", "uri", "workbinName"]);
      const team = (await rest.get("/api/v2/workbins")).body.workbins.find((w) => w.name === "Team").id;
      const group = await rest.get(`/api/v2/me/workbins/${team}?subresources=*&agentGroup=Sales`);
      assert.equal(group.body.statusCode, 0, JSON.stringify(group.body));
      assert.equal(group.body.workbin.type, "AgentGroup");
      assert.equal(group.body.workbin.agentGroup, "Sales");
      const chat = group.body.workbin.chats.find((c) => c.id === id);
      assert.ok(chat, JSON.stringify(group.body));
      assert.equal(chat.chatType, "Inbound");
      assert.deepEqual(chat.capabilities, []);
      assert.deepEqual(chat.participants, []);
      assert.match(chat.receivedDate, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000\+0000$/);
      assert.deepEqual(chat.userData, { Nickname: "Bob" });
      // Several group workbins, and the media path.
      const many = await rest.get(`/api/v2/me/workbins?workbinIds=${team},${team}&agentGroup=Sales&subresources=chat`);
      assert.equal(many.body.workbins.length, 1, "a repeated id is one workbin");
      assert.ok(many.body.workbins[0].chats.some((c) => c.id === id));
      const chats = await rest.get(`/api/v2/me/workbins/${team}/chats?subresources=*&agentGroup=Sales`);
      assert.ok(chats.body.workbin.chats.some((c) => c.id === id));
      assert.equal(chats.body.workbin.emails, undefined);
      const unknown = await rest.get(`/api/v2/me/workbins/${drafts}?subresources=fax`);
      assert.equal(unknown.body.statusCode, 1);
      assert.match(unknown.body.statusMessage, /chat, email, facebook, tweet, facebooksession, workitem, openmedia/);
    });

    test("a repeated workbin id is one subscription, one reference id, one message", async () => {
      const other = agent === "a1" ? "a2" : "a1";
      const sub = await rest.post(`/api/v2/users/${USERS[other]}/workbins?workbinIds=${review},${review}`, { operationName: "Subscribe" });
      assert.equal(sub.body.statusCode, 0);
      assert.deepEqual(Object.keys(sub.body.referenceIds), [review]);
      const ref = sub.body.referenceIds[review];
      await waitFor("the outcome", () => data((d) => d.referenceId === ref));
      await sleep(300);
      const about = messages.filter((m) => m.data.messageType === "WorkbinSubscriptionStateChangeMessage" && m.data.id === review && m.data.workbinUserId === USERS[other]);
      assert.equal(about.length, 1, JSON.stringify(about));
      assert.equal(about[0].data.referenceId, ref);
    });
  });
}
