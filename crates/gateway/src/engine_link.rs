//! The gateway's link to the engine: requests go out on the in-process connection with a
//! ReferenceId of the link's own, and each reply is matched back to what waits for it (an HTTP
//! request, or a REST Subscribe/Unsubscribe whose outcome is published on CometD). A second web
//! API reuses it as it is: it knows nothing of GWS routes or sessions.

use crate::gws::WorkbinRef;
use ixn_codec::{Message, attr};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a request may wait for the engine's reply before it fails with
/// [`LinkError::TimedOut`].
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request over the link got no reply. Each web API maps it to its own status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The engine side is gone (the server is stopping): the request was not sent.
    #[error("the engine is not reachable (the server is stopping)")]
    Gone,
    /// No reply within 10 s.
    #[error("no reply from the engine within {} s", REPLY_TIMEOUT.as_secs())]
    TimedOut,
    /// The link closed after the request was sent, before its reply.
    #[error("the engine connection closed before the reply")]
    Closed,
}

/// What a pending ReferenceId is waiting for.
#[derive(Debug)]
pub(crate) enum Pending {
    /// An HTTP request waiting for the reply.
    Reply(oneshot::Sender<Arc<Message>>),
    /// A REST Subscribe/Unsubscribe: the outcome goes to CometD (as a Workspace API message
    /// carrying `v3`, the operation id, when it came through that API).
    Subscription {
        client: i32,
        workbin: WorkbinRef,
        unsubscribe: bool,
        v3: Option<String>,
    },
}

/// Requests out, replies matched. Its lock is never held with another.
#[derive(Debug)]
pub(crate) struct EngineLink {
    requests: mpsc::Sender<Message>,
    next_ref: AtomicI32,
    pending: Mutex<HashMap<i32, Pending>>,
}

impl EngineLink {
    pub(crate) fn new(requests: mpsc::Sender<Message>) -> Self {
        Self {
            requests,
            next_ref: AtomicI32::new(1),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Pending>> {
        crate::bayeux::lock(&self.pending)
    }

    fn next_reference(&self) -> i32 {
        // Positive, wrapping after 2^31 - 1 requests.
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        if r == 0 { self.next_reference() } else { r }
    }

    /// Sends `msg` (for logical client `client`; None: the proxy itself), with `waiting` as
    /// what its reply goes to; returns its ReferenceId.
    async fn send(
        &self,
        client: Option<i32>,
        mut msg: Message,
        waiting: Pending,
    ) -> Result<i32, LinkError> {
        let reference = self.next_reference();
        self.pending().insert(reference, waiting);
        msg.attrs.set(attr::REFERENCE_ID, reference);
        if let Some(c) = client {
            msg.attrs.set(attr::PROXY_CLIENT_ID, c);
        }
        if self.requests.send(msg).await.is_err() {
            self.pending().remove(&reference);
            return Err(LinkError::Gone);
        }
        Ok(reference)
    }

    /// Sends `msg` for logical client `client` (None: the proxy itself) and waits for its reply.
    pub(crate) async fn request(
        &self,
        client: Option<i32>,
        msg: Message,
    ) -> Result<Arc<Message>, LinkError> {
        let (tx, rx) = oneshot::channel();
        let reference = self.send(client, msg, Pending::Reply(tx)).await?;
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(LinkError::Closed),
            Err(_) => {
                self.pending().remove(&reference);
                Err(LinkError::TimedOut)
            }
        }
    }

    /// Sends a subscribe or cancel for `client` and returns its ReferenceId at once; the
    /// outcome is handed back by [`EngineLink::take`] with `workbin`.
    pub(crate) async fn subscription(
        &self,
        client: i32,
        msg: Message,
        workbin: WorkbinRef,
        unsubscribe: bool,
        v3: Option<String>,
    ) -> Result<i32, LinkError> {
        let waiting = Pending::Subscription {
            client,
            workbin,
            unsubscribe,
            v3,
        };
        self.send(Some(client), msg, waiting).await
    }

    /// What waits for the reply carrying `reference`, if anything (it no longer waits).
    pub(crate) fn take(&self, reference: i32) -> Option<Pending> {
        self.pending().remove(&reference)
    }

    /// The link ended: whatever waits for a reply fails ([`LinkError::Closed`]).
    pub(crate) fn fail_all(&self) {
        self.pending().clear();
    }

    /// Requests waiting for their reply.
    pub(crate) fn waiting(&self) -> usize {
        self.pending().len()
    }
}
