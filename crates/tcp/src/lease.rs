//! Leadership as the engine task sees it: the [`Lease`] a leadership loop keeps moving forward
//! while this server holds a shared store (the loop switches the engine task between active
//! and standby through [`Roles`](crate::Roles)).
//!
//! The engine task checks the lease before each request and after each sync report: once it
//! has passed, nothing more is acknowledged (another server may already serve), the task steps
//! down and marks the lease so that the loop knows it must take the store over again; the
//! lease's wake (given by the loop) tells the loop at once, so that it reads who holds the
//! lease now while the engine task holds requests for that name.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// This server's hold on a shared store, as the engine task sees it: valid until a deadline
/// that the leadership loop moves forward with each renewal. Once it has passed, the engine
/// task acknowledges nothing more: it steps down and says so ([`Lease::stepped_down`]).
#[derive(Clone, Debug)]
pub struct Lease(Arc<LeaseState>);

struct LeaseState {
    base: Instant,
    /// Nanoseconds after `base`.
    valid_until: AtomicU64,
    stepped_down: AtomicBool,
    /// Called once the engine task stepped down.
    wake: Option<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for LeaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseState")
            .field("valid_until", &self.valid_until)
            .field("stepped_down", &self.stepped_down)
            .field("wake", &self.wake.is_some())
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// A lease valid until `until`.
    pub fn new(until: Instant) -> Self {
        Self::build(until, None)
    }

    /// A lease valid until `until` that calls `wake` once the engine task stepped down under
    /// it (the leadership loop's wake-up).
    pub fn with_wake(until: Instant, wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self::build(until, Some(Box::new(wake)))
    }

    fn build(until: Instant, wake: Option<Box<dyn Fn() + Send + Sync>>) -> Self {
        let base = Instant::now();
        let lease = Self(Arc::new(LeaseState {
            base,
            valid_until: AtomicU64::new(0),
            stepped_down: AtomicBool::new(false),
            wake,
        }));
        lease.extend_to(until);
        lease
    }

    /// Moves the deadline to `until` (never back).
    pub fn extend_to(&self, until: Instant) {
        let nanos = u64::try_from(until.saturating_duration_since(self.0.base).as_nanos())
            .unwrap_or(u64::MAX);
        self.0.valid_until.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Whether the lease is still valid at `now`.
    pub fn is_valid(&self, now: Instant) -> bool {
        let nanos = u64::try_from(now.saturating_duration_since(self.0.base).as_nanos())
            .unwrap_or(u64::MAX);
        nanos < self.0.valid_until.load(Ordering::Acquire)
    }

    /// True once the engine task stepped down under this lease (it lapsed, or the store
    /// failed): the leadership loop must take the store over again before serving.
    pub fn stepped_down(&self) -> bool {
        self.0.stepped_down.load(Ordering::Acquire)
    }

    pub(crate) fn mark_stepped_down(&self) {
        if !self.0.stepped_down.swap(true, Ordering::AcqRel)
            && let Some(wake) = &self.0.wake
        {
            wake();
        }
    }
}
