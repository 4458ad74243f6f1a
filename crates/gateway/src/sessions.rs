//! The gateway's sessions: web sessions (a signed-in agent, one logical client on the link,
//! its session tokens) and the CometD sessions each one holds, with their limits. It knows
//! nothing of the engine: the hub registers and unregisters the logical clients.
//!
//! # Lock order
//!
//! Three kinds of lock, always taken in this order and never the other way round:
//! `Sessions::state`, then a `WebSession::inner`, then a CometD session's `Live::state`. Code
//! that holds a later one never waits for an earlier one; most take one at a time. (The engine
//! link's lock is never held with any of them.)

use crate::bayeux::reply::Raw;
use crate::bayeux::session::{Closed, Offer};
use crate::bayeux::{Live, Refused, Registry, lock};
use ixn_config::AgentIdx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The present time, from tokio's clock (so that tests that pause it move the gateway's
/// deadlines too): session expiry, idle web sessions.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
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
    /// A new web session of `agent` as logical client `client`.
    pub(crate) fn new(agent: AgentIdx, client: i32) -> Self {
        Self {
            agent,
            client,
            inner: Mutex::new(WebInner {
                place: None,
                last_seen: now(),
                cometd: Vec::new(),
                tokens: Vec::new(),
                ended: false,
            }),
        }
    }

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

#[derive(Debug, Default)]
struct State {
    web: HashMap<String, Arc<WebSession>>,
    web_by_agent: HashMap<AgentIdx, Arc<WebSession>>,
    web_by_client: HashMap<i32, Arc<WebSession>>,
    cometd: HashMap<String, Arc<Live>>,
}

/// The limits on sessions (from `[http]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_web_sessions: usize,
    pub(crate) max_cometd_sessions: usize,
    pub(crate) max_cometd_sessions_per_agent: usize,
    pub(crate) cometd_queue_messages: usize,
}

/// Every web and CometD session.
#[derive(Debug)]
pub(crate) struct Sessions {
    state: Mutex<State>,
    limits: Limits,
}

impl Sessions {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            state: Mutex::new(State::default()),
            limits,
        }
    }

    /// The live web session holding `token`.
    pub(crate) fn by_token(&self, token: &str) -> Option<Arc<WebSession>> {
        lock(&self.state).web.get(token).cloned()
    }

    /// `agent`'s web session, given `token` as a further token; `Ok(None)` when it has none
    /// and one may be started, `Err` with the limit when the server has its maximum.
    pub(crate) fn join(
        &self,
        agent: AgentIdx,
        token: &str,
    ) -> Result<Option<Arc<WebSession>>, usize> {
        let mut st = lock(&self.state);
        if let Some(w) = st.web_by_agent.get(&agent).cloned() {
            add_token(&mut st, &w, token);
            return Ok(Some(w));
        }
        if st.web_by_agent.len() >= self.limits.max_web_sessions {
            return Err(self.limits.max_web_sessions);
        }
        Ok(None)
    }

    /// Adds `session` with `token`; when another sign-in of the same agent added one first,
    /// that one gets the token and is returned instead (the caller drops its spare client).
    pub(crate) fn insert(&self, session: &Arc<WebSession>, token: &str) -> Option<Arc<WebSession>> {
        let mut st = lock(&self.state);
        let existing = match st.web_by_agent.get(&session.agent) {
            Some(w) => Some(Arc::clone(w)),
            None => {
                st.web_by_agent.insert(session.agent, Arc::clone(session));
                st.web_by_client.insert(session.client, Arc::clone(session));
                None
            }
        };
        add_token(&mut st, existing.as_ref().unwrap_or(session), token);
        existing
    }

    /// Ends `web`: its tokens stop working and its CometD sessions are closed.
    pub(crate) fn end(&self, web: &Arc<WebSession>) {
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
    }

    /// Every web session.
    pub(crate) fn all(&self) -> Vec<Arc<WebSession>> {
        lock(&self.state).web_by_agent.values().cloned().collect()
    }

    /// Ends every session at once (their tokens stop working, their CometD sessions are
    /// dropped, so that CometD clients get 402 and handshake again); how many CometD sessions.
    pub(crate) fn forget_all(&self) -> usize {
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
        dropped.len()
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

    /// Web sessions and CometD sessions.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let st = lock(&self.state);
        (st.web_by_agent.len(), st.cometd.len())
    }

    /// Offers a message already written (see [`Raw`]) to every CometD session of the web
    /// session of `client`; the sessions that queued it go into `woken`, to be woken at the end
    /// of the round. A session whose queue is full is closed (its client handshakes again).
    pub(crate) fn publish_raw(
        &self,
        client: i32,
        channel: &str,
        message: &Raw,
        woken: &mut Vec<Arc<Live>>,
    ) {
        let cap = self.limits.cometd_queue_messages;
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

    /// Closes the CometD sessions expired at `now` (how many), and returns the web sessions
    /// with no CometD session that were idle for longer than `idle` (for the caller to end).
    pub(crate) fn sweep(&self, now: Instant, idle: Duration) -> (usize, Vec<Arc<WebSession>>) {
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
        (expired.len(), idle_webs)
    }
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

/// The CometD sessions' registry: per agent at most `max_cometd_sessions_per_agent` (the
/// oldest is closed), in all at most `max_cometd_sessions` (the handshake is refused).
impl Registry for Sessions {
    fn find(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.state).cometd.get(id).cloned()
    }

    fn add(&self, session: Arc<Live>) -> Result<(), Refused> {
        let limits = &self.limits;
        let evicted = {
            let mut st = lock(&self.state);
            if st.cometd.len() >= limits.max_cometd_sessions {
                return Err(Refused::TooMany(limits.max_cometd_sessions));
            }
            let Some(web) = st.web_by_client.get(&session.owner).cloned() else {
                return Err(Refused::Ended);
            };
            let mut inner = lock(&web.inner);
            if inner.ended {
                return Err(Refused::Ended);
            }
            let mut evicted = Vec::new();
            while inner.cometd.len() >= limits.max_cometd_sessions_per_agent {
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
