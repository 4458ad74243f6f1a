//! CometD's transports: long-polling (one HTTP request per batch) and WebSocket (batches as
//! text frames), around the sans-IO Bayeux handling in `bayeux/`. This is where a
//! `/meta/connect` is held: until a message is queued, a newer connect arrives, the session
//! closes, its timeout passes, or the gateway stops.

use crate::auth::random_token;
use crate::bayeux::protocol::{self, Connect, Settings, Transport};
use crate::bayeux::reply::{Raw, batch_text, failure, raw};
use crate::bayeux::{Live, lock};
use crate::hub::{Hub, WebSession};
use axum::extract::ws::{Message as WsMessage, WebSocket};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Longest a WebSocket write may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn settings(hub: &Hub) -> Settings {
    Settings {
        connect_timeout_ms: hub.config.http.connect_timeout_ms,
        max_interval: Duration::from_millis(hub.config.http.max_interval_ms),
    }
}

/// Handles a batch from `web` (if signed in) at the present time.
fn process(
    hub: &Hub,
    web: Option<&Arc<WebSession>>,
    batch: Vec<Value>,
    transport: Transport,
) -> (Vec<Value>, Option<Connect>) {
    protocol::process(
        &hub.sessions,
        settings(hub),
        web.map(|w| w.client),
        batch,
        transport,
        crate::sessions::now(),
        &mut || random_token(16),
    )
}

/// Starts a connect now; returns its generation.
fn begin(c: &Connect, s: Settings) -> u64 {
    let g = lock(&c.session.state).begin_connect(
        crate::sessions::now(),
        c.timeout,
        s.max_interval,
        c.acked,
    );
    // A held connect of the same session is superseded: wake it.
    c.session.wake.notify_waiters();
    g
}

/// The reply to the connect of generation `g`, built now.
fn finish(c: &Connect, g: u64, s: Settings) -> Vec<Raw> {
    lock(&c.session.state).finish_connect(
        crate::sessions::now(),
        g,
        &c.id,
        s.connect_timeout_ms,
        s.max_interval,
    )
}

fn ready(session: &Live, g: u64) -> bool {
    lock(&session.state).ready(g)
}

/// Waits until the connect of generation `g` should be answered, or `deadline`, or shutdown.
/// Cancel-safe: nothing is taken while waiting.
async fn wait(
    session: &Live,
    g: u64,
    deadline: Instant,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    loop {
        let notified = session.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready(session, g) {
            return;
        }
        tokio::select! {
            () = notified => {
                // Let the delivery that woke us finish its round (it may be queuing more
                // messages for this session) before the reply takes the queue: fuller replies.
                tokio::task::yield_now().await;
            }
            () = tokio::time::sleep_until(deadline) => return,
            () = shutdown.cancelled() => return,
        }
    }
}

/// Answers a long-polling batch: other messages at once, a connect when ready.
pub(crate) async fn long_poll(
    hub: &Hub,
    web: Option<&Arc<WebSession>>,
    batch: Vec<Value>,
) -> Vec<Raw> {
    long_poll_with(hub, web, batch, &|_, _| {}).await
}

/// Called for each channel a session of the batch subscribed to, before its connect is
/// answered (the Workspace API greets `/workspace/v3/initialization` so).
pub(crate) type OnSubscribed<'a> = &'a (dyn Fn(&Arc<Live>, &str) + Sync);

/// [`long_poll`], calling `on_subscribed` for every channel a session subscribed to.
pub(crate) async fn long_poll_with(
    hub: &Hub,
    web: Option<&Arc<WebSession>>,
    batch: Vec<Value>,
    on_subscribed: OnSubscribed<'_>,
) -> Vec<Raw> {
    let s = settings(hub);
    let (meta, connect) = process(hub, web, batch, Transport::LongPolling);
    subscribed(hub, &meta, on_subscribed);
    let mut replies: Vec<Raw> = meta.iter().map(raw).collect();
    if let Some(c) = connect {
        let g = begin(&c, s);
        if !c.timeout.is_zero() {
            wait(&c.session, g, Instant::now() + c.timeout, &hub.shutdown).await;
        }
        replies.extend(finish(&c, g, s));
    }
    replies
}

/// Calls `f` for each channel of each successful `/meta/subscribe` among `meta`'s replies.
fn subscribed(hub: &Hub, meta: &[Value], f: OnSubscribed<'_>) {
    use crate::bayeux::Registry as _;
    for r in meta {
        let ok = r.get("channel").and_then(Value::as_str) == Some("/meta/subscribe")
            && r.get("successful").and_then(Value::as_bool) == Some(true);
        let live = r
            .get("clientId")
            .and_then(Value::as_str)
            .and_then(|id| hub.sessions.find(id));
        let (true, Some(live)) = (ok, live) else {
            continue;
        };
        match r.get("subscription") {
            Some(Value::String(c)) => f(&live, c),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).for_each(|c| f(&live, c)),
            _ => {}
        }
    }
}

/// Serves one WebSocket: the same messages as long-polling; a held connect is answered when a
/// message is queued or its timeout passes, while other messages keep flowing.
pub(crate) async fn websocket(hub: Arc<Hub>, web: Arc<WebSession>, mut socket: WebSocket) {
    let s = settings(&hub);
    let mut held: Option<(Connect, u64, Instant)> = None;
    loop {
        let waiting = async {
            match &held {
                Some((c, g, deadline)) => wait(&c.session, *g, *deadline, &hub.shutdown).await,
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
                let batch = match protocol::parse_batch(text.as_bytes()) {
                    Ok(b) => b,
                    Err(e) => {
                        let reply = raw(&failure(&Value::Null, "/meta/unknown", &format!("400::{e}")));
                        if send(&mut socket, &[reply]).await.is_err() { break; }
                        continue;
                    }
                };
                let (meta, connect) = process(&hub, Some(&web), batch, Transport::WebSocket);
                let mut replies: Vec<Raw> = meta.iter().map(raw).collect();
                if let Some(c) = connect {
                    let g = begin(&c, s);
                    if let Some((old, og, _)) = held.take() {
                        // A newer connect answers the held one at once (empty: superseded).
                        replies.extend(finish(&old, og, s));
                    }
                    if c.timeout.is_zero() || ready(&c.session, g) {
                        replies.extend(finish(&c, g, s));
                    } else {
                        let deadline = Instant::now() + c.timeout;
                        held = Some((c, g, deadline));
                    }
                }
                replies
            }
            () = waiting => {
                match held.take() {
                    Some((c, g, _)) => finish(&c, g, s),
                    None => Vec::new(),
                }
            }
        };
        if !replies.is_empty() && send(&mut socket, &replies).await.is_err() {
            break;
        }
        if hub.shutdown.is_cancelled() && held.is_none() {
            break;
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}

async fn send(socket: &mut WebSocket, messages: &[Raw]) -> Result<(), ()> {
    let text = batch_text(messages);
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(WsMessage::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
