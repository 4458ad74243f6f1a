//! Group commit off the engine task: the store thread and its flush threads.
//!
//! The engine task numbers each request's changes and hands a round of them to the store
//! thread at once ([`Durability`]). The store thread takes every round queued so far, writes
//! them as one group, and syncs it: itself ([`SyncMode::Inline`]), or on one of
//! [`FLUSH_LANES`] flush threads while it writes the next group ([`SyncMode::Pipelined`]). It
//! reports the highest number synced, never lower than one already reported, and nothing after
//! a failure (what a later sync covered may have been lost with the failed one).
//!
//! While replies wait for a sync, the engine task may poll for the report instead of sleeping
//! ([`Durability::polling`]): on a virtual machine an idle CPU is slow to wake.

use ixn_codec::Message;
use ixn_store::{FLUSH_LANES, Flush, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::info;

/// The engine task's link to its store thread (absent when the server is ephemeral).
#[derive(Debug)]
pub struct Durability {
    /// Each request's changes, numbered in engine order.
    pub(crate) to_store: std::sync::mpsc::Sender<Vec<(u64, Vec<Message>)>>,
    /// The highest number synced to disk, or the store's failure.
    pub(crate) synced: mpsc::UnboundedReceiver<Result<u64, String>>,
    /// How long the engine task polls for a sync report before it sleeps (see
    /// [`Durability::polling`]).
    pub(crate) poll: Duration,
}

/// The default of [`Durability::polling`]: a little more than a sync takes on a slow virtual
/// disk, far less than a network round trip.
pub const DEFAULT_SYNC_POLL: Duration = Duration::from_micros(500);

/// The longest [`Durability::polling`] window: polling longer only spends CPU.
pub const MAX_SYNC_POLL: Duration = Duration::from_millis(10);

/// The [`Durability::polling`] window for this process: [`DEFAULT_SYNC_POLL`], or zero when a
/// CPU quota (a container's) allows fewer CPUs than the process may run on, since polling would
/// spend the quota that the rest of the server needs.
pub fn sync_poll_for_this_machine() -> Duration {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let available = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if quota_limits_cpus(&status, available) {
        Duration::ZERO
    } else {
        DEFAULT_SYNC_POLL
    }
}

/// Whether `available` CPUs (what the standard library counts, a CPU quota included) are fewer
/// than the CPUs the process may run on (`Cpus_allowed_list` in `status`, the text of
/// `/proc/self/status`). False when the list is missing or unreadable.
fn quota_limits_cpus(status: &str, available: usize) -> bool {
    let Some(list) = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
    else {
        return false;
    };
    let mut allowed = 0usize;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => a
                .trim()
                .parse::<usize>()
                .ok()
                .zip(b.trim().parse::<usize>().ok()),
            None => part.trim().parse::<usize>().ok().map(|a| (a, a)),
        };
        match range {
            Some((a, b)) if a <= b => allowed = allowed.saturating_add(b - a).saturating_add(1),
            _ => return false,
        }
    }
    available < allowed
}

impl Durability {
    /// Starts the thread that runs `store` (group commit: every batch queued while a group is
    /// written and synced goes into the next group). The thread ends when the engine task does
    /// (or at the store's first failure); join it to release the store. The engine task polls
    /// for syncs as [`sync_poll_for_this_machine`] says (see [`Durability::polling`]).
    pub fn start(store: Box<dyn Store>) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        Self::start_with_metrics(store, Arc::new(crate::Metrics::default()))
    }

    /// [`Durability::start`], timing each sync and counting its changes into `metrics`; syncs
    /// [`SyncMode::for_this_machine`].
    pub fn start_with_metrics(
        store: Box<dyn Store>,
        metrics: Arc<crate::Metrics>,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        Self::start_with(store, metrics, SyncMode::for_this_machine())
    }

    /// [`Durability::start_with_metrics`], syncing as `mode` says.
    pub fn start_with(
        store: Box<dyn Store>,
        metrics: Arc<crate::Metrics>,
        mode: SyncMode,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (to_store, batches) = std::sync::mpsc::channel();
        let (synced_tx, synced) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("ixn-store".into())
            .spawn(move || store_thread(store, batches, synced_tx, &metrics, mode))?;
        Ok((
            Self {
                to_store,
                synced,
                poll: sync_poll_for_this_machine(),
            },
            thread,
        ))
    }

    /// Sets how long the engine task, when it has handed every change over, holds replies
    /// for a sync and has no input to take, polls for the sync's report (yielding its thread
    /// to any other that is ready, and letting the other tasks run, between looks) before it
    /// sleeps until the report or an input comes (capped at [`MAX_SYNC_POLL`]; zero: it sleeps
    /// at once). Polling keeps the CPU from going idle during the sync, and on a virtual
    /// machine an idle CPU is slow to wake when the sync completes: the reply then leaves
    /// sooner, for CPU time that would otherwise have been idle. Worth it for a local disk;
    /// for a store across the network (a database), zero.
    #[must_use]
    pub fn polling(mut self, window: Duration) -> Self {
        self.poll = window.min(MAX_SYNC_POLL);
        self
    }

    /// The polling window in force (see [`Durability::polling`]).
    pub fn polling_window(&self) -> Duration {
        self.poll
    }
}

/// Where the store thread's group commits are synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncMode {
    /// The store thread syncs each group itself, after writing it; the batches that arrive
    /// meanwhile form the next group. Fewest threads and syncs: best when the server has one
    /// CPU, where a sync on another thread only competes for it.
    Inline,
    /// Pipelined: the store thread writes a group and hands its sync to one of
    /// [`FLUSH_LANES`] flush threads, writing the next group meanwhile (up to that many syncs
    /// in flight; a free flush thread takes only the newest group written, its sync covering
    /// the older ones). Best with more than one CPU.
    Pipelined,
}

impl SyncMode {
    /// [`SyncMode::Inline`] when this process may run on one CPU only (its affinity, or a
    /// container's CPU quota), else [`SyncMode::Pipelined`].
    pub fn for_this_machine() -> Self {
        match std::thread::available_parallelism() {
            Ok(n) if n.get() == 1 => Self::Inline,
            _ => Self::Pipelined,
        }
    }
}

/// Runs the store: takes every batch queued so far and writes them as one group, then syncs it
/// as `mode` says: here, or ([`SyncMode::Pipelined`]) on one of [`FLUSH_LANES`] flush threads
/// while the next group is written, so up to that many syncs are in flight (each covers every
/// group written before it began, so a flush thread takes only the newest group waiting).
/// Reports the highest number synced, never lower than one already reported. Stops at the
/// first failure, after reporting it; nothing is reported as synced after a failure.
fn store_thread(
    mut store: Box<dyn Store>,
    batches: std::sync::mpsc::Receiver<Vec<(u64, Vec<Message>)>>,
    synced: mpsc::UnboundedSender<Result<u64, String>>,
    metrics: &Arc<crate::Metrics>,
    mode: SyncMode,
) {
    /// Most batches written as one group (bounds the write buffer).
    const GROUP: usize = 8192;
    let shared = Arc::new(Pipeline {
        state: std::sync::Mutex::new(PipelineState::default()),
        ready: std::sync::Condvar::new(),
        synced,
    });
    let lanes = match mode {
        SyncMode::Pipelined => {
            info!(
                flush_threads = FLUSH_LANES,
                "group commit: syncs pipelined on flush threads"
            );
            FLUSH_LANES
        }
        SyncMode::Inline => {
            info!("group commit: the store thread syncs each group itself");
            0
        }
    };
    let flushers: Vec<_> = (0..lanes)
        .filter_map(|lane| {
            let (shared, metrics) = (Arc::clone(&shared), Arc::clone(metrics));
            std::thread::Builder::new()
                .name(format!("ixn-store-sync-{lane}"))
                .spawn(move || flush_thread(lane, &shared, &metrics))
                .ok()
        })
        .collect();
    if flushers.len() < lanes {
        shared.report(Err("cannot start the store's sync threads".to_owned()));
    }
    let mut group: Vec<Vec<Message>> = Vec::with_capacity(GROUP);
    while !shared.failed() {
        let Ok(first) = batches.recv() else {
            break;
        };
        group.clear();
        let mut last = 0;
        let mut take = |round: Vec<(u64, Vec<Message>)>, group: &mut Vec<Vec<Message>>| {
            for (n, b) in round {
                last = n;
                group.push(b);
            }
        };
        take(first, &mut group);
        while group.len() < GROUP {
            match batches.try_recv() {
                Ok(round) => take(round, &mut group),
                Err(_) => break,
            }
        }
        if group.is_empty() {
            continue;
        }
        let changes: usize = group.iter().map(Vec::len).sum();
        #[allow(clippy::cast_precision_loss)] // a count of changes, far below 2^52
        metrics.batch_changes.observe(changes as f64);
        let started = Instant::now();
        let group = std::mem::take(&mut group);
        let written = match mode {
            SyncMode::Inline => store.append_owned(group).map(|()| None),
            SyncMode::Pipelined => store.write_owned(group),
        };
        match written {
            Ok(Some(flush)) => shared.hand_over(last, flush),
            Ok(None) => {
                metrics
                    .sync_seconds
                    .observe(started.elapsed().as_secs_f64());
                shared.report(Ok(last));
            }
            Err(e) => shared.report(Err(e.to_string())),
        }
    }
    shared.close();
    for f in flushers {
        let _ = f.join();
    }
}

/// The store thread's hand-over to its flush threads, and the one place syncs are reported.
struct Pipeline {
    state: std::sync::Mutex<PipelineState>,
    ready: std::sync::Condvar,
    synced: mpsc::UnboundedSender<Result<u64, String>>,
}

#[derive(Default)]
struct PipelineState {
    /// The newest group written and not yet being synced: its number and its flush.
    waiting: Option<(u64, Flush)>,
    /// The highest number reported synced.
    reported: u64,
    /// A failure was reported (nothing more is), or the store thread ended.
    failed: bool,
    closed: bool,
}

impl Pipeline {
    fn lock(&self) -> std::sync::MutexGuard<'_, PipelineState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self) -> bool {
        self.lock().failed
    }

    /// A group up to `last` was written: the next free flush thread syncs it (replacing an
    /// older group still waiting, which its sync covers).
    fn hand_over(&self, last: u64, flush: Flush) {
        self.lock().waiting = Some((last, flush));
        self.ready.notify_one();
    }

    /// Reports a sync (only if it raises what was reported) or a failure (once; then nothing).
    fn report(&self, r: Result<u64, String>) {
        let mut s = self.lock();
        if s.failed {
            return;
        }
        match r {
            Ok(n) if n > s.reported => {
                s.reported = n;
                if self.synced.send(Ok(n)).is_err() {
                    s.failed = true;
                }
            }
            Ok(_) => {}
            Err(e) => {
                s.failed = true;
                let _ = self.synced.send(Err(e));
            }
        }
        if s.failed {
            drop(s);
            self.ready.notify_all();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next group to sync; `None` once the store thread ended (and nothing waits) or failed.
    fn next(&self) -> Option<(u64, Flush)> {
        let mut s = self.lock();
        loop {
            if s.failed {
                return None;
            }
            if let Some(w) = s.waiting.take() {
                return Some(w);
            }
            if s.closed {
                return None;
            }
            s = self
                .ready
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// A flush thread: syncs the newest group waiting, reports it, and again.
fn flush_thread(lane: usize, shared: &Pipeline, metrics: &crate::Metrics) {
    while let Some((last, flush)) = shared.next() {
        let started = Instant::now();
        let r = flush.run(lane);
        metrics
            .sync_seconds
            .observe(started.elapsed().as_secs_f64());
        shared.report(r.map(|()| last).map_err(|e| e.to_string()));
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // test code: a panic is how a check fails
mod tests {
    use super::{Pipeline, PipelineState};
    use tokio::sync::mpsc;

    fn pipeline() -> (Pipeline, mpsc::UnboundedReceiver<Result<u64, String>>) {
        let (synced, rx) = mpsc::unbounded_channel();
        let p = Pipeline {
            state: std::sync::Mutex::new(PipelineState::default()),
            ready: std::sync::Condvar::new(),
            synced,
        };
        (p, rx)
    }

    fn reports(rx: &mut mpsc::UnboundedReceiver<Result<u64, String>>) -> Vec<Result<u64, String>> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// A CPU quota shows as fewer CPUs available than the affinity list allows.
    #[test]
    fn a_cpu_quota_is_told_from_the_affinity_list() {
        let status = |list: &str| format!("Name:\tixn-server\nCpus_allowed_list:\t{list}\n");
        assert!(!super::quota_limits_cpus(&status("0-1"), 2));
        assert!(super::quota_limits_cpus(&status("0-1"), 1));
        assert!(super::quota_limits_cpus(&status("0-3,6,8-9"), 6));
        assert!(!super::quota_limits_cpus(&status("0-3,6,8-9"), 7));
        assert!(!super::quota_limits_cpus(&status("0"), 1));
        assert!(
            !super::quota_limits_cpus("Name:\tx\n", 1),
            "no list: no quota known"
        );
        assert!(
            !super::quota_limits_cpus(&status("3-1"), 1),
            "a list not understood"
        );
        assert!(!super::quota_limits_cpus(&status("a-b"), 1));
        assert!(
            super::quota_limits_cpus(&status(&format!("0-{}", usize::MAX)), 64),
            "a range past any count does not overflow"
        );
    }

    /// Two syncs in flight may finish in either order: what is reported never goes down.
    #[test]
    fn reports_only_raise_the_synced_number() {
        let (p, mut rx) = pipeline();
        p.report(Ok(5));
        p.report(Ok(3));
        p.report(Ok(5));
        p.report(Ok(9));
        assert_eq!(reports(&mut rx), vec![Ok(5), Ok(9)]);
    }

    /// After a failure, a sync that succeeded on the other lane is not reported: what it
    /// covered may have been lost with the failed one.
    #[test]
    fn nothing_is_reported_synced_after_a_failure() {
        let (p, mut rx) = pipeline();
        p.report(Ok(1));
        p.report(Err("disk gone".into()));
        p.report(Ok(7));
        p.report(Err("again".into()));
        assert_eq!(reports(&mut rx), vec![Ok(1), Err("disk gone".into())]);
        assert!(p.failed());
        assert!(p.next().is_none(), "the flush threads stop");
    }

    /// Inline and pipelined, every round sent is reported synced in order and is in the
    /// journal when it is opened again; when the engine side ends, the thread ends.
    #[test]
    fn every_round_is_reported_synced_and_is_in_the_journal_in_both_modes() {
        for mode in [super::SyncMode::Inline, super::SyncMode::Pipelined] {
            let dir = std::env::temp_dir().join(format!(
                "ixn-tcp-store-thread-{mode:?}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let (journal, _) = ixn_store::Journal::open(&dir).expect("journal");
            let metrics = std::sync::Arc::new(crate::Metrics::default());
            let (d, thread) =
                super::Durability::start_with(Box::new(journal), metrics, mode).expect("start");
            let super::Durability {
                to_store,
                mut synced,
                ..
            } = d;
            let change = |n: u64| {
                ixn_codec::Message::new(ixn_codec::MessageId(0xF002))
                    .with("InteractionId", format!("i{n}").as_str())
            };
            let mut n = 0u64;
            for round in 1..=50u64 {
                let batches = (0..round % 4 + 1)
                    .map(|_| {
                        n += 1;
                        (n, vec![change(n)])
                    })
                    .collect();
                to_store.send(batches).expect("send");
            }
            let mut last = 0;
            while last < n {
                let r = synced.blocking_recv().expect("a report").expect("synced");
                assert!(r > last, "{mode:?}: reports go up ({r} after {last})");
                last = r;
            }
            drop(to_store);
            thread.join().expect("the store thread ends");
            let (_, opened) = ixn_store::Journal::open(&dir).expect("reopen");
            let ids: Vec<String> = opened
                .changes
                .iter()
                .filter_map(|m| m.attrs.get_str("InteractionId").map(ToString::to_string))
                .collect();
            let want: Vec<String> = (1..=n).map(|i| format!("i{i}")).collect();
            assert_eq!(ids, want, "{mode:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// A flush thread takes the newest group waiting; once the store thread ended, it still
    /// syncs what waits, then stops.
    #[test]
    fn the_newest_group_waiting_is_synced_even_after_close() {
        let dir = std::env::temp_dir().join(format!("ixn-tcp-pipeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut journal, _) = ixn_store::Journal::open(&dir).expect("journal");
        let change = |n: i32| {
            vec![ixn_codec::Message::new(ixn_codec::MessageId(0xF002)).with("InteractionId", n)]
        };
        let (p, _rx) = pipeline();
        for n in 1..=3u64 {
            let flush = ixn_store::Store::write_owned(&mut journal, vec![change(n as i32)])
                .expect("write")
                .expect("the journal splits writing from syncing");
            p.hand_over(n, flush);
        }
        p.close();
        let (n, flush) = p.next().expect("the newest group");
        assert_eq!(n, 3);
        flush.run(1).expect("sync");
        assert!(p.next().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
