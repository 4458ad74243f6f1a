//! What a transport provides: a fresh engine or server per scenario, and its connections.

use crate::error::TransportError;
use crate::scenario::Scenario;
use ixn_codec::Message;

/// One scenario's connections, as a transport provides them.
///
/// Connections are named by the scenario's client names; a connection is opened by its first
/// [`Session::send`] (or other call). Every method returns `Err` with a description when the
/// transport itself fails (a socket error, a timeout).
pub trait Session {
    /// Sends `msg` on the named connection.
    fn send(&mut self, conn: &str, msg: &Message) -> Result<(), TransportError>;
    /// The next message received on the connection, waiting as long as the transport needs;
    /// `None` if nothing arrives (or the connection is closed with nothing left to read).
    fn recv(&mut self, conn: &str) -> Result<Option<Message>, TransportError>;
    /// `Ok(None)` when nothing more has arrived once every earlier effect is delivered;
    /// otherwise the message that did arrive.
    fn silent(&mut self, conn: &str) -> Result<Option<Message>, TransportError>;
    /// The client closes its connection; returns once the server has dropped it (R13).
    fn disconnect(&mut self, conn: &str) -> Result<(), TransportError>;
    /// True when the server has closed the connection and nothing is left unread on it.
    fn closed(&mut self, conn: &str) -> Result<bool, TransportError>;
}

/// Starts a fresh engine or server for each scenario.
pub trait Connector {
    /// A session against a fresh engine or server holding only `scenario`'s configuration.
    fn start(&mut self, scenario: &Scenario) -> Result<Box<dyn Session>, TransportError>;
}
