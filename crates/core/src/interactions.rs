//! Interactions: the model, their sizes, their properties, and the store that holds them with
//! the InteractionId generator (R11, R12).

use crate::error::Error;
use crate::names::{Names, interaction_owner_key};
use crate::types::Location;
use foldhash::fast::FixedState;
use ixn_codec::{ByteString, KvList, attr};
use ixn_config::Limits;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A stored interaction. Only [`Interactions`] changes one.
#[derive(Clone, Debug)]
pub(crate) struct Interaction {
    pub(crate) id: ByteString,
    pub(crate) tenant: i32,
    pub(crate) media_type: ByteString,
    pub(crate) interaction_type: ByteString,
    pub(crate) subtype: Option<ByteString>,
    pub(crate) loc: Location,
    pub(crate) submitted_by: ByteString,
    pub(crate) received_at: ByteString,
    /// ReceivedAt in seconds since the Unix epoch (0 when it does not parse): what `_age()`
    /// and ordering by ReceivedAt read.
    pub(crate) received: i64,
    pub(crate) user_data: KvList,
}

/// Seconds since the Unix epoch of an RFC 3339 time (0 when it does not parse).
pub(crate) fn epoch_secs(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

/// What an interaction's size counts besides its strings and UserData: its bookkeeping in
/// memory (the engine's entry and, when durable, the store's copy of its properties for
/// compaction: about 1.9 KB together measured, with the attribute names and location), so that
/// `max_stored_bytes` bounds resident memory whatever the interactions' sizes.
const PROPERTIES_OVERHEAD: usize = 1536;

/// The size of an interaction with these strings and UserData, as counted for
/// `max_interaction_bytes` and `max_stored_bytes`: about its properties' encoded size.
pub(crate) fn interaction_size(strings: &[&str], user_data: Option<&KvList>) -> usize {
    strings
        .iter()
        .fold(PROPERTIES_OVERHEAD, |n, s| n.saturating_add(s.len()))
        .saturating_add(user_data.map_or(4, ixn_codec::list_len))
}

impl Interaction {
    /// Its size (see [`interaction_size`]).
    pub(crate) fn size(&self) -> usize {
        self.size_with(&self.user_data)
    }

    /// Its size with `user_data` instead of its own.
    pub(crate) fn size_with(&self, user_data: &KvList) -> usize {
        interaction_size(
            &[
                &self.id,
                &self.media_type,
                &self.interaction_type,
                self.subtype.as_deref().unwrap_or(""),
                &self.submitted_by,
                &self.received_at,
            ],
            Some(user_data),
        )
    }

    /// Its properties (docs/protocol.md), names from `names`.
    pub(crate) fn properties(&self, names: &Names) -> KvList {
        let mut p = KvList::with_capacity(12);
        p.push(attr::INTERACTION_ID, self.id.clone());
        p.push(attr::TENANT_ID, self.tenant);
        p.push(attr::MEDIA_TYPE, self.media_type.clone());
        p.push(attr::INTERACTION_TYPE, self.interaction_type.clone());
        if let Some(s) = &self.subtype {
            p.push(attr::INTERACTION_SUBTYPE, s.clone());
        }
        push_location(&mut p, self.loc, names);
        p.push(attr::SUBMITTED_BY, self.submitted_by.clone());
        p.push(attr::RECEIVED_AT, self.received_at.clone());
        p.push(attr::USER_DATA, self.user_data.clone());
        p
    }
}

/// Appends a location's properties (InteractionState, then where: Queue, the workbin type and
/// its owner, or AssignedTo), as a Put or a Move change and EventInteractionProperties carry it.
pub(crate) fn push_location(p: &mut KvList, loc: Location, names: &Names) {
    match loc {
        Location::Queued(q) => {
            p.push(attr::INTERACTION_STATE, ByteString::from_static("Queued"));
            p.push(attr::QUEUE, names.queue(q).clone());
        }
        Location::InWorkbin(key) => {
            p.push(
                attr::INTERACTION_STATE,
                ByteString::from_static("InWorkbin"),
            );
            p.push(
                attr::INTERACTION_WORKBIN_TYPE_ID,
                names.workbin(key.ty).clone(),
            );
            p.push(
                interaction_owner_key(key.owner),
                names.owner(key.owner).clone(),
            );
        }
        Location::Handling(a) => {
            p.push(attr::INTERACTION_STATE, ByteString::from_static("Handling"));
            p.push(attr::ASSIGNED_TO, names.agent(a).clone());
        }
    }
}

/// Where an interaction sits in [`Interactions`]' slots.
pub(crate) type Slot = usize;

/// An interaction's place in a location's order: when it was received (seconds), then its id.
pub(crate) type Received = (i64, ByteString);

/// At most this many distinct strings are shared ([`Interactions`]' `common`); others are
/// kept as they come.
const MAX_COMMON: usize = 1024;

/// The interactions held, by id, with the sum of their sizes and the id generator.
///
/// They sit in slots (a slab: a dense vector whose freed places are reused) found by id
/// through an index, so that a scan can go through them a slice at a time by slot number
/// while others come and go: a slot that holds one interaction for the whole scan is read
/// exactly once.
#[derive(Debug)]
pub(crate) struct Interactions {
    slots: slab::Slab<Interaction>,
    by_id: HashMap<ByteString, Slot, FixedState>,
    /// The interactions in each queue and each workbin instance, ordered by when they were
    /// received (then by id): a snapshot naming one reads only it, in that order.
    located: HashMap<Location, BTreeMap<Received, Slot>, FixedState>,
    /// Shared copies of the strings many interactions repeat (media types, interaction types,
    /// submitters): one allocation each, and a scan comparing them reads memory it just read.
    common: HashSet<ByteString, FixedState>,
    /// The sum of the stored interactions' sizes ([`Interaction::size`]).
    stored_bytes: usize,
    ids: IdGen,
}

impl Interactions {
    pub(crate) fn new(seed: u64, hasher: FixedState) -> Self {
        Self {
            slots: slab::Slab::new(),
            by_id: HashMap::with_hasher(hasher.clone()),
            located: HashMap::with_hasher(hasher.clone()),
            common: HashSet::with_hasher(hasher.clone()),
            stored_bytes: 0,
            ids: IdGen::new(seed),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Interaction> {
        self.slots.get(*self.by_id.get(id)?)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Interaction> {
        self.slots.get_mut(*self.by_id.get(id)?)
    }

    /// The interaction, or UnknownInteraction.
    pub(crate) fn find(&self, id: &str) -> Result<&Interaction, Error> {
        self.get(id)
            .ok_or_else(|| Error::UnknownInteraction(id.to_owned()))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// One past the highest slot in use (a scan reads slots below it).
    pub(crate) fn slot_end(&self) -> Slot {
        self.slots.capacity()
    }

    /// The interaction in `slot`, if one is there.
    pub(crate) fn at(&self, slot: Slot) -> Option<&Interaction> {
        self.slots.get(slot)
    }

    pub(crate) fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Interaction> {
        self.slots.iter().map(|(_, ix)| ix)
    }

    /// Each queue and workbin instance that holds interactions, with how many.
    pub(crate) fn located_counts(&self) -> impl Iterator<Item = (Location, usize)> + '_ {
        self.located
            .iter()
            .map(|(l, t)| (*l, t.len()))
            .filter(|(_, n)| *n > 0)
    }

    /// The interactions in `loc` (a queue or a workbin instance) after `after` in their
    /// order (before it when `rev`, from the end), with their places in it.
    pub(crate) fn located_after<'a>(
        &'a self,
        loc: Location,
        after: Option<&Received>,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&'a Received, &'a Interaction)> + 'a> {
        use std::ops::Bound::{Excluded, Unbounded};
        let Some(tree) = self.located.get(&loc) else {
            return Box::new(std::iter::empty());
        };
        let found = |(k, slot): (&'a Received, &Slot)| self.slots.get(*slot).map(|ix| (k, ix));
        match (after, rev) {
            (None, false) => Box::new(tree.iter().filter_map(found)),
            (None, true) => Box::new(tree.iter().rev().filter_map(found)),
            (Some(a), false) => Box::new(tree.range((Excluded(a), Unbounded)).filter_map(found)),
            (Some(a), true) => {
                Box::new(tree.range((Unbounded, Excluded(a))).rev().filter_map(found))
            }
        }
    }

    /// Enters `slot` (holding `id`, received at `received`) in `loc`'s order.
    fn index(&mut self, slot: Slot, id: &ByteString, received: i64, loc: Location) {
        if !matches!(loc, Location::Handling(_)) {
            self.located
                .entry(loc)
                .or_default()
                .insert((received, id.clone()), slot);
        }
    }

    fn unindex(&mut self, id: &ByteString, received: i64, loc: Location) {
        if let Some(tree) = self.located.get_mut(&loc) {
            tree.remove(&(received, id.clone()));
            if tree.is_empty() {
                self.located.remove(&loc);
            }
        }
    }

    /// The shared copy of `s`, when it is (or may become) one of the common strings.
    fn common(&mut self, s: &mut ByteString) {
        if let Some(shared) = self.common.get(&**s) {
            *s = shared.clone();
        } else if self.common.len() < MAX_COMMON {
            self.common.insert(s.clone());
        }
    }

    /// A generated id no interaction has.
    pub(crate) fn new_id(&mut self) -> ByteString {
        loop {
            let id = self.ids.next();
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// The id generator's state (prefix, counter).
    pub(crate) fn id_state(&self) -> (u64, u64) {
        self.ids.state()
    }

    pub(crate) fn set_id_state(&mut self, prefix: u64, counter: u64) {
        self.ids.set_state(prefix, counter);
    }

    /// Adds (or replaces) an interaction, counting its size.
    pub(crate) fn insert(&mut self, mut ix: Interaction) {
        self.stored_bytes = self.stored_bytes.saturating_add(ix.size());
        self.common(&mut ix.media_type);
        self.common(&mut ix.interaction_type);
        self.common(&mut ix.submitted_by);
        if let Some(s) = &mut ix.subtype {
            self.common(s);
        }
        let (id, loc, received) = (ix.id.clone(), ix.loc, ix.received);
        let slot = if let Some(&slot) = self.by_id.get(&id) {
            if let Some(old) = self.slots.get_mut(slot) {
                let old = std::mem::replace(old, ix);
                self.stored_bytes = self.stored_bytes.saturating_sub(old.size());
                self.unindex(&old.id, old.received, old.loc);
            }
            slot
        } else {
            let slot = self.slots.insert(ix);
            self.by_id.insert(id.clone(), slot);
            slot
        };
        self.index(slot, &id, received, loc);
    }

    /// Removes an interaction, uncounting its size.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Interaction> {
        let ix = self.slots.remove(self.by_id.remove(id)?);
        self.stored_bytes = self.stored_bytes.saturating_sub(ix.size());
        self.unindex(&ix.id, ix.received, ix.loc);
        Some(ix)
    }

    /// Moves an interaction; returns where it was.
    pub(crate) fn set_location(&mut self, id: &str, to: Location) -> Option<Location> {
        let slot = *self.by_id.get(id)?;
        let ix = self.slots.get_mut(slot)?;
        let from = std::mem::replace(&mut ix.loc, to);
        let (id, received) = (ix.id.clone(), ix.received);
        self.unindex(&id, received, from);
        self.index(slot, &id, received, to);
        Some(from)
    }

    /// Replaces an interaction's UserData, recounting its size.
    pub(crate) fn set_user_data(&mut self, id: &str, user_data: KvList) {
        if let Some(ix) = self.get_mut(id) {
            let (old, new) = (ix.size(), ix.size_with(&user_data));
            ix.user_data = user_data;
            self.stored_bytes = self.stored_bytes.saturating_sub(old).saturating_add(new);
        }
    }

    /// Checks that an interaction of `size` bytes, replacing one of `replaced` bytes, fits
    /// `max_interaction_bytes` and `max_stored_bytes`.
    pub(crate) fn check_size(
        &self,
        limits: &Limits,
        size: usize,
        replaced: usize,
    ) -> Result<(), Error> {
        if size > limits.max_interaction_bytes {
            return Err(Error::LimitExceeded {
                limit: "max_interaction_bytes",
                value: limits.max_interaction_bytes,
                what: format!(
                    "the interaction would take {size} bytes; send less UserData, or raise [limits] max_interaction_bytes"
                ),
            });
        }
        let total = self
            .stored_bytes
            .saturating_sub(replaced)
            .saturating_add(size);
        if size > replaced && total > limits.max_stored_bytes {
            return Err(Error::LimitExceeded {
                limit: "max_stored_bytes",
                value: limits.max_stored_bytes,
                what: format!(
                    "the server stores {} bytes of interactions and this would add {}; end finished interactions (RequestStopProcessing), or raise [limits] max_stored_bytes",
                    self.stored_bytes,
                    size - replaced
                ),
            });
        }
        Ok(())
    }
}

/// Generates InteractionIds: 16 characters of `[0-9A-Za-z]`, a 6-character prefix from the
/// seed followed by a 10-character counter (62^10, about 8.4e17, ids before it wraps).
#[derive(Debug)]
pub(crate) struct IdGen {
    prefix: u64,
    counter: u64,
}

/// 62^6 prefixes and 62^10 counter values: both fit a u64.
const PREFIX_SPACE: u64 = 56_800_235_584;
const COUNTER_SPACE: u64 = 839_299_365_868_340_224;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl IdGen {
    pub(crate) fn new(seed: u64) -> Self {
        // Mix the seed so that nearby seeds give unrelated prefixes.
        let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        Self {
            prefix: mixed % PREFIX_SPACE,
            counter: 0,
        }
    }

    pub(crate) fn state(&self) -> (u64, u64) {
        (self.prefix, self.counter)
    }

    pub(crate) fn set_state(&mut self, prefix: u64, counter: u64) {
        self.prefix = prefix % PREFIX_SPACE;
        self.counter = counter % COUNTER_SPACE;
    }

    pub(crate) fn next(&mut self) -> ByteString {
        let mut buf = [b'0'; 16];
        let write = |mut n: u64, digits: &mut [u8]| {
            for d in digits.iter_mut().rev() {
                // `n % 62` is below 62, so the index is always in range.
                *d = BASE62.get((n % 62) as usize).copied().unwrap_or(b'0');
                n /= 62;
            }
        };
        let (head, tail) = buf.split_at_mut(6);
        write(self.prefix, head);
        write(self.counter, tail);
        self.counter = (self.counter + 1) % COUNTER_SPACE;
        // Only ASCII digits and letters were written.
        ByteString::from(String::from_utf8_lossy(&buf).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_base62_characters_and_distinct() {
        let mut g = IdGen::new(42);
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 16);
            assert!(id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
        assert_ne!(IdGen::new(1).next(), IdGen::new(2).next());
        assert_eq!(PREFIX_SPACE, 62u64.pow(6));
        assert_eq!(COUNTER_SPACE, 62u64.pow(10));
    }
}
