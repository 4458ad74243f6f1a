//! Configuration names as shared strings (outputs clone a pointer, not a `String`), and the
//! descriptions built from them: WorkbinInfo lists, owner keys, labels for error texts.

use crate::types::{BinKey, Location, Owner};
use ixn_codec::{ByteString, KvList, attr};
use ixn_config::{
    AgentGroupIdx, AgentIdx, Config, PlaceGroupIdx, PlaceIdx, QueueIdx, WorkbinTypeIdx,
};

/// The names of a configuration's entries, indexed like it.
#[derive(Debug)]
pub(crate) struct Names {
    agents: Vec<ByteString>,
    places: Vec<ByteString>,
    agent_groups: Vec<ByteString>,
    place_groups: Vec<ByteString>,
    workbins: Vec<ByteString>,
    queues: Vec<ByteString>,
}

/// Looks a name up by an index of the configuration the names were made from. The lists have
/// one entry per configuration entry, in its order, and an index is made only by that
/// configuration for an entry it holds (see `ixn_config::AgentIdx`): the lookup cannot fail,
/// as indexing the configuration itself cannot.
#[allow(clippy::indexing_slicing)]
fn pick(names: &[ByteString], i: usize) -> &ByteString {
    &names[i]
}

impl Names {
    pub(crate) fn new(cfg: &Config) -> Self {
        let bs = |s: &str| ByteString::from(s);
        Self {
            agents: cfg.agents().map(|(_, a)| bs(&a.id)).collect(),
            places: cfg.places().map(|(_, p)| bs(&p.id)).collect(),
            agent_groups: cfg.agent_groups().map(|(_, g)| bs(g)).collect(),
            place_groups: cfg.place_groups().map(|(_, g)| bs(g)).collect(),
            workbins: cfg.workbins().map(|(_, w)| bs(&w.name)).collect(),
            queues: cfg.queues().map(|(_, q)| bs(&q.name)).collect(),
        }
    }

    pub(crate) fn agent(&self, a: AgentIdx) -> &ByteString {
        pick(&self.agents, a.get())
    }

    pub(crate) fn place(&self, p: PlaceIdx) -> &ByteString {
        pick(&self.places, p.get())
    }

    pub(crate) fn agent_group(&self, g: AgentGroupIdx) -> &ByteString {
        pick(&self.agent_groups, g.get())
    }

    pub(crate) fn place_group(&self, g: PlaceGroupIdx) -> &ByteString {
        pick(&self.place_groups, g.get())
    }

    pub(crate) fn workbin(&self, ty: WorkbinTypeIdx) -> &ByteString {
        pick(&self.workbins, ty.get())
    }

    pub(crate) fn queue(&self, q: QueueIdx) -> &ByteString {
        pick(&self.queues, q.get())
    }

    /// The owner's id or name.
    pub(crate) fn owner(&self, owner: Owner) -> &ByteString {
        match owner {
            Owner::Agent(a) => self.agent(a),
            Owner::Place(p) => self.place(p),
            Owner::AgentGroup(g) => self.agent_group(g),
            Owner::PlaceGroup(g) => self.place_group(g),
        }
    }

    /// The WorkbinInfo KVList of an instance, owner key included.
    pub(crate) fn bin_info(&self, key: BinKey) -> KvList {
        let mut info = KvList::with_capacity(2);
        info.push(attr::WORKBIN_TYPE_ID, self.workbin(key.ty).clone());
        info.push(workbin_owner_key(key.owner), self.owner(key.owner).clone());
        info
    }

    /// `"Drafts" of agent "a1"`, for descriptions.
    pub(crate) fn bin_label(&self, key: BinKey) -> String {
        let kind = match key.owner {
            Owner::Agent(_) => "agent",
            Owner::Place(_) => "place",
            Owner::AgentGroup(_) => "agent group",
            Owner::PlaceGroup(_) => "place group",
        };
        format!(
            "{:?} of {kind} {:?}",
            &**self.workbin(key.ty),
            &**self.owner(key.owner)
        )
    }

    /// `queued in "Inbound"`, for descriptions.
    pub(crate) fn where_is(&self, loc: Location) -> String {
        match loc {
            Location::Queued(q) => format!("queued in {:?}", &**self.queue(q)),
            Location::InWorkbin(k) => format!("in workbin {}", self.bin_label(k)),
            Location::Handling(a) => format!("handled by agent {:?}", &**self.agent(a)),
        }
    }
}

/// The WorkbinInfo key naming an owner of this kind.
pub(crate) fn workbin_owner_key(owner: Owner) -> &'static str {
    match owner {
        Owner::Agent(_) => attr::WORKBIN_AGENT_ID,
        Owner::Place(_) => attr::WORKBIN_PLACE_ID,
        Owner::AgentGroup(_) => attr::WORKBIN_GROUP_ID,
        Owner::PlaceGroup(_) => attr::WORKBIN_PLACE_GROUP_ID,
    }
}

/// The interaction property key naming an owner of this kind.
pub(crate) fn interaction_owner_key(owner: Owner) -> &'static str {
    match owner {
        Owner::Agent(_) => attr::INTERACTION_AGENT_ID,
        Owner::Place(_) => attr::INTERACTION_PLACE_ID,
        Owner::AgentGroup(_) => attr::INTERACTION_AGENT_GROUP_ID,
        Owner::PlaceGroup(_) => attr::INTERACTION_PLACE_GROUP_ID,
    }
}
