//! Workbin instances: resolution, access (spec section 5), content and subscriptions (R5-R10).

use crate::engine::{Ctx, Engine, Login};
use crate::error::Error;
use foldhash::fast::FixedState;
use indexmap::{IndexMap, IndexSet};
use ixn_codec::typed::{self, WorkbinInfo, WorkbinOwner};
use ixn_codec::{ByteString, KvList, Message, MessageId, attr};
use ixn_config::{AgentGroupIdx, AgentIdx, OwnerKind, PlaceGroupIdx, PlaceIdx, WorkbinTypeIdx};

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

/// What a workbin instance holds. Instances exist only while they hold an interaction or a
/// subscriber.
#[derive(Debug)]
pub(crate) struct Bin {
    /// Interaction ids, in arrival order (removal swaps the last one in: O(1)).
    pub(crate) items: IndexSet<ByteString, FixedState>,
    /// Subscribed clients and whether each wants PropertiesChanged, in subscription order.
    pub(crate) subs: IndexMap<i32, bool, FixedState>,
}

impl Bin {
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() && self.subs.is_empty()
    }
}

impl Engine {
    /// Resolves a WorkbinInfo (spec section 5). `login` supplies a missing Agent or Place owner
    /// and restricts types to the agent's tenant; without it (media servers) any type resolves.
    pub(crate) fn resolve(
        &self,
        msg: MessageId,
        wb: &WorkbinInfo,
        login: Option<Login>,
    ) -> Result<BinKey, Error> {
        let name = &*wb.type_id;
        let ty = self.cfg.workbin(name).ok_or_else(|| {
            Error::UnknownWorkbin(format!("no workbin type {name:?} is configured"))
        })?;
        let Some(wt) = self.cfg.workbins.get(ty.get()) else {
            return Err(Error::UnknownWorkbin(format!(
                "no workbin type {name:?} is configured"
            )));
        };
        if let Some(l) = login {
            let tenant = self.agent_tenant(l.agent);
            if wt.tenant != tenant {
                return Err(Error::UnknownWorkbin(format!(
                    "workbin type {name:?} is not in tenant {tenant}"
                )));
            }
        }
        let unknown_owner = |o: &ByteString| Error::UnknownOwner {
            workbin: name.to_owned(),
            owner: o.to_string(),
        };
        let owner = match (wt.owner, &wb.owner) {
            (OwnerKind::Agent, Some(WorkbinOwner::Agent(id))) => {
                let a = self.cfg.agent(id).ok_or_else(|| unknown_owner(id))?;
                if self.agent_tenant(a) != wt.tenant {
                    return Err(unknown_owner(id));
                }
                Owner::Agent(a)
            }
            (OwnerKind::Place, Some(WorkbinOwner::Place(id))) => {
                Owner::Place(self.cfg.place(id).ok_or_else(|| unknown_owner(id))?)
            }
            (OwnerKind::AgentGroup, Some(WorkbinOwner::AgentGroup(g))) => {
                Owner::AgentGroup(self.cfg.agent_group(g).ok_or_else(|| unknown_owner(g))?)
            }
            (OwnerKind::PlaceGroup, Some(WorkbinOwner::PlaceGroup(g))) => {
                Owner::PlaceGroup(self.cfg.place_group(g).ok_or_else(|| unknown_owner(g))?)
            }
            (OwnerKind::Agent, None) => Owner::Agent(
                login
                    .ok_or_else(|| Error::missing(msg, "Workbin.WorkbinAgentId"))?
                    .agent,
            ),
            (OwnerKind::Place, None) => Owner::Place(
                login
                    .ok_or_else(|| Error::missing(msg, "Workbin.WorkbinPlaceId"))?
                    .place,
            ),
            (OwnerKind::AgentGroup, None) => {
                return Err(Error::missing(msg, "Workbin.WorkbinGroupId"));
            }
            (OwnerKind::PlaceGroup, None) => {
                return Err(Error::missing(msg, "Workbin.WorkbinPlaceGroupId"));
            }
            (kind, Some(given)) => {
                return Err(Error::UnknownWorkbin(format!(
                    "workbin type {name:?} is owned by {}: {} does not fit it (use {})",
                    kind.name(),
                    given.key(),
                    owner_key(kind)
                )));
            }
        };
        Ok(BinKey { ty, owner })
    }

    /// May the agent logged in as `l` read, subscribe to, place into and pull from `key`?
    pub(crate) fn may_access(&self, l: Login, key: BinKey) -> bool {
        let Some(agent) = self.cfg.agents.get(l.agent.get()) else {
            return false;
        };
        match key.owner {
            Owner::Agent(o) => {
                o == l.agent
                    || self.cfg.agents.get(o.get()).is_some_and(|owner| {
                        owner.groups.iter().any(|g| agent.supervises.contains(g))
                    })
            }
            Owner::Place(p) => p == l.place,
            Owner::AgentGroup(g) => agent.groups.contains(&g) || agent.supervises.contains(&g),
            Owner::PlaceGroup(pg) => self
                .cfg
                .places
                .get(l.place.get())
                .is_some_and(|p| p.groups.contains(&pg)),
        }
    }

    pub(crate) fn forbidden_bin(&self, l: Login, key: BinKey) -> Error {
        Error::Forbidden(format!(
            "agent {:?} may not access workbin {}",
            &*self.agent_name(l.agent),
            self.bin_label(key)
        ))
    }

    /// The WorkbinInfo KVList of an instance, owner key included.
    pub(crate) fn bin_info(&self, key: BinKey) -> KvList {
        let mut info = KvList::with_capacity(2);
        info.push(
            attr::WORKBIN_TYPE_ID,
            self.names
                .workbins
                .get(key.ty.get())
                .cloned()
                .unwrap_or_default(),
        );
        let (k, v) = self.owner_attr(key.owner, false);
        info.push(k, v);
        info
    }

    /// The owner as (key, id): WorkbinInfo keys, or the interaction property keys.
    pub(crate) fn owner_attr(&self, owner: Owner, interaction: bool) -> (&'static str, ByteString) {
        let pick = |names: &[ByteString], i: usize| names.get(i).cloned().unwrap_or_default();
        match owner {
            Owner::Agent(a) => (
                if interaction {
                    attr::INTERACTION_AGENT_ID
                } else {
                    attr::WORKBIN_AGENT_ID
                },
                pick(&self.names.agents, a.get()),
            ),
            Owner::Place(p) => (
                if interaction {
                    attr::INTERACTION_PLACE_ID
                } else {
                    attr::WORKBIN_PLACE_ID
                },
                pick(&self.names.places, p.get()),
            ),
            Owner::AgentGroup(g) => (
                if interaction {
                    attr::INTERACTION_AGENT_GROUP_ID
                } else {
                    attr::WORKBIN_GROUP_ID
                },
                pick(&self.names.agent_groups, g.get()),
            ),
            Owner::PlaceGroup(g) => (
                if interaction {
                    attr::INTERACTION_PLACE_GROUP_ID
                } else {
                    attr::WORKBIN_PLACE_GROUP_ID
                },
                pick(&self.names.place_groups, g.get()),
            ),
        }
    }

    /// `Drafts of agent a1`, for descriptions.
    pub(crate) fn bin_label(&self, key: BinKey) -> String {
        let name = self.names.workbins.get(key.ty.get()).map_or("?", |s| s);
        let (kind, id) = match key.owner {
            Owner::Agent(_) => ("agent", self.owner_attr(key.owner, false).1),
            Owner::Place(_) => ("place", self.owner_attr(key.owner, false).1),
            Owner::AgentGroup(_) => ("agent group", self.owner_attr(key.owner, false).1),
            Owner::PlaceGroup(_) => ("place group", self.owner_attr(key.owner, false).1),
        };
        format!("{name:?} of {kind} {:?}", &*id)
    }

    /// The instance, created empty if it does not exist yet.
    pub(crate) fn bin_mut(&mut self, key: BinKey) -> &mut Bin {
        let hasher = self.hasher.clone();
        self.bins.entry(key).or_insert_with(|| Bin {
            items: IndexSet::with_hasher(hasher.clone()),
            subs: IndexMap::with_hasher(hasher),
        })
    }

    /// Resolution and access for the requests that read or subscribe (agent required).
    fn readable_bin(&self, ctx: &Ctx, wb: &WorkbinInfo) -> Result<(Login, BinKey), Error> {
        let l = self.require_login(ctx)?;
        let key = self.resolve(ctx.id, wb, Some(l))?;
        if !self.may_access(l, key) {
            return Err(self.forbidden_bin(l, key));
        }
        Ok((l, key))
    }

    /// R5/R6.
    pub(crate) fn content(
        &self,
        ctx: &Ctx,
        r: &typed::RequestGetWorkbinContent,
    ) -> Result<Message, Error> {
        let (_, key) = self.readable_bin(ctx, &r.workbin)?;
        let items = self.bins.get(&key).map(|b| &b.items);
        let mut list = KvList::with_capacity(items.map_or(0, IndexSet::len));
        for id in items.into_iter().flatten() {
            if let Some(ix) = self.interactions.get(id) {
                list.push(id.clone(), self.properties(ix));
            }
        }
        Ok(Message::new(MessageId::EVENT_WORKBIN_CONTENT)
            .with(attr::WORKBIN, self.bin_info(key))
            .with(attr::INTERACTIONS, list))
    }

    /// R7/R8.
    pub(crate) fn subscribe(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestWorkbinNotifications,
    ) -> Result<Message, Error> {
        let (_, key) = self.readable_bin(ctx, &r.workbin)?;
        let wants_props = r.notify_property_changes.unwrap_or(false);
        let client = self.client(ctx)?;
        if !client.subs.contains(&key) {
            let limit = self.cfg.limits.max_subscriptions_per_client;
            if client.subs.len() >= limit {
                return Err(Error::LimitExceeded {
                    limit: "max_subscriptions_per_client",
                    value: limit,
                    what: format!("cannot subscribe to workbin {}", self.bin_label(key)),
                });
            }
        }
        if let Some(c) = self.clients.get_mut(&ctx.client) {
            c.subs.insert(key);
        }
        self.bin_mut(key).subs.insert(ctx.client, wants_props);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    /// R9/R10.
    pub(crate) fn unsubscribe(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestCancelWorkbinNotifications,
    ) -> Result<Message, Error> {
        let l = self.require_login(ctx)?;
        let key = self.resolve(ctx.id, &r.workbin, Some(l))?;
        if !self.client(ctx)?.subs.contains(&key) {
            return Err(Error::NotSubscribed(self.bin_label(key)));
        }
        if let Some(c) = self.clients.get_mut(&ctx.client) {
            c.subs.remove(&key);
        }
        if let Some(bin) = self.bins.get_mut(&key) {
            bin.subs.shift_remove(&ctx.client);
            if bin.is_empty() {
                self.bins.remove(&key);
            }
        }
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    /// RequestWorkbinTypesInfo: the tenant's workbin types.
    pub(crate) fn workbin_types(
        &self,
        _ctx: &Ctx,
        r: &typed::RequestWorkbinTypesInfo,
    ) -> Result<Message, Error> {
        if !self.cfg.tenants.contains_key(&r.tenant_id) {
            return Err(Error::UnknownTenant(r.tenant_id));
        }
        let mut types = KvList::new();
        for (wt, name) in self.cfg.workbins.iter().zip(&self.names.workbins) {
            if wt.tenant == r.tenant_id {
                let info = KvList::new()
                    .with(attr::ACTIVE, 1)
                    .with(attr::OWNER_TYPE, ByteString::from_static(wt.owner.name()));
                types.push(name.clone(), info);
            }
        }
        Ok(Message::new(MessageId::EVENT_WORKBIN_TYPES_INFO).with(attr::WORKBIN_TYPES, types))
    }
}

fn owner_key(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::Agent => attr::WORKBIN_AGENT_ID,
        OwnerKind::Place => attr::WORKBIN_PLACE_ID,
        OwnerKind::AgentGroup => attr::WORKBIN_GROUP_ID,
        OwnerKind::PlaceGroup => attr::WORKBIN_PLACE_GROUP_ID,
    }
}
