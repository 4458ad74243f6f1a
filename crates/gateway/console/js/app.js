// The console's entry: signing in and out, and the views by the address's hash (#/agent,
// #/supervisor, #/operator), each shown only to whom it is for.

import * as api from "./api.js";
import * as agent from "./agent.js";
import * as details from "./details.js";
import * as live from "./live.js";
import * as operator from "./operator.js";
import * as supervisor from "./supervisor.js";
import { byId, fill, say } from "./dom.js";

const VIEWS = ["sign-in", "agent", "supervisor", "operator"];
let profile = null;

function showOnly(view) {
  for (const v of VIEWS) byId(`view-${v}`).hidden = v !== view;
  for (const v of ["agent", "supervisor", "operator"]) {
    const link = byId(`nav-${v}`);
    if (v === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  if (!profile) {
    showOnly("sign-in");
    byId("sign-in-agent").focus();
    return;
  }
  let view = window.location.hash.replace(/^#\//, "") || "agent";
  if ((view === "supervisor" && !profile.supervisor) || (view === "operator" && !profile.operator) || !VIEWS.includes(view) || view === "sign-in") view = "agent";
  showOnly(view);
  if (view !== "operator") operator.stop();
  try {
    if (view === "agent") await agent.show();
    if (view === "supervisor") await supervisor.show();
    if (view === "operator") await operator.show();
  } catch (e) {
    say(`Cannot show this view: ${e.message}`, true);
  }
}

function enter(p) {
  profile = p;
  byId("nav").hidden = false;
  byId("who").hidden = false;
  byId("who-name").textContent = p.place ? `${p.agent} at ${p.place}` : p.agent;
  byId("nav-supervisor").hidden = !p.supervisor;
  byId("nav-operator").hidden = !p.operator;
  agent.init(p);
  if (p.supervisor) supervisor.init(p);
  live.connect(p.notifications);
}

function leave(message) {
  profile = null;
  operator.stop();
  live.disconnect();
  agent.reset();
  supervisor.reset();
  if (byId("details").open) byId("details").close();
  byId("nav").hidden = true;
  byId("who").hidden = true;
  say(message || "");
  route();
}

async function signIn(e) {
  e.preventDefault();
  const f = e.target;
  fill(byId("sign-in-error"));
  try {
    const p = await api.signIn(f.agent.value.trim(), f.password.value, f.place.value.trim());
    f.password.value = "";
    enter(p);
    say(`Signed in as ${p.agent}.`);
    await route();
    byId("main").focus();
  } catch (err) {
    fill(byId("sign-in-error"), err.message);
  }
}

async function signOut() {
  try {
    await api.signOut();
  } catch {
    // The session may be gone already; signing out locally is what matters.
  }
  leave("Signed out.");
}

async function start() {
  details.init();
  api.whenSignedOut(() => { if (profile) leave("The session ended: sign in again."); });
  byId("sign-in-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  try {
    const p = await api.me();
    if (p.signedIn) enter(p);
  } catch (e) {
    say(`The server cannot be reached: ${e.message}`, true);
  }
  await route();
}

start();
