//! The `[limits]` table.

use serde::{Deserialize, Serialize};

/// Every limit the server enforces, with its default. A limit that would be passed gets
/// `EventError LimitExceeded` naming it (engine limits) or a logged refusal (server limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame body accepted or sent, in bytes. Default 16 MiB (16777216).
    pub max_frame_len: usize,
    /// Deepest KVList nesting accepted. Default 16 (at most 64 is honoured).
    pub max_kvlist_depth: usize,
    /// Simultaneous TCP connections; more are refused. Default 10000.
    pub max_connections: usize,
    /// Logical clients registered on one proxy connection. Default 10000.
    pub max_clients_per_connection: usize,
    /// Workbin subscriptions held by one client. Default 1000.
    pub max_subscriptions_per_client: usize,
    /// Interactions in one workbin instance. Default 10000.
    pub max_interactions_per_workbin: usize,
    /// Interactions in the whole server. Default 1000000.
    pub max_interactions: usize,
    /// Messages waiting to be written to one connection before it is disconnected as a slow
    /// consumer. Default 10000.
    pub outbound_queue_messages: usize,
    /// Bytes waiting to be written to one connection before it is disconnected as a slow
    /// consumer. Default 64 MiB (67108864).
    pub outbound_queue_bytes: usize,
    /// Seconds a new connection may take to register before it is closed. Default 10.
    pub registration_timeout_secs: u64,
    /// Bytes held in incomplete frames (of more than 4 KiB) across all connections; a
    /// connection whose frame would pass it gets LimitExceeded and is closed. Default 128 MiB
    /// (134217728).
    pub max_partial_frame_bytes: usize,
    /// Seconds a frame of more than 4 KiB may take to arrive whole once it has begun; then the
    /// connection gets LimitExceeded and is closed. Default 10.
    pub frame_timeout_secs: u64,
    /// Largest interaction (its properties and UserData as encoded), on submit and after every
    /// change. Must leave room under `max_frame_len` for the message around it, and be at most
    /// [`MAX_INTERACTION_BYTES`] (a journal record must hold one). Default 1 MiB (1048576).
    pub max_interaction_bytes: usize,
    /// Bytes of all stored interactions together (as counted for `max_interaction_bytes`).
    /// Default 512 MiB (536870912).
    pub max_stored_bytes: usize,
    /// Interactions one snapshot holds at most (`SnapshotMaxInteractions` is capped by it).
    /// Default 500, at most [`MAX_INTERACTIONS_PER_SNAPSHOT`] (10000).
    pub max_interactions_per_snapshot: usize,
    /// Snapshots one client holds open at once. Default 16.
    pub max_snapshots_per_client: usize,
    /// Seconds a snapshot stays open without being read; then it ends (and its locks with it).
    /// Default 600.
    pub snapshot_idle_secs: u64,
    /// Longest snapshot condition, in bytes. Default 4096.
    pub max_condition_bytes: usize,
}

/// The largest `max_interactions_per_snapshot` allowed.
pub const MAX_INTERACTIONS_PER_SNAPSHOT: usize = 10_000;

/// The largest `max_interaction_bytes` allowed: 32 MiB, so that one request's durable changes
/// always fit in a journal record (64 MiB).
pub const MAX_INTERACTION_BYTES: usize = 32 * 1024 * 1024;

/// Room a message needs around one interaction (its other attributes, a Workbin, a
/// ProxyClientId): `max_interaction_bytes` must be at most `max_frame_len` minus this.
pub const INTERACTION_ENVELOPE: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: 16 * 1024 * 1024,
            max_kvlist_depth: 16,
            max_connections: 10_000,
            max_clients_per_connection: 10_000,
            max_subscriptions_per_client: 1_000,
            max_interactions_per_workbin: 10_000,
            max_interactions: 1_000_000,
            outbound_queue_messages: 10_000,
            outbound_queue_bytes: 64 * 1024 * 1024,
            registration_timeout_secs: 10,
            max_partial_frame_bytes: 128 * 1024 * 1024,
            frame_timeout_secs: 10,
            max_interaction_bytes: 1024 * 1024,
            max_stored_bytes: 512 * 1024 * 1024,
            max_interactions_per_snapshot: 500,
            max_snapshots_per_client: 16,
            snapshot_idle_secs: 600,
            max_condition_bytes: 4096,
        }
    }
}

impl Limits {
    /// Each limit's name, value and smallest sensible value, for validation.
    pub(crate) fn checks(&self) -> [(&'static str, u64, u64); 18] {
        [
            ("max_frame_len", self.max_frame_len as u64, 64),
            ("max_kvlist_depth", self.max_kvlist_depth as u64, 2),
            ("max_connections", self.max_connections as u64, 1),
            (
                "max_clients_per_connection",
                self.max_clients_per_connection as u64,
                1,
            ),
            (
                "max_subscriptions_per_client",
                self.max_subscriptions_per_client as u64,
                1,
            ),
            (
                "max_interactions_per_workbin",
                self.max_interactions_per_workbin as u64,
                1,
            ),
            ("max_interactions", self.max_interactions as u64, 1),
            (
                "outbound_queue_messages",
                self.outbound_queue_messages as u64,
                1,
            ),
            (
                "outbound_queue_bytes",
                self.outbound_queue_bytes as u64,
                1024,
            ),
            (
                "registration_timeout_secs",
                self.registration_timeout_secs,
                1,
            ),
            (
                "max_partial_frame_bytes",
                self.max_partial_frame_bytes as u64,
                64 * 1024,
            ),
            ("frame_timeout_secs", self.frame_timeout_secs, 1),
            (
                "max_interaction_bytes",
                self.max_interaction_bytes as u64,
                1024,
            ),
            ("max_stored_bytes", self.max_stored_bytes as u64, 1024),
            (
                "max_interactions_per_snapshot",
                self.max_interactions_per_snapshot as u64,
                1,
            ),
            (
                "max_snapshots_per_client",
                self.max_snapshots_per_client as u64,
                1,
            ),
            ("snapshot_idle_secs", self.snapshot_idle_secs, 1),
            ("max_condition_bytes", self.max_condition_bytes as u64, 16),
        ]
    }
}
