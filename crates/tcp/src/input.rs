//! What connections and in-process links tell the engine task, and the channel that carries it.

use crate::outbox::Outbox;
use ixn_codec::Message;
use ixn_core::ConnId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

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
        /// What the connection proved when it opened (a TLS client certificate).
        proof: Option<ixn_core::Proof>,
    },
    /// The connection proved a password, before the registration it came with (R15).
    Prove {
        conn: ConnId,
        proof: ixn_core::Proof,
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
    /// Add the engine task's own counts to the shared metrics and take the census; `done`
    /// fires once they are there.
    Flush { done: oneshot::Sender<()> },
    /// The connection is over; `done` fires once its clients are dropped (R13).
    Close {
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
    /// Take over: serve `engine` (loaded from the shared store), durable with `durability`,
    /// while `lease` is valid.
    Activate {
        engine: Box<ixn_core::Engine>,
        durability: crate::durability::Durability,
        lease: crate::lease::Lease,
    },
    /// Stand by (stepping down if active): refuse every request, naming `active`.
    StandBy { active: Option<String> },
}

/// Inputs queued to the engine task before connections wait (back-pressure).
pub(crate) const INPUTS: usize = 4096;

/// The receiving end of the engine task's inputs, and the flag through which it tells the
/// connections whether it serves (`Serving`).
#[derive(Debug)]
pub struct Inputs {
    pub(crate) rx: mpsc::Receiver<Input>,
    pub(crate) serving: Serving,
}

/// Whether the engine task serves (its engine is active) or stands by, as the connections
/// see it: while it stands by, a connection answers no Ping itself, so that every Ping gets
/// the standby's EventError NotActive from the engine (a health probe can tell the two apart).
/// Set by the engine task at each change of role; read before each read of a connection.
#[derive(Clone, Debug)]
pub(crate) struct Serving(Arc<std::sync::atomic::AtomicBool>);

impl Serving {
    pub(crate) fn new() -> Self {
        Self(Arc::new(std::sync::atomic::AtomicBool::new(true)))
    }

    pub(crate) fn set(&self, active: bool) {
        self.0.store(active, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
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
