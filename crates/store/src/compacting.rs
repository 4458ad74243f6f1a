//! Compaction while the server runs: a [`Shadow`] follows the stream of changes (no engine
//! needed) and [`Compacting`] rewrites the store from it when the store has grown past twice
//! the live state.

use crate::error::Error;
use crate::store::{Flush, Store};
use ixn_codec::{ByteString, KvList, Message, Value, attr};
use ixn_core::durable::{DELETE, IDS, MOVE, PUT, apply_move};

/// The latest stored state of every interaction, kept from the stream of changes alone (no
/// engine): what a store needs to compact itself while the server runs. A Move is kept beside
/// the interaction's Put (replacing the Move before it) and applied to the Put only when a
/// snapshot is taken, so following a Move copies nothing; a compaction writes Puts only.
#[derive(Clone, Debug, Default)]
pub struct Shadow {
    ids: Option<Message>,
    puts: std::collections::HashMap<ByteString, Held>,
    bytes: usize,
}

/// An interaction's latest Put, and the latest Move after it.
#[derive(Clone, Debug)]
struct Held {
    put: Message,
    moved: Option<Message>,
}

impl Held {
    /// The Put with the Move applied.
    fn current(&self) -> Message {
        match &self.moved {
            None => self.put.clone(),
            Some(mv) => {
                let mut put = Message::new(self.put.id);
                put.attrs = apply_move(&self.put.attrs, &mv.attrs);
                put
            }
        }
    }
}

impl Shadow {
    /// A shadow of a snapshot (see `ixn_core::Engine::snapshot`).
    pub fn new(snapshot: &[Message]) -> Self {
        let mut s = Self::default();
        for m in snapshot {
            s.apply(m);
        }
        s
    }

    /// Follows one change.
    pub fn apply(&mut self, change: &Message) {
        self.apply_owned(change.clone());
    }

    /// Follows one change, keeping it without a copy.
    pub fn apply_owned(&mut self, change: Message) {
        match change.id {
            IDS => self.ids = Some(change),
            PUT | DELETE => {
                let Some(id) = change.attrs.get_str(attr::INTERACTION_ID).cloned() else {
                    return;
                };
                let old = if change.id == PUT {
                    self.bytes += approx_size(&change);
                    self.puts.insert(
                        id,
                        Held {
                            put: change,
                            moved: None,
                        },
                    )
                } else {
                    self.puts.remove(&id)
                };
                if let Some(old) = old {
                    self.bytes = self.bytes.saturating_sub(approx_size(&old.put));
                }
            }
            MOVE => {
                let Some(id) = change.attrs.get_str(attr::INTERACTION_ID) else {
                    return;
                };
                // The size is the Put's: a move changes only where the interaction is.
                if let Some(held) = self.puts.get_mut(id) {
                    held.moved = Some(change);
                }
            }
            _ => {}
        }
    }

    /// The state as changes (the Ids change first): what a compacted store holds.
    pub fn snapshot(&self) -> Vec<Message> {
        self.ids
            .iter()
            .cloned()
            .chain(self.puts.values().map(Held::current))
            .collect()
    }

    /// Roughly how many bytes the state takes on disk.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    /// Interactions held.
    pub fn len(&self) -> usize {
        self.puts.len()
    }

    /// True when no interaction is held.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }
}

/// Roughly the encoded size of a change (keys and values, plus a little framing).
pub fn approx_size(m: &Message) -> usize {
    fn list(l: &KvList) -> usize {
        l.iter()
            .map(|(k, v)| {
                7 + k.len()
                    + match v {
                        Value::Int(_) => 0,
                        Value::Str(s) => s.len(),
                        Value::Binary(b) => b.len(),
                        Value::List(l) => list(l),
                    }
            })
            .sum()
    }
    10 + list(&m.attrs)
}

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

impl<S: Store> Compacting<S> {
    /// Follows appended batches with the shadow; compacts when the store has grown past twice
    /// the live state. True when it compacted (everything written so far is then durable).
    fn follow(&mut self, batches: Vec<Vec<Message>>) -> Result<bool, Error> {
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
            return Ok(true);
        }
        Ok(false)
    }
}

impl<S: Store> Store for Compacting<S> {
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), Error> {
        self.append_owned(batches.to_vec())
    }

    fn append_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<(), Error> {
        self.inner.append(&batches)?;
        self.follow(batches)?;
        Ok(())
    }

    fn write_owned(&mut self, batches: Vec<Vec<Message>>) -> Result<Option<Flush>, Error> {
        // The shadow follows only once the write succeeded; the flush may run after a
        // compaction, which made those batches durable already (it then syncs the old file).
        let flush = self.inner.write(&batches)?;
        let compacted = self.follow(batches)?;
        Ok(if compacted { None } else { flush })
    }

    fn write(&mut self, batches: &[Vec<Message>]) -> Result<Option<Flush>, Error> {
        self.write_owned(batches.to_vec())
    }

    fn compact(&mut self, snapshot: &[Message]) -> Result<(), Error> {
        self.inner.compact(snapshot)?;
        self.shadow = Shadow::new(snapshot);
        self.written = self.shadow.approx_bytes() as u64;
        Ok(())
    }
}
