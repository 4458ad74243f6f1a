//! The in-process connection to the engine, in codec types only.

use ixn_codec::Message;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One message from the engine to the gateway's connection: the message (shared with its
/// other recipients) and, for a logical client, its ProxyClientId (which the message does not
/// carry itself).
pub type Delivery = (Arc<Message>, Option<i32>);

/// An in-process connection to the engine, in codec types only: what the gateway sends, and
/// what the engine delivers. Whoever runs the engine builds it (the `ixn-server` binary, from
/// the TCP server's local link); when the engine side ends, the gateway stops with
/// [`Error::LinkLost`](crate::error::Error::LinkLost).
#[derive(Debug)]
pub struct Link {
    /// Requests to the engine, in order.
    pub requests: mpsc::Sender<Message>,
    /// Replies and notifications from the engine, in order, in batches (what the engine queued
    /// at once).
    pub deliveries: mpsc::Receiver<Vec<Delivery>>,
}
