//! The small value types the engine's parts share: where an interaction is, which workbin
//! instance, who is logged in where.

use ixn_config::{AgentGroupIdx, AgentIdx, PlaceGroupIdx, PlaceIdx, QueueIdx, WorkbinTypeIdx};

/// The owner of a workbin instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Owner {
    Agent(AgentIdx),
    Place(PlaceIdx),
    AgentGroup(AgentGroupIdx),
    PlaceGroup(PlaceGroupIdx),
}

/// A workbin instance: a type and one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BinKey {
    pub(crate) ty: WorkbinTypeIdx,
    pub(crate) owner: Owner,
}

/// An agent logged in on a client, at a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Login {
    pub(crate) agent: AgentIdx,
    pub(crate) place: PlaceIdx,
}

/// Where an interaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    Queued(QueueIdx),
    InWorkbin(BinKey),
    Handling(AgentIdx),
}
