//! Recording durable changes, the snapshot, and rebuilding from stored changes (the formats are
//! in `durable.rs`).

use super::Engine;
use crate::durable::{
    self, DELETE, IDS, PUT, Restored, delete_change, ids_change, ids_of, put_change,
};
use crate::types::Location;
use ixn_codec::{ByteString, Message, attr};

impl Engine {
    /// Turns durable-change recording on or off (off by default: an ephemeral engine pays
    /// nothing for it). With it on, every request that changes interactions leaves its changes
    /// for [`Engine::drain_changes`].
    pub fn record_changes(&mut self, on: bool) {
        self.changes.recording = on;
    }

    /// Moves the durable changes made since the last call into `out`, in order. Call it after
    /// every [`Engine::handle`]: the changes belong to that request and must be stored
    /// atomically, before any output that follows them is released.
    pub fn drain_changes(&mut self, out: &mut Vec<Message>) {
        self.changes.drain_into(out);
    }

    pub(super) fn record_put(&mut self, id: &str) {
        if self.changes.recording
            && let Some(ix) = self.interactions.get(id)
        {
            let change = put_change(ix.properties(&self.names));
            self.changes.push(change);
        }
    }

    pub(super) fn record_delete(&mut self, id: &ByteString) {
        self.changes.push(delete_change(id));
    }

    pub(super) fn record_ids(&mut self) {
        if self.changes.recording {
            self.changes.push(ids_change(self.interactions.id_state()));
        }
    }

    /// The whole durable state as changes (an Ids change, then a Put per interaction): what a
    /// compacted store holds.
    pub fn snapshot(&self) -> Vec<Message> {
        let mut out = Vec::with_capacity(self.interactions.len() + 1);
        out.push(ids_change(self.interactions.id_state()));
        out.extend(
            self.interactions
                .iter()
                .map(|ix| put_change(ix.properties(&self.names))),
        );
        out
    }

    /// Rebuilds the interactions from stored changes, applied in order, before any connection
    /// exists. Locations are stored by name; an interaction whose workbin, agent or queue is no
    /// longer configured goes to the first queue of its tenant (or is dropped if the tenant has
    /// none), and a warning says so.
    pub fn restore(&mut self, changes: impl IntoIterator<Item = Message>) -> Restored {
        let mut r = Restored::default();
        for change in changes {
            self.restore_one(change, &mut r);
        }
        r.interactions = self.interactions.len();
        r
    }

    /// Applies one stored change (see [`Engine::restore`]), counting into `r`; lets a store
    /// stream its changes instead of holding them all. `r.interactions` is left to the caller.
    pub fn restore_one(&mut self, change: Message, r: &mut Restored) {
        r.changes += 1;
        match change.id {
            IDS => {
                if let Some((p, c)) = ids_of(&change) {
                    self.interactions.set_id_state(p, c);
                }
            }
            DELETE => {
                if let Some(id) = change.attrs.get_str(attr::INTERACTION_ID) {
                    self.forget(id);
                }
            }
            PUT => {
                match durable::interaction_from_properties(&self.cfg, &self.names, &change.attrs, r)
                {
                    Some(ix) => {
                        self.forget(&ix.id);
                        if let Location::InWorkbin(key) = ix.loc {
                            self.workbins.put(key, ix.id.clone());
                        }
                        // Stored data is restored whatever the limits say now (they apply to
                        // what comes next).
                        self.interactions.insert(ix);
                    }
                    None => r.dropped += 1,
                }
            }
            other => r.warnings.push(format!("unknown change {other}, ignored")),
        }
    }

    /// Removes an interaction and its workbin entry (restore only: no notifications).
    fn forget(&mut self, id: &str) {
        if let Some(ix) = self.interactions.remove(id)
            && let Location::InWorkbin(key) = ix.loc
        {
            self.workbins.take_out(key, id);
        }
    }
}
