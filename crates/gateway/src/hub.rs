//! The GWS web API's hub: it joins the engine link ([`EngineLink`]: requests out, replies
//! matched) and the sessions ([`Sessions`]: web and CometD) with what is particular to this
//! API: signing agents in as logical clients, turning the engine's notifications into GWS
//! CometD messages, keeping the proxy registration, and sweeping idle sessions.

use crate::auth;
use crate::bayeux::Live;
use crate::bayeux::reply::{Raw, raw};
use crate::engine_link::{EngineLink, LinkError, Pending};
use crate::gws::{self, WorkbinRef};
pub(crate) use crate::sessions::WebSession;
use crate::sessions::{self, Sessions, now};
use ixn_codec::{ClientType, Message, MessageId, WorkbinContentOperation, attr};
use ixn_config::{AgentIdx, Config};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// How often the sweeper runs.
pub(crate) const SWEEP_PERIOD: Duration = Duration::from_millis(997);
/// The CometD channel of workbin messages.
pub(crate) const WORKBINS_CHANNEL: &str = "/v2/me/workbins";

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
    /// Requests out, replies matched.
    pub(crate) link: EngineLink,
    /// Web and CometD sessions.
    pub(crate) sessions: Sessions,
    /// Cancelled when the gateway stops (releases held long-polls).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the engine ends the link while the gateway is serving.
    pub(crate) link_lost: CancellationToken,
    /// Signalled when the link's proxy registration is gone (a standby, a server that stepped
    /// down): [`proxy_keeper`] registers again until the engine accepts.
    proxy_lost: tokio::sync::Notify,
    /// Password checks, their rate limit and the decoy hash.
    pub(crate) credentials: auth::Credentials,
    /// The session cookie's attributes (`Secure` under TLS).
    pub(crate) cookie_attrs: &'static str,
    /// What the web API counts.
    pub(crate) metrics: Arc<crate::metrics::WebMetrics>,
    /// The Workspace API's access tokens.
    pub(crate) tokens: crate::tokens::Tokens,
    /// When the web API started (the console's server page shows the uptime).
    pub(crate) started: std::time::Instant,
}

impl Hub {
    pub(crate) fn new(
        config: Arc<Config>,
        requests: mpsc::Sender<Message>,
        tls: bool,
        metrics: Arc<crate::metrics::WebMetrics>,
    ) -> Result<Arc<Self>, crate::Error> {
        let credentials = auth::Credentials::new(&config)?;
        let http = &config.http;
        let limits = sessions::Limits {
            max_web_sessions: http.max_web_sessions,
            max_cometd_sessions: http.max_cometd_sessions,
            max_cometd_sessions_per_agent: http.max_cometd_sessions_per_agent,
            cometd_queue_messages: http.cometd_queue_messages,
        };
        let tokens = crate::tokens::Tokens::new(
            http.max_web_sessions,
            Duration::from_secs(http.access_token_secs),
        );
        Ok(Arc::new(Self {
            link: EngineLink::new(requests),
            sessions: Sessions::new(limits),
            config,
            shutdown: CancellationToken::new(),
            link_lost: CancellationToken::new(),
            proxy_lost: tokio::sync::Notify::new(),
            credentials,
            cookie_attrs: if tls {
                "Path=/; HttpOnly; SameSite=Lax; Secure"
            } else {
                "Path=/; HttpOnly; SameSite=Lax"
            },
            metrics,
            tokens,
            started: std::time::Instant::now(),
        }))
    }

    /// Sends `msg` for logical client `client` (None: the proxy itself) and waits for its reply.
    pub(crate) async fn request(
        &self,
        client: Option<i32>,
        msg: Message,
    ) -> Result<Arc<Message>, LinkError> {
        self.link.request(client, msg).await
    }

    /// Asks the engine for logical client `client`; an EventError (or another reply than
    /// `want`) becomes the GWS error, an engine that could not be asked an internal one.
    pub(crate) async fn ask(
        &self,
        client: i32,
        msg: Message,
        want: MessageId,
    ) -> Result<Arc<Message>, gws::ApiError> {
        let reply = self
            .request(Some(client), msg)
            .await
            .map_err(|e| gws::ApiError::new(gws::Status::Internal, e.to_string()))?;
        if reply.id == want {
            Ok(reply)
        } else {
            Err(gws::ApiError::from_engine(&reply))
        }
    }

    /// Registers the link as a proxy. `Ok(false)`: the engine is a standby's (NotActive); the
    /// caller lets [`proxy_keeper`] try again.
    pub(crate) async fn register_proxy(&self) -> Result<bool, crate::error::Refused> {
        let msg = Message::new(MessageId::REQUEST_REGISTER_CLIENT)
            .with(
                attr::CLIENT_NAME,
                self.config.http.proxy_application.as_str(),
            )
            .with(attr::CLIENT_TYPE, ClientType::Proxy.to_int());
        let reply = self
            .request(None, msg)
            .await
            .map_err(crate::error::Refused::Link)?;
        if reply.id == MessageId::EVENT_ACK {
            Ok(true)
        } else if reply.attrs.get_int(attr::ERROR_CODE)
            == Some(ixn_codec::ErrorCode::NotActive.to_int())
        {
            Ok(false)
        } else {
            Err(crate::error::Refused::Engine(gws::engine_reason(&reply)))
        }
    }

    /// The proxy registration is gone: [`proxy_keeper`] registers again.
    pub(crate) fn proxy_lost(&self) {
        self.proxy_lost.notify_one();
    }

    /// The live web session holding `token`.
    pub(crate) fn web_by_token(&self, token: &str) -> Option<Arc<WebSession>> {
        self.sessions.by_token(token)
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
        match self.sessions.join(agent, &token) {
            Ok(Some(w)) => return Ok((w, token)),
            Ok(None) => {}
            Err(max) => {
                return Err(gws::ApiError::new(
                    gws::Status::BadState,
                    format!(
                        "the server has its maximum of {max} signed-in agents ([http] max_web_sessions); try again later"
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
            .map_err(|e| gws::ApiError::new(gws::Status::Internal, e.to_string()))?;
        let client = match (reply.id, reply.attrs.get_int(attr::PROXY_CLIENT_ID)) {
            (MessageId::EVENT_ACK, Some(c)) => c,
            _ => return Err(gws::ApiError::from_engine(&reply)),
        };
        let session = Arc::new(WebSession::new(agent, client));
        let existing = self.sessions.insert(&session, &token);
        if let Some(w) = existing {
            // Two sign-ins raced: keep the first, drop the spare client.
            self.unregister(client).await;
            return Ok((w, token));
        }
        info!(agent = %self.config[agent].id, client, "web session started");
        Ok((session, token))
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
        self.sessions.end(web);
        info!(client = web.client, %why, "web session ended");
        self.unregister(web.client).await;
    }

    pub(crate) async fn end_all_web_sessions(&self) {
        for w in self.sessions.all() {
            self.end_web_session(&w, "the server is stopping").await;
        }
    }

    /// Ends every web session at once, without unregistering (the engine no longer knows
    /// their clients): their tokens stop working and their CometD sessions are dropped, so that
    /// CometD clients get 402 and handshake again (then sign in again).
    fn forget_all_sessions(&self, why: &str) {
        let dropped = self.sessions.forget_all();
        warn!(%why, cometd_sessions = dropped, "every web session ended: the server stepped down");
    }

    pub(crate) fn counts(&self) -> Counts {
        let (web_sessions, cometd_sessions) = self.sessions.counts();
        Counts {
            web_sessions,
            cometd_sessions,
            pending: self.link.waiting(),
        }
    }

    /// Publishes `data` on `channel` to every CometD session of the web session of `client`.
    fn publish(&self, client: i32, channel: &str, data: &impl Serialize, woken: &mut Woken) {
        let message = raw(&serde_json::json!({"channel": channel, "data": data}));
        self.sessions.publish_raw(client, channel, &message, woken);
    }

    /// Publishes `data` on `channel` to every CometD session of the web session of `client`
    /// now (outside a delivery round), waking them.
    pub(crate) fn publish_now(&self, client: i32, channel: &str, data: &impl Serialize) {
        let mut woken = Vec::new();
        self.publish(client, channel, data, &mut woken);
        for s in woken {
            s.wake();
        }
    }

    /// Handles one delivery from the engine. `last` keeps the CometD messages written for the
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
            match self.link.take(reference) {
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(msg);
                    return;
                }
                Some(Pending::Subscription {
                    client,
                    workbin,
                    unsubscribe,
                    v3: Some(operation_id),
                }) => {
                    let ack = crate::v3_shapes::subscription_outcome(
                        &msg,
                        &operation_id,
                        workbin.id.as_deref().unwrap_or(""),
                        unsubscribe,
                    );
                    self.publish(client, crate::v3_shapes::WORKBINS, &ack, woken);
                    return;
                }
                Some(Pending::Subscription {
                    client,
                    workbin,
                    unsubscribe,
                    v3: None,
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
            if !last.as_ref().is_some_and(|r| Arc::ptr_eq(&r.msg, &msg)) {
                // Written once for every recipient, in both APIs' shapes.
                let v2 = self.content_changed(&msg).map(|change| {
                    raw(&serde_json::json!({"channel": WORKBINS_CHANNEL, "data": change}))
                });
                let v3 = crate::v3_shapes::content_changed(&self.config, &msg).map(|change| {
                    raw(&serde_json::json!({"channel": crate::v3_shapes::WORKBINS, "data": change}))
                });
                *last = Some(Written {
                    msg: Arc::clone(&msg),
                    v2,
                    v3,
                });
            }
            if let Some(r) = last.as_ref() {
                if let Some(m) = &r.v2 {
                    self.sessions
                        .publish_raw(client, WORKBINS_CHANNEL, m, woken);
                }
                if let Some(m) = &r.v3 {
                    self.sessions
                        .publish_raw(client, crate::v3_shapes::WORKBINS, m, woken);
                }
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
        let (expired, idle_webs) = self.sessions.sweep(now, idle);
        if expired > 0 {
            let left = self.counts();
            info!(
                expired,
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

/// The last notification delivered and the CometD messages written for it (GWS v2 and the
/// Workspace API: each session gets the one of the channel it subscribed to).
struct Written {
    msg: Arc<Message>,
    v2: Option<Raw>,
    v3: Option<Raw>,
}

/// The last notification written, if any.
type Rendered = Option<Written>;

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
    hub.link.fail_all();
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
                hub.tokens.sweep(std::time::Instant::now());
                hub.credentials.sign_ins.retain_recent();
            }
            () = hub.shutdown.cancelled() => return,
        }
    }
}
