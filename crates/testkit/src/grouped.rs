//! A store's changes appended a group at a time, as the server's group commit does: each
//! request's changes are queued, and every `group` requests' changes go to the store in one
//! append. For the random differentials of the stores (the journal, PostgreSQL).

use ixn_codec::Message;
use ixn_store::Store;

/// A store with the requests' changes queued until a group is full.
#[derive(Debug)]
pub struct Grouped<S> {
    store: S,
    queued: Vec<Vec<Message>>,
    group: usize,
}

impl<S: Store> Grouped<S> {
    /// Appends to `store` every `group` requests' changes (at least one).
    pub fn new(store: S, group: usize) -> Self {
        Self {
            store,
            queued: Vec::new(),
            group: group.max(1),
        }
    }

    /// Queues one request's changes; appends the group once it is full.
    pub fn queue(&mut self, changes: &[Message]) -> Result<(), String> {
        self.queued.push(changes.to_vec());
        if self.queued.len() >= self.group {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends what is queued.
    pub fn flush(&mut self) -> Result<(), String> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.queued);
        self.store.append_owned(batches).map_err(|e| e.to_string())
    }

    /// The store, for what the differential reads back.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// What is queued flushed, and the store.
    pub fn into_store(mut self) -> Result<S, String> {
        self.flush()?;
        Ok(self.store)
    }
}
