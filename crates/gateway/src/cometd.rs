//! CometD (Bayeux 1.0) sessions and message handling, shared by long-polling and WebSocket.
//!
//! - Every reply is a JSON array; meta replies echo `id` and carry `successful`.
//! - `/meta/connect` is held until a message is queued or the (clamped) timeout passes; queued
//!   messages go before the connect reply. A newer connect answers the older one at once.
//! - Sessions always have a deadline: `timeout + max_interval` while a connect is held,
//!   `max_interval` after a reply; the sweeper removes those past it.
//! - Queues are bounded (`cometd_queue_messages`): one more message closes the session, whose
//!   client then gets `402` with `reconnect: handshake` and starts again.
//! - Messages are taken from the queue only when a connect reply is built (a long-poll dropped
//!   while waiting loses nothing); with the `ack` extension they are kept until the client's
//!   next connect acknowledges their batch, and sent again otherwise.

use crate::gws::put;
use crate::hub::{Hub, WebSession, lock};
use axum::extract::ws::{Message as WsMessage, WebSocket};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info};

/// Longest a WebSocket write may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a message reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    LongPolling,
    WebSocket,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::LongPolling => "long-polling",
            Self::WebSocket => "websocket",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// The client disconnected.
    Disconnected,
    /// The server dropped it (expired, overflowed, web session ended).
    Dropped,
}

#[derive(Debug)]
struct Inner {
    subscriptions: Vec<String>,
    queue: VecDeque<Value>,
    /// The last batch sent and not yet acknowledged (ack extension).
    unacked: Option<(u64, Vec<Value>)>,
    batch: u64,
    ack: bool,
    closed: Option<Closed>,
    expires: Instant,
    connect_gen: u64,
}

/// One CometD session (a `clientId`).
#[derive(Debug)]
pub(crate) struct CometSession {
    pub(crate) id: String,
    pub(crate) web: Arc<WebSession>,
    inner: Mutex<Inner>,
    wake: Notify,
}

impl CometSession {
    /// Queues `message` if the session subscribes to `channel`. False when the queue is full
    /// (the caller closes the session).
    pub(crate) fn push(&self, channel: &str, message: &Value, cap: usize) -> bool {
        let mut inner = lock(&self.inner);
        if inner.closed.is_some() || !inner.subscriptions.iter().any(|s| matches(s, channel)) {
            return true;
        }
        let held = inner.unacked.as_ref().map_or(0, |(_, m)| m.len());
        if inner.queue.len() + held >= cap {
            return false;
        }
        inner.queue.push_back(message.clone());
        drop(inner);
        self.wake.notify_waiters();
        true
    }

    /// Ends the session: a held connect is answered at once.
    pub(crate) fn close(&self, dropped: bool) {
        let mut inner = lock(&self.inner);
        inner.closed.get_or_insert(if dropped {
            Closed::Dropped
        } else {
            Closed::Disconnected
        });
        inner.queue.clear();
        inner.unacked = None;
        drop(inner);
        self.wake.notify_waiters();
    }

    pub(crate) fn expired(&self, now: std::time::Instant) -> bool {
        lock(&self.inner).expires.into_std() < now
    }

    /// Starts a connect: supersedes a held one, acknowledges what the client says it got, and
    /// sets the deadline for the hold. Returns the connect's generation.
    fn begin_connect(&self, timeout: Duration, max_interval: Duration, acked: Option<u64>) -> u64 {
        let mut inner = lock(&self.inner);
        inner.connect_gen += 1;
        inner.expires = Instant::now() + timeout + max_interval;
        if let (true, Some(n)) = (inner.ack, acked)
            && inner.unacked.as_ref().is_some_and(|(b, _)| *b <= n)
        {
            inner.unacked = None;
        }
        let generation = inner.connect_gen;
        drop(inner);
        self.wake.notify_waiters();
        generation
    }

    /// Whether the connect of generation `g` should be answered now.
    fn ready(&self, g: u64) -> bool {
        let inner = lock(&self.inner);
        inner.connect_gen != g
            || inner.closed.is_some()
            || !inner.queue.is_empty()
            || inner.unacked.is_some()
    }

    /// Waits until the connect of generation `g` should be answered, or `deadline`, or shutdown.
    /// Cancel-safe: nothing is taken while waiting.
    async fn wait(
        &self,
        g: u64,
        deadline: Instant,
        shutdown: &tokio_util::sync::CancellationToken,
    ) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ready(g) {
                return;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => return,
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Builds the reply to the connect of generation `g` (`id` echoed): queued messages, then
    /// the connect reply. Takes the messages out of the queue.
    fn finish_connect(
        &self,
        g: u64,
        id: &Value,
        timeout_ms: u64,
        max_interval: Duration,
    ) -> Vec<Value> {
        let mut inner = lock(&self.inner);
        let mut reply = json!({"channel": "/meta/connect", "successful": true});
        set_id(&mut reply, id);
        match inner.closed {
            Some(Closed::Dropped) => return vec![unknown_session(id, "/meta/connect")],
            Some(Closed::Disconnected) => {
                put(&mut reply, "advice", json!({"reconnect": "none"}));
                return vec![reply];
            }
            None => {}
        }
        put(
            &mut reply,
            "advice",
            json!({"reconnect": "retry", "interval": 0, "timeout": timeout_ms}),
        );
        if inner.connect_gen != g {
            // Superseded by a newer connect: answered at once, empty.
            return vec![reply];
        }
        inner.expires = Instant::now() + max_interval;
        let mut out: Vec<Value> = match inner.unacked.take() {
            Some((_, resend)) => resend,
            None => Vec::new(),
        };
        out.extend(inner.queue.drain(..));
        if inner.ack {
            inner.batch += 1;
            let batch = inner.batch;
            put(&mut reply, "ext", json!({"ack": batch}));
            if !out.is_empty() {
                inner.unacked = Some((batch, out.clone()));
            }
        }
        out.push(reply);
        out
    }

    fn closed(&self) -> bool {
        lock(&self.inner).closed.is_some()
    }
}

/// Whether subscription `pattern` (a channel, `/a/*` or `/a/**`) covers `channel`.
fn matches(pattern: &str, channel: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/**") {
        channel
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
    } else if let Some(prefix) = pattern.strip_suffix("/*") {
        channel
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    } else {
        pattern == channel
    }
}

/// A syntactically valid channel name or pattern.
fn valid_channel(c: &str) -> bool {
    let Some(rest) = c.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    segments.iter().enumerate().all(|(i, s)| {
        !s.is_empty() && (!s.contains('*') || (i == last && (*s == "*" || *s == "**")))
    })
}

fn set_id(reply: &mut Value, id: &Value) {
    if !id.is_null() {
        put(reply, "id", id.clone());
    }
}

/// The reply for an unknown or expired `clientId`: the client handshakes again.
fn unknown_session(id: &Value, channel: &str) -> Value {
    let mut reply = json!({
        "channel": channel,
        "successful": false,
        "error": "402::session_unknown",
        "advice": {"reconnect": "handshake", "interval": 0},
    });
    set_id(&mut reply, id);
    reply
}

fn failure(id: &Value, channel: &str, error: &str) -> Value {
    let mut reply = json!({"channel": channel, "successful": false, "error": error});
    set_id(&mut reply, id);
    reply
}

/// A `/meta/connect` to answer after the other messages of its batch.
pub(crate) struct Connect {
    id: Value,
    session: Arc<CometSession>,
    timeout: Duration,
    acked: Option<u64>,
}

/// Handles the non-connect messages of a batch; returns their replies and the connect to hold.
/// `web` is the caller's web session (cookie or Basic), if any.
pub(crate) fn process(
    hub: &Hub,
    web: Option<&Arc<WebSession>>,
    batch: Vec<Value>,
    transport: Transport,
) -> (Vec<Value>, Option<Connect>) {
    let http = &hub.config.http;
    let mut replies = Vec::with_capacity(batch.len());
    let mut connect = None;
    // The spec: other messages batched with a handshake are ignored.
    let handshake = batch
        .iter()
        .find(|m| m.get("channel").and_then(Value::as_str) == Some("/meta/handshake"));
    let batch = match handshake {
        Some(h) => vec![h.clone()],
        None => batch,
    };
    for msg in batch {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let Some(channel) = msg.get("channel").and_then(Value::as_str) else {
            replies.push(failure(
                &id,
                "/meta/unknown",
                "400::a Bayeux message needs a channel",
            ));
            continue;
        };
        if channel == "/meta/handshake" {
            replies.push(handshake_reply(hub, web, &msg, &id, transport));
            continue;
        }
        let session = msg
            .get("clientId")
            .and_then(Value::as_str)
            .and_then(|c| hub.cometd(c))
            .filter(|s| !s.closed());
        // The session must belong to the caller's web session (no bare clientId is trusted).
        let session = session.filter(|s| web.is_some_and(|w| Arc::ptr_eq(w, &s.web)));
        let Some(session) = session else {
            replies.push(unknown_session(&id, channel));
            continue;
        };
        session.web.touch();
        match channel {
            "/meta/connect" => {
                let asked = msg
                    .pointer("/advice/timeout")
                    .and_then(Value::as_u64)
                    .unwrap_or(http.connect_timeout_ms);
                let acked = msg.pointer("/ext/ack").and_then(Value::as_u64);
                if let Some(previous) = connect.replace(Connect {
                    id,
                    session,
                    timeout: Duration::from_millis(asked.min(http.connect_timeout_ms)),
                    acked,
                }) {
                    // Two connects in one batch: the first is answered empty.
                    let mut r = json!({"channel": "/meta/connect", "successful": true});
                    set_id(&mut r, &previous.id);
                    replies.push(r);
                }
            }
            "/meta/subscribe" | "/meta/unsubscribe" => {
                let subscribe = channel == "/meta/subscribe";
                let wanted: Vec<String> = match msg.get("subscription") {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                let mut reply = if wanted.is_empty() {
                    failure(&id, channel, "403::subscription_missing")
                } else if let Some(bad) = wanted.iter().find(|c| !valid_channel(c)) {
                    failure(&id, channel, &format!("403:{bad}:subscription_invalid"))
                } else if let Some(bad) = wanted
                    .iter()
                    .find(|c| subscribe && !c.starts_with("/v2/me/"))
                {
                    failure(
                        &id,
                        channel,
                        &format!(
                            "403:{bad}:subscription_denied: only the signed-in agent's /v2/me/ channels may be subscribed"
                        ),
                    )
                } else {
                    let mut inner = lock(&session.inner);
                    for c in &wanted {
                        if subscribe {
                            if !inner.subscriptions.contains(c) && inner.subscriptions.len() < 64 {
                                inner.subscriptions.push(c.clone());
                            }
                        } else {
                            inner.subscriptions.retain(|s| s != c);
                        }
                    }
                    let mut r = json!({"channel": channel, "successful": true});
                    set_id(&mut r, &id);
                    r
                };
                put(
                    &mut reply,
                    "subscription",
                    msg.get("subscription").cloned().unwrap_or(Value::Null),
                );
                put(&mut reply, "clientId", json!(session.id));
                replies.push(reply);
            }
            "/meta/disconnect" => {
                hub.remove_cometd(&session.id);
                session.close(false);
                info!(session = %session.id, "CometD session disconnected");
                let mut r = json!({"channel": channel, "successful": true});
                set_id(&mut r, &id);
                replies.push(r);
            }
            _ => {
                // Publishing is not part of this API: clients only listen.
                replies.push(failure(&id, channel, "403::publish_denied"));
            }
        }
    }
    (replies, connect)
}

fn handshake_reply(
    hub: &Hub,
    web: Option<&Arc<WebSession>>,
    msg: &Value,
    id: &Value,
    transport: Transport,
) -> Value {
    let refuse = |error: &str, reconnect: Value| {
        let mut r = failure(id, "/meta/handshake", error);
        put(&mut r, "advice", reconnect);
        r
    };
    let Some(web) = web else {
        return refuse(
            "401::not authenticated: sign in with HTTP Basic (agent id and password) first",
            json!({"reconnect": "none"}),
        );
    };
    let ours = ["websocket", "long-polling"];
    let theirs: Vec<&str> = msg
        .get("supportedConnectionTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let common: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|t| theirs.contains(t))
        .collect();
    if common.is_empty() {
        return refuse(
            "400::no common connection type: this server offers websocket and long-polling",
            json!({"reconnect": "none"}),
        );
    }
    let Some(client_id) = crate::auth::random_token(16) else {
        return refuse(
            "500::no randomness for a client id",
            json!({"reconnect": "none"}),
        );
    };
    let ack = msg.pointer("/ext/ack") == Some(&Value::Bool(true));
    let http = &hub.config.http;
    let session = Arc::new(CometSession {
        id: client_id.clone(),
        web: Arc::clone(web),
        inner: Mutex::new(Inner {
            subscriptions: Vec::new(),
            queue: VecDeque::new(),
            unacked: None,
            batch: 0,
            ack,
            closed: None,
            expires: Instant::now() + Duration::from_millis(http.max_interval_ms),
            connect_gen: 0,
        }),
        wake: Notify::new(),
    });
    if let Err(e) = hub.add_cometd(session) {
        return refuse(
            &format!("503::{e}"),
            json!({"reconnect": "handshake", "interval": 10_000}),
        );
    }
    debug!(session = %client_id, transport = transport.name(), ack, "CometD handshake");
    let mut reply = json!({
        "channel": "/meta/handshake",
        "successful": true,
        "clientId": client_id,
        "version": "1.0",
        "minimumVersion": "1.0",
        "supportedConnectionTypes": common,
        "advice": {"reconnect": "retry", "interval": 0, "timeout": http.connect_timeout_ms},
    });
    if ack {
        put(&mut reply, "ext", json!({"ack": true}));
    }
    set_id(&mut reply, id);
    reply
}

/// Answers a long-polling batch: other messages at once, a connect when ready.
pub(crate) async fn long_poll(
    hub: &Hub,
    web: Option<&Arc<WebSession>>,
    batch: Vec<Value>,
) -> Vec<Value> {
    let (mut replies, connect) = process(hub, web, batch, Transport::LongPolling);
    if let Some(c) = connect {
        let http = &hub.config.http;
        let max_interval = Duration::from_millis(http.max_interval_ms);
        let g = c.session.begin_connect(c.timeout, max_interval, c.acked);
        if !c.timeout.is_zero() {
            c.session
                .wait(g, Instant::now() + c.timeout, &hub.shutdown)
                .await;
        }
        replies.extend(
            c.session
                .finish_connect(g, &c.id, http.connect_timeout_ms, max_interval),
        );
    }
    replies
}

/// Parses a request body (or WebSocket frame): an array of messages, or one message.
pub(crate) fn parse_batch(text: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(m @ Value::Object(_)) => Ok(vec![m]),
        Ok(_) => Err("a Bayeux request is a JSON array of messages".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

/// Serves one WebSocket: the same messages as long-polling; a held connect is answered when a
/// message is queued or its timeout passes, while other messages keep flowing.
pub(crate) async fn websocket(hub: Arc<Hub>, web: Arc<WebSession>, mut socket: WebSocket) {
    let http = hub.config.http.clone();
    let max_interval = Duration::from_millis(http.max_interval_ms);
    let mut held: Option<(Connect, u64, Instant)> = None;
    loop {
        let waiting = async {
            match &held {
                Some((c, g, deadline)) => c.session.wait(*g, *deadline, &hub.shutdown).await,
                None => std::future::pending().await,
            }
        };
        let replies = tokio::select! {
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let batch = match parse_batch(text.as_bytes()) {
                    Ok(b) => b,
                    Err(e) => {
                        let reply = json!([failure(&Value::Null, "/meta/unknown", &format!("400::{e}"))]);
                        if send(&mut socket, &reply).await.is_err() { break; }
                        continue;
                    }
                };
                let (mut replies, connect) = process(&hub, Some(&web), batch, Transport::WebSocket);
                                if let Some(c) = connect {
                    let g = c.session.begin_connect(c.timeout, max_interval, c.acked);
                    if let Some((old, og, _)) = held.take() {
                        // A newer connect answers the held one at once (empty: superseded).
                        replies.extend(old.session.finish_connect(og, &old.id, http.connect_timeout_ms, max_interval));
                    }
                    if c.timeout.is_zero() || c.session.ready(g) {
                        replies.extend(c.session.finish_connect(g, &c.id, http.connect_timeout_ms, max_interval));
                    } else {
                        let deadline = Instant::now() + c.timeout;
                        held = Some((c, g, deadline));
                    }
                }
                replies
            }
            () = waiting => {
                match held.take() {
                    Some((c, g, _)) => c.session.finish_connect(g, &c.id, http.connect_timeout_ms, max_interval),
                    None => Vec::new(),
                }
            }
        };
        if !replies.is_empty() && send(&mut socket, &Value::Array(replies)).await.is_err() {
            break;
        }
        if hub.shutdown.is_cancelled() && held.is_none() {
            break;
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}

async fn send(socket: &mut WebSocket, value: &Value) -> Result<(), ()> {
    let text = value.to_string();
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(WsMessage::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_patterns() {
        assert!(matches("/v2/me/workbins", "/v2/me/workbins"));
        assert!(matches("/v2/me/*", "/v2/me/workbins"));
        assert!(!matches("/v2/me/*", "/v2/me/workbins/x"));
        assert!(matches("/v2/me/**", "/v2/me/workbins/x"));
        assert!(!matches("/v2/me/**", "/v2/mex/workbins"));
        assert!(!matches("/v2/me/work", "/v2/me/workbins"));
        assert!(valid_channel("/v2/me/*"));
        assert!(valid_channel("/v2/me/**"));
        assert!(!valid_channel("/v2/*/x"));
        assert!(!valid_channel("v2/me"));
        assert!(!valid_channel("/v2//me"));
    }

    #[test]
    fn batches_parse() {
        assert_eq!(
            parse_batch(b"[{\"channel\":\"/meta/connect\"}]")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_batch(b"{\"channel\":\"/meta/connect\"}")
                .unwrap()
                .len(),
            1
        );
        assert!(parse_batch(b"3").is_err());
        assert!(parse_batch(b"[").is_err());
    }
}
