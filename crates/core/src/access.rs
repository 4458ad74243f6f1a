//! Who may reach what (docs/behaviour.md, "Access"): pure functions of the configuration and a login. No
//! state: the same configuration and login always give the same answer.

use crate::error::Error;
use crate::names::Names;
use crate::types::{BinKey, Location, Login, Owner};
use ixn_codec::MessageId;
use ixn_codec::typed::{WorkbinInfo, WorkbinOwner};
use ixn_config::{AgentIdx, Config, OwnerKind, PlaceIdx, QueueIdx, WorkbinTypeIdx};

/// The owner of kind `kind` called `name` (an agent or place id, a group name), if configured.
/// The one place where an owner is found by name: requests, stored locations and listings use
/// it alike.
pub(crate) fn owner_named(cfg: &Config, kind: OwnerKind, name: &str) -> Option<Owner> {
    Some(match kind {
        OwnerKind::Agent => Owner::Agent(cfg.agent(name)?),
        OwnerKind::Place => Owner::Place(cfg.place(name)?),
        OwnerKind::AgentGroup => Owner::AgentGroup(cfg.agent_group(name)?),
        OwnerKind::PlaceGroup => Owner::PlaceGroup(cfg.place_group(name)?),
    })
}

/// The owner kind a WorkbinInfo owner key names.
fn kind_of(owner: &WorkbinOwner) -> OwnerKind {
    match owner {
        WorkbinOwner::Agent(_) => OwnerKind::Agent,
        WorkbinOwner::Place(_) => OwnerKind::Place,
        WorkbinOwner::AgentGroup(_) => OwnerKind::AgentGroup,
        WorkbinOwner::PlaceGroup(_) => OwnerKind::PlaceGroup,
    }
}

/// The WorkbinInfo key for owners of `kind`.
fn owner_key(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::Agent => ixn_codec::attr::WORKBIN_AGENT_ID,
        OwnerKind::Place => ixn_codec::attr::WORKBIN_PLACE_ID,
        OwnerKind::AgentGroup => ixn_codec::attr::WORKBIN_GROUP_ID,
        OwnerKind::PlaceGroup => ixn_codec::attr::WORKBIN_PLACE_GROUP_ID,
    }
}

/// The workbin type called `name`.
pub(crate) fn workbin_type(cfg: &Config, name: &str) -> Result<WorkbinTypeIdx, Error> {
    cfg.workbin(name)
        .ok_or_else(|| Error::UnknownWorkbin(format!("no workbin type {name:?} is configured")))
}

/// Resolves a WorkbinInfo (docs/behaviour.md, "Access"). `login` supplies a missing Agent or Place owner and
/// restricts types to the agent's tenant; without it (media servers) any type resolves.
pub(crate) fn resolve(
    cfg: &Config,
    msg: MessageId,
    wb: &WorkbinInfo,
    login: Option<Login>,
) -> Result<BinKey, Error> {
    let name = &*wb.type_id;
    let ty = workbin_type(cfg, name)?;
    let wt = &cfg[ty];
    if let Some(l) = login {
        let tenant = cfg[l.agent].tenant;
        if wt.tenant != tenant {
            return Err(Error::UnknownWorkbin(format!(
                "workbin type {name:?} is not in tenant {tenant}"
            )));
        }
    }
    let owner = match &wb.owner {
        Some(given) if kind_of(given) == wt.owner => {
            let id = given.id();
            let unknown = || Error::UnknownOwner {
                workbin: name.to_owned(),
                owner: id.to_string(),
            };
            let owner = owner_named(cfg, wt.owner, id).ok_or_else(unknown)?;
            if let Owner::Agent(a) = owner
                && cfg[a].tenant != wt.tenant
            {
                return Err(unknown());
            }
            owner
        }
        Some(given) => {
            return Err(Error::UnknownWorkbin(format!(
                "workbin type {name:?} is owned by {}: {} does not fit it (use {})",
                wt.owner.name(),
                given.key(),
                owner_key(wt.owner)
            )));
        }
        None => match (wt.owner, login) {
            (OwnerKind::Agent, Some(l)) => Owner::Agent(l.agent),
            (OwnerKind::Place, Some(l)) => Owner::Place(l.place),
            (kind, _) => {
                return Err(Error::missing(msg, &format!("Workbin.{}", owner_key(kind))));
            }
        },
    };
    Ok(BinKey { ty, owner })
}

/// May the agent logged in as `l` read, subscribe to, place into and pull from `key`?
pub(crate) fn may_access(cfg: &Config, l: Login, key: BinKey) -> bool {
    reaches(cfg, l.agent, Some(l.place), key)
}

/// Does `agent`, at `place` if it has one, reach `key` (docs/behaviour.md, "Access")? Place and place
/// group workbins need a place.
fn reaches(cfg: &Config, me: AgentIdx, place: Option<PlaceIdx>, key: BinKey) -> bool {
    let agent = &cfg[me];
    match key.owner {
        Owner::Agent(o) => o == me || cfg[o].groups.iter().any(|g| agent.supervises.contains(g)),
        Owner::Place(p) => place == Some(p),
        Owner::AgentGroup(g) => agent.groups.contains(&g) || agent.supervises.contains(&g),
        Owner::PlaceGroup(pg) => place.is_some_and(|p| cfg[p].groups.contains(&pg)),
    }
}

/// Every workbin instance `agent` reaches (at `place`, if it has one), in configuration order
/// (workbin types in file order, then owners in file order).
pub(crate) fn accessible(cfg: &Config, agent: AgentIdx, place: Option<PlaceIdx>) -> Vec<BinKey> {
    let tenant = cfg[agent].tenant;
    let mut out = Vec::new();
    for (ty, wt) in cfg.workbins().filter(|(_, w)| w.tenant == tenant) {
        let owners: Vec<Owner> = match wt.owner {
            OwnerKind::Agent => cfg
                .agents()
                .filter(|(_, a)| a.tenant == tenant)
                .map(|(a, _)| Owner::Agent(a))
                .collect(),
            OwnerKind::Place => place.map(Owner::Place).into_iter().collect(),
            OwnerKind::AgentGroup => cfg
                .agent_groups()
                .map(|(g, _)| Owner::AgentGroup(g))
                .collect(),
            OwnerKind::PlaceGroup => cfg
                .place_groups()
                .map(|(g, _)| Owner::PlaceGroup(g))
                .collect(),
        };
        out.extend(
            owners
                .into_iter()
                .map(|owner| BinKey { ty, owner })
                .filter(|&key| reaches(cfg, agent, place, key)),
        );
    }
    out
}

/// May the agent logged in as `l` act on an interaction of `tenant` at `loc` (place, move,
/// pull, stop, change or read it)?
pub(crate) fn may_act(cfg: &Config, l: Login, tenant: i32, loc: Location) -> bool {
    cfg[l.agent].tenant == tenant
        && match loc {
            Location::Queued(_) => true,
            Location::InWorkbin(key) => may_access(cfg, l, key),
            Location::Handling(a) => a == l.agent,
        }
}

/// The error for an agent that may not access `key`.
pub(crate) fn forbidden_bin(names: &Names, l: Login, key: BinKey) -> Error {
    Error::Forbidden(format!(
        "agent {:?} may not access workbin {}",
        &**names.agent(l.agent),
        names.bin_label(key)
    ))
}

/// The queue called `name` in `tenant`.
pub(crate) fn queue_in(
    cfg: &Config,
    msg: MessageId,
    name: &str,
    tenant: i32,
) -> Result<QueueIdx, Error> {
    cfg.queue(name)
        .filter(|&q| cfg[q].tenant == tenant)
        .ok_or_else(|| {
            Error::invalid(
                msg,
                ixn_codec::attr::QUEUE,
                format!("no queue {name:?} in tenant {tenant}"),
            )
        })
}
