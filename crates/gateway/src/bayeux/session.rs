//! One CometD session's state, as a plain state machine: no locks, no I/O, no clock of its own
//! (every method that looks at time takes `now`).
//!
//! - Messages are queued per subscription; the queue is bounded and one message past it means
//!   the session must close (the caller closes it; its client handshakes again).
//! - A `/meta/connect` has a generation: a newer connect supersedes a held one, which is then
//!   answered empty.
//! - Messages leave the queue only when a connect reply is built, so a dropped long-poll loses
//!   nothing; with the `ack` extension a batch is kept until the next connect acknowledges it,
//!   and sent again otherwise.
//! - The session always has a deadline: `timeout + max_interval` while a connect is held,
//!   `max_interval` after a reply.

use super::channels;
use super::reply::{Raw, put, raw, set_id, unknown_session};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The client disconnected.
    Disconnected,
    /// The server dropped it (expired, overflowed, web session ended).
    Dropped,
}

/// What became of a message offered to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued: a held connect may be answered.
    Queued,
    /// Not for this session (not subscribed, or closed).
    Ignored,
    /// The queue is full: the session must close.
    Full,
}

/// The most channels one session may subscribe to.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 64;

/// A session's state.
#[derive(Debug)]
pub(crate) struct Session {
    subscriptions: Vec<String>,
    queue: VecDeque<Raw>,
    /// The last batch sent and not yet acknowledged (ack extension).
    unacked: Option<(u64, Vec<Raw>)>,
    batch: u64,
    ack: bool,
    closed: Option<Closed>,
    expires: Instant,
    connect_gen: u64,
}

impl Session {
    /// A new session (after its handshake at `now`), with the `ack` extension or not.
    pub(crate) fn new(now: Instant, ack: bool, max_interval: Duration) -> Self {
        Self {
            subscriptions: Vec::new(),
            queue: VecDeque::new(),
            unacked: None,
            batch: 0,
            ack,
            closed: None,
            expires: now + max_interval,
            connect_gen: 0,
        }
    }

    /// Offers a message published on `channel`; at most `cap` messages wait (queued and
    /// unacknowledged together).
    pub(crate) fn offer(&mut self, channel: &str, message: &Raw, cap: usize) -> Offer {
        if self.closed.is_some()
            || !self
                .subscriptions
                .iter()
                .any(|s| channels::matches(s, channel))
        {
            return Offer::Ignored;
        }
        let held = self.unacked.as_ref().map_or(0, |(_, m)| m.len());
        if self.queue.len() + held >= cap {
            return Offer::Full;
        }
        self.queue.push_back(Arc::clone(message));
        Offer::Queued
    }

    /// Subscribes to each of `channels` (at most [`MAX_SUBSCRIPTIONS`] in all; a repeat is
    /// ignored), or unsubscribes from them.
    pub(crate) fn set_subscriptions(&mut self, channels: &[String], subscribe: bool) {
        for c in channels {
            if subscribe {
                if !self.subscriptions.contains(c) && self.subscriptions.len() < MAX_SUBSCRIPTIONS {
                    self.subscriptions.push(c.clone());
                }
            } else {
                self.subscriptions.retain(|s| s != c);
            }
        }
    }

    /// Ends the session (the first reason given stays); what was queued is dropped.
    pub(crate) fn close(&mut self, why: Closed) {
        self.closed.get_or_insert(why);
        self.queue.clear();
        self.unacked = None;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Past its deadline at `now`.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.expires < now
    }

    /// Starts a connect at `now` that may be held for `timeout`: supersedes a held one,
    /// acknowledges what the client says it got, and sets the deadline. Returns the connect's
    /// generation.
    pub(crate) fn begin_connect(
        &mut self,
        now: Instant,
        timeout: Duration,
        max_interval: Duration,
        acked: Option<u64>,
    ) -> u64 {
        self.connect_gen += 1;
        self.expires = now + timeout + max_interval;
        if let (true, Some(n)) = (self.ack, acked)
            && self.unacked.as_ref().is_some_and(|(b, _)| *b <= n)
        {
            self.unacked = None;
        }
        self.connect_gen
    }

    /// Whether the connect of generation `g` should be answered now (rather than held).
    pub(crate) fn ready(&self, g: u64) -> bool {
        self.connect_gen != g
            || self.closed.is_some()
            || !self.queue.is_empty()
            || self.unacked.is_some()
    }

    /// The reply to the connect of generation `g` (`id` echoed), built at `now`: the queued
    /// messages, then the connect reply. Takes the messages out of the queue.
    pub(crate) fn finish_connect(
        &mut self,
        now: Instant,
        g: u64,
        id: &Value,
        timeout_ms: u64,
        max_interval: Duration,
    ) -> Vec<Raw> {
        let mut reply = json!({"channel": "/meta/connect", "successful": true});
        set_id(&mut reply, id);
        match self.closed {
            Some(Closed::Dropped) => return vec![raw(&unknown_session(id, "/meta/connect"))],
            Some(Closed::Disconnected) => {
                put(&mut reply, "advice", json!({"reconnect": "none"}));
                return vec![raw(&reply)];
            }
            None => {}
        }
        put(
            &mut reply,
            "advice",
            json!({"reconnect": "retry", "interval": 0, "timeout": timeout_ms}),
        );
        if self.connect_gen != g {
            // Superseded by a newer connect: answered at once, empty.
            return vec![raw(&reply)];
        }
        self.expires = now + max_interval;
        let mut out: Vec<Raw> = self.unacked.take().map(|(_, m)| m).unwrap_or_default();
        out.extend(self.queue.drain(..));
        if self.ack {
            self.batch += 1;
            let batch = self.batch;
            put(&mut reply, "ext", json!({"ack": batch}));
            if !out.is_empty() {
                self.unacked = Some((batch, out.clone()));
            }
        }
        out.push(raw(&reply));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_INTERVAL: Duration = Duration::from_secs(10);
    const HOLD: Duration = Duration::from_secs(30);

    fn subscribed(now: Instant, ack: bool) -> Session {
        let mut s = Session::new(now, ack, MAX_INTERVAL);
        s.set_subscriptions(&["/v2/me/**".to_owned()], true);
        s
    }

    /// A message as JSON again.
    fn v(m: &Raw) -> Value {
        serde_json::from_str(m.get()).unwrap_or_default()
    }

    fn channels(out: &[Raw]) -> Vec<String> {
        out.iter()
            .map(|m| v(m)["channel"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn deadlines_follow_virtual_time() {
        let t0 = Instant::now();
        let mut s = subscribed(t0, false);
        assert!(!s.expired(t0 + MAX_INTERVAL));
        assert!(s.expired(t0 + MAX_INTERVAL + Duration::from_millis(1)));
        // A held connect extends the deadline by its timeout.
        let g = s.begin_connect(t0, HOLD, MAX_INTERVAL, None);
        assert!(!s.expired(t0 + HOLD + MAX_INTERVAL));
        assert!(!s.ready(g), "nothing queued: the connect is held");
        // Answered later: the deadline is max_interval after the answer.
        let t1 = t0 + Duration::from_secs(20);
        let out = s.finish_connect(t1, g, &json!("5"), 30_000, MAX_INTERVAL);
        assert_eq!(channels(&out), ["/meta/connect"]);
        assert_eq!(v(&out[0])["id"], "5");
        assert!(!s.expired(t1 + MAX_INTERVAL));
        assert!(s.expired(t1 + MAX_INTERVAL + Duration::from_millis(1)));
    }

    #[test]
    fn messages_go_before_the_connect_reply_and_only_when_subscribed() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, false, MAX_INTERVAL);
        let m = raw(&json!({"channel": "/v2/me/workbins", "data": 1}));
        assert_eq!(s.offer("/v2/me/workbins", &m, 10), Offer::Ignored);
        s.set_subscriptions(&["/v2/me/workbins".to_owned()], true);
        assert_eq!(s.offer("/v2/me/workbins", &m, 10), Offer::Queued);
        let g = s.begin_connect(t0, HOLD, MAX_INTERVAL, None);
        assert!(s.ready(g));
        let out = s.finish_connect(t0, g, &Value::Null, 30_000, MAX_INTERVAL);
        assert_eq!(channels(&out), ["/v2/me/workbins", "/meta/connect"]);
        s.set_subscriptions(&["/v2/me/workbins".to_owned()], false);
        assert_eq!(s.offer("/v2/me/workbins", &m, 10), Offer::Ignored);
    }

    #[test]
    fn a_full_queue_asks_for_a_close_and_a_dropped_session_answers_402() {
        let t0 = Instant::now();
        let mut s = subscribed(t0, false);
        let m = raw(&json!({"data": 1}));
        assert_eq!(s.offer("/v2/me/workbins", &m, 2), Offer::Queued);
        assert_eq!(s.offer("/v2/me/workbins", &m, 2), Offer::Queued);
        assert_eq!(s.offer("/v2/me/workbins", &m, 2), Offer::Full);
        s.close(Closed::Dropped);
        s.close(Closed::Disconnected);
        let g = s.begin_connect(t0, HOLD, MAX_INTERVAL, None);
        assert!(s.ready(g));
        let out = s.finish_connect(t0, g, &Value::Null, 30_000, MAX_INTERVAL);
        assert_eq!(out.len(), 1);
        assert_eq!(v(&out[0])["error"], "402::session_unknown");
        assert_eq!(v(&out[0])["advice"]["reconnect"], "handshake");
    }

    #[test]
    fn a_newer_connect_supersedes_the_held_one() {
        let t0 = Instant::now();
        let mut s = subscribed(t0, false);
        let old = s.begin_connect(t0, HOLD, MAX_INTERVAL, None);
        let new = s.begin_connect(t0, HOLD, MAX_INTERVAL, None);
        assert!(s.ready(old) && !s.ready(new));
        assert_eq!(
            s.offer("/v2/me/workbins", &raw(&json!(1)), 10),
            Offer::Queued
        );
        let superseded = s.finish_connect(t0, old, &Value::Null, 30_000, MAX_INTERVAL);
        assert_eq!(channels(&superseded), ["/meta/connect"], "empty");
        let out = s.finish_connect(t0, new, &Value::Null, 30_000, MAX_INTERVAL);
        assert_eq!(out.len(), 2, "the message went to the newer connect");
    }

    #[test]
    fn unacknowledged_batches_are_sent_again() {
        let t0 = Instant::now();
        let mut s = subscribed(t0, true);
        assert_eq!(
            s.offer("/v2/me/workbins", &raw(&json!(1)), 10),
            Offer::Queued
        );
        let g = s.begin_connect(t0, HOLD, MAX_INTERVAL, None);
        let first = s.finish_connect(t0, g, &Value::Null, 30_000, MAX_INTERVAL);
        assert_eq!(first.len(), 2);
        assert_eq!(v(&first[1])["ext"]["ack"], 1);
        // The reply was lost: the next connect does not acknowledge batch 1.
        let g = s.begin_connect(t0, HOLD, MAX_INTERVAL, Some(0));
        assert!(s.ready(g), "the unacknowledged batch is due again");
        let again = s.finish_connect(t0, g, &Value::Null, 30_000, MAX_INTERVAL);
        assert_eq!(again.len(), 2);
        assert_eq!(v(&again[0]), json!(1));
        // Acknowledged: nothing is sent again, and the queue bound counts only what waits.
        let g = s.begin_connect(t0, HOLD, MAX_INTERVAL, Some(2));
        assert!(!s.ready(g));
    }
}
