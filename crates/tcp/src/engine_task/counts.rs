//! The engine task's own counts: requests by message and outcome, and notifications queued.
//!
//! Counting costs the engine task no shared write per request: it counts in a map of its own
//! and adds the counts to the shared metrics when a scrape asks (`Input::Flush`), taking the
//! census of clients, logins, subscriptions, interactions and outbound queues then too.

use super::routing::Router;
use crate::metrics::{Disconnect, LocationLabels, RequestLabels, StateLabels, TypeLabels};
use ixn_codec::{Message, MessageId, attr};
use ixn_core::{ConnId, Engine, Output};
use std::collections::HashMap;

/// How many of the busiest queues, and of the busiest workbin instances, a scrape reports.
const BUSIEST: usize = 5;

/// Counts since the last flush.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// Requests handled, by (request, reply, error code).
    requests: HashMap<(MessageId, MessageId, i32), u64>,
    /// Notifications queued.
    notified: u64,
}

impl Counts {
    /// Counts `msg`'s outcome (its reply in `out`, the first message to `conn`), the
    /// notifications it caused, and the connections it closed (into `metrics` at once: rare).
    pub(super) fn count(
        &mut self,
        conn: ConnId,
        msg: &Message,
        out: &[Output],
        metrics: &crate::Metrics,
    ) {
        let mut reply = None;
        let mut sent = 0u64;
        for o in out {
            match o {
                Output::Send {
                    conn: c, msg: m, ..
                } => {
                    if reply.is_none() && *c == conn {
                        reply = Some(m);
                    } else {
                        sent += 1;
                    }
                }
                Output::Close { reason, .. } => metrics.disconnect(Disconnect::from(*reason)),
            }
        }
        self.notified += sent;
        if let Some(r) = reply {
            let code = if r.id == MessageId::EVENT_ERROR {
                r.attrs.get_int(attr::ERROR_CODE).unwrap_or(0)
            } else {
                0
            };
            *self.requests.entry((msg.id, r.id, code)).or_default() += 1;
        }
    }

    /// Adds the counts to `metrics`, and sets the census gauges from `engine` and `router`.
    pub(super) fn flush(&mut self, metrics: &crate::Metrics, engine: &Engine, router: &Router) {
        let m = metrics;
        for ((request, reply, code), n) in self.requests.drain() {
            let outcome = if reply == MessageId::EVENT_ERROR {
                format!("EventError:{}", ixn_codec::ErrorCode::from_int(code))
            } else {
                reply.to_string()
            };
            // Unknown message ids share one label: a peer cannot make series without bound.
            let message = request.name().unwrap_or("unknown").to_owned();
            m.requests
                .get_or_create(&RequestLabels { message, outcome })
                .inc_by(n);
        }
        m.notifications.inc_by(std::mem::take(&mut self.notified));
        let census = engine.census();
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        for (kind, n) in ixn_core::Census::CLIENT_TYPES
            .iter()
            .zip(census.clients_by_type)
        {
            m.clients
                .get_or_create(&TypeLabels { r#type: kind })
                .set(gauge(n));
        }
        m.logins.set(gauge(census.stats.logins));
        m.subscriptions.set(gauge(census.stats.subscriptions));
        for (state, n) in [
            ("queued", census.queued),
            ("in_workbin", census.in_workbins),
            ("handling", census.handling),
        ] {
            m.interactions
                .get_or_create(&StateLabels { state })
                .set(gauge(n));
        }
        let busiest = engine.busiest(BUSIEST);
        m.busiest.clear();
        for (kind, list) in [("queue", busiest.queues), ("workbin", busiest.workbins)] {
            for (name, n) in list {
                m.busiest
                    .get_or_create(&LocationLabels { kind, name })
                    .set(gauge(n));
            }
        }
        m.stored_bytes.set(gauge(census.stats.stored_bytes));
        m.snapshots.set(gauge(census.stats.snapshots));
        m.locks.set(gauge(census.stats.locks));
        m.snapshot_bytes.set(gauge(census.stats.snapshot_bytes));
        let (messages, bytes, longest) = router.depth();
        m.outbox_messages.set(gauge(messages));
        m.outbox_bytes.set(gauge(bytes));
        m.outbox_max_messages.set(gauge(longest));
    }
}
