//! The gateway's shared state: the engine link (requests out, replies matched by ReferenceId,
//! notifications routed by ProxyClientId), web sessions and CometD sessions, and the sweeper.
//!
//! # Lock order
//!
//! Three kinds of lock, always taken in this order and never the other way round:
//! `Hub::state`, then a `WebSession::inner`, then a CometD session's `Live::state`. Code that
//! holds a later one never waits for an earlier one; most take one at a time.

use crate::auth;
use crate::bayeux::reply::{Raw, raw};
use crate::bayeux::session::{Closed, Offer};
use crate::bayeux::{Live, Registry, lock};
use crate::gws::{self, WorkbinRef};
use ixn_codec::{ClientType, Message, MessageId, WorkbinContentOperation, attr};
use ixn_config::{AgentIdx, Config};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// How long a request may wait for the engine's reply before it is answered as an internal error.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the sweeper runs.
pub(crate) const SWEEP_PERIOD: Duration = Duration::from_millis(997);
/// The CometD channel of workbin messages.
pub(crate) const WORKBINS_CHANNEL: &str = "/v2/me/workbins";

/// The present time, from tokio's clock (so that tests that pause it move the gateway's
/// deadlines too): session expiry, idle web sessions.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What a pending ReferenceId is waiting for.
enum Pending {
    /// An HTTP request waiting for the reply.
    Reply(oneshot::Sender<Arc<Message>>),
    /// A REST Subscribe/Unsubscribe: the outcome goes to CometD.
    Subscription {
        client: i32,
        workbin: WorkbinRef,
        unsubscribe: bool,
    },
}

/// A signed-in agent: one logical client on the gateway's proxy connection.
#[derive(Debug)]
pub(crate) struct WebSession {
    pub(crate) agent: AgentIdx,
    /// The logical client's ProxyClientId.
    pub(crate) client: i32,
    pub(crate) inner: Mutex<WebInner>,
}

#[derive(Debug)]
pub(crate) struct WebInner {
    /// The place of the contact center session, once started.
    pub(crate) place: Option<String>,
    pub(crate) last_seen: Instant,
    /// Its CometD sessions, oldest first (also in `State::cometd`, by id).
    pub(crate) cometd: Vec<Arc<Live>>,
    /// Its session tokens (cookies), oldest first: each sign-in with credentials adds one.
    pub(crate) tokens: Vec<String>,
    pub(crate) ended: bool,
}

/// Session tokens one web session keeps (one per sign-in with credentials: browsers, tabs,
/// devices); a further sign-in retires the oldest.
const TOKENS_PER_SESSION: usize = 8;

impl WebSession {
    pub(crate) fn touch(&self) {
        lock(&self.inner).last_seen = now();
    }

    pub(crate) fn place(&self) -> Option<String> {
        lock(&self.inner).place.clone()
    }

    pub(crate) fn set_place(&self, place: Option<String>) {
        lock(&self.inner).place = place;
    }
}

#[derive(Default)]
struct State {
    pending: HashMap<i32, Pending>,
    web: HashMap<String, Arc<WebSession>>,
    web_by_agent: HashMap<AgentIdx, Arc<WebSession>>,
    web_by_client: HashMap<i32, Arc<WebSession>>,
    cometd: HashMap<String, Arc<Live>>,
}

/// Counts for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) web_sessions: usize,
    pub(crate) cometd_sessions: usize,
    pub(crate) pending: usize,
}

/// `WorkbinSubscriptionStateChangeMessage`: the outcome of a REST Subscribe or Unsubscribe.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionState<'a> {
    message_type: &'static str,
    #[serde(flatten)]
    workbin: &'a WorkbinRef,
    reference_id: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<String>,
    state_resource: &'static str,
}

/// `WorkbinStateChangeMessage`: a subscribed workbin changed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentChange {
    message_type: &'static str,
    action: &'static str,
    #[serde(flatten)]
    workbin: WorkbinRef,
    #[serde(flatten)]
    interaction: serde_json::Map<String, Value>,
}

pub(crate) struct Hub {
    pub(crate) config: Arc<Config>,
    requests: mpsc::Sender<Message>,
    next_ref: AtomicI32,
    state: Mutex<State>,
    /// Cancelled when the gateway stops (releases held long-polls).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the engine ends the link while the gateway is serving.
    pub(crate) link_lost: CancellationToken,
    /// Signalled when the link's proxy registration is gone (a standby, a server that stepped
    /// down): [`proxy_keeper`] registers again until the engine accepts.
    proxy_lost: tokio::sync::Notify,
    /// Password checks, on their own threads.
    pub(crate) passwords: auth::Checker,
    /// Sign-ins checked per client address (`[http] sign_ins_per_second`).
    pub(crate) sign_ins: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    /// A hash checked when the agent is unknown or has none, so that a refusal costs the same
    /// whether the agent exists or not (no user enumeration by timing).
    pub(crate) decoy_hash: String,
    /// The session cookie's attributes (`Secure` under TLS).
    pub(crate) cookie_attrs: &'static str,
    /// What the web API counts.
    pub(crate) metrics: Arc<crate::metrics::WebMetrics>,
}

impl Hub {
    pub(crate) fn new(
        config: Arc<Config>,
        requests: mpsc::Sender<Message>,
        tls: bool,
        metrics: Arc<crate::metrics::WebMetrics>,
    ) -> Result<Arc<Self>, String> {
        let threads = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .min(2);
        let passwords = auth::Checker::start(threads)?;
        let rate = std::num::NonZeroU32::new(config.http.sign_ins_per_second)
            .unwrap_or(std::num::NonZeroU32::MIN);
        let sign_ins = governor::RateLimiter::keyed(governor::Quota::per_second(rate));
        // A configured hash has the cost of the real ones; without any, one of the defaults.
        let decoy_hash = match config.agents().find_map(|(_, a)| a.password_hash.clone()) {
            Some(h) => h,
            None => ixn_config::password::hash(&auth::random_token(16).unwrap_or_default())?,
        };
        Ok(Arc::new(Self {
            config,
            requests,
            next_ref: AtomicI32::new(1),
            state: Mutex::new(State::default()),
            shutdown: CancellationToken::new(),
            link_lost: CancellationToken::new(),
            proxy_lost: tokio::sync::Notify::new(),
            passwords,
            sign_ins,
            decoy_hash,
            cookie_attrs: if tls {
                "Path=/; HttpOnly; SameSite=Lax; Secure"
            } else {
                "Path=/; HttpOnly; SameSite=Lax"
            },
            metrics,
        }))
    }

    fn next_reference(&self) -> i32 {
        // Positive, wrapping after 2^31 - 1 requests.
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        if r == 0 { self.next_reference() } else { r }
    }

    /// Sends `msg` for logical client `client` (None: the proxy itself) and waits for its reply.
    pub(crate) async fn request(
        &self,
        client: Option<i32>,
        mut msg: Message,
    ) -> Result<Arc<Message>, String> {
        let reference = self.next_reference();
        let (tx, rx) = oneshot::channel();
        lock(&self.state)
            .pending
            .insert(reference, Pending::Reply(tx));
        msg.attrs.set(attr::REFERENCE_ID, reference);
        if let Some(c) = client {
            msg.attrs.set(attr::PROXY_CLIENT_ID, c);
        }
        if self.requests.send(msg).await.is_err() {
            lock(&self.state).pending.remove(&reference);
            return Err("the engine is not reachable (the server is stopping)".into());
        }
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err("the engine connection closed before the reply".into()),
            Err(_) => {
                lock(&self.state).pending.remove(&reference);
                Err(format!(
                    "no reply from the engine within {} s",
                    REPLY_TIMEOUT.as_secs()
                ))
            }
        }
    }

    /// Sends a subscribe or cancel for `client` and returns its ReferenceId at once; the
    /// outcome is published on CometD, naming `workbin`.
    pub(crate) async fn subscription(
        &self,
        client: i32,
        mut msg: Message,
        workbin: WorkbinRef,
        unsubscribe: bool,
    ) -> Result<i32, String> {
        let reference = self.next_reference();
        lock(&self.state).pending.insert(
            reference,
            Pending::Subscription {
                client,
                workbin,
                unsubscribe,
            },
        );
        msg.attrs.set(attr::REFERENCE_ID, reference);
        msg.attrs.set(attr::PROXY_CLIENT_ID, client);
        if self.requests.send(msg).await.is_err() {
            lock(&self.state).pending.remove(&reference);
            return Err("the engine is not reachable (the server is stopping)".into());
        }
        Ok(reference)
    }

    /// Registers the gateway's proxy connection.
    /// Registers the link as a proxy. `Ok(false)`: the engine is a standby's (NotActive); the
    /// caller lets [`proxy_keeper`] try again.
    pub(crate) async fn register_proxy(&self) -> Result<bool, String> {
        let msg = Message::new(MessageId::REQUEST_REGISTER_CLIENT)
            .with(
                attr::CLIENT_NAME,
                self.config.http.proxy_application.as_str(),
            )
            .with(attr::CLIENT_TYPE, ClientType::Proxy.to_int());
        let reply = self.request(None, msg).await?;
        if reply.id == MessageId::EVENT_ACK {
            Ok(true)
        } else if reply.attrs.get_int(attr::ERROR_CODE)
            == Some(ixn_codec::ErrorCode::NotActive.to_int())
        {
            Ok(false)
        } else {
            Err(gws::engine_reason(&reply))
        }
    }

    /// The proxy registration is gone: [`proxy_keeper`] registers again.
    pub(crate) fn proxy_lost(&self) {
        self.proxy_lost.notify_one();
    }

    /// The live web session holding `token`.
    pub(crate) fn web_by_token(&self, token: &str) -> Option<Arc<WebSession>> {
        lock(&self.state).web.get(token).cloned()
    }

    /// A sign-in with credentials: the agent's web session (created, a new logical client, when
    /// there is none) and a new session token for it.
    pub(crate) async fn sign_in(
        &self,
        agent: AgentIdx,
    ) -> Result<(Arc<WebSession>, String), gws::ApiError> {
        let token = auth::random_token(32).ok_or_else(|| {
            gws::ApiError::new(gws::Status::Internal, "no randomness for a session token")
        })?;
        {
            let mut st = lock(&self.state);
            if let Some(w) = st.web_by_agent.get(&agent).cloned() {
                Self::add_token(&mut st, &w, &token);
                return Ok((w, token));
            }
            if st.web_by_agent.len() >= self.config.http.max_web_sessions {
                return Err(gws::ApiError::new(
                    gws::Status::BadState,
                    format!(
                        "the server has its maximum of {} signed-in agents ([http] max_web_sessions); try again later",
                        self.config.http.max_web_sessions
                    ),
                )
                .with_http(axum::http::StatusCode::SERVICE_UNAVAILABLE));
            }
        }
        let msg = Message::new(MessageId::REQUEST_REGISTER_CLIENT)
            .with(
                attr::CLIENT_NAME,
                self.config.http.client_application.as_str(),
            )
            .with(attr::CLIENT_TYPE, ClientType::AgentApplication.to_int());
        let reply = self
            .request(None, msg)
            .await
            .map_err(|e| gws::ApiError::new(gws::Status::Internal, e))?;
        let client = match (reply.id, reply.attrs.get_int(attr::PROXY_CLIENT_ID)) {
            (MessageId::EVENT_ACK, Some(c)) => c,
            _ => return Err(gws::ApiError::from_engine(&reply)),
        };
        let session = Arc::new(WebSession {
            agent,
            client,
            inner: Mutex::new(WebInner {
                place: None,
                last_seen: now(),
                cometd: Vec::new(),
                tokens: Vec::new(),
                ended: false,
            }),
        });
        let existing = {
            let mut st = lock(&self.state);
            let w = match st.web_by_agent.get(&agent) {
                Some(w) => Some(Arc::clone(w)),
                None => {
                    st.web_by_agent.insert(agent, Arc::clone(&session));
                    st.web_by_client.insert(client, Arc::clone(&session));
                    None
                }
            };
            Self::add_token(&mut st, w.as_ref().unwrap_or(&session), &token);
            w
        };
        if let Some(w) = existing {
            // Two sign-ins raced: keep the first, drop the spare client.
            self.unregister(client).await;
            return Ok((w, token));
        }
        info!(agent = %self.config[agent].id, client, "web session started");
        Ok((session, token))
    }

    /// Gives `web` a new token, retiring its oldest past [`TOKENS_PER_SESSION`].
    fn add_token(st: &mut State, web: &Arc<WebSession>, token: &str) {
        let mut inner = lock(&web.inner);
        while inner.tokens.len() >= TOKENS_PER_SESSION {
            let old = inner.tokens.remove(0);
            st.web.remove(&old);
        }
        inner.tokens.push(token.to_owned());
        st.web.insert(token.to_owned(), Arc::clone(web));
    }

    async fn unregister(&self, client: i32) {
        let msg = Message::new(MessageId::REQUEST_UNREGISTER_CLIENT);
        if let Err(e) = self.request(Some(client), msg).await {
            debug!(client, error = %e, "unregistering a web client");
        }
    }

    /// Ends a web session: its agent is logged out and its subscriptions dropped (the logical
    /// client is unregistered), its CometD sessions are closed.
    pub(crate) async fn end_web_session(&self, web: &Arc<WebSession>, why: &str) {
        let cometd = {
            let mut st = lock(&self.state);
            let mut inner = lock(&web.inner);
            for token in std::mem::take(&mut inner.tokens) {
                st.web.remove(&token);
            }
            st.web_by_agent.remove(&web.agent);
            st.web_by_client.remove(&web.client);
            inner.ended = true;
            std::mem::take(&mut inner.cometd)
                .iter()
                .filter_map(|c| st.cometd.remove(&c.id))
                .collect::<Vec<_>>()
        };
        for c in cometd {
            c.close(Closed::Disconnected);
        }
        info!(client = web.client, %why, "web session ended");
        self.unregister(web.client).await;
    }

    pub(crate) async fn end_all_web_sessions(&self) {
        let all: Vec<_> = lock(&self.state).web_by_agent.values().cloned().collect();
        for w in all {
            self.end_web_session(&w, "the server is stopping").await;
        }
    }

    /// Ends every web session at once, without unregistering (the engine no longer knows
    /// their clients): their tokens stop working and their CometD sessions are dropped, so that
    /// CometD clients get 402 and handshake again (then sign in again).
    fn forget_all_sessions(&self, why: &str) {
        let dropped: Vec<Arc<Live>> = {
            let mut st = lock(&self.state);
            for web in st.web_by_agent.values() {
                let mut inner = lock(&web.inner);
                inner.ended = true;
                inner.tokens.clear();
                inner.cometd.clear();
            }
            st.web.clear();
            st.web_by_agent.clear();
            st.web_by_client.clear();
            st.cometd.drain().map(|(_, s)| s).collect()
        };
        for s in &dropped {
            s.close(Closed::Dropped);
        }
        warn!(%why, cometd_sessions = dropped.len(), "every web session ended: the server stepped down");
    }

    /// Removes a CometD session (disconnect, overflow, expiry).
    pub(crate) fn remove_cometd(&self, id: &str) -> Option<Arc<Live>> {
        let mut st = lock(&self.state);
        let removed = st.cometd.remove(id)?;
        if let Some(web) = st.web_by_client.get(&removed.owner) {
            lock(&web.inner).cometd.retain(|c| c.id != id);
        }
        Some(removed)
    }

    pub(crate) fn counts(&self) -> Counts {
        let st = lock(&self.state);
        Counts {
            web_sessions: st.web_by_agent.len(),
            cometd_sessions: st.cometd.len(),
            pending: st.pending.len(),
        }
    }

    /// Publishes `data` on `channel` to every CometD session of the web session of `client`.
    fn publish(&self, client: i32, channel: &str, data: &impl Serialize, woken: &mut Woken) {
        let message = raw(&serde_json::json!({"channel": channel, "data": data}));
        self.publish_raw(client, channel, &message, woken);
    }

    /// Publishes a message already written (see [`Raw`]) to every CometD session of the web
    /// session of `client`; the sessions that queued it go into `woken`, to be woken at the end
    /// of the round.
    fn publish_raw(&self, client: i32, channel: &str, message: &Raw, woken: &mut Woken) {
        let cap = self.config.http.cometd_queue_messages;
        // Offered under the locks (the lock order allows a CometD session's lock inside a web
        // session's): no copy of the session list per message.
        let full: Vec<Arc<Live>> = {
            let st = lock(&self.state);
            let Some(web) = st.web_by_client.get(&client) else {
                return;
            };
            let inner = lock(&web.inner);
            let mut full = Vec::new();
            for s in &inner.cometd {
                match s.offer(channel, message, cap) {
                    Offer::Queued => woken.push(Arc::clone(s)),
                    Offer::Full => full.push(Arc::clone(s)),
                    Offer::Ignored => {}
                }
            }
            full
        };
        for s in full {
            warn!(
                session = %s.id,
                limit = cap,
                "CometD session queue full (cometd_queue_messages): closing the session; its client will handshake again"
            );
            self.remove_cometd(&s.id);
            s.close(Closed::Dropped);
        }
    }

    /// Handles one delivery from the engine. `last` keeps the CometD message written for the
    /// last notification: the engine sends one notification to many logical clients as the
    /// same shared message, so it is written once for all of them.
    fn deliver(
        &self,
        msg: Arc<Message>,
        proxy_client_id: Option<i32>,
        last: &mut Rendered,
        woken: &mut Woken,
    ) {
        if let Some(reference) = msg.reference_id() {
            let pending = lock(&self.state).pending.remove(&reference);
            match pending {
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(msg);
                    return;
                }
                Some(Pending::Subscription {
                    client,
                    workbin,
                    unsubscribe,
                }) => {
                    let ok = msg.id == MessageId::EVENT_ACK;
                    let state = SubscriptionState {
                        message_type: "WorkbinSubscriptionStateChangeMessage",
                        workbin: &workbin,
                        reference_id: reference,
                        status_message: (!ok).then(|| gws::engine_reason(&msg)),
                        state_resource: match (ok, unsubscribe) {
                            (true, false) => "Subscribed",
                            (true, true) => "Unsubscribed",
                            (false, _) => "RequestFailed",
                        },
                    };
                    self.publish(client, WORKBINS_CHANNEL, &state, woken);
                    return;
                }
                None => {}
            }
        }
        if msg.id == MessageId::EVENT_ERROR
            && msg.reference_id().is_none()
            && msg.attrs.get_int(attr::ERROR_CODE) == Some(ixn_codec::ErrorCode::NotActive.to_int())
        {
            // The server stepped down (another took the shared store over): every logical
            // client of the link is gone, so every web session ends.
            self.forget_all_sessions(&gws::engine_reason(&msg));
            self.proxy_lost();
            return;
        }
        if msg.id == MessageId::EVENT_WORKBIN_CONTENT_CHANGED {
            let Some(client) = proxy_client_id else {
                return;
            };
            let message = match last {
                Some((m, r)) if Arc::ptr_eq(m, &msg) => Some(Arc::clone(r)),
                _ => self.content_changed(&msg).map(|change| {
                    let r = raw(&serde_json::json!({"channel": WORKBINS_CHANNEL, "data": change}));
                    *last = Some((Arc::clone(&msg), Arc::clone(&r)));
                    r
                }),
            };
            if let Some(message) = message {
                self.publish_raw(client, WORKBINS_CHANNEL, &message, woken);
            }
            return;
        }
        debug!(message = %msg.id, "engine message with no taker");
    }

    /// EventWorkbinContentChanged as a `WorkbinStateChangeMessage`.
    fn content_changed(&self, msg: &Message) -> Option<ContentChange> {
        let action = match WorkbinContentOperation::from_int(
            msg.attrs.get_int(attr::WORKBIN_CONTENT_OPERATION)?,
        ) {
            WorkbinContentOperation::PlacedIn => "ItemAdded",
            WorkbinContentOperation::TakenOut => "ItemRemoved",
            _ => "ItemUpdated",
        };
        let workbin = msg.attrs.get_list(attr::WORKBIN)?;
        let interaction = msg.attrs.get_list(attr::INTERACTION)?;
        let media = interaction.get_str(attr::MEDIA_TYPE).map_or("", |s| s);
        let mut resource = serde_json::Map::new();
        resource.insert(
            gws::state_resource_key(media).into(),
            gws::interaction_json(interaction),
        );
        Some(ContentChange {
            message_type: "WorkbinStateChangeMessage",
            action,
            workbin: WorkbinRef::from_info(&self.config, workbin),
            interaction: resource,
        })
    }

    /// Removes expired CometD sessions and idle web sessions.
    async fn sweep(&self) {
        let now = now();
        let idle = Duration::from_secs(self.config.http.web_session_idle_secs);
        let (expired, idle_webs) = {
            let st = lock(&self.state);
            let expired: Vec<String> = st
                .cometd
                .values()
                .filter(|s| lock(&s.state).expired(now))
                .map(|s| s.id.clone())
                .collect();
            let idle_webs: Vec<Arc<WebSession>> = st
                .web_by_agent
                .values()
                .filter(|w| {
                    let inner = lock(&w.inner);
                    inner.cometd.is_empty() && now.saturating_duration_since(inner.last_seen) > idle
                })
                .cloned()
                .collect();
            (expired, idle_webs)
        };
        for id in &expired {
            if let Some(s) = self.remove_cometd(id) {
                s.close(Closed::Dropped);
            }
        }
        if !expired.is_empty() {
            let left = self.counts();
            info!(
                expired = expired.len(),
                cometd_sessions = left.cometd_sessions,
                web_sessions = left.web_sessions,
                pending = left.pending,
                "CometD sessions expired (no /meta/connect within max_interval_ms)"
            );
        }
        for w in idle_webs {
            self.end_web_session(&w, "idle for web_session_idle_secs")
                .await;
        }
    }
}

/// The CometD sessions' registry: per agent at most `max_cometd_sessions_per_agent` (the
/// oldest is closed), in all at most `max_cometd_sessions` (the handshake is refused).
impl Registry for Hub {
    fn find(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.state).cometd.get(id).cloned()
    }

    fn add(&self, session: Arc<Live>) -> Result<(), String> {
        let http = &self.config.http;
        let evicted = {
            let mut st = lock(&self.state);
            if st.cometd.len() >= http.max_cometd_sessions {
                return Err(format!(
                    "the server has its maximum of {} CometD sessions ([http] max_cometd_sessions)",
                    http.max_cometd_sessions
                ));
            }
            let Some(web) = st.web_by_client.get(&session.owner).cloned() else {
                return Err("the web session has ended; sign in again".into());
            };
            let mut inner = lock(&web.inner);
            if inner.ended {
                return Err("the web session has ended; sign in again".into());
            }
            let mut evicted = Vec::new();
            while inner.cometd.len() >= http.max_cometd_sessions_per_agent {
                let oldest = inner.cometd.remove(0);
                if let Some(s) = st.cometd.remove(&oldest.id) {
                    evicted.push(s);
                }
            }
            inner.cometd.push(Arc::clone(&session));
            inner.last_seen = now();
            drop(inner);
            st.cometd.insert(session.id.clone(), session);
            evicted
        };
        for s in evicted {
            info!(session = %s.id, "CometD session closed: the agent opened more than max_cometd_sessions_per_agent");
            s.close(Closed::Disconnected);
        }
        Ok(())
    }

    fn remove(&self, id: &str) {
        self.remove_cometd(id);
    }

    fn touch(&self, owner: i32) {
        let web = lock(&self.state).web_by_client.get(&owner).cloned();
        if let Some(w) = web {
            w.touch();
        }
    }
}

/// The last notification delivered and the CometD message written for it.
type Rendered = Option<(Arc<Message>, Raw)>;

/// CometD sessions that queued messages this round, woken at its end.
type Woken = Vec<Arc<Live>>;

/// Deliveries handled in one round at most (then the sessions are woken).
const ROUND: usize = 65_536;

/// Routes everything the engine sends to the gateway, until the link ends. The deliveries
/// already waiting (whole batches, up to [`ROUND`]) are handled as one round before the sessions
/// they queued messages for are woken, each once: a change sent to many, or several changes in a
/// row, then leave in one reply per session instead of one each.
pub(crate) async fn pump(
    hub: Arc<Hub>,
    mut deliveries: mpsc::Receiver<Vec<ixn_codec::link::Delivery>>,
) {
    let mut last: Rendered = None;
    let mut woken: Woken = Vec::new();
    while let Some(first) = deliveries.recv().await {
        let mut next = Some(first);
        let mut handled = 0usize;
        while let Some(batch) = next.take() {
            handled += batch.len();
            for (msg, proxy_client_id) in batch {
                hub.deliver(msg, proxy_client_id, &mut last, &mut woken);
            }
            if handled < ROUND {
                next = deliveries.try_recv().ok();
            }
        }
        woken.sort_unstable_by_key(|s| Arc::as_ptr(s) as usize);
        woken.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for s in woken.drain(..) {
            s.wake();
        }
    }
    if !hub.shutdown.is_cancelled() {
        error!("the engine closed the web API's connection; the web API stops");
        hub.link_lost.cancel();
    }
    // Fail whatever waits for a reply.
    lock(&hub.state).pending.clear();
}

/// Registers the link as a proxy again whenever it was lost (a standby takes the store over,
/// a server steps down), trying every 200 ms until the engine accepts, until the gateway stops.
pub(crate) async fn proxy_keeper(hub: Arc<Hub>) {
    loop {
        tokio::select! {
            () = hub.proxy_lost.notified() => {}
            () = hub.shutdown.cancelled() => return,
        }
        loop {
            match hub.register_proxy().await {
                Ok(true) => {
                    info!("the web API is registered with the engine: serving");
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, "the web API cannot register with the engine; retrying")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                () = hub.shutdown.cancelled() => return,
            }
        }
    }
}

/// Runs the sweep every [`SWEEP_PERIOD`] until the gateway stops.
pub(crate) async fn sweeper(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(SWEEP_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                hub.sweep().await;
                hub.sign_ins.retain_recent();
            }
            () = hub.shutdown.cancelled() => return,
        }
    }
}
