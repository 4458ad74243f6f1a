//! The TCP side's metrics (Prometheus, with prometheus-client): connections, disconnects by
//! reason, requests by message and outcome, notifications, what the engine holds, outbound
//! queues, and the journal's syncs.
//!
//! Counting costs the engine task no shared write per request: it counts in a map of its own
//! and adds the counts to the shared metrics when a scrape asks ([`Flusher::flush`],
//! which also takes the census of clients, logins, subscriptions and interactions).
//!
//! [`Flusher::flush`]: crate::Flusher::flush

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::fmt::Write as _;

/// How the engine task's polling for a sync report ended (see `Durability::polling`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PollLabels {
    /// `synced` (the report came), `input` (an input came first), `timeout` (the window
    /// passed; the task then sleeps until either comes).
    pub(crate) outcome: &'static str,
}

/// A request's message and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The request's message name (`RequestSubmit`), or `message N` when unknown.
    pub(crate) message: String,
    /// `EventAck`, the data event that answered it, or `EventError:<ErrorCode name>`.
    pub(crate) outcome: String,
}

/// Why the server closed or refused a connection: each reason named once, as the
/// `reason` label of `ixn_disconnects_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Disconnect {
    /// Its outbound queue passed `outbound_queue_messages` or `outbound_queue_bytes`.
    SlowConsumer,
    /// Refused at accept: `max_connections` are open.
    MaxConnections,
    /// Not registered within `registration_timeout_secs`.
    RegistrationTimeout,
    /// A frame that could not be decoded.
    MalformedFrame,
    /// Incomplete frames over `max_partial_frame_bytes` or `frame_timeout_secs`.
    IncompleteFrames,
    /// The TLS handshake failed or did not finish in time.
    TlsHandshake,
    /// The first request was not RequestRegisterClient (R3).
    NotRegistered,
    /// The application is not configured (R2).
    InvalidClient,
    /// The application did not authenticate (R15).
    AuthenticationFailed,
    /// Too many password checks from the client's address (`[http] sign_ins_per_second`).
    PasswordChecks,
    /// A reason the engine gave that this server does not know by name.
    Other,
}

impl Disconnect {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::SlowConsumer => "slow_consumer",
            Self::MaxConnections => "max_connections",
            Self::RegistrationTimeout => "registration_timeout",
            Self::MalformedFrame => "malformed_frame",
            Self::IncompleteFrames => "incomplete_frames",
            Self::TlsHandshake => "tls_handshake",
            Self::NotRegistered => "not_registered",
            Self::InvalidClient => "invalid_client",
            Self::AuthenticationFailed => "authentication_failed",
            Self::PasswordChecks => "password_checks",
            Self::Other => "other",
        }
    }
}

impl From<ixn_core::CloseReason> for Disconnect {
    fn from(reason: ixn_core::CloseReason) -> Self {
        match reason {
            ixn_core::CloseReason::NotRegistered => Self::NotRegistered,
            ixn_core::CloseReason::InvalidClient => Self::InvalidClient,
            ixn_core::CloseReason::AuthenticationFailed => Self::AuthenticationFailed,
            _ => Self::Other,
        }
    }
}

impl EncodeLabelValue for Disconnect {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.label())
    }
}

/// Why the server closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    /// See [`Disconnect`].
    pub(crate) reason: Disconnect,
}

/// A ClientType.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TypeLabels {
    /// `AgentApplication`, `MediaServer`, `RoutingEngine` or `Proxy`.
    pub(crate) r#type: &'static str,
}

/// An interaction's state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    /// `queued`, `in_workbin` or `handling`.
    pub(crate) state: &'static str,
}

/// A queue or workbin instance among the busiest.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LocationLabels {
    /// `queue` or `workbin`.
    pub(crate) kind: &'static str,
    /// The queue's name, or the workbin instance's (`Drafts of a1`).
    pub(crate) name: String,
}

/// The TCP side's metrics, shared by the listener, its connections, the engine task and the
/// store thread.
#[derive(Debug)]
pub struct Metrics {
    pub(crate) connections_accepted: Counter,
    pub(crate) connections_open: Gauge,
    pub(crate) disconnects: Family<ReasonLabels, Counter>,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) notifications: Counter,
    pub(crate) clients: Family<TypeLabels, Gauge>,
    pub(crate) logins: Gauge,
    pub(crate) subscriptions: Gauge,
    pub(crate) interactions: Family<StateLabels, Gauge>,
    pub(crate) busiest: Family<LocationLabels, Gauge>,
    pub(crate) stored_bytes: Gauge,
    pub(crate) snapshots: Gauge,
    pub(crate) locks: Gauge,
    pub(crate) snapshot_bytes: Gauge,
    pub(crate) outbox_messages: Gauge,
    pub(crate) outbox_bytes: Gauge,
    pub(crate) outbox_max_messages: Gauge,
    pub(crate) sync_seconds: Histogram,
    pub(crate) commit_seconds: Histogram,
    pub(crate) sync_polls: Family<PollLabels, Counter>,
    pub(crate) batch_changes: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            disconnects: Family::default(),
            requests: Family::default(),
            notifications: Counter::default(),
            clients: Family::default(),
            logins: Gauge::default(),
            subscriptions: Gauge::default(),
            interactions: Family::default(),
            busiest: Family::default(),
            stored_bytes: Gauge::default(),
            snapshots: Gauge::default(),
            locks: Gauge::default(),
            snapshot_bytes: Gauge::default(),
            outbox_messages: Gauge::default(),
            outbox_bytes: Gauge::default(),
            outbox_max_messages: Gauge::default(),
            // 10 us to ~5 s.
            sync_seconds: Histogram::new(exponential_buckets(1e-5, 2.5, 15)),
            commit_seconds: Histogram::new(exponential_buckets(1e-5, 2.5, 15)),
            sync_polls: Family::default(),
            // 1 to ~16k changes per sync.
            batch_changes: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
        }
    }
}

impl Metrics {
    /// Adds every metric to `registry` (names are prefixed by the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections_accepted",
            "Native connections accepted",
            self.connections_accepted.clone(),
        );
        registry.register(
            "connections_open",
            "Native connections open now",
            self.connections_open.clone(),
        );
        registry.register(
            "disconnects",
            "Connections the server closed or refused, by reason",
            self.disconnects.clone(),
        );
        registry.register(
            "requests",
            "Requests handled by the engine, by message and outcome",
            self.requests.clone(),
        );
        registry.register(
            "notifications",
            "Notifications queued to subscribers (one per recipient)",
            self.notifications.clone(),
        );
        registry.register(
            "clients",
            "Registered clients by ClientType (logical clients of proxies included)",
            self.clients.clone(),
        );
        registry.register("agents_logged_in", "Agents logged in", self.logins.clone());
        registry.register(
            "subscriptions",
            "Workbin subscriptions",
            self.subscriptions.clone(),
        );
        registry.register(
            "interactions",
            "Interactions stored, by state",
            self.interactions.clone(),
        );
        registry.register(
            "busiest_interactions",
            "Interactions in the busiest queues and workbin instances (the 5 fullest of each kind at the scrape; others have no series)",
            self.busiest.clone(),
        );
        registry.register_with_unit(
            "interactions_stored",
            "Size of the stored interactions as counted for max_stored_bytes",
            Unit::Bytes,
            self.stored_bytes.clone(),
        );
        self.register_snapshots(registry);
        self.register_rest(registry);
    }

    /// The snapshot gauges.
    fn register_snapshots(&self, registry: &mut Registry) {
        registry.register(
            "snapshots_open",
            "Snapshots open (RequestTakeSnapshot, not yet released or ended)",
            self.snapshots.clone(),
        );
        registry.register(
            "locks_held",
            "Interactions locked by a client",
            self.locks.clone(),
        );
        registry.register_with_unit(
            "snapshots_held",
            "Memory the open snapshots' interaction ids take (32 bytes per interaction held)",
            Unit::Bytes,
            self.snapshot_bytes.clone(),
        );
    }

    /// What follows the snapshot gauges.
    fn register_rest(&self, registry: &mut Registry) {
        registry.register(
            "outbox_queued_messages",
            "Messages queued to be written, all connections together",
            self.outbox_messages.clone(),
        );
        registry.register_with_unit(
            "outbox_queued",
            "Bytes queued to be written, all connections together",
            Unit::Bytes,
            self.outbox_bytes.clone(),
        );
        registry.register(
            "outbox_max_queued_messages",
            "The longest outbound queue of one connection, in messages",
            self.outbox_max_messages.clone(),
        );
        registry.register_with_unit(
            "journal_sync",
            "Time to make one group commit of the store durable: the sync after its write, or write and sync when one thread does both (a server with one CPU, or PostgreSQL)",
            Unit::Seconds,
            self.sync_seconds.clone(),
        );
        registry.register_with_unit(
            "journal_commit",
            "Time from the engine handing a round of changes to the store until the store reported them durable (the replies held for them are released then): what durability adds to a request",
            Unit::Seconds,
            self.commit_seconds.clone(),
        );
        registry.register(
            "journal_sync_polls",
            "Times the engine task polled for a sync report instead of sleeping, by how the polling ended: synced (the report came), input (an input came first), timeout (it slept after the window)",
            self.sync_polls.clone(),
        );
        registry.register(
            "journal_batch_changes",
            "Changes written by one group commit (one sync)",
            self.batch_changes.clone(),
        );
    }

    /// Counts a connection closed or refused for `reason`.
    pub(crate) fn disconnect(&self, reason: Disconnect) {
        self.disconnects
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}
