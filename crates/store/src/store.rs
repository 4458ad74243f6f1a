//! What a store does for the server.

use crate::error::Error;
use ixn_codec::Message;

/// What a store does for the server. Implemented by [`Journal`](crate::journal::Journal); a shared database store
/// would implement it too (docs/scaling.md).
pub trait Store: Send {
    /// Stores each batch (one request's changes) atomically, all durably before returning.
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), Error>;
    /// Like [`Store::append`], taking the batches (a store that keeps them can avoid copies).
    fn append_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<(), Error> {
        self.append(&batches)
    }
    /// Replaces everything stored with `snapshot` (the engine's whole durable state).
    fn compact(&mut self, snapshot: &[Message]) -> Result<(), Error>;
}
