//! Operation sequences checked against a small reference model. Shared by the property tests
//! (`tests/model.rs`) and the `core_ops` fuzz target, so both check the same invariants:
//!
//! - every request gets exactly one reply, carrying its ReferenceId, before anything else sent
//!   to the requester;
//! - the reply is what the model predicts: success, or EventError with the predicted code;
//! - notifications go exactly to the model's current subscribers of the workbins that changed
//!   (PropertiesChanged only to those that asked), TakenOut before PlacedIn;
//! - where every interaction is, and what a workbin's content lists, equals the model;
//! - a request that failed changed nothing.
//!
//! The model is written independently of the engine, with names instead of indexes, and covers
//! plain connections (proxies are covered by the conformance suite).

use crate::inspect::{State, Where};
use crate::{ConnId, Engine, Output};
use ixn_codec::{ByteString, ErrorCode, KvList, Message, MessageId, attr};
use ixn_config::Config;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

/// Connections in play.
pub const CONNS: u8 = 4;

/// One step of a sequence. Arguments index small pools of valid and invalid names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// RequestRegisterClient with application `app` (desk, emailsrv, rogue).
    Register { c: u8, app: u8 },
    /// RequestUnregisterClient.
    Unregister { c: u8 },
    /// RequestAgentLogin.
    Login { c: u8, agent: u8, place: u8 },
    /// RequestAgentLogout.
    Logout { c: u8 },
    /// RequestGetWorkbinContent.
    Content { c: u8, wb: u8 },
    /// RequestWorkbinNotifications.
    Subscribe { c: u8, wb: u8, props: bool },
    /// RequestCancelWorkbinNotifications.
    Cancel { c: u8, wb: u8 },
    /// RequestSubmit with a supplied id from the pool, or a generated one.
    Submit { c: u8, ix: u8 },
    /// RequestPlaceInWorkbin.
    Place { c: u8, ix: u8, wb: u8 },
    /// RequestPlaceInQueue.
    Queue { c: u8, ix: u8 },
    /// RequestPull.
    Pull { c: u8, ix: u8 },
    /// RequestStopProcessing.
    Stop { c: u8, ix: u8 },
    /// RequestChangeProperties.
    Change { c: u8, ix: u8 },
    /// RequestGetInteractionProperties.
    Props { c: u8, ix: u8 },
    /// Ping.
    Ping { c: u8 },
    /// A request without its required attribute, or an unknown message id.
    Bad { c: u8, unknown_id: bool },
    /// The client closes its connection.
    Disconnect { c: u8 },
}

const KINDS: u8 = 17;

impl Op {
    /// Decodes ops from raw bytes (3 bytes each), for the fuzzer.
    pub fn from_bytes(data: &[u8]) -> Vec<Self> {
        data.chunks_exact(3)
            .map(|b| {
                let [k, c, a] = [b.first(), b.get(1), b.get(2)].map(|x| x.copied().unwrap_or(0));
                Self::from_parts(k, c, a)
            })
            .collect()
    }

    /// An op from a kind, a connection and an argument byte (all taken modulo their ranges).
    pub fn from_parts(kind: u8, c: u8, a: u8) -> Self {
        let c = c % CONNS;
        let ix = a % IX_POOL;
        let wb = a % WB_POOL;
        match kind % KINDS {
            0 => Self::Register { c, app: a % 3 },
            1 => Self::Unregister { c },
            2 => Self::Login {
                c,
                agent: a % 5,
                place: (a / 5) % 5,
            },
            3 => Self::Logout { c },
            4 => Self::Content { c, wb },
            5 => Self::Subscribe {
                c,
                wb,
                props: a >= 128,
            },
            6 => Self::Cancel { c, wb },
            7 => Self::Submit { c, ix },
            8 => Self::Place {
                c,
                ix: (a / WB_POOL) % IX_POOL,
                wb,
            },
            9 => Self::Queue { c, ix },
            10 => Self::Pull { c, ix },
            11 => Self::Stop { c, ix },
            12 => Self::Change { c, ix },
            13 => Self::Props { c, ix },
            14 => Self::Ping { c },
            15 => Self::Bad {
                c,
                unknown_id: a.is_multiple_of(2),
            },
            _ => Self::Disconnect { c },
        }
    }

    fn conn(self) -> u8 {
        match self {
            Self::Register { c, .. }
            | Self::Unregister { c }
            | Self::Login { c, .. }
            | Self::Logout { c }
            | Self::Content { c, .. }
            | Self::Subscribe { c, .. }
            | Self::Cancel { c, .. }
            | Self::Submit { c, .. }
            | Self::Place { c, .. }
            | Self::Queue { c, .. }
            | Self::Pull { c, .. }
            | Self::Stop { c, .. }
            | Self::Change { c, .. }
            | Self::Props { c, .. }
            | Self::Ping { c }
            | Self::Bad { c, .. }
            | Self::Disconnect { c } => c,
        }
    }
}

/// The configuration of the checks: the conformance suite's.
pub const CONFIG_JSON: &str = include_str!("../../../conformance/config.json");

const APPS: [(&str, &str); 3] = [
    ("desk", "AgentApplication"),
    ("emailsrv", "MediaServer"),
    ("rogue", "AgentApplication"),
];
const AGENTS: [&str; 5] = ["a1", "a2", "a3", "sup1", "ghost"];
const PLACES: [&str; 5] = ["p1", "p2", "p3", "p4", "nowhere"];
/// Pool of supplied interaction ids: pool entries 0..3 are supplied, 3 means "let the server
/// generate one"; ops that name an interaction pick among the supplied and generated ones.
const IX_POOL: u8 = 5;
/// Workbin selections: (type, owner key, owner).
const WBS: [(&str, Option<(&str, &str)>); 14] = [
    ("Drafts", Some(("WorkbinAgentId", "a1"))),
    ("Drafts", Some(("WorkbinAgentId", "a2"))),
    ("Drafts", Some(("WorkbinAgentId", "a3"))),
    ("Drafts", None),
    ("Team", Some(("WorkbinGroupId", "Sales"))),
    ("Team", Some(("WorkbinGroupId", "Support"))),
    ("Desk", Some(("WorkbinPlaceId", "p1"))),
    ("Desk", None),
    ("Floor", Some(("WorkbinPlaceGroupId", "Floor1"))),
    ("Nope", Some(("WorkbinAgentId", "a1"))),
    ("Drafts", Some(("WorkbinPlaceId", "p1"))),
    ("Drafts", Some(("WorkbinAgentId", "ghost"))),
    ("Team", None),
    ("Review", Some(("WorkbinAgentId", "a2"))),
];
const WB_POOL: u8 = WBS.len() as u8;

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Clone, Debug, Default, PartialEq)]
struct MClient {
    media_server: bool,
    login: Option<(&'static str, &'static str)>,
    /// Subscribed workbin ("Type/owner") -> wants PropertiesChanged.
    subs: BTreeMap<String, bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    clients: BTreeMap<u8, MClient>,
    /// Interaction id -> location: "queue Inbound", "workbin Type/owner", "agent a1".
    ix: BTreeMap<String, String>,
    /// Server-generated interaction ids, in the order they were created.
    generated: Vec<String>,
}

/// A predicted outcome.
#[derive(Clone, Debug, PartialEq)]
enum Predict {
    Ok(Effect),
    Err(ErrorCode),
    /// R2/R3: EventError then close.
    ErrClose(ErrorCode),
}

#[derive(Clone, Debug, PartialEq)]
enum Effect {
    None,
    Register { media_server: bool },
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
}

fn groups_of(agent: &str) -> &'static [&'static str] {
    match agent {
        "a1" | "a2" => &["Sales"],
        "a3" => &["Support"],
        _ => &[],
    }
}

fn supervises(agent: &str) -> &'static [&'static str] {
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
fn access(agent: &str, place: &str, wb: &str) -> bool {
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
    fn resolve(&self, wb: u8, login: Option<(&str, &str)>) -> Result<String, ErrorCode> {
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

    fn may_act(&self, login: Option<(&str, &str)>, id: &str) -> bool {
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
    fn ix_name(&self, ix: u8) -> String {
        if ix < 3 {
            return format!("IXPOOL{ix}");
        }
        self.generated
            .get(usize::from(ix - 3))
            .cloned()
            .unwrap_or_else(|| format!("IXGEN{ix}"))
    }

    fn predict(&self, op: Op) -> Predict {
        use ErrorCode as E;
        use Predict::{Err, ErrClose, Ok};
        let c = op.conn();
        if let Op::Ping { .. } = op {
            return Ok(Effect::None);
        }
        let client = self.clients.get(&c);
        if let Op::Register { app, .. } = op {
            // An unconfigured application is reported before the state rule (spec section 5
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
                if !self.may_act(actor, &id) || actor.is_some_and(|(a, p)| !access(a, p, &key)) {
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
                let to = format!("agent {a}");
                if self.ix.get(&id) == Some(&to) {
                    Ok(Effect::None)
                } else {
                    Ok(Effect::Move(id, to))
                }
            }
            Op::Register { .. } | Op::Ping { .. } | Op::Disconnect { .. } => Ok(Effect::None),
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
    fn notifications(&self, effect: &Effect) -> Vec<(i32, String, BTreeSet<u8>)> {
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
            _ => {}
        }
        out.retain(|(_, _, to)| !to.is_empty());
        out
    }

    fn end_client(&mut self, c: u8) {
        self.clients.remove(&c);
    }

    fn apply(&mut self, c: u8, effect: Effect, generated: Option<String>) {
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
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the engine.

fn wb_info(wb: u8) -> KvList {
    let (ty, owner) = WBS.get(wb as usize).copied().unwrap_or(("Nope", None));
    let mut l = KvList::new().with(attr::WORKBIN_TYPE_ID, ty);
    if let Some((k, v)) = owner {
        l.push(k, v);
    }
    l
}

fn request(op: Op, model: &Model, reference: i32) -> Option<Message> {
    let m = |id: MessageId| Message::new(id).with(attr::REFERENCE_ID, reference);
    let ix = |i: u8| model.ix_name(i);
    Some(match op {
        Op::Register { app, .. } => {
            let (name, kind) = APPS.get(app as usize).copied().unwrap_or(APPS[0]);
            let kind = ixn_codec::ClientType::from_name(kind).map_or(1, |k| k.to_int());
            m(MessageId::REQUEST_REGISTER_CLIENT)
                .with(attr::CLIENT_NAME, name)
                .with(attr::CLIENT_TYPE, kind)
        }
        Op::Unregister { .. } => m(MessageId::REQUEST_UNREGISTER_CLIENT),
        Op::Login { agent, place, .. } => m(MessageId::REQUEST_AGENT_LOGIN)
            .with(attr::TENANT_ID, 101)
            .with(
                attr::AGENT_ID,
                AGENTS.get(agent as usize).copied().unwrap_or("ghost"),
            )
            .with(
                attr::PLACE_ID,
                PLACES.get(place as usize).copied().unwrap_or("nowhere"),
            ),
        Op::Logout { .. } => m(MessageId::REQUEST_AGENT_LOGOUT),
        Op::Content { wb, .. } => {
            m(MessageId::REQUEST_GET_WORKBIN_CONTENT).with(attr::WORKBIN, wb_info(wb))
        }
        Op::Subscribe { wb, props, .. } => m(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
            .with(attr::WORKBIN, wb_info(wb))
            .with(attr::NOTIFY_PROPERTY_CHANGES, i32::from(props)),
        Op::Cancel { wb, .. } => {
            m(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, wb_info(wb))
        }
        Op::Submit { ix: i, .. } => {
            let mut r = m(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, "email")
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, "Inbound")
                .with(
                    attr::USER_DATA,
                    KvList::new().with("Subject", format!("s{reference}")),
                );
            if i < 3 {
                r.attrs.push(attr::INTERACTION_ID, format!("IXPOOL{i}"));
            }
            r
        }
        Op::Place { ix: i, wb, .. } => m(MessageId::REQUEST_PLACE_IN_WORKBIN)
            .with(attr::INTERACTION_ID, ix(i))
            .with(attr::WORKBIN, wb_info(wb)),
        Op::Queue { ix: i, .. } => m(MessageId::REQUEST_PLACE_IN_QUEUE)
            .with(attr::INTERACTION_ID, ix(i))
            .with(attr::QUEUE, "Inbound"),
        Op::Pull { ix: i, .. } => m(MessageId::REQUEST_PULL)
            .with(attr::VIEW_ID, "_system_")
            .with(
                attr::PULL_PARAMETERS,
                KvList::new().with(attr::PULL_ID, ix(i)),
            ),
        Op::Stop { ix: i, .. } => {
            m(MessageId::REQUEST_STOP_PROCESSING).with(attr::INTERACTION_ID, ix(i))
        }
        Op::Change { ix: i, .. } => m(MessageId::REQUEST_CHANGE_PROPERTIES)
            .with(attr::INTERACTION_ID, ix(i))
            .with(
                attr::ADDED_PROPERTIES,
                KvList::new().with("Step", reference),
            ),
        Op::Props { ix: i, .. } => {
            m(MessageId::REQUEST_GET_INTERACTION_PROPERTIES).with(attr::INTERACTION_ID, ix(i))
        }
        Op::Ping { .. } => m(MessageId::PING),
        Op::Bad {
            unknown_id: true, ..
        } => m(MessageId(4242)),
        Op::Bad {
            unknown_id: false, ..
        } => m(MessageId::REQUEST_GET_WORKBIN_CONTENT),
        Op::Disconnect { .. } => return None,
    })
}

/// A store under test: it keeps each request's changes and gives back what it stored.
pub trait Keeper {
    /// Keeps one request's changes (the first call gets the new engine's snapshot).
    fn keep(&mut self, changes: &[Message]) -> Result<(), String>;
    /// Everything kept, as a store gives it back at start.
    fn reload(&mut self) -> Result<Vec<Message>, String>;
    /// Whether it applies Move changes (see [`Engine::record_moves`]); by default it gets Puts.
    fn moves(&self) -> bool {
        false
    }
}

/// The journal's shape: every change, in order.
#[derive(Debug, Default)]
struct InMemory(Vec<Message>);

impl Keeper for InMemory {
    fn keep(&mut self, changes: &[Message]) -> Result<(), String> {
        self.0.extend_from_slice(changes);
        Ok(())
    }
    fn reload(&mut self) -> Result<Vec<Message>, String> {
        Ok(std::mem::take(&mut self.0))
    }
    fn moves(&self) -> bool {
        true
    }
}

/// Runs `ops` against a fresh engine and the model; `Err` describes the first broken invariant.
pub fn check_ops(ops: &[Op]) -> Result<(), String> {
    check_ops_with(ops, &mut InMemory::default())
}

/// [`check_ops`], keeping every request's changes in `store` as well: what it reloads must
/// rebuild the same interactions and id generator as the engine holds at the end.
pub fn check_ops_with(ops: &[Op], store: &mut dyn Keeper) -> Result<(), String> {
    // Parsed once per process: the fuzzer calls this hundreds of thousands of times.
    static CONFIG: std::sync::OnceLock<Result<Arc<Config>, String>> = std::sync::OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            Config::from_json_str(CONFIG_JSON, "conformance/config.json")
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()?;
    let mut engine = Engine::new(config.clone(), 0x5eed);
    engine.record_changes(true);
    engine.record_moves(store.moves());
    // A new store starts with the engine's snapshot (it pins the id generator's prefix).
    let mut journal: Vec<Message> = engine.snapshot();
    store.keep(&journal)?;
    let mut model = Model::default();
    let now = SystemTime::UNIX_EPOCH;
    for (i, &op) in ops.iter().enumerate() {
        let c = op.conn();
        let conn = ConnId(u64::from(c));
        let reference = i32::try_from(i + 1).unwrap_or(i32::MAX);
        let at = |what: String| format!("op {} {op:?}: {what}", i + 1);
        let Some(req) = request(op, &model, reference) else {
            // Disconnect.
            let mut out = Vec::new();
            engine.close(conn, &mut out);
            if !out.is_empty() {
                return Err(at(format!("close produced output {out:?}")));
            }
            model.end_client(c);
            continue;
        };
        let predicted = model.predict(op);
        let before = engine.inspect();
        let mut out = Vec::new();
        engine.handle(now, conn, &req, &mut out);
        let journal_before = journal.len();
        engine.drain_changes(&mut journal);
        if let Some(new) = journal.get(journal_before..)
            && !new.is_empty()
        {
            store
                .keep(new)
                .map_err(|e| at(format!("the store failed: {e}")))?;
        }

        // Exactly one reply, first among what the requester gets, with the ReferenceId.
        let to_me: Vec<&Output> = out.iter().filter(|o| o.conn() == conn).collect();
        let replies: Vec<Message> = to_me
            .iter()
            .filter_map(|o| o.message())
            .filter(|m| m.id != MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
            .collect();
        let [reply] = replies.as_slice() else {
            return Err(at(format!("{} replies: {replies:?}", replies.len())));
        };
        if to_me.first().and_then(|o| o.message()).as_ref() != Some(reply) {
            return Err(at(
                "the reply is not the first message to the requester".into()
            ));
        }
        if reply.reference_id() != Some(reference) {
            return Err(at(format!(
                "reply has ReferenceId {:?}",
                reply.reference_id()
            )));
        }
        let closed = out.iter().any(|o| matches!(o, Output::Close { .. }));

        // The outcome the model predicts.
        let code = (reply.id == MessageId::EVENT_ERROR)
            .then(|| {
                reply
                    .attrs
                    .get_int(attr::ERROR_CODE)
                    .map(ErrorCode::from_int)
            })
            .flatten();
        match (&predicted, code) {
            (Predict::Ok(_), None) if !closed => {}
            (Predict::Err(want), Some(got)) if *want == got && !closed => {}
            (Predict::ErrClose(want), Some(got)) if *want == got && closed => {}
            _ => {
                return Err(at(format!(
                    "predicted {predicted:?}, got {reply:?} (closed: {closed})"
                )));
            }
        }
        if let Predict::ErrClose(_) = predicted {
            // The driver closes the connection; the engine already forgot it.
            let mut more = Vec::new();
            engine.close(conn, &mut more);
        }
        if !matches!(predicted, Predict::Ok(_)) {
            // A connection closed for R2/R3 registered nothing; the engine forgot it.
            let without_conn = |mut state: State| {
                if state
                    .conns
                    .get(&u64::from(c))
                    .is_some_and(|s| s.client.is_none())
                {
                    state.conns.remove(&u64::from(c));
                }
                state
            };
            let (before, after) = (without_conn(before), without_conn(engine.inspect()));
            if before != after {
                return Err(at(format!(
                    "a failed request changed the state:\n{before:#?}\n{after:#?}"
                )));
            }
            if journal.len() != journal_before {
                return Err(at(format!(
                    "a failed request recorded changes: {:?}",
                    journal.get(journal_before..)
                )));
            }
            if out.len() != 1 + usize::from(closed) {
                return Err(at(format!("a failed request produced {out:?}")));
            }
            continue;
        }
        let Predict::Ok(effect) = predicted else {
            continue;
        };

        // Replies that list things list what the model holds.
        if let Effect::Content(wb) = &effect {
            let listed: BTreeSet<String> = reply
                .attrs
                .get_list(attr::INTERACTIONS)
                .map(|l| l.iter().map(|(k, _)| k.to_string()).collect())
                .unwrap_or_default();
            let want: BTreeSet<String> = model
                .ix
                .iter()
                .filter(|(_, loc)| loc.strip_prefix("workbin ") == Some(wb.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            if listed != want {
                return Err(at(format!("content lists {listed:?}, model has {want:?}")));
            }
        }

        // Notifications: exactly the model's subscribers, group by group, in order.
        let expected = model.notifications(&effect);
        let mut got: Vec<(i32, String, u8)> = Vec::new();
        for o in &out {
            let Some(m) = o.message() else { continue };
            if m.id != MessageId::EVENT_WORKBIN_CONTENT_CHANGED {
                continue;
            }
            let opn = m
                .attrs
                .get_int(attr::WORKBIN_CONTENT_OPERATION)
                .unwrap_or(0);
            let wb = m.attrs.get_list(attr::WORKBIN).map(|w| {
                let ty = w
                    .get_str(attr::WORKBIN_TYPE_ID)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let owner = w
                    .iter()
                    .nth(1)
                    .and_then(|(_, v)| v.as_str())
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                format!("{ty}/{owner}")
            });
            let to = u8::try_from(o.conn().0).unwrap_or(u8::MAX);
            got.push((opn, wb.unwrap_or_default(), to));
        }
        let mut cursor = 0;
        for (opn, wb, to) in &expected {
            let group: BTreeSet<u8> = got
                .iter()
                .skip(cursor)
                .take(to.len())
                .filter(|(o, w, _)| o == opn && w == wb)
                .map(|(_, _, c)| *c)
                .collect();
            if &group != to {
                return Err(at(format!("expected {opn} on {wb} to {to:?}, got {got:?}")));
            }
            cursor += to.len();
        }
        if cursor != got.len() {
            return Err(at(format!(
                "unexpected notifications: expected {expected:?}, got {got:?}"
            )));
        }

        let generated = reply
            .attrs
            .get_str(attr::INTERACTION_ID)
            .map(|s| s.to_string());
        model.apply(c, effect, generated);

        // Every interaction is where the model says, and there are no others.
        for (id, loc) in &model.ix {
            let at_engine = engine.location(id);
            if at_engine.as_ref() != Some(&model_where(loc)) {
                return Err(at(format!("{id} is at {at_engine:?}, model says {loc}")));
            }
        }
        if engine.stats().interactions != model.ix.len() {
            return Err(at(format!(
                "engine holds {} interactions, model {}",
                engine.stats().interactions,
                model.ix.len()
            )));
        }
    }
    // Durability: the journal, and a snapshot, each rebuild the same interactions.
    let want = engine.durable_state();
    follow_without_engine(&journal, &engine.snapshot())?;
    let kept = store.reload()?;
    for (what, changes) in [
        ("journal", journal),
        ("snapshot", engine.snapshot()),
        ("store", kept),
    ] {
        let mut fresh = Engine::new(config.clone(), 1);
        let restored = fresh.restore(changes);
        let got = fresh.durable_state();
        if got != want || restored.dropped + restored.relocated != 0 {
            return Err(format!(
                "restoring from the {what} gives {got:#?}\nnot {want:#?}"
            ));
        }
        // The id generator continues where it was: no generated id is ever reused.
        if fresh.snapshot().first() != engine.snapshot().first() {
            return Err(format!(
                "restoring from the {what} loses the id generator's state"
            ));
        }
    }
    Ok(())
}

/// What a store that follows the changes without an engine (keeping each interaction's latest
/// Put and applying Moves to it, as the journal's compaction does) ends with: exactly the Puts of
/// the engine's snapshot.
fn follow_without_engine(journal: &[Message], snapshot: &[Message]) -> Result<(), String> {
    use crate::durable::{DELETE, MOVE, PUT, apply_move};
    let id_of = |m: &Message| m.attrs.get_str(attr::INTERACTION_ID).cloned();
    let mut held: HashMap<ByteString, KvList> = HashMap::new();
    for change in journal {
        let Some(id) = id_of(change) else { continue };
        match change.id {
            PUT => {
                held.insert(id, change.attrs.clone());
            }
            DELETE => {
                held.remove(&id);
            }
            MOVE => {
                let put = held
                    .get_mut(&id)
                    .ok_or_else(|| format!("a Move of {id:?} before any Put"))?;
                *put = apply_move(put, &change.attrs);
            }
            _ => {}
        }
    }
    let want: HashMap<ByteString, KvList> = snapshot
        .iter()
        .filter(|m| m.id == PUT)
        .filter_map(|m| Some((id_of(m)?, m.attrs.clone())))
        .collect();
    if held == want {
        Ok(())
    } else {
        Err(format!(
            "following the changes without an engine gives {held:#?}\nnot the snapshot's {want:#?}"
        ))
    }
}

/// The model's location (`queue Inbound`, `workbin Type/owner`, `agent a1`) as the engine
/// reports one.
fn model_where(loc: &str) -> Where {
    if let Some(q) = loc.strip_prefix("queue ") {
        return Where::Queue(q.to_owned());
    }
    if let Some(a) = loc.strip_prefix("agent ") {
        return Where::Agent(a.to_owned());
    }
    let wb = loc.strip_prefix("workbin ").unwrap_or(loc);
    let (ty, owner) = wb.split_once('/').unwrap_or((wb, ""));
    Where::Workbin((ty.to_owned(), owner.to_owned()))
}

/// The fuzz target's body: panics when an invariant breaks.
pub fn core_ops(data: &[u8]) {
    let ops = Op::from_bytes(data);
    if let Err(e) = check_ops(&ops) {
        // A broken invariant is exactly what the fuzzer looks for.
        #[allow(clippy::panic)]
        {
            panic!("{e}");
        }
    }
}
