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
use std::sync::mpsc::{Receiver, RecvTimeoutError};
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

/// Waits `d` for a stop; true when the loop must end (stop sent or its sender dropped).
fn stopped(stop: &Receiver<()>, d: Duration) -> bool {
    !matches!(stop.recv_timeout(d), Err(RecvTimeoutError::Timeout))
}

/// The leadership loop (see the module documentation). Ends when `stop` fires or is dropped
/// (releasing the lease if held, so that a standby takes over at once) or when the engine task
/// is gone.
pub(crate) fn leadership_loop(
    shared: &SharedStore,
    mut lead: Leadership,
    config: &Arc<Config>,
    roles: &Roles,
    metrics: &Arc<ixn_tcp::Metrics>,
    stop: &Receiver<()>,
) {
    let poll = (shared.lease / 8).max(Duration::from_millis(50));
    let mut told: Option<Option<String>> = None;
    let mut failing = false;
    loop {
        // Standing by.
        let (epoch, sent) = loop {
            let sent = Instant::now();
            let taken = match lead.observe() {
                Ok(row) if row.expired => lead.try_take(row.epoch).map(|e| (e, row)),
                Ok(row) => Ok((None, row)),
                Err(e) => Err(e),
            };
            match taken {
                Ok((Some(epoch), _)) => break (epoch, sent),
                Ok((None, row)) => {
                    failing = false;
                    let active = (!row.expired && !row.advertised.is_empty())
                        .then(|| row.advertised.clone());
                    if told.as_ref() != Some(&active) {
                        info!(
                            active = active.as_deref().unwrap_or("none"),
                            holder = %row.holder,
                            epoch = row.epoch,
                            "standing by"
                        );
                        if !roles.stand_by(active.clone()) {
                            return;
                        }
                        told = Some(active);
                    }
                }
                Err(e) => {
                    if !failing {
                        warn!(error = %e, "standing by: the shared store cannot be read; retrying");
                        failing = true;
                    }
                    if told.as_ref() != Some(&None) {
                        if !roles.stand_by(None) {
                            return;
                        }
                        told = Some(None);
                    }
                }
            }
            if stopped(stop, poll) {
                return;
            }
        };
        // Taking over.
        info!(epoch, "took the shared store over; loading");
        let seed = std::hash::BuildHasher::hash_one(
            &std::hash::RandomState::new(),
            (std::process::id(), epoch),
        );
        let loaded = load(shared, epoch, Arc::clone(config), seed).and_then(|(e, s, r)| {
            // A sync is a round trip to the database: the engine task sleeps until it is done.
            let (d, thread) = Durability::start_with_metrics(Box::new(s), Arc::clone(metrics))?;
            let d = (d.polling(Duration::ZERO), thread);
            Ok((e, d, r))
        });
        let (engine, durability, restored) = match loaded {
            Ok(l) => l,
            Err(e) => {
                error!(error = %e, epoch, "cannot load the shared store; giving the lease up");
                let _ = lead.release(epoch);
                told = None;
                if stopped(stop, shared.lease) {
                    return;
                }
                continue;
            }
        };
        for w in &restored.warnings {
            warn!("{w}");
        }
        // Loading may have taken a while: renew before serving.
        let lease = Lease::new(sent + shared.valid_for());
        let renewed = Instant::now();
        if matches!(lead.renew(epoch), Ok(true)) {
            lease.extend_to(renewed + shared.valid_for());
        }
        info!(
            epoch,
            interactions = restored.interactions,
            millis = sent.elapsed().as_millis() as u64,
            "active"
        );
        if !roles.activate(engine, durability.0, lease.clone()) {
            let _ = lead.release(epoch);
            return;
        }
        drop(durability.1); // the store thread ends when the engine task drops its link
        told = None;
        // Active: renew until stopped, replaced, or stepped down.
        let mut warned = false;
        loop {
            if stopped(stop, shared.lease / 4) {
                match lead.release(epoch) {
                    Ok(()) => info!(epoch, "gave the shared store up"),
                    Err(e) => {
                        warn!(error = %e, "cannot give the shared store up; a standby takes over when the lease expires")
                    }
                }
                return;
            }
            if lease.stepped_down() {
                warn!(epoch, "the engine stepped down; standing by");
                break;
            }
            let sent = Instant::now();
            match lead.renew(epoch) {
                Ok(true) => {
                    lease.extend_to(sent + shared.valid_for());
                    warned = false;
                }
                Ok(false) => {
                    // Name the new active server at once, so that clients are sent there.
                    let active = lead
                        .observe()
                        .ok()
                        .filter(|row| !row.expired && !row.advertised.is_empty())
                        .map(|row| row.advertised);
                    warn!(
                        epoch,
                        active = active.as_deref().unwrap_or("unknown"),
                        "another server took the shared store over; stepping down"
                    );
                    if !roles.stand_by(active.clone()) {
                        return;
                    }
                    told = Some(active);
                    break;
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
