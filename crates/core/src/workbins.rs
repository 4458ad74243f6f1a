//! Workbin instances: what each holds and who subscribes to it (R5-R10). An instance exists
//! only while it holds an interaction or a subscriber.

use crate::ids::ClientId;
use crate::types::BinKey;
use foldhash::fast::FixedState;
use indexmap::{IndexMap, IndexSet};
use ixn_codec::ByteString;
use std::collections::HashMap;

#[derive(Debug)]
struct Bin {
    /// Interaction ids, in arrival order (removal swaps the last one in: O(1)).
    items: IndexSet<ByteString, FixedState>,
    /// Subscribed clients and whether each wants PropertiesChanged, in subscription order.
    subs: IndexMap<ClientId, bool, FixedState>,
}

impl Bin {
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.subs.is_empty()
    }
}

/// Every live workbin instance.
#[derive(Debug)]
pub(crate) struct Workbins {
    bins: HashMap<BinKey, Bin, FixedState>,
    hasher: FixedState,
}

impl Workbins {
    pub(crate) fn new(hasher: FixedState) -> Self {
        Self {
            bins: HashMap::with_hasher(hasher.clone()),
            hasher,
        }
    }

    fn bin_mut(&mut self, key: BinKey) -> &mut Bin {
        let hasher = &self.hasher;
        self.bins.entry(key).or_insert_with(|| Bin {
            items: IndexSet::with_hasher(hasher.clone()),
            subs: IndexMap::with_hasher(hasher.clone()),
        })
    }

    /// Applies `f` to the instance, then drops the instance if it is empty.
    fn update(&mut self, key: BinKey, f: impl FnOnce(&mut Bin)) {
        if let Some(bin) = self.bins.get_mut(&key) {
            f(bin);
            if bin.is_empty() {
                self.bins.remove(&key);
            }
        }
    }

    /// The interaction ids the instance holds, in its order.
    pub(crate) fn items(&self, key: BinKey) -> impl Iterator<Item = &ByteString> {
        self.bins.get(&key).into_iter().flat_map(|b| b.items.iter())
    }

    /// How many interactions the instance holds.
    pub(crate) fn len(&self, key: BinKey) -> usize {
        self.bins.get(&key).map_or(0, |b| b.items.len())
    }

    /// Puts an interaction in.
    pub(crate) fn put(&mut self, key: BinKey, id: ByteString) {
        self.bin_mut(key).items.insert(id);
    }

    /// Takes an interaction out, dropping the instance when it is left empty.
    pub(crate) fn take_out(&mut self, key: BinKey, id: &str) {
        self.update(key, |bin| {
            bin.items.swap_remove(id);
        });
    }

    /// Subscribes a client (again: updates whether it wants PropertiesChanged).
    pub(crate) fn subscribe(&mut self, key: BinKey, client: ClientId, wants_props: bool) {
        self.bin_mut(key).subs.insert(client, wants_props);
    }

    /// Ends a client's subscription, dropping the instance when it is left empty.
    pub(crate) fn unsubscribe(&mut self, key: BinKey, client: ClientId) {
        self.update(key, |bin| {
            bin.subs.shift_remove(&client);
        });
    }

    /// The subscribers to notify of a change: all of them, or for PropertiesChanged
    /// (`props_only`) those that asked for it; in subscription order.
    pub(crate) fn listeners(
        &self,
        key: BinKey,
        props_only: bool,
    ) -> impl Iterator<Item = ClientId> + '_ {
        self.bins
            .get(&key)
            .into_iter()
            .flat_map(|b| b.subs.iter())
            .filter(move |(_, wants)| !props_only || **wants)
            .map(|(c, _)| *c)
    }

    /// Every live instance with its items and subscribers (for inspection in tests).
    #[cfg(any(test, fuzzing, feature = "model"))]
    pub(crate) fn all(
        &self,
    ) -> impl Iterator<Item = (BinKey, Vec<&ByteString>, Vec<(ClientId, bool)>)> + '_ {
        self.bins.iter().map(|(k, b)| {
            (
                *k,
                b.items.iter().collect(),
                b.subs.iter().map(|(c, w)| (*c, *w)).collect(),
            )
        })
    }
}
