//! Where the engine's outputs go: the connections the engine task knows, their outboxes, and
//! the writers to wake once a batch of inputs is handled.
//!
//! Invariant: the requester's messages are queued last, so every notification a request causes
//! is queued to all its other recipients before the reply can be written; per-connection order
//! is kept. A notification shared by many recipients is encoded once.

use crate::outbox::{Item, Outbox, Pushed};
use foldhash::fast::FixedState;
use ixn_codec::{Bytes, Codec, Message, MessageId, attr};
use ixn_core::{ConnId, Output};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{debug, info, warn};

/// A connection as the engine task knows it.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) peer: SocketAddr,
    pub(super) outbox: Arc<Outbox>,
    /// What the connection proved (kept to open it again in an engine that takes over).
    pub(super) proofs: Vec<ixn_core::Proof>,
}

/// The connections, and the writers woken by what was queued on them.
#[derive(Debug)]
pub(super) struct Router {
    codec: Codec,
    /// Keyed by ids the server hands out (a peer cannot choose them): a fixed fast hash.
    conns: HashMap<ConnId, Conn, FixedState>,
    /// Outboxes whose writers must be woken.
    woken: Vec<Arc<Outbox>>,
    /// The in-process link: while its queue is full, no input is taken (its consumer never
    /// waits on a web client, so it empties it).
    link: Option<(ConnId, Arc<Outbox>)>,
}

impl Router {
    pub(super) fn new(codec: Codec) -> Self {
        Self {
            codec,
            conns: HashMap::default(),
            woken: Vec::new(),
            link: None,
        }
    }

    /// Adds a connection (`link`: the in-process one).
    pub(super) fn open(&mut self, conn: ConnId, link: bool, c: Conn) {
        if link {
            self.link = Some((conn, Arc::clone(&c.outbox)));
        }
        self.conns.insert(conn, c);
    }

    /// Keeps what `conn` proved, to open it again in an engine that takes over.
    pub(super) fn prove(&mut self, conn: ConnId, proof: ixn_core::Proof) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.proofs.push(proof);
        }
    }

    /// Forgets `conn` (the link too if it is the link: its queue no longer holds inputs back).
    pub(super) fn remove(&mut self, conn: ConnId) {
        self.forget_link(conn);
        self.conns.remove(&conn);
    }

    /// Forgets the link if `conn` is it (closing: its queue no longer holds inputs back).
    pub(super) fn forget_link(&mut self, conn: ConnId) {
        if self.link.as_ref().is_some_and(|(c, _)| *c == conn) {
            self.link = None;
        }
    }

    pub(super) fn get(&self, conn: ConnId) -> Option<&Conn> {
        self.conns.get(&conn)
    }

    pub(super) fn conns(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.conns.iter().map(|(id, c)| (*id, c))
    }

    /// The in-process link's connection, if one is open.
    pub(super) fn link_conn(&self) -> Option<ConnId> {
        self.link.as_ref().map(|(c, _)| *c)
    }

    /// The in-process link's outbox, if one is open.
    pub(super) fn link(&self) -> Option<&Outbox> {
        self.link.as_ref().map(|(_, o)| &**o)
    }

    /// Whether the in-process link's queue is full (no input is taken meanwhile).
    pub(super) fn link_full(&self) -> bool {
        self.link().is_some_and(Outbox::is_full)
    }

    /// Closes every network connection once its queue is written (the link stays); how many.
    pub(super) fn close_network(&self) -> usize {
        let mut closed = 0;
        for (conn, c) in &self.conns {
            if Some(*conn) != self.link_conn() {
                c.outbox.close_after_queued();
                closed += 1;
            }
        }
        closed
    }

    /// One of `conn`'s pending requests has its outputs queued.
    pub(super) fn answered(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.outbox.answered();
        }
    }

    /// Wakes the writers woken since the last call. An outbox is listed once per take of its
    /// writer: the pushes after the first one that asked for a wake-up join it
    /// ([`Outbox::push_batched`]), so sixteen notifications to 1,000 subscribers list 1,000
    /// outboxes, not 16,000. One listed twice (its writer took the queue between two pushes) is
    /// woken twice, which is harmless.
    pub(super) fn wake_all(&mut self) {
        for o in self.woken.drain(..) {
            o.wake();
        }
    }

    /// Messages and bytes queued on every outbox, and the longest queue in messages.
    pub(super) fn depth(&self) -> (usize, usize, usize) {
        let (mut messages, mut bytes, mut longest) = (0usize, 0usize, 0usize);
        for c in self.conns.values() {
            let (n, b) = c.outbox.depth();
            messages += n;
            bytes += b;
            longest = longest.max(n);
        }
        (messages, bytes, longest)
    }

    /// Queues `out` (drained) on the outboxes. The requester's messages are queued last, so every
    /// notification a request causes is queued to all its other recipients before the reply can be
    /// written (docs/protocol.md, section 2); per-connection order is kept.
    pub(super) fn route(&mut self, requester: ConnId, out: &mut Vec<Output>) {
        let (codec, conns, woken) = (&self.codec, &self.conns, &mut self.woken);
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
                        if last.as_ref().is_some_and(|(p, ..)| *p != ptr) {
                            last = None;
                        }
                        let (_, size, frame) = &*last.get_or_insert_with(|| {
                            let frame = (msg.id == MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
                                .then(|| codec.encode_to_bytes(msg).ok())
                                .flatten();
                            // An unencodable message is replaced by an error when written; count
                            // it as small.
                            let size = match &frame {
                                Some(f) => f.len(),
                                None => codec.encoded_len(msg).unwrap_or(64),
                            };
                            (ptr, size, frame)
                        });
                        let size = size + proxy_client_id.map_or(0, |_| ixn_codec::PROXY_PAIR_LEN);
                        let proxy_client_id = proxy_client_id.map(ixn_core::ClientId::get);
                        let item = match frame {
                            // The link hands messages to the gateway.
                            Some(frame) if !c.outbox.is_link() => Item::Shared {
                                frame: frame.clone(),
                                proxy_client_id,
                            },
                            _ => Item::Msg {
                                msg: Arc::clone(msg),
                                proxy_client_id,
                            },
                        };
                        match c.outbox.push_batched(item, size) {
                            Pushed::Queued => woken.push(Arc::clone(&c.outbox)),
                            Pushed::Joined | Pushed::Dropped => {}
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
                        // Wakes the writer itself.
                        c.outbox.close_after_queued();
                    }
                }
            }
        }
        out.clear();
    }
}

/// Info-level logs for registrations and logins; debug-level for every message.
pub(super) fn log_milestones(conn: ConnId, c: &Conn, msg: &Message, out: &[Output]) {
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
