//! The task that owns the engine: it takes inputs from every connection through one channel,
//! feeds them to the engine one at a time, and queues the outputs on the connections' outboxes.

use crate::outbox::{Item, Outbox, Pushed};
use ixn_codec::{Codec, Message, MessageId, attr};
use ixn_core::{ConnId, Engine, Output};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

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

/// The link to the store thread (absent when the server is ephemeral).
pub(crate) struct Durability {
    /// Each request's changes, numbered in engine order.
    pub(crate) to_store: std::sync::mpsc::Sender<(u64, Vec<Message>)>,
    /// The highest number synced to disk, or the store's failure.
    pub(crate) synced: mpsc::UnboundedReceiver<Result<u64, String>>,
}

/// Outputs waiting for the changes before them to be on disk, in engine order.
enum Held {
    Outputs {
        after: u64,
        requester: ConnId,
        outputs: Vec<Output>,
    },
    CloseAck {
        after: u64,
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
}

impl Held {
    fn after(&self) -> u64 {
        match self {
            Self::Outputs { after, .. } | Self::CloseAck { after, .. } => *after,
        }
    }
}

/// How many inputs' outputs may wait for the disk before the engine task stops taking inputs
/// (back-pressure to the readers, so held outputs cannot grow without bound).
const MAX_HELD: usize = 65_536;

/// Runs until every sender of `inputs` is gone. With `durability`, no output leaves before the
/// durable changes that precede it in engine order are synced (group commit: the store thread
/// syncs whatever has queued up in one go). `failed` is cancelled if the store fails.
pub(crate) async fn run(
    mut engine: Engine,
    codec: Codec,
    mut inputs: mpsc::Receiver<Input>,
    mut durability: Option<Durability>,
    failed: tokio_util::sync::CancellationToken,
) {
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut out: Vec<Output> = Vec::with_capacity(64);
    let mut changes: Vec<Message> = Vec::new();
    let mut woken: Vec<Arc<Outbox>> = Vec::new();
    let mut held: VecDeque<Held> = VecDeque::new();
    let (mut issued, mut synced, mut broken) = (0u64, 0u64, false);
    loop {
        let input = tokio::select! {
            input = inputs.recv(), if held.len() < MAX_HELD => input,
            s = next_synced(&mut durability), if !broken => {
                match s {
                    Some(Ok(n)) => {
                        synced = n;
                        while held.front().is_some_and(|h| h.after() <= synced) {
                            if let Some(h) = held.pop_front() {
                                release(h, &codec, &mut conns, &mut woken);
                            }
                        }
                    }
                    Some(Err(e)) => {
                        error!(error = %e, "the store failed: nothing more can be acknowledged; stopping the server");
                        broken = true;
                        failed.cancel();
                        abandon(&mut held, &mut conns);
                    }
                    None => {
                        error!("the store thread stopped: nothing more can be acknowledged; stopping the server");
                        broken = true;
                        failed.cancel();
                        abandon(&mut held, &mut conns);
                    }
                }
                for o in woken.drain(..) {
                    o.wake();
                }
                continue;
            }
        };
        let Some(input) = input else { break };
        if broken {
            // Nothing may be acknowledged any more; let connections close so the server can stop.
            if let Input::Close { conn, done } = input {
                engine.close(conn, &mut out);
                out.clear();
                conns.remove(&conn);
                let _ = done.send(());
            }
            continue;
        }
        match input {
            Input::Open { conn, peer, outbox } => {
                engine.open(conn);
                conns.insert(conn, Conn { peer, outbox });
            }
            Input::Close { conn, done } => {
                engine.close(conn, &mut out);
                if held.is_empty() {
                    route(&codec, &conns, conn, &mut out, &mut woken);
                    conns.remove(&conn);
                    let _ = done.send(());
                } else {
                    // Held outputs for this connection go out before it closes.
                    out.clear();
                    held.push_back(Held::CloseAck {
                        after: issued,
                        conn,
                        done,
                    });
                }
            }
            Input::Message { conn, msg } => {
                let was_registered = engine.is_registered(conn);
                engine.handle(SystemTime::now(), conn, &msg, &mut out);
                if let Some(c) = conns.get(&conn) {
                    log_milestones(&engine, conn, c, was_registered, &msg, &out);
                }
                if let Some(d) = &durability {
                    engine.drain_changes(&mut changes);
                    if !changes.is_empty() {
                        issued += 1;
                        if d.to_store
                            .send((issued, std::mem::take(&mut changes)))
                            .is_err()
                        {
                            // The store thread is gone; `next_synced` reports it.
                            changes.clear();
                        }
                    }
                }
                if held.is_empty() && issued <= synced {
                    route(&codec, &conns, conn, &mut out, &mut woken);
                } else {
                    held.push_back(Held::Outputs {
                        after: issued,
                        requester: conn,
                        outputs: std::mem::take(&mut out),
                    });
                }
            }
        }
        for o in woken.drain(..) {
            o.wake();
        }
    }
}

/// Tells the engine task that `conn` is over and waits until its clients are dropped (R13), so
/// that the peer sees the close only after that. Returns at once if the engine task is gone.
pub(crate) async fn close(inputs: &mpsc::Sender<Input>, conn: ConnId) {
    let (done, dropped) = oneshot::channel();
    if inputs.send(Input::Close { conn, done }).await.is_ok() {
        let _ = dropped.await;
    }
}

/// The next sync report, or never when the server is ephemeral.
async fn next_synced(d: &mut Option<Durability>) -> Option<Result<u64, String>> {
    match d {
        Some(d) => d.synced.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the store: takes every batch queued so far, appends them with one sync, reports the
/// highest number synced. Stops at the first failure, after reporting it.
pub(crate) fn store_thread(
    mut store: Box<dyn ixn_store::Store>,
    batches: std::sync::mpsc::Receiver<(u64, Vec<Message>)>,
    synced: mpsc::UnboundedSender<Result<u64, String>>,
) {
    /// Most batches written with one sync (bounds the write buffer).
    const GROUP: usize = 8192;
    let mut group = Vec::with_capacity(GROUP);
    while let Ok((mut last, first)) = batches.recv() {
        group.clear();
        group.push(first);
        while group.len() < GROUP {
            match batches.try_recv() {
                Ok((n, b)) => {
                    last = n;
                    group.push(b);
                }
                Err(_) => break,
            }
        }
        let result = store
            .append_owned(std::mem::take(&mut group))
            .map(|()| last)
            .map_err(|e| e.to_string());
        let failed = result.is_err();
        if synced.send(result).is_err() || failed {
            return;
        }
    }
}

/// After a store failure: held outputs can never be released (their changes may not be on
/// disk), but held close acknowledgements are sent so that connections can finish.
fn abandon(held: &mut VecDeque<Held>, conns: &mut HashMap<ConnId, Conn>) {
    for h in held.drain(..) {
        if let Held::CloseAck { conn, done, .. } = h {
            conns.remove(&conn);
            let _ = done.send(());
        }
    }
}

fn release(
    h: Held,
    codec: &Codec,
    conns: &mut HashMap<ConnId, Conn>,
    woken: &mut Vec<Arc<Outbox>>,
) {
    match h {
        Held::Outputs {
            requester,
            mut outputs,
            ..
        } => route(codec, conns, requester, &mut outputs, woken),
        Held::CloseAck { conn, done, .. } => {
            conns.remove(&conn);
            let _ = done.send(());
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
    let reply = out.iter().find(|o| o.conn() == conn).and_then(|o| match o {
        Output::Send { msg, .. } => Some(Arc::clone(msg)),
        Output::Close { .. } => None,
    });
    let Some(reply) = reply else { return };
    if reply.id == MessageId::EVENT_ERROR
        && reply.attrs.get_int(attr::ERROR_CODE)
            == Some(ixn_codec::ErrorCode::LimitExceeded.to_int())
    {
        info!(
            conn = conn.0,
            peer = %c.peer,
            request = %msg.id,
            description = reply.attrs.get_str(attr::ERROR_DESCRIPTION).map_or("", |s| s),
            "limit reached"
        );
    }
    if reply.id != MessageId::EVENT_ACK {
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
