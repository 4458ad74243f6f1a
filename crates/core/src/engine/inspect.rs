//! A typed, canonical picture of the engine's whole state, for the property tests and the fuzz
//! targets (built only for them: `cfg(test)` or `cfg(fuzzing)`). It walks everything.

use super::Engine;
use crate::types::{BinKey, Location};
use ixn_codec::KvList;
use ixn_config::AppType;
use std::collections::{BTreeMap, BTreeSet};

/// A workbin instance by names: (WorkbinTypeId, owner id or name).
pub type BinName = (String, String);

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Connections by id.
    pub conns: BTreeMap<u64, ConnState>,
    /// Clients by ProxyClientId.
    pub clients: BTreeMap<i32, ClientState>,
    /// Live workbin instances.
    pub bins: BTreeMap<BinName, BinState>,
    /// Interactions by id: their properties.
    pub interactions: BTreeMap<String, KvList>,
}

/// A connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnState {
    /// Its own client.
    pub client: Option<i32>,
    /// Whether that client is a proxy.
    pub proxy: bool,
    /// Its logical clients, sorted.
    pub logical: Vec<i32>,
}

/// A client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientState {
    /// Its connection.
    pub conn: u64,
    /// ClientName.
    pub name: String,
    /// Application type.
    pub kind: AppType,
    /// A logical client of a proxy connection.
    pub logical: bool,
    /// (agent, place) when logged in.
    pub login: Option<(String, String)>,
    /// Subscribed workbins.
    pub subs: BTreeSet<BinName>,
}

/// A workbin instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinState {
    /// Interaction ids held.
    pub items: BTreeSet<String>,
    /// Subscribers and whether each wants PropertiesChanged.
    pub subs: BTreeMap<i32, bool>,
}

/// Where an interaction is, by names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Where {
    /// Queued in this queue.
    Queue(String),
    /// In this workbin instance.
    Workbin(BinName),
    /// Handled by this agent.
    Agent(String),
}

impl Engine {
    fn bin_name(&self, key: BinKey) -> BinName {
        (
            self.names.workbin(key.ty).to_string(),
            self.names.owner(key.owner).to_string(),
        )
    }

    /// The whole state, by names.
    pub fn inspect(&self) -> State {
        let (conns, clients) = self.sessions.inspect();
        State {
            conns: conns
                .into_iter()
                .map(|(id, client, proxy, logical)| {
                    (
                        id.0,
                        ConnState {
                            client: client.map(|c| c.get()),
                            proxy,
                            logical: logical.into_iter().map(|c| c.get()).collect(),
                        },
                    )
                })
                .collect(),
            clients: clients
                .into_iter()
                .map(|(id, c)| {
                    (
                        id.get(),
                        ClientState {
                            conn: c.conn().0,
                            name: c.name().to_string(),
                            kind: c.kind(),
                            logical: c.is_logical(),
                            login: c.login().map(|l| {
                                (
                                    self.names.agent(l.agent).to_string(),
                                    self.names.place(l.place).to_string(),
                                )
                            }),
                            subs: c.subscription_keys().map(|k| self.bin_name(k)).collect(),
                        },
                    )
                })
                .collect(),
            bins: self
                .workbins
                .all()
                .map(|(key, items, subs)| {
                    (
                        self.bin_name(key),
                        BinState {
                            items: items.into_iter().map(|i| i.to_string()).collect(),
                            subs: subs.into_iter().map(|(c, w)| (c.get(), w)).collect(),
                        },
                    )
                })
                .collect(),
            interactions: self
                .interactions
                .iter()
                .map(|ix| (ix.id.to_string(), ix.properties(&self.names)))
                .collect(),
        }
    }

    /// Where an interaction is; `None` if unknown.
    pub fn location(&self, id: &str) -> Option<Where> {
        self.interactions.get(id).map(|ix| match ix.loc {
            Location::Queued(q) => Where::Queue(self.names.queue(q).to_string()),
            Location::InWorkbin(k) => Where::Workbin(self.bin_name(k)),
            Location::Handling(a) => Where::Agent(self.names.agent(a).to_string()),
        })
    }

    /// What a store keeps: every interaction's properties, and what each workbin holds.
    pub fn durable_state(
        &self,
    ) -> (
        BTreeMap<String, KvList>,
        BTreeMap<BinName, BTreeSet<String>>,
    ) {
        let s = self.inspect();
        let bins = s
            .bins
            .into_iter()
            .filter(|(_, b)| !b.items.is_empty())
            .map(|(k, b)| (k, b.items))
            .collect();
        (s.interactions, bins)
    }
}
