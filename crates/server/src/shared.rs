//! Serving from a shared PostgreSQL store: several servers on one database, exactly one
//! active. The leadership loop (a thread of its own, with its own connection) stands by until
//! the lease is free, takes the store over (the next epoch, which fences the previous holder),
//! loads the interactions into a new engine and hands it to the engine task; then it renews the
//! lease every quarter lease. The engine task acknowledges only while the lease is known to be
//! valid; when it lapses, when the store fails or when another server took over, the engine
//! task steps down (every client is disconnected to find the active server) and the loop
//! stands by again.

use crate::Error;
use ixn_config::Config;
use ixn_core::Engine;
use ixn_pgstore::{Leadership, PgStore};
use ixn_tcp::{Durability, Lease, Roles};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// How long the active server may go without renewing before a standby takes over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(2);

/// A store shared with other servers (PostgreSQL).
#[derive(Clone, Debug)]
pub struct SharedStore {
    /// The database (a libpq URL or key-value string).
    pub url: String,
    /// The lease: how long the active server may go without renewing.
    pub lease: Duration,
    /// Where clients reach this server (given to clients of a standby).
    pub advertised: String,
}

impl SharedStore {
    /// The part of the lease the active server counts on after a renewal it sent (the rest
    /// absorbs the delay between sending and the database's clock stamping it).
    fn valid_for(&self) -> Duration {
        self.lease.mul_f64(0.8)
    }
}

/// Loads the store at `epoch` into a new engine (recording changes), with the store to keep it
/// durable.
pub(crate) fn load(
    shared: &SharedStore,
    epoch: i64,
    config: Arc<Config>,
    seed: u64,
) -> Result<(Engine, PgStore, ixn_core::durable::Restored), Error> {
    use ixn_store::Store as _;
    let mut store = PgStore::open_at(&shared.url, epoch, shared.lease)?;
    let mut engine = Engine::new(config, seed);
    let mut restored = ixn_core::durable::Restored::default();
    store.load(&mut |change| engine.restore_one(change, &mut restored))?;
    restored.interactions = engine.stats().interactions;
    crate::refuse_dropped(&restored)?;
    let snapshot = engine.snapshot();
    if restored.relocated > 0 {
        // Write the new locations before serving.
        store.compact(&snapshot)?;
    } else if let Some(ids) = snapshot.first() {
        // Pin the id generator's state (a new database has none).
        store.append(&[vec![ids.clone()]])?;
    }
    engine.record_changes(true);
    Ok((engine, store, restored))
}

/// What wakes the leadership loop before its next renewal or poll.
#[derive(Debug)]
pub(crate) enum Wake {
    /// The server stops: give the lease up.
    Stop,
    /// The engine task stepped down (its lease lapsed, the store failed): read who holds the
    /// lease now, at once, since the engine task holds requests until it knows.
    SteppedDown,
}

/// Sends [`Wake::Stop`] to the leadership loop when dropped (the server stops).
#[derive(Debug)]
pub(crate) struct StopOnDrop(pub(crate) Sender<Wake>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Wake::Stop);
    }
}

/// Waits `d` for a wake; true when the loop must end (stop sent, or every sender dropped).
fn stopped(wake: &Receiver<Wake>, d: Duration) -> bool {
    match wake.recv_timeout(d) {
        Ok(Wake::SteppedDown) | Err(RecvTimeoutError::Timeout) => false,
        Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => true,
    }
}

/// What the leadership loop does next.
enum Next<T> {
    /// Go on with this.
    Go(T),
    /// Back to standing by.
    StandBy,
    /// End the loop (stopped, or the engine task is gone).
    End,
}

/// The leadership loop's state.
struct Leader<'a> {
    shared: &'a SharedStore,
    lead: Leadership,
    config: &'a Arc<Config>,
    roles: &'a Roles,
    metrics: &'a Arc<ixn_tcp::Metrics>,
    stop: &'a Receiver<Wake>,
    /// Given to each lease: the engine task's step-down wakes the loop.
    wake: Sender<Wake>,
    /// The active server last told to the engine task while standing by (`None`: not told
    /// since the last role change; `Some(None)`: told that nobody is active).
    told: Option<Option<String>>,
    /// Reading the store failed last time (warned once until it works again).
    failing: bool,
}

/// The leadership loop (see the module documentation). Ends on [`Wake::Stop`] (releasing the
/// lease if held, so that a standby takes over at once) or when the engine task is gone;
/// `wake` is a sender of `stop`'s channel, given to each lease.
pub(crate) fn leadership_loop(
    shared: &SharedStore,
    lead: Leadership,
    config: &Arc<Config>,
    roles: &Roles,
    metrics: &Arc<ixn_tcp::Metrics>,
    (wake, stop): (Sender<Wake>, &Receiver<Wake>),
) {
    let mut leader = Leader {
        shared,
        lead,
        config,
        roles,
        metrics,
        stop,
        wake,
        told: None,
        failing: false,
    };
    loop {
        let Some((epoch, sent)) = leader.stand_by() else {
            return;
        };
        let lease = match leader.take_over(epoch, sent) {
            Next::Go(lease) => lease,
            Next::StandBy => continue,
            Next::End => return,
        };
        match leader.serve(epoch, &lease) {
            Next::Go(()) | Next::StandBy => {}
            Next::End => return,
        }
    }
}

impl Leader<'_> {
    /// Tells the engine task to stand by naming `active`, unless it was told so already; false
    /// when the engine task is gone.
    fn tell(&mut self, active: Option<String>) -> bool {
        if self.told.as_ref() == Some(&active) {
            return true;
        }
        if !self.roles.stand_by(active.clone()) {
            return false;
        }
        self.told = Some(active);
        true
    }

    /// Stands by until this server takes the store over: the epoch taken and when the taking
    /// began; `None` when the loop must end.
    fn stand_by(&mut self) -> Option<(i64, Instant)> {
        let poll = (self.shared.lease / 8).max(Duration::from_millis(50));
        loop {
            let sent = Instant::now();
            let taken = match self.lead.observe() {
                Ok(row) if row.expired => self.lead.try_take(row.epoch).map(|e| (e, row)),
                Ok(row) => Ok((None, row)),
                Err(e) => Err(e),
            };
            match taken {
                Ok((Some(epoch), _)) => return Some((epoch, sent)),
                Ok((None, row)) => {
                    self.failing = false;
                    // The server that holds the lease, never this one: a row that still names
                    // this server after it stepped down (a database restart) means that nobody
                    // serves until it expires.
                    let active = (!row.expired
                        && !row.advertised.is_empty()
                        && row.holder != self.lead.holder())
                    .then(|| row.advertised.clone());
                    if self.told.as_ref() != Some(&active) {
                        info!(
                            active = active.as_deref().unwrap_or("none"),
                            holder = %row.holder,
                            epoch = row.epoch,
                            "standing by"
                        );
                    }
                    if !self.tell(active) {
                        return None;
                    }
                }
                Err(e) => {
                    if !self.failing {
                        warn!(error = %e, "standing by: the shared store cannot be read; retrying");
                        self.failing = true;
                    }
                    if !self.tell(None) {
                        return None;
                    }
                }
            }
            if stopped(self.stop, poll) {
                return None;
            }
        }
    }

    /// Loads the store taken over at `epoch` and activates the engine task with it: the lease
    /// it serves under.
    fn take_over(&mut self, epoch: i64, sent: Instant) -> Next<Lease> {
        info!(epoch, "took the shared store over; loading");
        let seed = std::hash::BuildHasher::hash_one(
            &std::hash::RandomState::new(),
            (std::process::id(), epoch),
        );
        let loaded =
            load(self.shared, epoch, Arc::clone(self.config), seed).and_then(|(e, s, r)| {
                // A sync is a round trip to the database: the engine task sleeps until it is done.
                let (d, thread) =
                    Durability::start_with_metrics(Box::new(s), Arc::clone(self.metrics))?;
                Ok((e, (d.polling(Duration::ZERO), thread), r))
            });
        let (engine, durability, restored) = match loaded {
            Ok(l) => l,
            Err(e) => {
                error!(error = %e, epoch, "cannot load the shared store; giving the lease up");
                let _ = self.lead.release(epoch);
                self.told = None;
                if stopped(self.stop, self.shared.lease) {
                    return Next::End;
                }
                return Next::StandBy;
            }
        };
        for w in &restored.warnings {
            warn!("{w}");
        }
        // Loading may have taken a while: renew before serving.
        let wake = self.wake.clone();
        let lease = Lease::with_wake(sent + self.shared.valid_for(), move || {
            let _ = wake.send(Wake::SteppedDown);
        });
        let renewed = Instant::now();
        if matches!(self.lead.renew(epoch), Ok(true)) {
            lease.extend_to(renewed + self.shared.valid_for());
        }
        info!(
            epoch,
            interactions = restored.interactions,
            millis = sent.elapsed().as_millis() as u64,
            "active"
        );
        if !self.roles.activate(engine, durability.0, lease.clone()) {
            let _ = self.lead.release(epoch);
            return Next::End;
        }
        drop(durability.1); // the store thread ends when the engine task drops its link
        self.told = None;
        Next::Go(lease)
    }

    /// Active: renews the lease until stopped (`End`, the lease given up), replaced or stepped
    /// down (`StandBy`).
    fn serve(&mut self, epoch: i64, lease: &Lease) -> Next<()> {
        let mut warned = false;
        loop {
            if stopped(self.stop, self.shared.lease / 4) {
                match self.lead.release(epoch) {
                    Ok(()) => info!(epoch, "gave the shared store up"),
                    Err(e) => {
                        warn!(error = %e, "cannot give the shared store up; a standby takes over when the lease expires")
                    }
                }
                return Next::End;
            }
            if lease.stepped_down() {
                warn!(epoch, "the engine stepped down; standing by");
                return Next::StandBy;
            }
            let sent = Instant::now();
            match self.lead.renew(epoch) {
                Ok(true) => {
                    lease.extend_to(sent + self.shared.valid_for());
                    warned = false;
                }
                Ok(false) => {
                    // Name the new active server at once, so that clients are sent there.
                    let active = self
                        .lead
                        .observe()
                        .ok()
                        .filter(|row| !row.expired && !row.advertised.is_empty())
                        .map(|row| row.advertised);
                    warn!(
                        epoch,
                        active = active.as_deref().unwrap_or("unknown"),
                        "another server took the shared store over; stepping down"
                    );
                    if !self.roles.stand_by(active.clone()) {
                        return Next::End;
                    }
                    self.told = Some(active);
                    return Next::StandBy;
                }
                Err(e) => {
                    if !warned {
                        warn!(error = %e, "cannot renew the lease on the shared store; retrying (nothing is acknowledged once it lapses)");
                        warned = true;
                    }
                }
            }
        }
    }
}
