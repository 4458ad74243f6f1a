//! The engine: state, the driver-facing API, and request dispatch.

use crate::error::Error;
use crate::interactions::{IdGen, Interaction, Location};
use crate::output::{CloseReason, ConnId, Output};
use crate::workbins::{Bin, BinKey};
use foldhash::fast::FixedState;
use ixn_codec::typed::{self, Typed};
use ixn_codec::{ByteString, ClientType, KvList, Message, MessageId, attr};
use ixn_config::{AgentIdx, AppType, Config, PlaceIdx};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

pub(crate) type Map<K, V> = HashMap<K, V, FixedState>;
pub(crate) type Set<K> = HashSet<K, FixedState>;

/// The workbin engine: a deterministic state machine with no I/O, no clock and no randomness of
/// its own.
///
/// # Calling contract
///
/// The driver (a server, a test harness) owns the sockets and feeds the engine three kinds of
/// input, one at a time, from one thread or task:
///
/// - [`Engine::open`]: a connection was accepted (optional: an unknown [`ConnId`] is taken as
///   newly opened the first time it is seen);
/// - [`Engine::handle`]: a complete message arrived on a connection;
/// - [`Engine::close`]: a connection ended (the peer closed it, it failed, or the driver closed
///   it, including after an [`Output::Close`]).
///
/// Each input appends its [`Output`]s to the caller's vector, **in the order they must take
/// effect**: every request gets exactly one reply (R14) carrying its `ReferenceId`, and that
/// reply comes first, followed by the notifications the request caused (TakenOut on the old
/// workbin before PlacedIn on the new one). The driver must queue all outputs of one input before
/// it writes any of them or feeds the next input, and must never reorder messages to one
/// connection; then the ordering rule of spec section 6 holds.
///
/// `now` is the wall-clock time of the input; it only stamps `ReceivedAt` on new interactions,
/// so it need not be monotonic. The `seed` given to [`Engine::new`] drives the hash functions and
/// the generated InteractionIds: the same seed and inputs give the same outputs. A server should
/// pass a random seed (hash flooding resistance, distinct ids across restarts).
///
/// A request that fails changes nothing. Cost per request does not grow with the number of
/// clients, interactions or subscriptions (everything is indexed by connection, client, agent,
/// workbin instance and interaction id); only replies that list things (content of a workbin,
/// workbin types of a tenant) cost in proportion to what they list, and a notification costs in
/// proportion to its recipients.
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: Arc<Config>,
    pub(crate) names: Names,
    conns: Map<ConnId, Conn>,
    pub(crate) clients: Map<i32, Client>,
    next_client: i32,
    /// Per agent (by index): the client it is logged in on.
    pub(crate) logins: Vec<Option<i32>>,
    pub(crate) bins: Map<BinKey, Bin>,
    pub(crate) interactions: Map<ByteString, Interaction>,
    /// The sum of the stored interactions' sizes ([`Interaction::size`]).
    pub(crate) stored_bytes: usize,
    pub(crate) ids: IdGen,
    pub(crate) hasher: FixedState,
    /// Notifications of the request being handled; appended after its reply.
    pub(crate) notes: Vec<Output>,
    /// Whether durable changes are recorded (see `durable.rs`).
    pub(crate) recording: bool,
    /// Durable changes not yet drained.
    pub(crate) changes: Vec<Message>,
}

/// Configuration names as shared strings, so outputs clone a pointer instead of a `String`.
#[derive(Debug)]
pub(crate) struct Names {
    pub(crate) agents: Vec<ByteString>,
    pub(crate) places: Vec<ByteString>,
    pub(crate) agent_groups: Vec<ByteString>,
    pub(crate) place_groups: Vec<ByteString>,
    pub(crate) workbins: Vec<ByteString>,
    pub(crate) queues: Vec<ByteString>,
}

impl Names {
    fn new(cfg: &Config) -> Self {
        let bs = |s: &String| ByteString::from(s.as_str());
        Self {
            agents: cfg.agents.iter().map(|a| bs(&a.id)).collect(),
            places: cfg.places.iter().map(|p| bs(&p.id)).collect(),
            agent_groups: cfg.agent_groups.iter().map(bs).collect(),
            place_groups: cfg.place_groups.iter().map(bs).collect(),
            workbins: cfg.workbins.iter().map(|w| bs(&w.name)).collect(),
            queues: cfg.queues.iter().map(|q| bs(&q.name)).collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Conn {
    /// The client registered first on this connection (plain client or the proxy itself).
    client: Option<i32>,
    /// True when `client` is a Proxy: further registrations create logical clients.
    proxy: bool,
    /// Logical clients of a proxy connection.
    logical: Set<i32>,
}

#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) conn: ConnId,
    pub(crate) name: ByteString,
    pub(crate) kind: AppType,
    /// A logical client of a proxy connection: its messages carry its ProxyClientId.
    pub(crate) logical: bool,
    pub(crate) login: Option<Login>,
    pub(crate) subs: Set<BinKey>,
}

/// An agent logged in on a client, at a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Login {
    pub(crate) agent: AgentIdx,
    pub(crate) place: PlaceIdx,
}

/// The request being handled: who asked, and how to address the reply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub(crate) client: i32,
    pub(crate) id: MessageId,
    reference_id: Option<i32>,
    reply_proxy_id: Option<i32>,
}

/// Counts of what the engine holds (for logs and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections known.
    pub connections: usize,
    /// Registered clients (plain, proxy and logical).
    pub clients: usize,
    /// Agents logged in.
    pub logins: usize,
    /// Workbin subscriptions.
    pub subscriptions: usize,
    /// Interactions stored.
    pub interactions: usize,
    /// Their size together, as counted for `max_stored_bytes`.
    pub stored_bytes: usize,
}

impl Engine {
    /// An engine with this configuration and no clients or interactions. `seed` makes hashing
    /// and InteractionId generation deterministic (see the type's documentation).
    pub fn new(cfg: Arc<Config>, seed: u64) -> Self {
        let hasher = FixedState::with_seed(seed);
        Self {
            names: Names::new(&cfg),
            logins: vec![None; cfg.agents.len()],
            conns: Map::with_hasher(hasher.clone()),
            clients: Map::with_hasher(hasher.clone()),
            next_client: 1,
            bins: Map::with_hasher(hasher.clone()),
            interactions: Map::with_hasher(hasher.clone()),
            stored_bytes: 0,
            ids: IdGen::new(seed),
            hasher,
            notes: Vec::new(),
            recording: false,
            changes: Vec::new(),
            cfg,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    /// A connection was accepted. Opening a known connection does nothing.
    pub fn open(&mut self, conn: ConnId) {
        self.conns.entry(conn).or_default();
    }

    /// A connection ended: all its clients are unregistered (their agents logged out, their
    /// subscriptions dropped; R13). Interactions are kept. Produces no output today; the
    /// parameter keeps the contract uniform.
    pub fn close(&mut self, conn: ConnId, _out: &mut Vec<Output>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        for id in c.logical.iter().copied().chain(c.client) {
            self.end_client(id);
        }
    }

    /// A message arrived on `conn`. Appends the reply, then any notifications, then (for R2
    /// and R3) a close. See the type's documentation for the contract.
    pub fn handle(&mut self, now: SystemTime, conn: ConnId, msg: &Message, out: &mut Vec<Output>) {
        debug_assert!(self.notes.is_empty());
        let reference_id = msg.reference_id();
        if msg.id == MessageId::PING {
            out.push(Output::Send {
                conn,
                proxy_client_id: None,
                msg: Arc::new(ping_reply(msg)),
            });
            return;
        }
        let c = self.conns.entry(conn).or_default();
        let bare = Ctx {
            client: 0,
            id: msg.id,
            reference_id,
            reply_proxy_id: None,
        };
        if msg.id == MessageId::REQUEST_REGISTER_CLIENT {
            let result = typed::RequestRegisterClient::try_from(msg)
                .map_err(Error::from)
                .and_then(|r| self.register(conn, &r));
            match result {
                Ok(id) => {
                    let mut ack = Message::new(MessageId::EVENT_ACK);
                    if let Some(r) = reference_id {
                        ack.attrs.push(attr::REFERENCE_ID, r);
                    }
                    ack.attrs.push(attr::PROXY_CLIENT_ID, id);
                    out.push(Output::Send {
                        conn,
                        proxy_client_id: None,
                        msg: Arc::new(ack),
                    });
                }
                Err(e) => {
                    let close = matches!(e, Error::InvalidClient { .. })
                        && self.conns.get(&conn).is_some_and(|c| c.client.is_none());
                    out.push(self.error_reply(conn, &bare, &e));
                    if close {
                        out.push(Output::Close {
                            conn,
                            reason: CloseReason::InvalidClient,
                        });
                        self.conns.remove(&conn);
                    }
                }
            }
            return;
        }
        // Registration (R3, and ProxyClientId on proxy connections), then the request itself.
        let ctx = match (c.client, c.proxy) {
            (None, _) => {
                let e = Error::ClientNotRegistered(
                    "the first request on a connection must be RequestRegisterClient",
                );
                out.push(self.error_reply(conn, &bare, &e));
                out.push(Output::Close {
                    conn,
                    reason: CloseReason::NotRegistered,
                });
                self.conns.remove(&conn);
                return;
            }
            (Some(own), false) => Ctx {
                client: own,
                ..bare
            },
            (Some(own), true) => match msg.proxy_client_id() {
                Some(id) if id == own || c.logical.contains(&id) => Ctx {
                    client: id,
                    reply_proxy_id: Some(id),
                    ..bare
                },
                _ => {
                    let e = Error::ClientNotRegistered(
                        "a request on a proxy connection must name a registered logical client in ProxyClientId",
                    );
                    out.push(self.error_reply(conn, &bare, &e));
                    return;
                }
            },
        };
        let result = Typed::try_from(msg)
            .map_err(Error::from)
            .and_then(|t| self.dispatch(now, &ctx, t));
        match result {
            Ok(body) => out.push(self.reply(conn, &ctx, body)),
            Err(e) => {
                debug_assert!(
                    self.notes.is_empty(),
                    "a failed request must change nothing"
                );
                debug_assert!(
                    self.changes.is_empty(),
                    "a failed request must change nothing"
                );
                self.notes.clear();
                out.push(self.error_reply(conn, &ctx, &e));
            }
        }
        out.append(&mut self.notes);
    }

    /// True when `conn` has a registered client (the driver's registration timeout ends then).
    pub fn is_registered(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.client.is_some())
    }

    /// Counts of what the engine holds.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.len(),
            clients: self.clients.len(),
            logins: self.logins.iter().filter(|l| l.is_some()).count(),
            subscriptions: self.clients.values().map(|c| c.subs.len()).sum(),
            interactions: self.interactions.len(),
            stored_bytes: self.stored_bytes,
        }
    }

    fn dispatch(&mut self, now: SystemTime, ctx: &Ctx, t: Typed) -> Result<Message, Error> {
        match t {
            Typed::RequestUnregisterClient(_) => self.unregister(ctx),
            Typed::RequestAgentLogin(r) => self.login(ctx, &r),
            Typed::RequestAgentLogout(_) => self.logout(ctx),
            Typed::RequestWorkbinTypesInfo(r) => self.workbin_types(ctx, &r),
            Typed::RequestGetWorkbinContent(r) => self.content(ctx, &r),
            Typed::RequestWorkbinNotifications(r) => self.subscribe(ctx, &r),
            Typed::RequestCancelWorkbinNotifications(r) => self.unsubscribe(ctx, &r),
            Typed::RequestSubmit(r) => self.submit(now, ctx, r),
            Typed::RequestPlaceInWorkbin(r) => self.place_in_workbin(ctx, &r),
            Typed::RequestPlaceInQueue(r) => self.place_in_queue(ctx, &r),
            Typed::RequestPull(r) => self.pull(ctx, &r),
            Typed::RequestStopProcessing(r) => self.stop(ctx, &r),
            Typed::RequestChangeProperties(r) => self.change_properties(ctx, &r),
            Typed::RequestGetInteractionProperties(r) => self.get_properties(ctx, &r),
            // Registration and Ping are handled before dispatch; the rest are events or unknown.
            _ => Err(Error::UnsupportedRequest(ctx.id)),
        }
    }

    /// The reply to `ctx`: `ReferenceId`, the logical client's `ProxyClientId`, then `body`'s
    /// attributes.
    fn reply(&self, conn: ConnId, ctx: &Ctx, body: Message) -> Output {
        let mut attrs = KvList::with_capacity(body.attrs.len() + 2);
        if let Some(r) = ctx.reference_id {
            attrs.push(attr::REFERENCE_ID, r);
        }
        if let Some(p) = ctx.reply_proxy_id {
            attrs.push(attr::PROXY_CLIENT_ID, p);
        }
        for (k, v) in body.attrs {
            attrs.push(k, v);
        }
        Output::Send {
            conn,
            proxy_client_id: None,
            msg: Arc::new(Message { id: body.id, attrs }),
        }
    }

    fn error_reply(&self, conn: ConnId, ctx: &Ctx, e: &Error) -> Output {
        let body = Message::new(MessageId::EVENT_ERROR)
            .with(attr::ERROR_CODE, e.code().to_int())
            .with(attr::ERROR_DESCRIPTION, e.to_string());
        self.reply(conn, ctx, body)
    }

    fn register(&mut self, conn: ConnId, r: &typed::RequestRegisterClient) -> Result<i32, Error> {
        let invalid = || Error::InvalidClient {
            name: r.client_name.to_string(),
            kind: r.client_type.to_string(),
        };
        let kind = match r.client_type {
            ClientType::AgentApplication => AppType::AgentApplication,
            ClientType::MediaServer => AppType::MediaServer,
            ClientType::RoutingEngine => AppType::RoutingEngine,
            ClientType::Proxy => AppType::Proxy,
            ClientType::Unknown(_) => return Err(invalid()),
        };
        if !self.cfg.application_allowed(&r.client_name, kind) {
            return Err(invalid());
        }
        let limit = self.cfg.limits.max_clients_per_connection;
        let c = self.conns.entry(conn).or_default();
        let logical = match (c.client, c.proxy) {
            (None, _) => false,
            (Some(_), true) if kind == AppType::Proxy => {
                return Err(Error::InvalidState(
                    "a proxy connection cannot register another Proxy".to_owned(),
                ));
            }
            (Some(_), true) if c.logical.len() >= limit => {
                return Err(Error::LimitExceeded {
                    limit: "max_clients_per_connection",
                    value: limit,
                    what: "no more logical clients on this proxy connection".to_owned(),
                });
            }
            (Some(_), true) => true,
            (Some(own), false) => {
                return Err(Error::InvalidState(format!(
                    "this connection already has a registered client (ProxyClientId {own}); \
                     send RequestUnregisterClient first"
                )));
            }
        };
        let id = self.allocate_client_id();
        let c = self.conns.entry(conn).or_default();
        if logical {
            c.logical.insert(id);
        } else {
            c.client = Some(id);
            c.proxy = kind == AppType::Proxy;
        }
        self.clients.insert(
            id,
            Client {
                conn,
                name: ixn_codec::detach_str(&r.client_name),
                kind,
                logical,
                login: None,
                subs: Set::with_hasher(self.hasher.clone()),
            },
        );
        Ok(id)
    }

    /// The next free positive id (unique among live clients).
    fn allocate_client_id(&mut self) -> i32 {
        loop {
            let id = self.next_client;
            self.next_client = if id == i32::MAX { 1 } else { id + 1 };
            if !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    fn unregister(&mut self, ctx: &Ctx) -> Result<Message, Error> {
        let conn = self.client(ctx)?.conn;
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.client == Some(ctx.client) {
                // The connection's own client: a proxy takes its logical clients with it.
                let logical: Vec<i32> = c.logical.drain().collect();
                c.client = None;
                c.proxy = false;
                for id in logical {
                    self.end_client(id);
                }
            } else {
                c.logical.remove(&ctx.client);
            }
        }
        self.end_client(ctx.client);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    /// Logs the client's agent out, drops its subscriptions and forgets it.
    fn end_client(&mut self, id: i32) {
        self.logout_client(id);
        self.clients.remove(&id);
    }

    fn login(&mut self, ctx: &Ctx, r: &typed::RequestAgentLogin) -> Result<Message, Error> {
        if let Some(media) = &r.media_list
            && let Some((k, v)) = media.iter().find(|(_, v)| v.as_int().is_none())
        {
            return Err(Error::invalid(
                ctx.id,
                attr::MEDIA_LIST,
                format!(
                    "media {:?} must map to an int, found {}",
                    &**k,
                    v.type_name()
                ),
            ));
        }
        if !self.cfg.tenants.contains_key(&r.tenant_id) {
            return Err(Error::UnknownTenant(r.tenant_id));
        }
        let agent = self
            .cfg
            .agent(&r.agent_id)
            .filter(|a| {
                self.cfg
                    .agents
                    .get(a.get())
                    .is_some_and(|a| a.tenant == r.tenant_id)
            })
            .ok_or_else(|| Error::UnknownAgent(r.agent_id.to_string()))?;
        let place = self
            .cfg
            .place(&r.place_id)
            .ok_or_else(|| Error::UnknownPlace(r.place_id.to_string()))?;
        let client = self.client(ctx)?;
        if let Some(l) = client.login {
            return if l.agent == agent {
                Ok(Message::new(MessageId::EVENT_ACK))
            } else {
                Err(Error::InvalidState(format!(
                    "agent {:?} is already logged in on this client; log out first",
                    self.agent_name(l.agent)
                )))
            };
        }
        if self.logins.get(agent.get()).copied().flatten().is_some() {
            return Err(Error::AgentLoggedInElsewhere(r.agent_id.to_string()));
        }
        if let Some(slot) = self.logins.get_mut(agent.get()) {
            *slot = Some(ctx.client);
        }
        if let Some(c) = self.clients.get_mut(&ctx.client) {
            c.login = Some(Login { agent, place });
        }
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    fn logout(&mut self, ctx: &Ctx) -> Result<Message, Error> {
        if self.client(ctx)?.login.is_none() {
            return Err(Error::AgentNotLoggedIn(ctx.id));
        }
        self.logout_client(ctx.client);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    /// Ends the client's login (if any) and drops its subscriptions (R4).
    fn logout_client(&mut self, id: i32) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let login = c.login.take();
        let subs: Vec<BinKey> = c.subs.drain().collect();
        if let Some(l) = login
            && let Some(slot) = self.logins.get_mut(l.agent.get())
        {
            *slot = None;
        }
        for key in subs {
            if let Some(bin) = self.bins.get_mut(&key) {
                bin.subs.shift_remove(&id);
                if bin.is_empty() {
                    self.bins.remove(&key);
                }
            }
        }
    }

    /// The requesting client. It exists: registration was checked before dispatch.
    pub(crate) fn client(&self, ctx: &Ctx) -> Result<&Client, Error> {
        self.clients
            .get(&ctx.client)
            .ok_or(Error::ClientNotRegistered("client is gone"))
    }

    /// The client's login, or AgentNotLoggedIn.
    pub(crate) fn require_login(&self, ctx: &Ctx) -> Result<Login, Error> {
        self.client(ctx)?
            .login
            .ok_or(Error::AgentNotLoggedIn(ctx.id))
    }

    pub(crate) fn agent_name(&self, a: AgentIdx) -> ByteString {
        self.names.agents.get(a.get()).cloned().unwrap_or_default()
    }

    pub(crate) fn agent_tenant(&self, a: AgentIdx) -> i32 {
        self.cfg.agents.get(a.get()).map_or(i32::MIN, |a| a.tenant)
    }

    /// Queues a notification for every subscriber of `key` (PropertiesChanged only to those
    /// that asked). `interaction` is called only if someone will receive it.
    pub(crate) fn notify(
        &mut self,
        key: BinKey,
        op: ixn_codec::WorkbinContentOperation,
        interaction: impl FnOnce(&Self) -> KvList,
    ) {
        let Some(bin) = self.bins.get(&key) else {
            return;
        };
        let props_only = op == ixn_codec::WorkbinContentOperation::PropertiesChanged;
        if bin.subs.is_empty() || (props_only && !bin.subs.values().any(|wants| *wants)) {
            return;
        }
        let msg = Arc::new(
            Message::new(MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
                .with(attr::WORKBIN, self.bin_info(key))
                .with(attr::WORKBIN_CONTENT_OPERATION, op.to_int())
                .with(attr::INTERACTION, interaction(self)),
        );
        for (client, wants_props) in &bin.subs {
            if props_only && !wants_props {
                continue;
            }
            if let Some(c) = self.clients.get(client) {
                self.notes.push(Output::Send {
                    conn: c.conn,
                    proxy_client_id: c.logical.then_some(*client),
                    msg: Arc::clone(&msg),
                });
            }
        }
    }

    /// A canonical, sorted description of the whole state, for tests that check that a failed
    /// request changed nothing. Not for production use (it walks everything).
    #[doc(hidden)]
    pub fn debug_state(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (conn, c) in &self.conns {
            let mut logical: Vec<_> = c.logical.iter().collect();
            logical.sort();
            lines.push(format!(
                "conn {} client {:?} proxy {} logical {:?}",
                conn.0, c.client, c.proxy, logical
            ));
        }
        for (id, c) in &self.clients {
            let mut subs: Vec<String> = c.subs.iter().map(|k| format!("{k:?}")).collect();
            subs.sort();
            lines.push(format!(
                "client {id} conn {} name {} kind {:?} logical {} login {:?} subs {subs:?}",
                c.conn.0, &*c.name, c.kind, c.logical, c.login
            ));
        }
        for (key, bin) in &self.bins {
            let mut items: Vec<&str> = bin.items.iter().map(|s| &**s).collect();
            items.sort_unstable();
            let mut subs: Vec<_> = bin.subs.iter().collect();
            subs.sort();
            lines.push(format!("bin {key:?} items {items:?} subs {subs:?}"));
        }
        for (id, ix) in &self.interactions {
            lines.push(format!(
                "interaction {} {:?} {:?}",
                &**id, ix.loc, ix.user_data
            ));
        }
        lines.sort();
        lines
    }

    /// Where an interaction is, for tests: `None` if unknown.
    #[doc(hidden)]
    pub fn debug_location(&self, id: &str) -> Option<String> {
        self.interactions.get(id).map(|ix| match ix.loc {
            Location::Queued(q) => format!(
                "queue {}",
                self.names.queues.get(q.get()).map_or("?", |s| s)
            ),
            Location::InWorkbin(k) => format!("workbin {}", self.bin_label(k)),
            Location::Handling(a) => format!("agent {}", &*self.agent_name(a)),
        })
    }
}

/// The reply to a `Ping`: `Ping` with the same ReferenceId (and ProxyClientId, if any). Ping
/// touches no state, so a transport may answer it without the engine, provided the reply keeps
/// its place among the connection's other replies.
pub fn ping_reply(msg: &Message) -> Message {
    let mut reply = Message::new(MessageId::PING);
    if let Some(r) = msg.reference_id() {
        reply.attrs.push(attr::REFERENCE_ID, r);
    }
    if let Some(p) = msg.proxy_client_id() {
        reply.attrs.push(attr::PROXY_CLIENT_ID, p);
    }
    reply
}
