//! The task that owns the engine: it takes inputs from every connection through one channel,
//! feeds them to the engine one at a time, and queues the outputs on the connections' outboxes.

use crate::outbox::{Item, Outbox, Pushed};
use ixn_codec::{Bytes, Codec, Message, MessageId, attr};
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
    /// A connection was accepted (`link`: the web gateway's in-process connection, which
    /// never overflows: the engine task waits for it instead).
    Open {
        conn: ConnId,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
        link: bool,
    },
    /// Messages that arrived together, in order (one read of a TCP connection, or one message
    /// of the in-process one), `bytes` of frames. Each was counted in its outbox's pending
    /// requests ([`Outbox::sent_to_engine`]), and is uncounted once its outputs are queued.
    Batch {
        conn: ConnId,
        msgs: Vec<Message>,
        bytes: usize,
    },
    /// The connection's writer wrote its queue after the engine task deferred its requests.
    Resume { conn: ConnId },
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

/// Requests of one connection put aside while its replies pile up, in order.
struct Deferred {
    msgs: VecDeque<Message>,
    bytes: usize,
}

/// A fault to inject (tests of what happens when a part of the server fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The engine task panics at its first message.
    EnginePanic,
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

/// Inputs handled before the writers they woke are told (bounds the delay coalescing adds).
const INPUTS_PER_WAKE: usize = 64;

/// What handling one message needs of the engine task's state.
struct Step<'a> {
    engine: &'a mut Engine,
    codec: &'a Codec,
    conns: &'a HashMap<ConnId, Conn>,
    out: &'a mut Vec<Output>,
    changes: &'a mut Vec<Message>,
    durability: &'a Option<Durability>,
    held: &'a mut VecDeque<Held>,
    woken: &'a mut Vec<Arc<Outbox>>,
    issued: &'a mut u64,
    synced: u64,
}

impl Step<'_> {
    /// Feeds `msg` to the engine and queues (or, waiting for the disk, holds) its outputs.
    fn message(&mut self, conn: ConnId, msg: &Message) {
        let was_registered = self.engine.is_registered(conn);
        self.engine.handle(SystemTime::now(), conn, msg, self.out);
        if let Some(c) = self.conns.get(&conn) {
            if !was_registered && self.engine.is_registered(conn) {
                // The connection's registration timeout ends here.
                c.outbox.registered.store(true, Ordering::Release);
            }
            log_milestones(conn, c, msg, self.out);
        }
        if let Some(d) = self.durability {
            self.engine.drain_changes(self.changes);
            if !self.changes.is_empty() {
                *self.issued += 1;
                if d.to_store
                    .send((*self.issued, std::mem::take(self.changes)))
                    .is_err()
                {
                    // The store thread is gone; `next_synced` reports it.
                    self.changes.clear();
                }
            }
        }
        if self.held.is_empty() && *self.issued <= self.synced {
            route(self.codec, self.conns, conn, self.out, self.woken);
            answered(self.conns, conn);
        } else {
            self.held.push_back(Held::Outputs {
                after: *self.issued,
                requester: conn,
                outputs: std::mem::take(self.out),
            });
        }
    }
}

/// Handles `msgs` of `conn` in order. Nothing is built for a connection that is closing; and
/// once the connection's queue is past its soft bound, the rest is deferred until its writer
/// has written the queue (`Input::Resume`): a client whose replies pile up gets no more work done
/// for it, and others are served meanwhile.
fn run_batch(
    step: &mut Step<'_>,
    deferred: &mut HashMap<ConnId, Deferred>,
    conn: ConnId,
    mut msgs: VecDeque<Message>,
    bytes: usize,
) {
    let Some(outbox) = step.conns.get(&conn).map(|c| Arc::clone(&c.outbox)) else {
        return; // closed meanwhile
    };
    while let Some(msg) = msgs.pop_front() {
        if outbox.is_closing() {
            debug!(
                conn = conn.0,
                dropped = msgs.len() + 1,
                "requests of a closing connection dropped"
            );
            msgs.clear();
            break;
        }
        if outbox.defer_if_over() {
            msgs.push_front(msg);
            deferred.insert(conn, Deferred { msgs, bytes });
            return;
        }
        step.message(conn, &msg);
    }
    outbox.handled_bytes(bytes);
}

/// Wakes each writer in `woken` once (a notification to 10,000 subscribers lists 10,000
/// outboxes: sorting keeps this O(n log n) where a search per push was O(n^2)).
fn wake_all(woken: &mut Vec<Arc<Outbox>>) {
    woken.sort_unstable_by_key(|o| Arc::as_ptr(o) as usize);
    woken.dedup_by(|a, b| Arc::ptr_eq(a, b));
    for o in woken.drain(..) {
        o.wake();
    }
}

/// One of `conn`'s pending requests has its outputs queued.
fn answered(conns: &HashMap<ConnId, Conn>, conn: ConnId) {
    if let Some(c) = conns.get(&conn) {
        c.outbox.answered();
    }
}

/// Runs until every sender of `inputs` is gone. With `durability`, no output leaves before the
/// durable changes that precede it in engine order are synced (group commit: the store thread
/// syncs whatever has queued up in one go). `failed` is cancelled if the store fails.
pub(crate) async fn run(
    mut engine: Engine,
    codec: Codec,
    mut inputs: mpsc::Receiver<Input>,
    mut durability: Option<Durability>,
    failed: tokio_util::sync::CancellationToken,
    fault: Option<Fault>,
) {
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut deferred: HashMap<ConnId, Deferred> = HashMap::new();
    // The web gateway's link: while its queue is full, no input is taken (its consumer never
    // waits on a web client, so it empties it).
    let mut link: Option<Arc<Outbox>> = None;
    let mut out: Vec<Output> = Vec::with_capacity(64);
    let mut changes: Vec<Message> = Vec::new();
    let mut woken: Vec<Arc<Outbox>> = Vec::new();
    let mut held: VecDeque<Held> = VecDeque::new();
    let (mut issued, mut synced, mut broken) = (0u64, 0u64, false);
    loop {
        let link_full = link.as_ref().is_some_and(|l| l.is_full());
        let input = tokio::select! {
            input = inputs.recv(), if held.len() < MAX_HELD && !link_full => input,
            () = link_taken(link.as_deref()), if link_full => continue,
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
                wake_all(&mut woken);
                continue;
            }
        };
        let Some(input) = input else { break };
        // Take whatever else is already waiting (bounded), so that a writer woken by several
        // of these inputs is woken once and writes their outputs together.
        let mut next = Some(input);
        let mut taken = 0usize;
        while let Some(input) = next.take() {
            taken += 1;
            if broken {
                // Nothing may be acknowledged any more; let connections close so the server can
                // stop.
                if let Input::Close { conn, done } = input {
                    engine.close(conn, &mut out);
                    out.clear();
                    forget_link(&mut link, &conns, conn);
                    conns.remove(&conn);
                    deferred.remove(&conn);
                    let _ = done.send(());
                }
            } else {
                // A batch to handle: new messages, or deferred ones resumed.
                let mut work = None;
                match input {
                    Input::Open {
                        conn,
                        peer,
                        outbox,
                        link: is_link,
                    } => {
                        engine.open(conn);
                        if is_link {
                            link = Some(Arc::clone(&outbox));
                        }
                        conns.insert(conn, Conn { peer, outbox });
                    }
                    Input::Close { conn, done } => {
                        deferred.remove(&conn);
                        forget_link(&mut link, &conns, conn);
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
                    Input::Batch { conn, msgs, bytes } => {
                        if fault == Some(Fault::EnginePanic) {
                            // Fault injection (IXN_FAULT=engine-panic): a real panic, to test
                            // that the server does not live on without its engine.
                            #[allow(clippy::panic)]
                            {
                                panic!(
                                    "fault injection: the engine task panics (IXN_FAULT=engine-panic)"
                                );
                            }
                        }
                        if let Some(d) = deferred.get_mut(&conn) {
                            // Behind requests already deferred: keep the order.
                            d.msgs.extend(msgs);
                            d.bytes += bytes;
                        } else {
                            work = Some((conn, msgs.into(), bytes));
                        }
                    }
                    Input::Resume { conn } => {
                        work = deferred.remove(&conn).map(|d| (conn, d.msgs, d.bytes));
                    }
                }
                if let Some((conn, msgs, bytes)) = work {
                    let mut step = Step {
                        engine: &mut engine,
                        codec: &codec,
                        conns: &conns,
                        out: &mut out,
                        changes: &mut changes,
                        durability: &durability,
                        held: &mut held,
                        woken: &mut woken,
                        issued: &mut issued,
                        synced,
                    };
                    run_batch(&mut step, &mut deferred, conn, msgs, bytes);
                }
            }
            if taken < INPUTS_PER_WAKE
                && held.len() < MAX_HELD
                && !link.as_ref().is_some_and(|l| l.is_full())
            {
                next = inputs.try_recv().ok();
            }
        }
        wake_all(&mut woken);
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

/// Forgets the link if `conn` is it (closing: its queue no longer holds inputs back).
fn forget_link(link: &mut Option<Arc<Outbox>>, conns: &HashMap<ConnId, Conn>, conn: ConnId) {
    if let (Some(l), Some(c)) = (link.as_ref(), conns.get(&conn))
        && Arc::ptr_eq(l, &c.outbox)
    {
        *link = None;
    }
}

/// Completes when the link's consumer next takes its queue (never without a link).
async fn link_taken(link: Option<&Outbox>) {
    match link {
        Some(l) => l.taken.notified().await,
        None => std::future::pending().await,
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
        } => {
            route(codec, conns, requester, &mut outputs, woken);
            answered(conns, requester);
        }
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
    // One notification is shared by its recipients: encode it once, and each recipient's writer
    // copies the frame (adding its ProxyClientId) instead of encoding it again.
    let mut last: Option<(*const Message, usize, Option<Bytes>)> = None;
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
                    let (size, frame) = match &last {
                        Some((p, size, frame)) if *p == ptr => (*size, frame.clone()),
                        _ => {
                            let frame = (msg.id == MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
                                .then(|| codec.encode_to_bytes(msg).ok())
                                .flatten();
                            // An unencodable message is replaced by an error when written;
                            // count it as small.
                            let size = match &frame {
                                Some(f) => f.len(),
                                None => codec.encoded_len(msg).unwrap_or(64),
                            };
                            last = Some((ptr, size, frame.clone()));
                            (size, frame)
                        }
                    };
                    let size = size + proxy_client_id.map_or(0, |_| ixn_codec::PROXY_PAIR_LEN);
                    let item = Item::Msg {
                        msg: Arc::clone(msg),
                        proxy_client_id: proxy_client_id.map(ixn_core::ClientId::get),
                        frame,
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
            // Duplicates are removed when the writers are woken (wake_all); skipping the
            // consecutive ones here keeps the list short.
            if !woken.last().is_some_and(|w| Arc::ptr_eq(w, &c.outbox)) {
                woken.push(Arc::clone(&c.outbox));
            }
        }
    }
    out.clear();
}

/// Info-level logs for registrations and logins; debug-level for every message.
fn log_milestones(conn: ConnId, c: &Conn, msg: &Message, out: &[Output]) {
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
