// The console's calls to the server: JSON in and out, the session cookie sent by the browser,
// state-changing calls as JSON POSTs (the server's CSRF rules). A refusal becomes an ApiError
// carrying the server's message (and, for a condition, the position it names).

/** A refusal: the HTTP status and the server's message. */
export class ApiError extends Error {
  constructor(status, message, position) {
    super(message);
    this.status = status;
    this.position = position;
  }
}

let onSignedOut = () => {};

/** What to do when a call finds the session gone (401). */
export function whenSignedOut(f) {
  onSignedOut = f;
}

async function call(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${e.message})`);
  }
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const message = data.message || data.statusMessage || (data.status && data.status.message) || `HTTP ${response.status}`;
    const e = new ApiError(response.status, message, data.position);
    if (response.status === 401) onSignedOut(e);
    throw e;
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
const enc = encodeURIComponent;

export const me = () => get("api/me");
export const signIn = (agent, password, place) => post("api/session", { agent, password, place });
export const signOut = () => post("/api/v2/signout");
export const workbins = () => get("api/workbins");
export const queues = () => get("api/queues");
export const server = () => get("api/server");
export const takeSnapshot = (condition, order) => post("api/snapshots", { condition, order });
export const page = (id, start, size) => get(`api/snapshots/${enc(id)}?start=${start}&size=${size}`);
export const release = (id) => post(`api/snapshots/${enc(id)}/release`);
export const subscribe = (workbin, on = true) => post("api/subscriptions", { workbin, subscribe: on });
export const details = (id) => get(`api/interactions/${enc(id)}`);
export const act = (id, action, body = {}) => post(`api/interactions/${enc(id)}/${action}`, body);
export const bulk = (action, body) => post(`api/bulk/${action}`, body);
