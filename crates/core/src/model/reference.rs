//! The reference model: clients, logins, subscriptions and where each interaction is, by name,
//! written from the contract independently of the engine; what it predicts for each operation
//! (success with an effect, or the error code); the requests are built in `requests`.

use super::ops::{AGENTS, Op, PLACES, WBS};
use ixn_codec::{ErrorCode, Message, attr};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct MClient {
    pub(super) media_server: bool,
    pub(super) login: Option<(&'static str, &'static str)>,
    /// Subscribed workbin ("Type/owner") -> wants PropertiesChanged.
    subs: BTreeMap<String, bool>,
    /// Open snapshots: id -> the interactions selected, in order.
    pub(super) snaps: BTreeMap<String, Vec<String>>,
    /// The snapshot the snapshot ops name (its id, open or not).
    pub(super) last_snap: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Model {
    pub(super) clients: BTreeMap<u8, MClient>,
    /// Interaction id -> location: "queue Inbound", "workbin Type/owner", "agent a1".
    pub(super) ix: BTreeMap<String, String>,
    /// Server-generated interaction ids, in the order they were created.
    pub(super) generated: Vec<String>,
    /// Locked interaction -> (holder, the snapshot the lock ends with).
    pub(super) locks: BTreeMap<String, (u8, Option<String>)>,
}

/// A predicted outcome.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Predict {
    Ok(Effect),
    Err(ErrorCode),
    /// R2/R3: EventError then close.
    ErrClose(ErrorCode),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Effect {
    None,
    Register {
        media_server: bool,
    },
    Unregister,
    Login(&'static str, &'static str),
    Logout,
    Content(String),
    Subscribe(String, bool),
    Cancel(String),
    Submit(Option<String>),
    Move(String, String),
    Stop(String),
    Change(String),
    /// A snapshot of these interactions (those left out for another's lock counted).
    Snap {
        ids: Vec<String>,
        lock: bool,
        not_locked: usize,
    },
    Page(String),
    Release(String),
    Lock(String, Option<String>),
    Unlock(String),
    /// A snapshot's move: the relocations in order, how many succeeded (no-ops included),
    /// and why the others failed.
    MoveMany {
        moves: Vec<(String, String)>,
        moved: usize,
        not_moved: BTreeMap<String, ErrorCode>,
    },
}

pub(super) fn groups_of(agent: &str) -> &'static [&'static str] {
    match agent {
        "a1" | "a2" => &["Sales"],
        "a3" => &["Support"],
        _ => &[],
    }
}

pub(super) fn supervises(agent: &str) -> &'static [&'static str] {
    if agent == "sup1" { &["Sales"] } else { &[] }
}

fn place_groups(place: &str) -> &'static [&'static str] {
    if matches!(place, "p1" | "p2") {
        &["Floor1"]
    } else {
        &[]
    }
}

/// Spec section 5 access, from names.
pub(super) fn access(agent: &str, place: &str, wb: &str) -> bool {
    let Some((ty, owner)) = wb.split_once('/') else {
        return false;
    };
    let owner_kind = match ty {
        "Drafts" | "Review" => "Agent",
        "Team" => "AgentGroup",
        "Desk" => "Place",
        _ => "PlaceGroup",
    };
    match owner_kind {
        "Agent" => {
            owner == agent
                || groups_of(owner)
                    .iter()
                    .any(|g| supervises(agent).contains(g))
        }
        "Place" => owner == place,
        "AgentGroup" => groups_of(agent).contains(&owner) || supervises(agent).contains(&owner),
        _ => place_groups(place).contains(&owner),
    }
}

impl Model {
    /// Resolves a workbin selection to "Type/owner", or the error.
    pub(super) fn resolve(&self, wb: u8, login: Option<(&str, &str)>) -> Result<String, ErrorCode> {
        let (ty, owner) = WBS
            .get(wb as usize)
            .copied()
            .ok_or(ErrorCode::UnknownWorkbin)?;
        let (kind_key, valid): (&str, &[&str]) = match ty {
            "Drafts" | "Review" => ("WorkbinAgentId", &["a1", "a2", "a3", "sup1"]),
            "Team" => ("WorkbinGroupId", &["Sales", "Support"]),
            "Desk" => ("WorkbinPlaceId", &["p1", "p2", "p3", "p4"]),
            "Floor" => ("WorkbinPlaceGroupId", &["Floor1"]),
            _ => return Err(ErrorCode::UnknownWorkbin),
        };
        match owner {
            Some((key, _)) if key != kind_key => Err(ErrorCode::UnknownWorkbin),
            Some((_, o)) if !valid.contains(&o) => Err(ErrorCode::UnknownOwner),
            Some((_, o)) => Ok(format!("{ty}/{o}")),
            None => match (kind_key, login) {
                ("WorkbinAgentId", Some((a, _))) => Ok(format!("{ty}/{a}")),
                ("WorkbinPlaceId", Some((_, p))) => Ok(format!("{ty}/{p}")),
                _ => Err(ErrorCode::MissingAttribute),
            },
        }
    }

    pub(super) fn may_act(&self, login: Option<(&str, &str)>, id: &str) -> bool {
        let Some((agent, place)) = login else {
            return true;
        }; // media server
        match self.ix.get(id).map(String::as_str) {
            Some(loc) if loc.starts_with("queue ") => true,
            Some(loc) if loc.starts_with("workbin ") => access(agent, place, &loc[8..]),
            Some(loc) => loc == format!("agent {agent}"),
            None => false,
        }
    }

    /// The id an op names: 0 to 2 are the supplied pool ids, 3 and up the server-generated
    /// ids in creation order (an id that does not exist yet is unknown to both sides).
    pub(super) fn ix_name(&self, ix: u8) -> String {
        if ix < 3 {
            return format!("IXPOOL{ix}");
        }
        self.generated
            .get(usize::from(ix - 3))
            .cloned()
            .unwrap_or_else(|| format!("IXGEN{ix}"))
    }

    pub(super) fn predict(&self, op: Op) -> Predict {
        use ErrorCode as E;
        use Predict::{Err, ErrClose, Ok};
        let c = op.conn();
        if let Op::Ping { .. } = op {
            return Ok(Effect::None);
        }
        let client = self.clients.get(&c);
        if let Op::Register { app, .. } = op {
            // An unconfigured application is reported before the state rule (docs/behaviour.md, "Access"
            // order); the connection stays open when it already has a client.
            return match client {
                Some(_) if app == 2 => Err(E::InvalidClient),
                Some(_) => Err(E::InvalidState),
                None if app == 2 => ErrClose(E::InvalidClient),
                None => Ok(Effect::Register {
                    media_server: app == 1,
                }),
            };
        }
        if let Op::Disconnect { .. } = op {
            return Ok(Effect::None);
        }
        let Some(client) = client else {
            return ErrClose(E::ClientNotRegistered);
        };
        let login = client.login;
        // Who may act on interactions: media servers always, others with a login.
        let actor = if client.media_server {
            Some(None)
        } else {
            login.map(Some)
        };
        if matches!(
            op,
            Op::Snap { .. }
                | Op::Page { .. }
                | Op::Release { .. }
                | Op::Lock { .. }
                | Op::Unlock { .. }
                | Op::MoveAll { .. }
        ) {
            return self.predict_snapshot(op, c, client);
        }
        if matches!(
            op,
            Op::Submit { .. }
                | Op::Place { .. }
                | Op::Queue { .. }
                | Op::Stop { .. }
                | Op::Change { .. }
                | Op::Props { .. }
                | Op::Pull { .. }
        ) {
            self.predict_interaction(op, c, login, actor)
        } else {
            self.predict_session(op, client)
        }
    }

    /// What a registered client's session and workbin requests do.
    fn predict_session(&self, op: Op, client: &MClient) -> Predict {
        use ErrorCode as E;
        use Predict::{Err, Ok};
        let login = client.login;
        match op {
            Op::Bad {
                unknown_id: true, ..
            } => Err(E::UnsupportedRequest),
            Op::Bad {
                unknown_id: false, ..
            } => Err(E::MissingAttribute),
            Op::Unregister { .. } => Ok(Effect::Unregister),
            Op::Login { agent, place, .. } => {
                let (Some(a), Some(p)) = (AGENTS.get(agent as usize), PLACES.get(place as usize))
                else {
                    return Err(E::UnknownAgent);
                };
                if *a == "ghost" {
                    return Err(E::UnknownAgent);
                }
                if *p == "nowhere" {
                    return Err(E::UnknownPlace);
                }
                match login {
                    Some((cur, _)) if cur == *a => Ok(Effect::None),
                    Some(_) => Err(E::InvalidState),
                    None if self
                        .clients
                        .values()
                        .any(|o| o.login.is_some_and(|(x, _)| x == *a)) =>
                    {
                        Err(E::AgentLoggedInElsewhere)
                    }
                    None => Ok(Effect::Login(a, p)),
                }
            }
            Op::Logout { .. } => {
                if login.is_some() {
                    Ok(Effect::Logout)
                } else {
                    Err(E::AgentNotLoggedIn)
                }
            }
            Op::Content { wb, .. } | Op::Subscribe { wb, .. } => {
                let Some((a, p)) = login else {
                    return Err(E::AgentNotLoggedIn);
                };
                let key = match self.resolve(wb, login) {
                    Result::Ok(k) => k,
                    Result::Err(e) => return Err(e),
                };
                if !access(a, p, &key) {
                    return Err(E::Forbidden);
                }
                match op {
                    Op::Subscribe { props, .. } => Ok(Effect::Subscribe(key, props)),
                    _ => Ok(Effect::Content(key)),
                }
            }
            Op::Cancel { wb, .. } => {
                if login.is_none() {
                    return Err(E::AgentNotLoggedIn);
                }
                match self.resolve(wb, login) {
                    Result::Err(e) => Err(e),
                    Result::Ok(k) if client.subs.contains_key(&k) => Ok(Effect::Cancel(k)),
                    Result::Ok(_) => Err(E::NotSubscribed),
                }
            }
            _ => Ok(Effect::None),
        }
    }

    /// What a registered client's requests on interactions do; `actor` is who may act on them
    /// (`Some(None)`: a media server).
    #[allow(clippy::type_complexity)]
    fn predict_interaction(
        &self,
        op: Op,
        c: u8,
        login: Option<(&'static str, &'static str)>,
        actor: Option<Option<(&'static str, &'static str)>>,
    ) -> Predict {
        use ErrorCode as E;
        use Predict::{Err, Ok};
        match op {
            Op::Submit { ix, .. } => {
                if actor.is_none() {
                    return Err(E::AgentNotLoggedIn);
                }
                if ix >= 3 {
                    return Ok(Effect::Submit(None));
                }
                let id = format!("IXPOOL{ix}");
                if self.ix.contains_key(&id) {
                    Err(E::DuplicateInteraction)
                } else {
                    Ok(Effect::Submit(Some(id)))
                }
            }
            Op::Place { ix, wb, .. } => {
                let Some(actor) = actor else {
                    return Err(E::AgentNotLoggedIn);
                };
                let key = match self.resolve(wb, actor) {
                    Result::Ok(k) => k,
                    Result::Err(e) => return Err(e),
                };
                let id = self.ix_name(ix);
                let Some(loc) = self.ix.get(&id) else {
                    return Err(E::UnknownInteraction);
                };
                if !self.may_act(actor, &id) {
                    return Err(E::Forbidden);
                }
                if self.locked_by_other(c, &id) {
                    return Err(E::InteractionLocked);
                }
                if actor.is_some_and(|(a, p)| !access(a, p, &key)) {
                    return Err(E::Forbidden);
                }
                if *loc == format!("workbin {key}") {
                    return Ok(Effect::None);
                }
                Ok(Effect::Move(id, format!("workbin {key}")))
            }
            Op::Queue { ix, .. }
            | Op::Stop { ix, .. }
            | Op::Change { ix, .. }
            | Op::Props { ix, .. } => {
                let Some(actor) = actor else {
                    return Err(E::AgentNotLoggedIn);
                };
                let id = self.ix_name(ix);
                if !self.ix.contains_key(&id) {
                    return Err(E::UnknownInteraction);
                }
                if !self.may_act(actor, &id) {
                    return Err(E::Forbidden);
                }
                if !matches!(op, Op::Props { .. }) && self.locked_by_other(c, &id) {
                    return Err(E::InteractionLocked);
                }
                match op {
                    Op::Queue { .. } if self.ix.get(&id).is_some_and(|l| l == "queue Inbound") => {
                        Ok(Effect::None)
                    }
                    Op::Queue { .. } => Ok(Effect::Move(id, "queue Inbound".into())),
                    Op::Stop { .. } => Ok(Effect::Stop(id)),
                    Op::Change { .. } => Ok(Effect::Change(id)),
                    _ => Ok(Effect::None),
                }
            }
            Op::Pull { ix, .. } => {
                let Some((a, _)) = login else {
                    return Err(E::AgentNotLoggedIn);
                };
                let id = self.ix_name(ix);
                if !self.ix.contains_key(&id) {
                    return Err(E::UnknownInteraction);
                }
                if !self.may_act(login, &id) {
                    return Err(E::Forbidden);
                }
                if self.locked_by_other(c, &id) {
                    return Err(E::InteractionLocked);
                }
                let to = format!("agent {a}");
                if self.ix.get(&id) == Some(&to) {
                    Ok(Effect::None)
                } else {
                    Ok(Effect::Move(id, to))
                }
            }
            _ => Ok(Effect::None),
        }
    }

    /// Subscribers of `wb` (conn, wants properties).
    fn subscribers(&self, wb: &str) -> Vec<(u8, bool)> {
        self.clients
            .iter()
            .filter_map(|(c, cl)| cl.subs.get(wb).map(|p| (*c, *p)))
            .collect()
    }

    /// Expected notifications of an effect, as groups (op, workbin, recipients) in order.
    pub(super) fn notifications(&self, effect: &Effect) -> Vec<(i32, String, BTreeSet<u8>)> {
        let group = |op: i32, wb: &str, props_only: bool| {
            let to: BTreeSet<u8> = self
                .subscribers(wb)
                .into_iter()
                .filter(|(_, p)| !props_only || *p)
                .map(|(c, _)| c)
                .collect();
            (op, wb.to_owned(), to)
        };
        let mut out = Vec::new();
        match effect {
            Effect::Move(id, to) => {
                if let Some(from) = self.ix.get(id).and_then(|l| l.strip_prefix("workbin ")) {
                    out.push(group(1, from, false));
                }
                if let Some(to) = to.strip_prefix("workbin ") {
                    out.push(group(2, to, false));
                }
            }
            Effect::Stop(id) => {
                if let Some(from) = self.ix.get(id).and_then(|l| l.strip_prefix("workbin ")) {
                    out.push(group(1, from, false));
                }
            }
            Effect::Change(id) => {
                if let Some(wb) = self.ix.get(id).and_then(|l| l.strip_prefix("workbin ")) {
                    out.push(group(3, wb, true));
                }
            }
            Effect::MoveMany { moves, .. } => {
                // Distinct interactions: each move's groups as if alone, in the snapshot's order.
                for (id, to) in moves {
                    out.extend(self.notifications(&Effect::Move(id.clone(), to.clone())));
                }
            }
            _ => {}
        }
        out.retain(|(_, _, to)| !to.is_empty());
        out
    }

    /// A client ends: its snapshots and locks end with it.
    pub(super) fn end_client(&mut self, c: u8) {
        self.clients.remove(&c);
        self.locks.retain(|_, (holder, _)| *holder != c);
    }

    /// Applies `effect` of client `c`'s request, answered by `reply`.
    pub(super) fn apply(&mut self, c: u8, effect: Effect, reply: &Message) {
        let generated = reply
            .attrs
            .get_str(attr::INTERACTION_ID)
            .map(|s| s.to_string());
        let effect = match effect {
            Effect::Snap { ids, lock, .. } => {
                let sid = reply
                    .attrs
                    .get_str(attr::SNAPSHOT_ID)
                    .map(|s| s.to_string());
                return self.apply_snap(c, ids, lock, sid.unwrap_or_default());
            }
            Effect::Release(sid) => return self.apply_release(c, &sid),
            Effect::Lock(id, sid) => {
                self.locks.entry(id).or_insert((c, sid));
                return;
            }
            Effect::Unlock(id) => {
                self.locks.remove(&id);
                return;
            }
            Effect::MoveMany { moves, .. } => {
                self.ix.extend(moves);
                return;
            }
            other => other,
        };
        let client = self.clients.get_mut(&c);
        match (effect, client) {
            (Effect::Register { media_server }, _) => {
                self.clients.insert(
                    c,
                    MClient {
                        media_server,
                        ..MClient::default()
                    },
                );
            }
            (Effect::Unregister, _) => self.end_client(c),
            (Effect::Login(a, p), Some(cl)) => cl.login = Some((a, p)),
            (Effect::Logout, Some(cl)) => {
                cl.login = None;
                cl.subs.clear();
            }
            (Effect::Subscribe(k, p), Some(cl)) => {
                cl.subs.insert(k, p);
            }
            (Effect::Cancel(k), Some(cl)) => {
                cl.subs.remove(&k);
            }
            (Effect::Submit(id), _) => {
                let was_generated = id.is_none();
                if let Some(id) = id.or(generated) {
                    self.ix.insert(id.clone(), "queue Inbound".into());
                    if was_generated {
                        self.generated.push(id);
                    }
                }
            }
            (Effect::Move(id, to), _) => {
                self.ix.insert(id, to);
            }
            (Effect::Stop(id), _) => {
                self.ix.remove(&id);
                self.locks.remove(&id);
            }
            _ => {}
        }
    }
}
