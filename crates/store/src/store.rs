//! What a store does for the server.

use crate::error::{Error, io};
use ixn_codec::Message;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// What a store does for the server. Implemented by [`Journal`](crate::journal::Journal) and
/// by the shared database store (ixn-pgstore).
pub trait Store: Send {
    /// Stores each batch (one request's changes) atomically, all durably before returning.
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), Error>;
    /// Like [`Store::append`], taking the batches (a store that keeps them can avoid copies).
    fn append_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<(), Error> {
        self.append(&batches)
    }
    /// Like [`Store::append_owned`], but it may return before the batches are durable: then it
    /// returns the [`Flush`] that makes them durable, which can run on another thread while the
    /// next batches are written (pipelined group commit; the journal starts writing them to the
    /// disk before returning). `None`: they are durable already (the default, for a store that
    /// cannot split writing from syncing).
    fn write_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<Option<Flush>, Error> {
        self.append_owned(batches).map(|()| None)
    }
    /// Like [`Store::write_owned`], borrowing the batches.
    fn write(&mut self, batches: &[Vec<Message>]) -> Result<Option<Flush>, Error> {
        self.append(batches).map(|()| None)
    }
    /// Replaces everything stored with `snapshot` (the engine's whole durable state).
    fn compact(&mut self, snapshot: &[Message]) -> Result<(), Error>;
}

/// How many flushes of one store may run at once (see [`Flush::run`]).
pub const FLUSH_LANES: usize = 2;

/// Makes durable everything a store wrote before it runs: a sync of the journal file. Each of
/// the [`FLUSH_LANES`] lanes syncs through a descriptor of its own (opened on its own, not
/// duplicated), so that a write-back error is reported to every lane whose sync it concerns,
/// never to only one of two syncs running at once.
#[derive(Clone, Debug)]
pub struct Flush {
    files: Arc<[File; FLUSH_LANES]>,
    path: PathBuf,
}

impl Flush {
    pub(crate) fn new(files: Arc<[File; FLUSH_LANES]>, path: PathBuf) -> Self {
        Self { files, path }
    }

    /// Syncs the file's data through lane `lane` (`0..FLUSH_LANES`; others wrap around). When it
    /// returns `Ok`, every batch written before it began is durable.
    pub fn run(&self, lane: usize) -> Result<(), Error> {
        let files: &[File] = &*self.files;
        match files.iter().cycle().nth(lane) {
            Some(file) => file.sync_data().map_err(io(&self.path)),
            None => Err(Error::Backend("a flush with no file to sync".into())),
        }
    }
}
