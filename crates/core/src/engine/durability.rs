//! Recording durable changes, the snapshot, and rebuilding from stored changes (the formats are
//! in `durable.rs`).

use super::Engine;
use crate::durable::{
    self, DELETE, IDS, MOVE, PUT, Restored, delete_change, ids_change, ids_of, move_change,
    put_change,
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

    /// Records a request that only moved an interaction as a Move change (its id and new
    /// location) instead of a Put of the whole interaction (off by default). For a store that
    /// applies Moves to what it holds, as the journal does; one that keeps whole interactions
    /// leaves it off.
    pub fn record_moves(&mut self, on: bool) {
        self.changes.moves = on;
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

    /// Records that `id` moved: a Move, or a Put when Moves are off.
    pub(super) fn record_move(&mut self, id: &str) {
        if !self.changes.moves {
            return self.record_put(id);
        }
        if self.changes.recording
            && let Some(ix) = self.interactions.get(id)
        {
            let change = move_change(&ix.id, ix.loc, &self.names);
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
            MOVE => self.restore_move(&change, r),
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

    /// Applies a stored Move: the interaction goes where it names (or, if that no longer
    /// exists, where a Put's location would go); a Move of an interaction not held is ignored
    /// with a warning.
    fn restore_move(&mut self, change: &Message, r: &mut Restored) {
        let Some(id) = change.attrs.get_str(attr::INTERACTION_ID) else {
            r.warnings
                .push("a Move without an InteractionId, ignored".to_owned());
            return;
        };
        let Some(tenant) = self.interactions.get(id).map(|ix| ix.tenant) else {
            r.warnings.push(format!(
                "a Move of interaction {:?}, which is not held, ignored",
                &**id
            ));
            return;
        };
        let to = durable::stored_location(&self.cfg, &self.names, &change.attrs, tenant, id, r);
        match to {
            Some(to) => {
                if let Some(Location::InWorkbin(key)) = self.interactions.set_location(id, to) {
                    self.workbins.take_out(key, id);
                }
                if let Location::InWorkbin(key) = to {
                    self.workbins.put(key, id.clone());
                }
            }
            None => {
                self.forget(id);
                r.dropped += 1;
            }
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
