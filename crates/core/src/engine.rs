//! The engine: its parts, the driver-facing API, and request dispatch. The requests
//! themselves are in the child modules, by subject.

mod durability;
#[cfg(any(test, fuzzing, feature = "model"))]
pub mod inspect;
mod interaction_requests;
mod scan;
mod session_requests;
mod snapshot_requests;
mod workbin_requests;

use crate::durable::Changes;
use crate::error::Error;
use crate::ids::ClientId;
use crate::interactions::Interactions;
use crate::names::Names;
use crate::output::{CloseReason, ConnId, Output};
use crate::sessions::{Caller, Sessions};
use crate::snapshots::Snapshots;
use crate::types::{BinKey, Login};
use crate::workbins::Workbins;
use foldhash::fast::FixedState;
use ixn_codec::typed::{self, Typed};
use ixn_codec::{KvList, Message, MessageId, WorkbinContentOperation, attr};
use ixn_config::Config;
use std::sync::Arc;
use std::time::SystemTime;

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
///   it, including after an [`Output::Close`]);
/// - [`Engine::work`], whenever [`Engine::has_work`]: one slice of a snapshot being taken (a
///   snapshot that must read more than [`crate::SCAN_SLICE`] interactions is answered from
///   here, and its client's requests that came meanwhile are handed back in [`crate::Finished`]
///   to be handled then). Call it between inputs, so that other clients are served meanwhile.
///
/// Each input appends its [`Output`]s to the caller's vector, **in the order they must take
/// effect**: every request gets exactly one reply (R14) carrying its `ReferenceId`, and that
/// reply comes first, followed by the notifications the request caused (TakenOut on the old
/// workbin before PlacedIn on the new one). The driver must queue all outputs of one input before
/// it writes any of them or feeds the next input, and must never reorder messages to one
/// connection; then the ordering rule of docs/protocol.md, section 2 holds.
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
    cfg: Arc<Config>,
    names: Names,
    sessions: Sessions,
    workbins: Workbins,
    interactions: Interactions,
    /// Open snapshots and the locks clients hold.
    snapshots: Snapshots,
    /// Snapshots being taken a slice at a time.
    scans: crate::scans::Scans,
    /// Notifications of the request being handled; appended after its reply.
    notes: Vec<Output>,
    /// Durable changes of the request being handled (when recording).
    changes: Changes,
    /// Whether this engine serves, or stands by (see [`Engine::stand_by`]).
    role: Role,
}

/// Whether an engine serves its clients, or stands by while another server does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// It serves (every engine starts so).
    #[default]
    Active,
    /// It answers every message with EventError NotActive and changes nothing.
    Standby {
        /// The active server's address given to clients, when one is known.
        active: Option<String>,
    },
}

/// The request being handled: who asked, and how to address the reply.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    client: ClientId,
    id: MessageId,
}

/// Who acts on interactions: an agent (docs/behaviour.md, "Access" rules) or a media server / routing
/// engine (any interaction, any workbin).
#[derive(Clone, Copy, Debug)]
enum Actor {
    Agent(Login),
    Service,
}

/// What the engine holds, broken down for metrics ([`Engine::census`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// The totals.
    pub stats: Stats,
    /// Registered clients by ClientType: AgentApplication, MediaServer, RoutingEngine, Proxy.
    pub clients_by_type: [usize; 4],
    /// Interactions in a queue.
    pub queued: usize,
    /// Interactions in a workbin.
    pub in_workbins: usize,
    /// Interactions being handled by an agent (pulled).
    pub handling: usize,
}

impl Census {
    /// The ClientType names, in the order of [`Census::clients_by_type`].
    pub const CLIENT_TYPES: [&'static str; 4] =
        ["AgentApplication", "MediaServer", "RoutingEngine", "Proxy"];
}

/// The queues and workbin instances holding the most interactions ([`Engine::busiest`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Busiest {
    /// Queue names with their counts, the fullest first (then by name).
    pub queues: Vec<(String, usize)>,
    /// Workbin instances (`Drafts of a1`) with their counts, the fullest first (then by name).
    pub workbins: Vec<(String, usize)>,
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
    /// Snapshots open.
    pub snapshots: usize,
    /// Interactions locked by a client.
    pub locks: usize,
    /// What open snapshots take in memory, in bytes (32 per interaction they hold).
    pub snapshot_bytes: usize,
}

impl Engine {
    /// An engine with this configuration and no clients or interactions. `seed` makes hashing
    /// and InteractionId generation deterministic (see the type's documentation).
    pub fn new(cfg: Arc<Config>, seed: u64) -> Self {
        let hasher = FixedState::with_seed(seed);
        let agents = cfg.agents().len();
        Self {
            names: Names::new(&cfg),
            sessions: Sessions::new(agents, hasher.clone()),
            workbins: Workbins::new(hasher.clone()),
            snapshots: Snapshots::new(hasher.clone()),
            scans: crate::scans::Scans::default(),
            interactions: Interactions::new(seed, hasher),
            notes: Vec::new(),
            changes: Changes::default(),
            role: Role::Active,
            cfg,
        }
    }

    /// Makes this engine a standby's: every message, `Ping` included, is answered with
    /// EventError NotActive naming `active` (the active server's address, when one is known),
    /// and nothing changes. A server sharing its store with an active one runs such an engine
    /// until it takes over with an engine loaded from the store.
    pub fn stand_by(&mut self, active: Option<String>) {
        self.role = Role::Standby { active };
    }

    /// Whether this engine serves or stands by (and then, for whom).
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Whether this engine serves (it is not standing by).
    pub fn is_active(&self) -> bool {
        self.role == Role::Active
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    /// A connection was accepted. Opening a known connection does nothing.
    pub fn open(&mut self, conn: ConnId) {
        self.sessions.open(conn);
    }

    /// `conn` proved something about the application it speaks for (R15): a verified TLS
    /// client certificate (given when the connection opens) or a password checked with
    /// [`crate::verify_password`] (given before the RequestRegisterClient it came with).
    pub fn prove(&mut self, conn: ConnId, proof: crate::Proof) {
        self.sessions.prove(conn, proof);
    }

    /// A connection ended: all its clients are unregistered (their agents logged out, their
    /// subscriptions dropped; R13). Interactions are kept. Produces no output today; the
    /// parameter keeps the contract uniform.
    pub fn close(&mut self, conn: ConnId, _out: &mut Vec<Output>) {
        let subs = self.sessions.close(conn);
        self.drop_subscriptions(subs);
        self.scans.closed(conn);
        self.end_clients();
    }

    /// A message arrived on `conn`. Appends the reply, then any notifications, then (for R2
    /// and R3) a close. See the type's documentation for the contract.
    pub fn handle(&mut self, now: SystemTime, conn: ConnId, msg: &Message, out: &mut Vec<Output>) {
        debug_assert!(self.notes.is_empty());
        let mut reply = Reply {
            conn,
            reference_id: msg.reference_id(),
            proxy_client_id: None,
        };
        if let Role::Standby { active } = &self.role {
            reply.proxy_client_id = msg.proxy_client_id().and_then(ClientId::from_wire);
            out.push(reply.error(&Error::NotActive {
                active: active.clone(),
            }));
            return;
        }
        if self.hold_behind_scan(conn, msg, out) {
            return;
        }
        if msg.id == MessageId::PING {
            out.push(Output::Send {
                conn,
                proxy_client_id: None,
                msg: Arc::new(ping_reply(msg)),
            });
            return;
        }
        if msg.id == MessageId::REQUEST_REGISTER_CLIENT {
            self.handle_register(conn, msg, &reply, out);
            return;
        }
        // Registration (R3, and ProxyClientId on proxy connections), then the request itself.
        let client = match self.sessions.caller(conn, msg.proxy_client_id()) {
            Caller::Client { id, proxied } => {
                reply.proxy_client_id = proxied.then_some(id);
                id
            }
            Caller::Unregistered => {
                out.push(reply.error(&Error::ClientNotRegistered(
                    "the first request on a connection must be RequestRegisterClient",
                )));
                out.push(Output::Close {
                    conn,
                    reason: CloseReason::NotRegistered,
                });
                self.sessions.drop_unregistered(conn);
                return;
            }
            Caller::UnknownLogical => {
                out.push(reply.error(&Error::ClientNotRegistered(
                    "a request on a proxy connection must name a registered logical client in ProxyClientId",
                )));
                return;
            }
        };
        self.expire_snapshots(now);
        let ctx = Ctx { client, id: msg.id };
        let result = match Typed::try_from(msg).map_err(Error::from) {
            Ok(Typed::RequestTakeSnapshot(r)) => {
                match self.take_snapshot(now, &ctx, &r, (reply, msg.proxy_client_id())) {
                    Ok(Some(m)) => Ok(m),
                    // Answered by `work` once its scan is done.
                    Ok(None) => return,
                    Err(e) => Err(e),
                }
            }
            Ok(t) => self.dispatch(now, &ctx, t),
            Err(e) => Err(e),
        };
        match result {
            Ok(body) => out.push(reply.to(body)),
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
                out.push(reply.error(&e));
            }
        }
        out.append(&mut self.notes);
    }

    /// RequestRegisterClient: the reply, and for R2 and R15 failures on a first registration a
    /// close.
    fn handle_register(
        &mut self,
        conn: ConnId,
        msg: &Message,
        reply: &Reply,
        out: &mut Vec<Output>,
    ) {
        let first = !self.sessions.is_registered(conn);
        let result = typed::RequestRegisterClient::try_from(msg)
            .map_err(Error::from)
            .and_then(|r| self.register(conn, &r));
        match result {
            Ok(id) => out.push(
                reply.to(Message::new(MessageId::EVENT_ACK).with(attr::PROXY_CLIENT_ID, id.get())),
            ),
            Err(e) => {
                out.push(reply.error(&e));
                let reason = match e {
                    Error::InvalidClient { .. } => Some(CloseReason::InvalidClient),
                    Error::AuthenticationFailed { .. } => Some(CloseReason::AuthenticationFailed),
                    _ => None,
                };
                if first && let Some(reason) = reason {
                    out.push(Output::Close { conn, reason });
                    self.sessions.drop_unregistered(conn);
                }
            }
        }
    }

    /// True when `conn` has a registered client (the driver's registration timeout ends then).
    pub fn is_registered(&self, conn: ConnId) -> bool {
        self.sessions.is_registered(conn)
    }

    /// [`Engine::stats`] with clients by type and interactions by state. Walks every client
    /// and interaction: for a metrics scrape, not for each request.
    pub fn census(&self) -> Census {
        let mut census = Census {
            stats: self.stats(),
            clients_by_type: self.sessions.clients_by_type(),
            ..Census::default()
        };
        for i in self.interactions.iter() {
            match i.loc {
                crate::types::Location::Queued(_) => census.queued += 1,
                crate::types::Location::InWorkbin(_) => census.in_workbins += 1,
                crate::types::Location::Handling(_) => census.handling += 1,
            }
        }
        census
    }

    /// The `n` queues and the `n` workbin instances holding the most interactions. Walks every
    /// queue and workbin instance (not every interaction): for a metrics scrape.
    pub fn busiest(&self, n: usize) -> Busiest {
        let mut busiest = Busiest::default();
        for (loc, count) in self.interactions.located_counts() {
            match loc {
                crate::types::Location::Queued(q) => {
                    busiest
                        .queues
                        .push((self.names.queue(q).to_string(), count));
                }
                crate::types::Location::InWorkbin(key) => busiest.workbins.push((
                    format!(
                        "{} of {}",
                        self.names.workbin(key.ty),
                        self.names.owner(key.owner)
                    ),
                    count,
                )),
                crate::types::Location::Handling(_) => {}
            }
        }
        for list in [&mut busiest.queues, &mut busiest.workbins] {
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            list.truncate(n);
        }
        busiest
    }

    /// Counts of what the engine holds.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.sessions.connections(),
            clients: self.sessions.clients(),
            logins: self.sessions.logins(),
            subscriptions: self.sessions.subscriptions(),
            interactions: self.interactions.len(),
            stored_bytes: self.interactions.stored_bytes(),
            snapshots: self.snapshots.len(),
            locks: self.snapshots.locks(),
            snapshot_bytes: self.snapshots.bytes(),
        }
    }

    fn dispatch(&mut self, now: SystemTime, ctx: &Ctx, t: Typed) -> Result<Message, Error> {
        match t {
            Typed::RequestUnregisterClient(_) => self.unregister(ctx),
            Typed::RequestAgentLogin(r) => self.login(ctx, &r),
            Typed::RequestAgentLogout(_) => self.logout(ctx),
            Typed::RequestWorkbinTypesInfo(r) => self.workbin_types(&r),
            Typed::RequestGetWorkbins(r) => self.workbins_of(ctx, &r),
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
            Typed::RequestGetSnapshotInteractions(r) => self.snapshot_page(now, ctx, &r),
            Typed::RequestReleaseSnapshot(r) => self.release_snapshot(ctx, &r),
            Typed::RequestLockInteraction(r) => self.lock(now, ctx, &r),
            Typed::RequestUnlockInteraction(r) => self.unlock(ctx, &r),
            Typed::RequestMoveInteractions(r) => self.move_interactions(now, ctx, &r),
            // Registration and Ping are handled before dispatch; the rest are events or unknown.
            _ => Err(Error::UnsupportedRequest(ctx.id)),
        }
    }

    /// The client's login, or AgentNotLoggedIn.
    fn require_login(&self, ctx: &Ctx) -> Result<Login, Error> {
        self.sessions
            .client(ctx.client)?
            .login()
            .ok_or(Error::AgentNotLoggedIn(ctx.id))
    }

    /// Drops subscriptions on the workbin side (their client side is already gone).
    fn drop_subscriptions(&mut self, subs: Vec<(ClientId, BinKey)>) {
        for (client, key) in subs {
            self.workbins.unsubscribe(key, client);
        }
    }

    /// Queues a notification for every subscriber of `key` (PropertiesChanged only to those
    /// that asked). `interaction` is called only if someone will receive it.
    fn notify(
        &mut self,
        key: BinKey,
        op: WorkbinContentOperation,
        interaction: impl FnOnce(&Self) -> KvList,
    ) {
        let props_only = op == WorkbinContentOperation::PropertiesChanged;
        let mut listeners = self.workbins.listeners(key, props_only).peekable();
        if listeners.peek().is_none() {
            return;
        }
        let msg = Arc::new(
            Message::new(MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
                .with(attr::WORKBIN, self.names.bin_info(key))
                .with(attr::WORKBIN_CONTENT_OPERATION, op.to_int())
                .with(attr::INTERACTION, interaction(self)),
        );
        for client in listeners {
            if let Some((conn, proxy_client_id)) = self.sessions.address(client) {
                self.notes.push(Output::Send {
                    conn,
                    proxy_client_id,
                    msg: Arc::clone(&msg),
                });
            }
        }
    }
}

/// How to address the reply to one request.
#[derive(Clone, Copy, Debug)]
struct Reply {
    conn: ConnId,
    reference_id: Option<i32>,
    /// The logical client of a proxy connection that asked (its replies carry its id).
    proxy_client_id: Option<ClientId>,
}

impl Reply {
    /// The reply: `ReferenceId`, the logical client's `ProxyClientId`, then `body`'s attributes.
    fn to(&self, body: Message) -> Output {
        let mut attrs = KvList::with_capacity(body.attrs.len() + 2);
        if let Some(r) = self.reference_id {
            attrs.push(attr::REFERENCE_ID, r);
        }
        if let Some(p) = self.proxy_client_id {
            attrs.push(attr::PROXY_CLIENT_ID, p.get());
        }
        for (k, v) in body.attrs {
            attrs.push(k, v);
        }
        Output::Send {
            conn: self.conn,
            proxy_client_id: None,
            msg: Arc::new(Message { id: body.id, attrs }),
        }
    }

    fn error(&self, e: &Error) -> Output {
        match e {
            Error::NotActive { active } => self.to(not_active_notice(active.clone())),
            _ => self.to(Message::new(MessageId::EVENT_ERROR)
                .with(attr::ERROR_CODE, e.code().to_int())
                .with(attr::ERROR_DESCRIPTION, e.to_string())),
        }
    }
}

/// What a server that stepped down tells the clients it keeps (the web gateway's link): an
/// EventError NotActive with no ReferenceId, naming the active server if known. Every client
/// registered before is gone.
pub fn not_active_notice(active: Option<String>) -> Message {
    let e = Error::NotActive { active };
    let mut msg = Message::new(MessageId::EVENT_ERROR)
        .with(attr::ERROR_CODE, e.code().to_int())
        .with(attr::ERROR_DESCRIPTION, e.to_string());
    if let Error::NotActive { active: Some(a) } = e {
        msg = msg.with(attr::ACTIVE_SERVER, a);
    }
    msg
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
