//! Group commit as the engine task sees it: the changes of each request, numbered in engine
//! order and handed to the store thread a round at a time; the outputs held until the changes
//! before them are synced; and whether to linger for more requests before a handover.
//!
//! After each input the engine task drains the engine's durable changes and numbers them
//! ([`Commit::record`]); the outputs of each input are held, in engine order, until the store
//! reports its number synced. At the end of each round of inputs the round's changes go to the
//! store thread at once, first letting the readers run a few times ([`LINGER_YIELDS`]) so that
//! the requests the clients already sent join the round: a group then holds nearly every
//! request in flight, and each sync serves more of them. At most [`LINGER_MAX`] requests'
//! changes wait so, and after [`LINGER_UNPAID`] lone requests for which lingering brought
//! nothing it lingers only every [`LINGER_PROBE`]th time, until that pays again.
//!
//! While replies wait for a sync, every change was handed over and no input waits, the task
//! polls for the report ([`Commit::poll_for_sync`]) for up to the `Durability::polling` window
//! before it sleeps: a CPU kept busy through the sync wakes the store's thread sooner when the
//! disk answers (on a virtual machine by about 90 us). An input ends the polling at once.
//! Close acknowledgements are held in the same queue, so a connection's held replies go out
//! before it closes.
//!
//! Invariant: an output is released only once every change numbered before it is reported
//! synced, so no client hears of a change the disk may not hold. After a store failure
//! nothing is released again; held close acknowledgements still are, so connections finish.

use crate::durability::Durability;
use crate::input::Input;
use ixn_codec::Message;
use ixn_core::{ConnId, Engine, Output};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How many inputs' outputs may wait for the disk before the engine task stops taking inputs
/// (back-pressure to the readers, so held outputs cannot grow without bound).
pub(super) const MAX_HELD: usize = 65_536;

/// Most rounds handed to the store whose hand-over time is kept for `journal_commit_seconds`
/// (a round past it is synced as any other, only not timed).
const MAX_TIMED: usize = 4096;

/// How many times the engine task lets the readers run before it hands a round's changes to
/// the store thread, when nothing new arrives (see [`EngineTask::linger`]).
pub(super) const LINGER_YIELDS: usize = 4;

/// After this many handovers in a row of one request's changes, for which lingering brought
/// nothing, the engine task stops lingering: a lone client does not wait for company that never
/// comes.
pub(super) const LINGER_UNPAID: u32 = 2;

/// While lingering does not pay, the engine task still lingers before every this many
/// handovers (a probe), and lingers again from the first probe that brings something.
pub(super) const LINGER_PROBE: u32 = 8;

/// Whether lingering pays (see [`EngineTask::linger`]).
#[derive(Debug, Default)]
struct Lingering {
    /// Handovers in a row of one request, for which lingering brought nothing.
    unpaid: u32,
    /// Lingered since the last handover.
    lingered: bool,
    /// Lingering brought inputs since the last handover.
    gained: bool,
    /// Handovers without lingering since the last probe.
    skipped: u32,
}

impl Lingering {
    /// Whether to linger before this handover.
    fn wanted(&mut self) -> bool {
        if self.gained || self.unpaid < LINGER_UNPAID {
            self.lingered = true;
            return true;
        }
        self.skipped += 1;
        if self.skipped >= LINGER_PROBE {
            self.skipped = 0;
            self.lingered = true;
            return true;
        }
        false
    }

    /// Lingering brought inputs: the round goes on, and lingers again before its handover.
    fn gained(&mut self) {
        self.gained = true;
    }

    /// The changes of `requests` requests are handed over: whether lingering brought anything,
    /// or anything else was waiting, decides the next.
    fn handed_over(&mut self, requests: usize) {
        if self.lingered {
            self.unpaid = if self.gained || requests > 1 {
                0
            } else {
                self.unpaid.saturating_add(1)
            };
        }
        self.lingered = false;
        self.gained = false;
    }
}

/// Requests whose changes may wait for more to join them (bounds what lingering delays).
pub(super) const LINGER_MAX: usize = 256;

/// Outputs waiting for the changes before them to be on disk, in engine order.
#[derive(Debug)]
pub(super) enum Held {
    Outputs {
        after: u64,
        requester: ConnId,
        outputs: Vec<Output>,
    },
    CloseAck {
        after: u64,
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
}

impl Held {
    pub(super) fn after(&self) -> u64 {
        match self {
            Self::Outputs { after, .. } | Self::CloseAck { after, .. } => *after,
        }
    }
}

/// The engine task's side of group commit (absent durability: an ephemeral server, where
/// nothing is held).
#[derive(Debug)]
pub(super) struct Commit {
    durability: Option<Durability>,
    /// Durable changes of the message being handled.
    changes: Vec<Message>,
    /// Requests' changes of this round of inputs, sent to the store thread together at its end
    /// (one channel operation and at most one wake-up per round, not per request).
    to_store: Vec<(u64, Vec<Message>)>,
    held: VecDeque<Held>,
    /// Whether to let the readers run before handing changes over.
    lingering: Lingering,
    /// Rounds handed to the store and not yet reported synced (at most [`MAX_TIMED`]): the
    /// number of each one's last batch and when it was handed over.
    handed: VecDeque<(u64, Instant)>,
    /// Change batches sent to the store, and synced by it.
    issued: u64,
    synced: u64,
    /// The store failed: nothing may be acknowledged any more.
    broken: bool,
}

impl Commit {
    pub(super) fn new(durability: Option<Durability>) -> Self {
        Self {
            durability,
            changes: Vec::new(),
            to_store: Vec::new(),
            held: VecDeque::new(),
            lingering: Lingering::default(),
            handed: VecDeque::new(),
            issued: 0,
            synced: 0,
            broken: false,
        }
    }

    /// Starts committing through `durability` (a takeover), numbering from one again.
    pub(super) fn start(&mut self, durability: Durability) {
        self.durability = Some(durability);
        self.issued = 0;
        self.synced = 0;
    }

    /// Stops committing (a step-down): nothing held is released; what held close
    /// acknowledgements is returned so that the caller sends them.
    #[must_use]
    pub(super) fn stop(&mut self) -> Vec<(ConnId, oneshot::Sender<()>)> {
        self.durability = None;
        self.to_store.clear();
        self.handed.clear();
        self.issued = 0;
        self.synced = 0;
        self.abandon()
    }

    /// The store failed: nothing is acknowledged any more (see [`Commit::stop`] for the
    /// returned close acknowledgements).
    #[must_use]
    pub(super) fn break_down(&mut self) -> Vec<(ConnId, oneshot::Sender<()>)> {
        self.broken = true;
        self.abandon()
    }

    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Held outputs can never be released (their changes may not be on disk), but held close
    /// acknowledgements are handed back so that connections can finish.
    fn abandon(&mut self) -> Vec<(ConnId, oneshot::Sender<()>)> {
        self.held
            .drain(..)
            .filter_map(|h| match h {
                Held::CloseAck { conn, done, .. } => Some((conn, done)),
                Held::Outputs { .. } => None,
            })
            .collect()
    }

    /// Whether another input may be taken: not while held outputs are at their bound.
    pub(super) fn has_room(&self) -> bool {
        self.held.len() < MAX_HELD
    }

    /// Numbers the changes `engine` recorded for the message just handled (durable only).
    pub(super) fn record(&mut self, engine: &mut Engine) {
        if self.durability.is_none() {
            return;
        }
        engine.drain_changes(&mut self.changes);
        if !self.changes.is_empty() {
            self.issued += 1;
            self.to_store
                .push((self.issued, std::mem::take(&mut self.changes)));
        }
    }

    /// Whether outputs must wait now: something is held already, or changes wait for a sync.
    pub(super) fn must_hold(&self) -> bool {
        !self.held.is_empty() || self.issued > self.synced
    }

    pub(super) fn nothing_held(&self) -> bool {
        self.held.is_empty()
    }

    /// Holds `outputs` of `requester`'s request until what was issued so far is synced.
    pub(super) fn hold(&mut self, requester: ConnId, outputs: Vec<Output>) {
        self.held.push_back(Held::Outputs {
            after: self.issued,
            requester,
            outputs,
        });
    }

    /// Holds a connection's close acknowledgement behind its held outputs.
    pub(super) fn hold_close(&mut self, conn: ConnId, done: oneshot::Sender<()>) {
        self.held.push_back(Held::CloseAck {
            after: self.issued,
            conn,
            done,
        });
    }

    /// Requests in this round whose changes are not handed over yet.
    pub(super) fn round_len(&self) -> usize {
        self.to_store.len()
    }

    /// Whether to linger (let the readers run, so that what they bring joins this round)
    /// before handing it over: not once enough waits, nor while lingering does not pay.
    pub(super) fn wants_linger(&mut self) -> bool {
        self.to_store.len() < LINGER_MAX && self.lingering.wanted()
    }

    /// Lingering brought inputs: the round goes on, and lingers again before its handover.
    pub(super) fn linger_gained(&mut self) {
        self.lingering.gained();
    }

    /// This round is complete: what lingering brought decides the next.
    pub(super) fn round_done(&mut self) {
        if !self.to_store.is_empty() {
            self.lingering.handed_over(self.to_store.len());
        }
    }

    /// Hands this round's changes to the store thread.
    pub(super) fn send_to_store(&mut self) {
        if self.to_store.is_empty() {
            return;
        }
        let round = std::mem::take(&mut self.to_store);
        if let Some(&(last, _)) = round.last()
            && self.handed.len() < MAX_TIMED
        {
            self.handed.push_back((last, Instant::now()));
        }
        if let Some(d) = &self.durability {
            // A store thread that is gone is reported by `next_synced`.
            let _ = d.to_store.send(round);
        }
    }

    /// The store synced up to `n`: observes each handed round's commit time into
    /// `commit_seconds` and returns what may be released now, in order.
    pub(super) fn synced_up_to(
        &mut self,
        n: u64,
        metrics: &crate::Metrics,
    ) -> impl Iterator<Item = Held> + '_ {
        self.synced = n;
        while let Some(&(last, at)) = self.handed.front()
            && last <= n
        {
            self.handed.pop_front();
            metrics.commit_seconds.observe(at.elapsed().as_secs_f64());
        }
        let due = self.held.iter().take_while(|h| h.after() <= n).count();
        self.held.drain(..due)
    }

    /// The next sync report, or never when the server is ephemeral or the store broke.
    pub(super) async fn next_synced(&mut self) -> Option<Result<u64, String>> {
        match &mut self.durability {
            Some(d) if !self.broken => d.synced.recv().await,
            _ => std::future::pending().await,
        }
    }

    /// When replies wait for a sync, every change was handed over and no input waits: polls for
    /// the sync's report for up to the [`Durability::polling`] window, yielding the thread
    /// (so that a thread woken on this CPU, such as the store's when the disk answers, runs at
    /// once) and the task (so that the connections' tasks run and the I/O driver is polled)
    /// between looks. The report, if it came; `None` when polling does not apply, an input came
    /// first, or the window passed (the caller then waits for either as usual).
    pub(super) async fn poll_for_sync(
        &mut self,
        inputs: &mpsc::Receiver<Input>,
        metrics: &crate::Metrics,
    ) -> Option<Result<u64, String>> {
        let window = self.durability.as_ref().map_or(Duration::ZERO, |d| d.poll);
        let waiting = self.held.front().is_some_and(|h| h.after() > self.synced);
        if window.is_zero()
            || self.broken
            || !waiting
            || !self.to_store.is_empty()
            || !inputs.is_empty()
        {
            return None;
        }
        let until = Instant::now() + window;
        let outcome = loop {
            match self.durability.as_mut().map(|d| d.synced.try_recv()) {
                Some(Ok(report)) => {
                    count_poll(metrics, "synced");
                    return Some(report);
                }
                // The store thread is gone (or the task stepped down): the usual wait
                // reports it.
                None | Some(Err(mpsc::error::TryRecvError::Disconnected)) => return None,
                Some(Err(mpsc::error::TryRecvError::Empty)) => {}
            }
            if !inputs.is_empty() {
                break "input";
            }
            if Instant::now() >= until {
                break "timeout";
            }
            std::thread::yield_now();
            tokio::task::yield_now().await;
        };
        count_poll(metrics, outcome);
        None
    }
}

fn count_poll(metrics: &crate::Metrics, outcome: &'static str) {
    metrics
        .sync_polls
        .get_or_create(&crate::metrics::PollLabels { outcome })
        .inc();
}
