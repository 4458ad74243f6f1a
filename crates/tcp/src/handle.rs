//! How connections and in-process clients reach the engine task.

use crate::durability::Durability;
use crate::input::{INPUTS, Input, Inputs, Serving};
use crate::lease::Lease;
use crate::local;
use ixn_codec::link::Link;
use ixn_core::ConnId;
use ixn_core::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// How connections reach the [`EngineTask`](crate::engine_task::EngineTask): its input
/// channel, and the numbering of connections. The task runs until every handle (and every
/// connection) is gone.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    inputs: mpsc::Sender<Input>,
    next_conn: Arc<AtomicU64>,
    serving: Serving,
}

impl EngineHandle {
    /// A handle and the inputs it feeds (give them to
    /// [`EngineTask::new`](crate::engine_task::EngineTask::new)).
    pub fn channel() -> (Self, Inputs) {
        let (inputs, rx) = mpsc::channel(INPUTS);
        let serving = Serving::new();
        let handle = Self {
            inputs,
            next_conn: Arc::new(AtomicU64::new(1)),
            serving: serving.clone(),
        };
        (handle, Inputs { rx, serving })
    }

    /// A new connection's number.
    pub(crate) fn next_conn(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// What a metrics scrape calls to bring the engine task's counts up to date. It does not
    /// keep the engine task alive.
    pub fn flusher(&self) -> Flusher {
        Flusher(self.inputs.downgrade())
    }

    /// What a leadership loop uses to switch the engine task between standby and active
    /// (an [`EngineTask::standby`](crate::EngineTask::standby)). It does not keep the engine
    /// task alive.
    pub fn roles(&self) -> Roles {
        Roles(self.inputs.downgrade())
    }

    /// Whether the engine task serves (see [`Serving`]).
    pub(crate) fn serving(&self) -> Serving {
        self.serving.clone()
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<Input> {
        self.inputs.clone()
    }

    /// Opens an in-process connection, as if from `peer`, with an outbound queue of
    /// `max_messages` and `max_bytes` that never overflows (the engine task waits for it
    /// instead). Returns the client's end and the task that serves the engine's end: it ends
    /// `Ok` when the client drops its request sender, `Err` (saying why) when the engine side
    /// ends first.
    pub fn open_local(
        &self,
        peer: SocketAddr,
        max_messages: usize,
        max_bytes: usize,
    ) -> (
        Link,
        impl Future<Output = Result<(), local::LinkEnded>> + Send + 'static,
    ) {
        local::open(
            self.next_conn(),
            peer,
            self.sender(),
            max_messages,
            max_bytes,
        )
    }
}

/// Brings the engine task's counts into the shared metrics (see [`EngineHandle::flusher`]).
#[derive(Clone, Debug)]
pub struct Flusher(mpsc::WeakSender<Input>);

impl Flusher {
    /// Asks the engine task to add its own counts to the shared metrics and take the census;
    /// completes once it has (at once if the engine task is gone). Call before encoding a
    /// scrape.
    pub async fn flush(&self) {
        let Some(inputs) = self.0.upgrade() else {
            return;
        };
        let (done, flushed) = tokio::sync::oneshot::channel();
        if inputs.send(Input::Flush { done }).await.is_ok() {
            drop(inputs);
            let _ = flushed.await;
        }
    }
}

/// Tells the engine task which role to play (see [`EngineHandle::roles`](crate::EngineHandle::roles)).
/// Blocking: for the leadership loop's thread. It does not keep the engine task alive.
#[derive(Clone, Debug)]
pub struct Roles(mpsc::WeakSender<Input>);

impl Roles {
    /// Serve `engine` with `durability` while `lease` holds. False when the engine task is gone.
    pub fn activate(&self, engine: Engine, durability: Durability, lease: Lease) -> bool {
        self.send(Input::Activate {
            engine: Box::new(engine),
            durability,
            lease,
        })
    }

    /// Stand by, naming the active server (if any); an active engine task steps down first.
    /// False when the engine task is gone.
    pub fn stand_by(&self, active: Option<String>) -> bool {
        self.send(Input::StandBy { active })
    }

    fn send(&self, input: Input) -> bool {
        match self.0.upgrade() {
            Some(inputs) => inputs.blocking_send(input).is_ok(),
            None => false,
        }
    }
}
