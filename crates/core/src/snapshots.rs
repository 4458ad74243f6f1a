//! Snapshots and locks (docs/protocol.md, "Snapshots"): what a client selected with a
//! condition, in its order, to read a page at a time, and the interactions clients hold locked.
//!
//! A snapshot keeps only the ids it selected (one shared string each: at most 32 bytes per
//! interaction); pages read the interactions as they are now. Both belong to the client that
//! made them and end with it; a snapshot also ends when released or when unread for
//! `snapshot_idle_secs` (checked as requests arrive: time is the engine's caller's). Locks
//! live in memory only: a restart or a failover ends them, as it ends their clients.

use crate::ids::ClientId;
use foldhash::fast::FixedState;
use ixn_codec::ByteString;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// One snapshot.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) owner: ClientId,
    /// The selected interactions, in the snapshot's order (set once, by [`Snapshots::fill`]).
    ids: Vec<ByteString>,
    /// The locks it took (released with it).
    locked: Vec<ByteString>,
    last_used: SystemTime,
}

/// A lock on an interaction.
#[derive(Clone, Debug)]
pub(crate) struct Lock {
    pub(crate) holder: ClientId,
    /// The snapshot it ends with, if it was taken with one.
    snapshot: Option<ByteString>,
}

/// Every open snapshot and every lock.
#[derive(Debug)]
pub(crate) struct Snapshots {
    open: HashMap<ByteString, Snapshot, FixedState>,
    per_client: HashMap<ClientId, usize, FixedState>,
    locks: HashMap<ByteString, Lock, FixedState>,
    next: u64,
    /// What the open snapshots' id vectors take, in bytes.
    bytes: usize,
    /// No snapshot is due to expire before this (a lower bound: uses only push it later).
    due: Option<SystemTime>,
}

impl Snapshots {
    pub(crate) fn new(hasher: FixedState) -> Self {
        Self {
            open: HashMap::with_hasher(hasher.clone()),
            per_client: HashMap::with_hasher(hasher.clone()),
            locks: HashMap::with_hasher(hasher),
            next: 1,
            bytes: 0,
            due: None,
        }
    }

    /// Snapshots open.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// What the open snapshots' ids take, in bytes: 32 per interaction held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Locks held.
    pub(crate) fn locks(&self) -> usize {
        self.locks.len()
    }

    /// How many snapshots `client` holds.
    pub(crate) fn held_by(&self, client: ClientId) -> usize {
        self.per_client.get(&client).copied().unwrap_or(0)
    }

    /// Opens an empty snapshot for `owner` (filled by [`Snapshots::fill`]); its id.
    pub(crate) fn open(&mut self, owner: ClientId, now: SystemTime, idle: Duration) -> ByteString {
        if self.due.is_none() {
            self.due = now.checked_add(idle);
        }
        let id = ByteString::from(format!("S{}", self.next));
        self.next += 1;
        *self.per_client.entry(owner).or_insert(0) += 1;
        self.open.insert(
            id.clone(),
            Snapshot {
                owner,
                ids: Vec::new(),
                locked: Vec::new(),
                last_used: now,
            },
        );
        id
    }

    /// `owner`'s snapshot `id`, marked as used at `now`.
    pub(crate) fn get(
        &mut self,
        owner: ClientId,
        id: &str,
        now: SystemTime,
    ) -> Option<&mut Snapshot> {
        let s = self.open.get_mut(id).filter(|s| s.owner == owner)?;
        s.last_used = now;
        Some(s)
    }

    /// Sets what snapshot `id` holds (its vector as given: make it exactly as long as it needs).
    pub(crate) fn fill(&mut self, id: &str, ids: Vec<ByteString>) {
        if let Some(s) = self.open.get_mut(id) {
            self.bytes = self
                .bytes
                .saturating_sub(vec_bytes(s.ids.capacity()))
                .saturating_add(vec_bytes(ids.capacity()));
            s.ids = ids;
        }
    }

    /// `owner`'s snapshot `id`'s interactions, from `start`, at most `n`, marked as used at `now`.
    pub(crate) fn page(
        &mut self,
        owner: ClientId,
        id: &str,
        now: SystemTime,
        start: usize,
        n: usize,
    ) -> Option<Vec<ByteString>> {
        let s = self.get(owner, id, now)?;
        Some(s.ids.iter().skip(start).take(n).cloned().collect())
    }

    /// `owner`'s snapshot `id`'s interactions, marked as used at `now`.
    pub(crate) fn ids(
        &mut self,
        owner: ClientId,
        id: &str,
        now: SystemTime,
    ) -> Option<Vec<ByteString>> {
        self.get(owner, id, now).map(|s| s.ids.clone())
    }

    /// Ends `owner`'s snapshot `id` and its locks; whether it was open.
    pub(crate) fn release(&mut self, owner: ClientId, id: &str) -> bool {
        if self.open.get(id).is_none_or(|s| s.owner != owner) {
            return false;
        }
        self.end(id);
        true
    }

    fn end(&mut self, id: &str) {
        let Some(s) = self.open.remove(id) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(vec_bytes(s.ids.capacity()));
        if let Some(n) = self.per_client.get_mut(&s.owner) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&s.owner);
            }
        }
        for ix in s.locked {
            if self
                .locks
                .get(&ix)
                .is_some_and(|l| l.snapshot.as_deref() == Some(id))
            {
                self.locks.remove(&ix);
            }
        }
    }

    /// Ends the snapshots unread for `idle` at `now`.
    pub(crate) fn expire(&mut self, now: SystemTime, idle: Duration) {
        if self.due.is_none_or(|d| now < d) {
            return;
        }
        let stale: Vec<ByteString> = self
            .open
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_used).is_ok_and(|d| d >= idle))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.end(&id);
        }
        self.due = self
            .open
            .values()
            .map(|s| s.last_used)
            .min()
            .and_then(|t| t.checked_add(idle));
    }

    /// A client ended: its snapshots and locks end.
    pub(crate) fn client_ended(&mut self, client: ClientId) {
        if self.per_client.contains_key(&client) {
            let mine: Vec<ByteString> = self
                .open
                .iter()
                .filter(|(_, s)| s.owner == client)
                .map(|(id, _)| id.clone())
                .collect();
            for id in mine {
                self.end(&id);
            }
        }
        self.locks.retain(|_, l| l.holder != client);
    }

    /// Who holds a lock on `ix`, if anyone.
    pub(crate) fn holder(&self, ix: &str) -> Option<ClientId> {
        self.locks.get(ix).map(|l| l.holder)
    }

    /// Locks `ix` for `holder` (with `snapshot`, if given: it ends with it). False when
    /// another client holds it.
    pub(crate) fn lock(
        &mut self,
        holder: ClientId,
        ix: &ByteString,
        snapshot: Option<&ByteString>,
    ) -> bool {
        match self.locks.get(&**ix) {
            Some(l) if l.holder != holder => return false,
            Some(_) => return true,
            None => {}
        }
        if let Some(s) = snapshot.and_then(|s| self.open.get_mut(&**s)) {
            s.locked.push(ix.clone());
        }
        self.locks.insert(
            ix.clone(),
            Lock {
                holder,
                snapshot: snapshot.cloned(),
            },
        );
        true
    }

    /// Unlocks `ix` if `holder` holds it; whether it did.
    pub(crate) fn unlock(&mut self, holder: ClientId, ix: &str) -> bool {
        if self.locks.get(ix).is_some_and(|l| l.holder == holder) {
            self.locks.remove(ix);
            true
        } else {
            false
        }
    }

    /// An interaction is gone: its lock goes.
    pub(crate) fn forget(&mut self, ix: &str) {
        self.locks.remove(ix);
    }
}

/// What a vector of `capacity` ids takes (its allocation).
fn vec_bytes(capacity: usize) -> usize {
    capacity.saturating_mul(size_of::<ByteString>())
}
