// The Workspace API v3 with Genesys's own JavaScript client (npm `genesys-workspace-client-js`,
// which speaks CometD through its bundled `cometd` 3 over long-polling), against the real
// `ixn-server` binary: an access token from /auth/v3/oauth/token, the client's initialize
// (the WORKSPACE_SESSIONID cookie, the initialization over CometD), channels activated at a
// place, workbins read through the generated WorkbinsApi with their results over CometD, and
// the refusals of the token and session routes in their documented shapes.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { ixnSend, startServer, submitAndPlace } from "../lib/server.mjs";

const require = createRequire(import.meta.url);
const WorkspaceApi = require("genesys-workspace-client-js");
const generated = require("genesys-workspace-client-js/src/internal/code-gen/workspace-api");

const CLIENT = "Basic " + Buffer.from("ixn-demo:demo-secret").toString("base64");

/** POST /auth/v3/oauth/token with the password grant, as the Authentication API takes it. */
async function tokenRequest(http, fields, authorization = CLIENT) {
  const res = await fetch(`http://${http}/auth/v3/oauth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Authorization: authorization },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, body: await res.json() };
}

async function token(http, agent) {
  const r = await tokenRequest(http, { grant_type: "password", username: agent, password: `demo-${agent}`, client_id: "ixn-demo" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/**
 * What arrives on `channel` of the client's CometD, kept in order; resolves once the server has
 * acknowledged the subscription (so nothing published after it is missed).
 */
function listen(api, channel) {
  const seen = [];
  const waiting = [];
  const deliver = () => {
    for (const w of [...waiting]) {
      const i = seen.findIndex(w.pick);
      if (i >= 0) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(seen.splice(i, 1)[0]);
      }
    }
  };
  return new Promise((ready, failed) => {
    api._cometd.subscribe(
      channel,
      (m) => { seen.push(m.data); deliver(); },
      (reply) => (reply.successful ? ready : failed)({
        /** The first message (kept or to come) that `pick` accepts. */
        next: (pick) => new Promise((resolve) => { waiting.push({ pick, resolve }); deliver(); }),
      }),
    );
  });
}

describe("Workspace API v3 with genesys-workspace-client-js", () => {
  let server;
  before(async () => { server = await startServer(); });
  after(() => server.child.kill());

  test("the token route gives a bearer token and userinfo names its agent", async () => {
    const t = await token(server.http, "a1");
    assert.equal(t.token_type, "bearer");
    assert.ok(t.access_token.length >= 32);
    assert.ok(t.expires_in > 0);
    const res = await fetch(`http://${server.http}/auth/v3/userinfo`, { headers: { Authorization: `Bearer ${t.access_token}` } });
    assert.equal(res.status, 200);
    const info = await res.json();
    assert.equal(info.user_name, "a1");
    assert.equal(info.sub, "802396ae32494a8b8a617a9103d968bb");
  });

  test("the token route refuses in OAuth 2's shape, naming the cause", async () => {
    const wrongSecret = "Basic " + Buffer.from("ixn-demo:nope").toString("base64");
    let r = await tokenRequest(server.http, { grant_type: "password", username: "a1", password: "demo-a1" }, wrongSecret);
    assert.equal(r.status, 401);
    assert.equal(r.body.error, "invalid_client");
    r = await tokenRequest(server.http, { grant_type: "password", username: "a1", password: "wrong" });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_grant");
    assert.match(r.body.error_description, /wrong password/);
    r = await tokenRequest(server.http, { grant_type: "client_credentials" });
    assert.equal(r.body.error, "unsupported_grant_type");
  });

  test("an agent initializes, activates its channels, reads its workbins, and logs out", async () => {
    await submitAndPlace(server.tcp, "WS-1", "a1");
    const t = await token(server.http, "a1");
    const api = new WorkspaceApi(null, `http://${server.http}`, false);
    await api.initialize({ token: t.access_token });
    assert.equal(api.initialized, true);
    assert.equal(api.user.employeeId, "a1");
    await api.activateChannels("a1", null, "p1");

    const workbinsApi = new generated.WorkbinsApi(api._workspaceClient);
    const heard = await listen(api, "/workspace/v3/workbins");
    const accepted = await workbinsApi.getWorkbins({ data: {} });
    assert.equal(accepted.status.code, 1);
    const workbins = (await heard.next((d) => d.name === "EventWorkbins")).workbins;
    const drafts = workbins.find((w) => w.workbinName === "Drafts" && w.ownerId === "a1");
    assert.ok(drafts, JSON.stringify(workbins));

    await workbinsApi.getWorkbinContent(drafts.id, { data: {} });
    const wb = (await heard.next((d) => d.name === "EventWorkbinContent")).workbin;
    assert.deepEqual(wb.interactions.map((i) => i.id), ["WS-1"]);

    // Subscribed (property changes too), the agent hears what a media server places over TCP.
    await workbinsApi.subscribeToWorkbinNotifications(drafts.id, { data: { notifyPropertyChanges: true } });
    const ack = await heard.next((d) => d.name === "EventAck" || d.name === "EventError");
    assert.equal(ack.name, "EventAck", JSON.stringify(ack));
    assert.equal(ack.operation, "SubscribeWorkbinEvents");
    await submitAndPlace(server.tcp, "WS-2", "a1");
    const added = await heard.next((d) => d.name === "EventWorkbinContentChanged" && d.interaction.id === "WS-2");
    assert.equal(added.workbinContentOperation, "Add");
    assert.equal(added.workbin.id, drafts.id);
    assert.deepEqual(added.interaction.userData, [{ key: "Subject", type: "str", value: "About WS-2" }]);

    // Its user data updated: the subscriber hears the change.
    const mediaApi = new generated.MediaApi(api._workspaceClient);
    const media = await listen(api, "/workspace/v3/media");
    await mediaApi.updateMediaUserData("email", "WS-2", { data: [{ key: "Priority", type: "int", value: 5 }] });
    const updated = await heard.next((d) => d.name === "EventWorkbinContentChanged" && d.workbinContentOperation === "Update");
    assert.deepEqual(
      updated.interaction.userData.find((p) => p.key === "Priority"),
      { key: "Priority", type: "int", value: 5 },
    );
    assert.equal((await media.next((d) => d.notificationType === "PropertiesChanged")).interaction.id, "WS-2");

    // Pulled: it leaves the workbin and is the agent's; completed, it is gone.
    await mediaApi.pullInteractionFromWorkbin("email", "WS-2", { pullInteractionFromWorkbinData: { data: { workbinId: drafts.id } } });
    const removed = await heard.next((d) => d.name === "EventWorkbinContentChanged" && d.workbinContentOperation === "Remove");
    assert.equal(removed.interaction.id, "WS-2");
    const pulled = await media.next((d) => d.notificationType === "StatusChange");
    assert.equal(pulled.interaction.state, "Handling");
    assert.equal(pulled.interaction.assignedTo, "a1");
    await mediaApi.complete("email", "WS-2", {});
    assert.equal((await media.next((d) => d.interaction.state === "Completed")).interaction.id, "WS-2");
    await assert.rejects(
      mediaApi.complete("email", "WS-2", {}),
      (e) => e.status === 404 && /WS-2/.test(JSON.parse(e.response.text).status.message),
    );

    // What the client's destroy() does, its logout awaited (destroy does not wait for it).
    api._cometd.disconnect();
    const out = await new generated.SessionApi(api._workspaceClient).logout();
    assert.equal(out.status.code, 0);
    // The session is over: its cookie no longer opens anything.
    await assert.rejects(workbinsApi.getWorkbins({ data: {} }), (e) => e.status === 401);
  });

  test("a supervisor pages a queue by condition, moves, completes and changes in bulk", async () => {
    for (const n of [1, 2, 3, 4]) {
      await ixnSend(server.tcp, { message: "RequestSubmit", TenantId: 101, MediaType: "email", InteractionType: "Inbound", Queue: "Inbound", InteractionId: `SUP-${n}`, UserData: { Subject: `About SUP-${n}` } });
    }
    const t = await token(server.http, "sup1");
    const api = new WorkspaceApi(null, `http://${server.http}`, false);
    await api.initialize({ token: t.access_token });
    await api.activateChannels("sup1", null, "p2");
    const mgmt = new generated.MediaManagementApi(api._workspaceClient);
    const heard = await listen(api, "/workspace/v3/media-management");
    const ids = (m) => m.interactions.map((i) => i.id);

    let r = await mgmt.getSnapshot({ data: { condition: "Queue = 'Inbound' AND UserData.Subject LIKE 'About SUP-%'", order: "InteractionId", startIndex: 0, size: 2 } });
    assert.equal(r.status.code, 1);
    const first = await heard.next((d) => d.notificationType === "SnapshotContent");
    assert.equal(first.count, 4);
    assert.deepEqual(ids(first), ["SUP-1", "SUP-2"]);
    await mgmt.getSnapshotContent(first.snapshotId, { data: { startIndex: 2, size: 2 } });
    assert.deepEqual(ids(await heard.next((d) => d.notificationType === "SnapshotContent")), ["SUP-3", "SUP-4"]);

    await mgmt.mgtMoveToWorkbin({ data: { workbinId: "Drafts", ownerId: "a1", interactions: ["SUP-1", "SUP-2", "NOPE"] } });
    let done = await heard.next((d) => d.notificationType === "MoveToWorkbin");
    assert.deepEqual(done.succeeded, ["SUP-1", "SUP-2"]);
    assert.deepEqual(done.failed.map((f) => f.id), ["NOPE"]);
    await mgmt.mgtMoveToQueue({ data: { queue: "Inbound", interactions: ["SUP-1"] } });
    assert.deepEqual((await heard.next((d) => d.notificationType === "MoveToQueue")).succeeded, ["SUP-1"]);
    await mgmt.mgtComplete({ data: { interactions: ["SUP-3"] } });
    assert.deepEqual((await heard.next((d) => d.notificationType === "Complete")).succeeded, ["SUP-3"]);
    await mgmt.mgtManageUserData({ data: { interactions: ["SUP-4"], updatedUserData: [{ key: "Priority", type: "int", value: 9 }] } });
    assert.deepEqual((await heard.next((d) => d.notificationType === "ManageUserData")).succeeded, ["SUP-4"]);

    // The snapshot's pages re-read the interactions: SUP-3 is gone but keeps its place.
    await mgmt.getSnapshotContent(first.snapshotId, { data: { startIndex: 0, size: 4 } });
    const again = await heard.next((d) => d.notificationType === "SnapshotContent");
    assert.deepEqual(ids(again), ["SUP-1", "SUP-2", "SUP-3", "SUP-4"]);
    assert.equal(again.interactions[1].state, "InWorkbin");
    assert.equal(again.interactions[2].state, "Gone");
    assert.deepEqual(again.interactions[3].userData.find((p) => p.key === "Priority"), { key: "Priority", type: "int", value: 9 });
    await mgmt.releaseSnapshot(first.snapshotId, {});
    assert.equal((await heard.next((d) => d.notificationType === "SnapshotReleased")).snapshotId, first.snapshotId);

    // A condition that does not parse is refused with where and why.
    await assert.rejects(mgmt.getSnapshot({ data: { condition: "Queue = " } }), (e) => {
      const m = JSON.parse(e.response.text).status.message;
      return e.status === 400 && /position 9/.test(m);
    });
    api._cometd.disconnect();
    await new generated.SessionApi(api._workspaceClient).logout();

    // An agent that supervises nobody may not.
    const agent = new WorkspaceApi(null, `http://${server.http}`, false);
    await agent.initialize({ token: (await token(server.http, "a2")).access_token });
    await assert.rejects(
      new generated.MediaManagementApi(agent._workspaceClient).getSnapshot({ data: { condition: "MediaType = 'email'" } }),
      (e) => e.status === 403 && /supervises no group/.test(JSON.parse(e.response.text).status.message),
    );
    agent._cometd.disconnect();
    await new generated.SessionApi(agent._workspaceClient).logout();
  });

  test("a GWS v2 CometD session and a Workspace API one of the same agent hear the same change", async () => {
    const t = await token(server.http, "a2");
    const api = new WorkspaceApi(null, `http://${server.http}`, false);
    await api.initialize({ token: t.access_token });
    await api.activateChannels("a2", null, "p2");
    const workbinsApi = new generated.WorkbinsApi(api._workspaceClient);
    const heard = await listen(api, "/workspace/v3/workbins");
    await workbinsApi.subscribeToWorkbinNotifications("Drafts", { data: {} });
    assert.equal((await heard.next((d) => d.operation === "SubscribeWorkbinEvents")).name, "EventAck");

    // GWS v2, by hand over long-polling: the same agent signs in (joining its web session),
    // handshakes, subscribes to /v2/me/workbins and REST-subscribes to its Drafts.
    const base = `http://${server.http}`;
    const v2 = { cookie: null };
    const call = async (path, body, auth) => {
      const headers = { "Content-Type": "application/json" };
      if (v2.cookie) headers.Cookie = v2.cookie; else headers.Authorization = auth;
      const res = await fetch(base + path, { method: "POST", headers, body: JSON.stringify(body) });
      const set = res.headers.get("set-cookie");
      if (set) v2.cookie = set.split(";")[0];
      return res.json();
    };
    const basicA2 = "Basic " + Buffer.from("a2:demo-a2").toString("base64");
    const [hs] = await call("/api/v2/notifications", [{ channel: "/meta/handshake", version: "1.0", supportedConnectionTypes: ["long-polling"] }], basicA2);
    assert.equal(hs.successful, true, JSON.stringify(hs));
    const clientId = hs.clientId;
    await call("/api/v2/notifications", [{ channel: "/meta/subscribe", clientId, subscription: "/v2/me/workbins" }]);
    await call("/api/v2/me/workbins/Drafts", { operationName: "Subscribe" });
    const v2Messages = [];
    /** Long-polls (each connect held at most 1.5 s) until a message `pick` accepts came. */
    const until = async (pick) => {
      for (let i = 0; i < 10 && !v2Messages.some(pick); i++) {
        const replies = await call("/api/v2/notifications", [{ channel: "/meta/connect", clientId, connectionType: "long-polling" }]);
        v2Messages.push(...replies.filter((m) => m.channel === "/v2/me/workbins").map((m) => m.data));
      }
      const found = v2Messages.find(pick);
      assert.ok(found, `no such v2 message among ${JSON.stringify(v2Messages)}`);
      return found;
    };
    await until((m) => m.stateResource === "Subscribed");

    await submitAndPlace(server.tcp, "BOTH-1", "a2");
    const v3 = await heard.next((d) => d.name === "EventWorkbinContentChanged" && d.interaction.id === "BOTH-1");
    assert.equal(v3.workbinContentOperation, "Add");
    const added = await until((m) => m.action === "ItemAdded");
    assert.equal(added.emailStateResourceV2.id, "BOTH-1");
    api._cometd.disconnect();
    await new generated.SessionApi(api._workspaceClient).logout();
  });

  test("every path the official client calls for these operations is in the OpenAPI document", async () => {
    const doc = await (await fetch(`http://${server.http}/openapi/v3.json`)).json();
    const api = path.dirname(require.resolve("genesys-workspace-client-js/src/internal/code-gen/workspace-api/api/WorkbinsApi.js"));
    const calls = (file) =>
      [...fs.readFileSync(path.join(api, file), "utf8").matchAll(/'(\/[^']+)', '(GET|POST|PUT|DELETE)'/g)]
        .map((m) => ({ file, path: m[1], method: m[2].toLowerCase() }));
    const ours = new Set(["pull", "place-in-queue", "complete", "attach-user-data", "update-user-data", "delete-user-data"]);
    const wanted = [
      ...calls("WorkbinsApi.js"),
      ...calls("MediaManagementApi.js"),
      ...calls("MediaApi.js").filter((c) => ours.has(c.path.split("/").pop()) && c.path.includes("/interactions/{id}/")),
      ...calls("SessionApi.js").filter((c) => ["/initialize-workspace", "/activate-channels"].includes(c.path) || (c.path === "/logout" && c.method === "post")),
    ];
    assert.ok(wanted.length >= 25, `${wanted.length} calls read from the client`);
    const missing = wanted.filter((c) => !doc.paths[`/workspace/v3${c.path}`]?.[c.method]);
    assert.deepEqual(missing, []);
  });

  test("several workbins at once, an interaction added, its details", async () => {
    await ixnSend(server.tcp, { message: "RequestSubmit", TenantId: 101, MediaType: "email", InteractionType: "Inbound", Queue: "Inbound", InteractionId: "ADD-1" });
    const t = await token(server.http, "a3");
    const api = new WorkspaceApi(null, `http://${server.http}`, false);
    await api.initialize({ token: t.access_token });
    await api.activateChannels("a3", null, "p1");
    const workbinsApi = new generated.WorkbinsApi(api._workspaceClient);
    const heard = await listen(api, "/workspace/v3/workbins");
    await workbinsApi.subscribeToWorkbinsNotifications({ data: { workbinIds: "Drafts,Review" } });
    const acks = [await heard.next((d) => d.name === "EventAck"), await heard.next((d) => d.name === "EventAck")];
    assert.equal(acks.length, 2);
    await workbinsApi.addInteractionToWorkbin("Review", { data: { interactionId: "ADD-1" } });
    assert.equal((await heard.next((d) => d.name === "EventWorkbinContentChanged")).interaction.id, "ADD-1");
    await workbinsApi.getWorkbinsContent({ data: { workbinIds: "Drafts,Review" } });
    const both = (await heard.next((d) => d.name === "EventWorkbinsContent")).workbins;
    assert.deepEqual(both.Review.interactions.map((i) => i.id), ["ADD-1"]);
    assert.deepEqual(both.Drafts.interactions, []);
    await workbinsApi.getInteractionDetailsFromWorkbin("ADD-1");
    const details = await heard.next((d) => d.name === "EventGetInteractionDetails");
    assert.equal(details.interaction.workbinTypeId, "Review");
    api._cometd.disconnect();
    await new generated.SessionApi(api._workspaceClient).logout();
  });

  test("session routes refuse without a session, and without a good token", async () => {
    const post = (path, headers = {}) =>
      fetch(`http://${server.http}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: "{}" });
    let res = await post("/workspace/v3/workbins/get-workbins");
    assert.equal(res.status, 401);
    assert.match((await res.json()).status.message, /initialize-workspace/);
    res = await post("/workspace/v3/initialize-workspace", { Authorization: "Bearer not-a-token" });
    assert.equal(res.status, 401);
    assert.match((await res.json()).status.message, /unknown/);
    res = await post("/workspace/v3/initialize-workspace");
    assert.equal(res.status, 401);
    assert.match((await res.json()).status.message, /Bearer/);

    // Signed in as a3 (Support, supervising nobody): an unknown workbin, a workbin of an agent
    // it may not reach, a body that does not fit.
    const t = await token(server.http, "a3");
    res = await post("/workspace/v3/initialize-workspace", { Authorization: `Bearer ${t.access_token}` });
    const cookie = { Cookie: res.headers.get("set-cookie").split(";")[0] };
    res = await fetch(`http://${server.http}/workspace/v3/activate-channels`, {
      method: "POST", headers: { "Content-Type": "application/json", ...cookie }, body: JSON.stringify({ data: { agentId: "a3", placeName: "p2" } }),
    });
    assert.equal(res.status, 200);
    res = await post("/workspace/v3/workbins/NoSuchWorkbin/get-content", cookie);
    assert.equal(res.status, 404);
    assert.match((await res.json()).status.message, /no workbin "NoSuchWorkbin"/);
    res = await fetch(`http://${server.http}/workspace/v3/workbins/Drafts/get-content`, {
      method: "POST", headers: { "Content-Type": "application/json", ...cookie }, body: JSON.stringify({ data: { ownerId: "a1" } }),
    });
    assert.equal(res.status, 403);
    assert.match((await res.json()).status.message, /may not access workbin/);
    res = await fetch(`http://${server.http}/workspace/v3/media/email/interactions/X/place-in-queue`, {
      method: "POST", headers: { "Content-Type": "application/json", ...cookie }, body: JSON.stringify({ data: { queue: 7 } }),
    });
    assert.equal(res.status, 400);
    assert.match((await res.json()).status.message, /does not fit/);
    await post("/workspace/v3/logout", cookie);
  });
});
