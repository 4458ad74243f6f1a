//! The in-process connection between whoever runs the engine (the TCP side's engine task) and
//! an in-process client (the web gateway), in codec types only: no encoding, the same ordering
//! as a socket. One type for both ends, so that neither side copies the other's.

use crate::Message;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One message delivered on the link: the message (shared with its other recipients) and, for a
/// logical client, its ProxyClientId (which the message does not carry itself).
pub type Delivery = (Arc<Message>, Option<i32>);

/// The client's end of an in-process connection to the engine.
#[derive(Debug)]
pub struct Link {
    /// Requests to the engine, in order.
    pub requests: mpsc::Sender<Message>,
    /// Replies and notifications from the engine, in order, in batches (what the engine queued
    /// at once: one notification to many logical clients arrives as one batch).
    pub deliveries: mpsc::Receiver<Vec<Delivery>>,
}
