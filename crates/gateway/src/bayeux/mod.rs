//! Bayeux 1.0 (CometD) without I/O: channels, one session's state machine, and the handling of
//! a batch of messages. Time comes in as `now`; the transports (long-polling, WebSocket) and
//! the waiting for a held `/meta/connect` are in `cometd.rs`.

pub(crate) mod channels;
pub(crate) mod protocol;
pub(crate) mod reply;
pub(crate) mod session;

use reply::Raw;
use session::{Closed, Offer, Session};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Locks, recovering from a poisoned lock (a panic elsewhere must not stop the gateway).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A live session (a `clientId`): its state, and a wake-up for a held connect.
#[derive(Debug)]
pub(crate) struct Live {
    /// The `clientId`.
    pub(crate) id: String,
    /// The web session (its logical client's ProxyClientId) that owns it.
    pub(crate) owner: i32,
    /// Its state. Locked last (see the lock order in `hub.rs`).
    pub(crate) state: Mutex<Session>,
    /// Notified whenever a held connect may have to be answered.
    pub(crate) wake: Notify,
}

impl Live {
    pub(crate) fn new(id: String, owner: i32, session: Session) -> Self {
        Self {
            id,
            owner,
            state: Mutex::new(session),
            wake: Notify::new(),
        }
    }

    /// Offers a published message (see [`Session::offer`]). A held connect is not woken:
    /// [`Live::wake`] it once every message of the round is offered (one reply carries them
    /// all).
    pub(crate) fn offer(&self, channel: &str, message: &Raw, cap: usize) -> Offer {
        lock(&self.state).offer(channel, message, cap)
    }

    /// Wakes a held connect (messages were queued).
    pub(crate) fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Ends the session; a held connect is answered at once.
    pub(crate) fn close(&self, why: Closed) {
        lock(&self.state).close(why);
        self.wake.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).is_closed()
    }
}

/// Where sessions live: the gateway's registry (in `hub.rs`).
pub(crate) trait Registry {
    /// The live session with this `clientId`.
    fn find(&self, id: &str) -> Option<Arc<Live>>;
    /// Adds a new session; `Err` says why it cannot be added (a limit).
    fn add(&self, live: Arc<Live>) -> Result<(), Refused>;
    /// Removes a session (disconnect).
    fn remove(&self, id: &str);
    /// The owner was active.
    fn touch(&self, owner: i32);
}

/// Why a CometD handshake cannot add a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// `[http] max_cometd_sessions` are open.
    #[error("the server has its maximum of {0} CometD sessions ([http] max_cometd_sessions)")]
    TooMany(usize),
    /// The web session it belongs to has ended.
    #[error("the web session has ended; sign in again")]
    Ended,
}
