//! The task that owns the engine: it takes inputs from every connection through one channel,
//! feeds them to the engine one at a time, and queues the outputs on the connections' outboxes.

use crate::outbox::{Item, Outbox, Pushed};
use ixn_codec::{Codec, Message, MessageId, attr};
use ixn_core::{ConnId, Engine, Output};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// What connections tell the engine task.
#[derive(Debug)]
pub(crate) enum Input {
    /// A connection was accepted.
    Open {
        conn: ConnId,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
    },
    /// A message arrived.
    Message { conn: ConnId, msg: Message },
    /// The connection is over; `done` fires once its clients are dropped (R13).
    Close {
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
}

struct Conn {
    peer: SocketAddr,
    outbox: Arc<Outbox>,
}

/// Runs until every sender of `inputs` is gone.
pub(crate) async fn run(mut engine: Engine, codec: Codec, mut inputs: mpsc::Receiver<Input>) {
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut out: Vec<Output> = Vec::with_capacity(64);
    let mut woken: Vec<Arc<Outbox>> = Vec::new();
    while let Some(input) = inputs.recv().await {
        match input {
            Input::Open { conn, peer, outbox } => {
                engine.open(conn);
                conns.insert(conn, Conn { peer, outbox });
            }
            Input::Close { conn, done } => {
                engine.close(conn, &mut out);
                route(&codec, &conns, conn, &mut out, &mut woken);
                conns.remove(&conn);
                let _ = done.send(());
            }
            Input::Message { conn, msg } => {
                let was_registered = engine.is_registered(conn);
                engine.handle(SystemTime::now(), conn, &msg, &mut out);
                if let Some(c) = conns.get(&conn) {
                    log_milestones(&engine, conn, c, was_registered, &msg, &out);
                }
                route(&codec, &conns, conn, &mut out, &mut woken);
            }
        }
        for o in woken.drain(..) {
            o.wake();
        }
    }
}

/// Queues `out` (drained) on the outboxes. The requester's messages are queued last, so every
/// notification a request causes is queued to all its other recipients before the reply can be
/// written (spec section 6); per-connection order is kept.
fn route(
    codec: &Codec,
    conns: &HashMap<ConnId, Conn>,
    requester: ConnId,
    out: &mut Vec<Output>,
    woken: &mut Vec<Arc<Outbox>>,
) {
    // One notification is shared by its recipients: size it once.
    let mut last: Option<(*const Message, usize)> = None;
    for pass in [false, true] {
        for o in out.iter() {
            if (o.conn() == requester) != pass {
                continue;
            }
            let Some(c) = conns.get(&o.conn()) else {
                continue;
            };
            match o {
                Output::Send {
                    msg,
                    proxy_client_id,
                    ..
                } => {
                    let ptr = Arc::as_ptr(msg);
                    let size = match last {
                        Some((p, size)) if p == ptr => size,
                        _ => {
                            // An unencodable message is replaced by an error when written;
                            // count it as small.
                            let size = codec.encoded_len(msg).unwrap_or(64);
                            last = Some((ptr, size));
                            size
                        }
                    } + proxy_client_id.map_or(0, |_| 22);
                    let item = Item::Msg {
                        msg: Arc::clone(msg),
                        proxy_client_id: *proxy_client_id,
                    };
                    match c.outbox.push(item, size) {
                        Pushed::Queued => {}
                        Pushed::Dropped => {}
                        Pushed::Overflowed { messages, bytes } => warn!(
                            conn = o.conn().0,
                            peer = %c.peer,
                            queued_messages = messages,
                            queued_bytes = bytes,
                            "slow consumer: outbound queue full (outbound_queue_messages / outbound_queue_bytes); disconnecting"
                        ),
                    }
                }
                Output::Close { reason, .. } => {
                    info!(conn = o.conn().0, peer = %c.peer, %reason, "closing connection");
                    c.outbox.close_after_queued();
                }
            }
            if !woken.iter().any(|w| Arc::ptr_eq(w, &c.outbox)) {
                woken.push(Arc::clone(&c.outbox));
            }
        }
    }
    out.clear();
}

/// Info-level logs for registrations and logins; debug-level for every message.
fn log_milestones(
    engine: &Engine,
    conn: ConnId,
    c: &Conn,
    was_registered: bool,
    msg: &Message,
    out: &[Output],
) {
    debug!(conn = conn.0, message = %msg.id, "request");
    let ok = out
        .iter()
        .find(|o| o.conn() == conn)
        .and_then(|o| match o {
            Output::Send { msg, .. } => Some(msg.id == MessageId::EVENT_ACK),
            Output::Close { .. } => None,
        })
        .unwrap_or(false);
    if !ok {
        return;
    }
    if msg.id == MessageId::REQUEST_REGISTER_CLIENT {
        if !was_registered && engine.is_registered(conn) {
            c.outbox.registered.store(true, Ordering::Release);
        }
        let client_type = msg
            .attrs
            .get_int(attr::CLIENT_TYPE)
            .map(|t| ixn_codec::ClientType::from_int(t).to_string())
            .unwrap_or_default();
        info!(
            conn = conn.0,
            peer = %c.peer,
            client = msg.attrs.get_str(attr::CLIENT_NAME).map_or("", |s| s),
            client_type,
            "client registered"
        );
    } else if msg.id == MessageId::REQUEST_AGENT_LOGIN {
        info!(
            conn = conn.0,
            peer = %c.peer,
            agent = msg.attrs.get_str(attr::AGENT_ID).map_or("", |s| s),
            place = msg.attrs.get_str(attr::PLACE_ID).map_or("", |s| s),
            "agent logged in"
        );
    } else if msg.id == MessageId::REQUEST_AGENT_LOGOUT {
        info!(conn = conn.0, peer = %c.peer, "agent logged out");
    }
}
