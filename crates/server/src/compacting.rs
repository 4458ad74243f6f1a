//! A store wrapper that compacts its store while the server runs.

use ixn_codec::Message;
use ixn_core::durable::{Shadow, approx_size};
use ixn_store::{Error, Store};

/// Wraps a store and follows what it holds with a [`Shadow`]; after an append that leaves the
/// store more than twice the live state (and at least `min_bytes`), rewrites it from the
/// shadow. Runs on the store thread: the engine never waits for it, only the next sync does.
pub struct Compacting<S> {
    inner: S,
    shadow: Shadow,
    /// Bytes appended since the last compaction, plus the state written by it.
    written: u64,
    min_bytes: u64,
    compactions: u64,
}

impl<S> std::fmt::Debug for Compacting<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compacting")
            .field("interactions", &self.shadow.len())
            .field("written", &self.written)
            .field("compactions", &self.compactions)
            .finish_non_exhaustive()
    }
}

/// Default smallest journal worth compacting.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 64 * 1024 * 1024;

impl<S: Store> Compacting<S> {
    /// `inner` holds exactly `snapshot` (as after recovery's compaction).
    pub fn new(inner: S, snapshot: &[Message], min_bytes: u64) -> Self {
        let shadow = Shadow::new(snapshot);
        let written = shadow.approx_bytes() as u64;
        Self {
            inner,
            shadow,
            written,
            min_bytes,
            compactions: 0,
        }
    }

    /// Compactions done while running.
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    /// Sets the smallest store size worth compacting.
    #[must_use]
    pub fn with_min_bytes(mut self, min_bytes: u64) -> Self {
        self.min_bytes = min_bytes;
        self
    }

    /// The wrapped store.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Store> Store for Compacting<S> {
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), Error> {
        self.append_owned(batches.to_vec())
    }

    fn append_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<(), Error> {
        self.inner.append(&batches)?;
        for change in batches.into_iter().flatten() {
            self.written += 12 + approx_size(&change) as u64;
            self.shadow.apply_owned(change);
        }
        let live = self.shadow.approx_bytes() as u64;
        if self.written > self.min_bytes && self.written > 2 * live {
            let started = std::time::Instant::now();
            self.inner.compact(&self.shadow.snapshot())?;
            self.written = live;
            self.compactions += 1;
            tracing::info!(
                interactions = self.shadow.len(),
                bytes = live,
                millis = started.elapsed().as_millis() as u64,
                "journal compacted"
            );
        }
        Ok(())
    }

    fn compact(&mut self, snapshot: &[Message]) -> Result<(), Error> {
        self.inner.compact(snapshot)?;
        self.shadow = Shadow::new(snapshot);
        self.written = self.shadow.approx_bytes() as u64;
        Ok(())
    }
}
