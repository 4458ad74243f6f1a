//! The task that owns the engine: it takes inputs from every connection through one channel,
//! feeds them to the engine one at a time, and queues the outputs on the connections' outboxes.

use crate::outbox::{Item, Outbox, Pushed};
use foldhash::fast::FixedState;
use ixn_codec::{Bytes, Codec, Message, MessageId, attr};
use ixn_core::{ConnId, Engine, Output};
use ixn_store::{FLUSH_LANES, Flush, Store};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// What connections tell the engine task.
#[derive(Debug)]
pub(crate) enum Input {
    /// A connection was accepted (`link`: the web gateway's in-process connection, which
    /// never overflows: the engine task waits for it instead).
    Open {
        conn: ConnId,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
        link: bool,
        /// What the connection proved when it opened (a TLS client certificate).
        proof: Option<ixn_core::Proof>,
    },
    /// The connection proved a password, before the registration it came with (R15).
    Prove {
        conn: ConnId,
        proof: ixn_core::Proof,
    },
    /// Messages that arrived together, in order (one read of a TCP connection, or one message
    /// of the in-process one), `bytes` of frames. Each was counted in its outbox's pending
    /// requests ([`Outbox::sent_to_engine`]), and is uncounted once its outputs are queued.
    Batch {
        conn: ConnId,
        msgs: Vec<Message>,
        bytes: usize,
    },
    /// The connection's writer wrote its queue after the engine task deferred its requests.
    Resume { conn: ConnId },
    /// Add the engine task's own counts to the shared metrics and take the census; `done`
    /// fires once they are there.
    Flush { done: oneshot::Sender<()> },
    /// The connection is over; `done` fires once its clients are dropped (R13).
    Close {
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
    /// Take over: serve `engine` (loaded from the shared store), durable with `durability`,
    /// while `lease` is valid.
    Activate {
        engine: Box<Engine>,
        durability: Durability,
        lease: Lease,
    },
    /// Stand by (stepping down if active): refuse every request, naming `active`.
    StandBy { active: Option<String> },
}

/// This server's hold on a shared store, as the engine task sees it: valid until a deadline
/// that the leadership loop moves forward with each renewal. Once it has passed, the engine
/// task acknowledges nothing more: it steps down and says so ([`Lease::stepped_down`]).
#[derive(Clone, Debug)]
pub struct Lease(Arc<LeaseState>);

#[derive(Debug)]
struct LeaseState {
    base: Instant,
    /// Nanoseconds after `base`.
    valid_until: AtomicU64,
    stepped_down: AtomicBool,
}

impl Lease {
    /// A lease valid until `until`.
    pub fn new(until: Instant) -> Self {
        let base = Instant::now();
        let lease = Self(Arc::new(LeaseState {
            base,
            valid_until: AtomicU64::new(0),
            stepped_down: AtomicBool::new(false),
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

    fn mark_stepped_down(&self) {
        self.0.stepped_down.store(true, Ordering::Release);
    }
}

/// Tells the engine task which role to play (see [`EngineHandle::roles`](crate::EngineHandle::roles)).
/// Blocking: for the leadership loop's thread. It does not keep the engine task alive.
#[derive(Clone, Debug)]
pub struct Roles(pub(crate) mpsc::WeakSender<Input>);

impl Roles {
    /// Serve `engine` with `durability` while `lease` holds. False when the engine task is gone.
    pub fn activate(&self, engine: Engine, durability: Durability, lease: Lease) -> bool {
        self.send(Input::Activate {
            engine: Box::new(engine),
            durability,
            lease,
        })
    }

    /// Stand by, naming the active server (if any); an active engine task steps down first.
    /// False when the engine task is gone.
    pub fn stand_by(&self, active: Option<String>) -> bool {
        self.send(Input::StandBy { active })
    }

    fn send(&self, input: Input) -> bool {
        match self.0.upgrade() {
            Some(inputs) => inputs.blocking_send(input).is_ok(),
            None => false,
        }
    }
}

#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    outbox: Arc<Outbox>,
    /// What the connection proved (kept to open it again in an engine that takes over).
    proofs: Vec<ixn_core::Proof>,
}

/// Requests of one connection put aside while its replies pile up, in order.
#[derive(Debug)]
struct Deferred {
    msgs: VecDeque<Message>,
    bytes: usize,
}

/// A fault to inject (tests of what happens when a part of the server fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The engine task panics at its first message.
    EnginePanic,
}

/// The engine task's link to its store thread (absent when the server is ephemeral).
#[derive(Debug)]
pub struct Durability {
    /// Each request's changes, numbered in engine order.
    to_store: std::sync::mpsc::Sender<Vec<(u64, Vec<Message>)>>,
    /// The highest number synced to disk, or the store's failure.
    synced: mpsc::UnboundedReceiver<Result<u64, String>>,
    /// How long the engine task polls for a sync report before it sleeps (see
    /// [`Durability::polling`]).
    poll: Duration,
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

/// Outputs waiting for the changes before them to be on disk, in engine order.
#[derive(Debug)]
enum Held {
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
    fn after(&self) -> u64 {
        match self {
            Self::Outputs { after, .. } | Self::CloseAck { after, .. } => *after,
        }
    }
}

/// Inputs queued to the engine task before connections wait (back-pressure).
pub(crate) const INPUTS: usize = 4096;

/// The receiving end of the engine task's inputs.
#[derive(Debug)]
pub struct Inputs(pub(crate) mpsc::Receiver<Input>);

/// The codec for `limits` (frame size and nesting depth).
pub fn codec(limits: &ixn_config::Limits) -> Codec {
    Codec::new(ixn_codec::Limits {
        max_frame_len: limits.max_frame_len,
        max_depth: limits.max_kvlist_depth,
    })
}

/// How many inputs' outputs may wait for the disk before the engine task stops taking inputs
/// (back-pressure to the readers, so held outputs cannot grow without bound).
const MAX_HELD: usize = 65_536;

/// Most rounds handed to the store whose hand-over time is kept for `journal_commit_seconds`
/// (a round past it is synced as any other, only not timed).
const MAX_TIMED: usize = 4096;

/// How many times the engine task lets the readers run before it hands a round's changes to
/// the store thread, when nothing new arrives (see [`EngineTask::linger`]).
const LINGER_YIELDS: usize = 4;

/// After this many handovers in a row of one request's changes, for which lingering brought
/// nothing, the engine task stops lingering: a lone client does not wait for company that never
/// comes.
const LINGER_UNPAID: u32 = 2;

/// While lingering does not pay, the engine task still lingers before every this many
/// handovers (a probe), and lingers again from the first probe that brings something.
const LINGER_PROBE: u32 = 8;

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
const LINGER_MAX: usize = 256;

/// Inputs handled before the writers they woke are told (bounds the delay coalescing adds).
const INPUTS_PER_WAKE: usize = 64;

/// The task that owns the engine. It takes inputs from every connection through one channel,
/// feeds them to the engine one at a time, and queues the outputs on the connections' outboxes
/// (or, with [`Durability`], holds them until the changes before them are synced).
#[derive(Debug)]
pub struct EngineTask {
    engine: Engine,
    codec: Codec,
    inputs: mpsc::Receiver<Input>,
    durability: Option<Durability>,
    /// Cancelled when the store fails (the server must stop).
    failed: CancellationToken,
    fault: Option<Fault>,
    /// Keyed by ids the server hands out (a peer cannot choose them): a fixed fast hash.
    conns: HashMap<ConnId, Conn, FixedState>,
    deferred: HashMap<ConnId, Deferred, FixedState>,
    /// The in-process link: while its queue is full, no input is taken (its consumer never
    /// waits on a web client, so it empties it).
    link: Option<Arc<Outbox>>,
    /// Outputs of the input being handled.
    out: Vec<Output>,
    /// Durable changes of the message being handled.
    changes: Vec<Message>,
    /// Requests' changes of this round of inputs, sent to the store thread together at its end
    /// (one channel operation and at most one wake-up per round, not per request).
    to_store: Vec<(u64, Vec<Message>)>,
    /// Outboxes whose writers must be woken.
    woken: Vec<Arc<Outbox>>,
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
    metrics: Arc<crate::Metrics>,
    /// Requests handled since the last flush, by (request, reply, error code).
    counts: HashMap<(MessageId, MessageId, i32), u64>,
    /// Notifications queued since the last flush.
    notified: u64,
    /// With a shared store: this server's hold on it while active.
    lease: Option<Lease>,
    /// Whether this task changes roles (a shared store): a store failure then steps down
    /// instead of stopping the server.
    roles: bool,
}

impl EngineTask {
    /// A task for `engine` (durable with `durability`) taking `inputs` (see
    /// [`EngineHandle::channel`](crate::handle::EngineHandle::channel)). `codec` sizes and
    /// encodes what is queued.
    pub fn new(
        engine: Engine,
        codec: Codec,
        inputs: Inputs,
        durability: Option<Durability>,
        fault: Option<Fault>,
    ) -> Self {
        Self {
            engine,
            codec,
            inputs: inputs.0,
            durability,
            failed: CancellationToken::new(),
            fault,
            conns: HashMap::default(),
            deferred: HashMap::default(),
            link: None,
            out: Vec::with_capacity(64),
            changes: Vec::new(),
            to_store: Vec::new(),
            woken: Vec::new(),
            held: VecDeque::new(),
            lingering: Lingering::default(),
            handed: VecDeque::new(),
            issued: 0,
            synced: 0,
            broken: false,
            metrics: Arc::new(crate::Metrics::default()),
            counts: HashMap::new(),
            notified: 0,
            lease: None,
            roles: false,
        }
    }

    /// A task that starts as a standby (answering every request with EventError NotActive)
    /// and takes its role from a leadership loop through
    /// [`EngineHandle::roles`](crate::EngineHandle::roles): a server sharing its store with
    /// others.
    pub fn standby(
        config: Arc<ixn_config::Config>,
        codec: Codec,
        inputs: Inputs,
        fault: Option<Fault>,
    ) -> Self {
        let mut engine = Engine::new(config, 0);
        engine.stand_by(None);
        let mut task = Self::new(engine, codec, inputs, None, fault);
        task.roles = true;
        task
    }

    /// Counts into `metrics` (shared with the listener and the store thread).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<crate::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Cancelled if the store fails: nothing more can be acknowledged, and the server should
    /// stop.
    pub fn failed(&self) -> CancellationToken {
        self.failed.clone()
    }

    /// Runs until every [`EngineHandle`](crate::handle::EngineHandle) (and every connection) is gone.
    pub async fn run(mut self) {
        loop {
            if let Some(report) = self.poll_for_sync().await {
                self.on_synced(Some(report));
                self.send_to_store();
                wake_all(&mut self.woken);
                continue;
            }
            let link_full = self.link.as_ref().is_some_and(|l| l.is_full());
            let input = tokio::select! {
                input = self.inputs.recv(), if self.held.len() < MAX_HELD && !link_full => input,
                () = link_taken(self.link.as_deref()), if link_full => continue,
                s = next_synced(&mut self.durability), if !self.broken => {
                    self.on_synced(s);
                    self.send_to_store();
                    wake_all(&mut self.woken);
                    continue;
                }
            };
            let Some(input) = input else { break };
            // Take whatever else is already waiting (bounded), so that a writer woken by several
            // of these inputs is woken once and writes their outputs together.
            let mut next = Some(input);
            let mut taken = 0usize;
            while let Some(input) = next.take() {
                taken += 1;
                self.input(input);
                if taken < INPUTS_PER_WAKE && self.may_take() {
                    next = self.inputs.try_recv().ok();
                }
            }
            // A group commit is cheapest per request when it holds every request the clients
            // have in flight: before handing the changes over, let the readers run a few times
            // (what they bring joins this round), unless enough is waiting already.
            if !self.to_store.is_empty() {
                if self.to_store.len() < LINGER_MAX
                    && self.lingering.wanted()
                    && self.linger().await
                {
                    self.lingering.gained();
                    continue;
                }
                self.lingering.handed_over(self.to_store.len());
            }
            self.send_to_store();
            wake_all(&mut self.woken);
        }
    }

    /// Lets the other tasks (the connections' readers) run up to [`LINGER_YIELDS`] times, after
    /// waking the writers already due; true as soon as an input is there to take.
    async fn linger(&mut self) -> bool {
        wake_all(&mut self.woken);
        for _ in 0..LINGER_YIELDS {
            tokio::task::yield_now().await;
            if !self.inputs.is_empty() && self.may_take() {
                return true;
            }
        }
        false
    }

    /// When replies wait for a sync, every change was handed over and no input waits: polls for
    /// the sync's report for up to the [`Durability::polling`] window, yielding the thread
    /// (so that a thread woken on this CPU, such as the store's when the disk answers, runs at
    /// once) and the task (so that the connections' tasks run and the I/O driver is polled)
    /// between looks. The report, if it came; `None` when polling does not apply, an input came
    /// first, or the window passed (the caller then waits for either as usual).
    async fn poll_for_sync(&mut self) -> Option<Result<u64, String>> {
        let window = self.durability.as_ref().map_or(Duration::ZERO, |d| d.poll);
        let waiting = self.held.front().is_some_and(|h| h.after() > self.synced);
        if window.is_zero()
            || self.broken
            || !waiting
            || !self.to_store.is_empty()
            || !self.inputs.is_empty()
        {
            return None;
        }
        let until = Instant::now() + window;
        let outcome = loop {
            match self.durability.as_mut().map(|d| d.synced.try_recv()) {
                Some(Ok(report)) => {
                    self.count_poll("synced");
                    return Some(report);
                }
                // The store thread is gone (or the task stepped down): the usual wait
                // reports it.
                None | Some(Err(mpsc::error::TryRecvError::Disconnected)) => return None,
                Some(Err(mpsc::error::TryRecvError::Empty)) => {}
            }
            if !self.inputs.is_empty() {
                break "input";
            }
            if Instant::now() >= until {
                break "timeout";
            }
            std::thread::yield_now();
            tokio::task::yield_now().await;
        };
        self.count_poll(outcome);
        None
    }

    fn count_poll(&self, outcome: &'static str) {
        self.metrics
            .sync_polls
            .get_or_create(&crate::metrics::PollLabels { outcome })
            .inc();
    }

    /// Whether the task may take another input now: not while its held outputs are at their
    /// bound, nor while the in-process link's queue is full.
    fn may_take(&self) -> bool {
        self.held.len() < MAX_HELD && !self.link.as_ref().is_some_and(|l| l.is_full())
    }

    /// Hands this round's changes to the store thread.
    fn send_to_store(&mut self) {
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

    /// The store synced up to a number (release what waited for it), or failed.
    fn on_synced(&mut self, s: Option<Result<u64, String>>) {
        match s {
            Some(Ok(n)) => {
                if self
                    .lease
                    .as_ref()
                    .is_some_and(|l| !l.is_valid(Instant::now()))
                {
                    // Committed, but the lease lapsed meanwhile: another server may be serving
                    // already, so nothing more is acknowledged here.
                    self.step_down(None, "the lease on the store lapsed");
                    return;
                }
                self.synced = n;
                while let Some(&(last, at)) = self.handed.front()
                    && last <= n
                {
                    self.handed.pop_front();
                    self.metrics
                        .commit_seconds
                        .observe(at.elapsed().as_secs_f64());
                }
                while self.held.front().is_some_and(|h| h.after() <= n) {
                    if let Some(h) = self.held.pop_front() {
                        release(h, &self.codec, &mut self.conns, &mut self.woken);
                    }
                }
            }
            Some(Err(e)) if self.roles => {
                error!(error = %e, "the store failed: nothing more is acknowledged; standing by until this server can take the store over again");
                self.step_down(None, "the store failed");
            }
            Some(Err(e)) => {
                error!(error = %e, "the store failed: nothing more can be acknowledged; stopping the server");
                self.break_down();
            }
            None if self.roles => {
                error!(
                    "the store thread stopped: standing by until this server can take the store over again"
                );
                self.step_down(None, "the store thread stopped");
            }
            None => {
                error!(
                    "the store thread stopped: nothing more can be acknowledged; stopping the server"
                );
                self.break_down();
            }
        }
    }

    /// Stops serving (a lapsed lease, a failed store, or another server took over): nothing
    /// held is acknowledged, every network connection is closed so that its clients find the
    /// active server, and a standby engine answers from now on (the in-process link stays, its
    /// clients dropped).
    fn step_down(&mut self, active: Option<String>, why: &str) {
        let was_active = self.engine.standby().is_none();
        abandon(&mut self.held, &mut self.conns);
        self.durability = None;
        self.to_store.clear();
        self.handed.clear();
        self.issued = 0;
        self.synced = 0;
        self.deferred.clear();
        if let Some(lease) = self.lease.take() {
            lease.mark_stepped_down();
        }
        let mut engine = Engine::new(Arc::clone(self.engine.config()), 0);
        engine.stand_by(active.clone());
        let mut closed = 0usize;
        for (conn, c) in &self.conns {
            engine.open(*conn);
            for p in &c.proofs {
                engine.prove(*conn, p.clone());
            }
            let is_link = self
                .link
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(l, &c.outbox));
            if was_active && !is_link {
                c.outbox.close_after_queued();
                closed += 1;
            }
        }
        self.engine = engine;
        if was_active
            && let Some(link) = &self.link
            && let Some((&conn, _)) = self
                .conns
                .iter()
                .find(|(_, c)| Arc::ptr_eq(&c.outbox, link))
        {
            // The web gateway's clients are gone: it ends their sessions (CometD clients get
            // 402 and handshake again).
            self.out.push(Output::Send {
                conn,
                proxy_client_id: None,
                msg: Arc::new(ixn_core::not_active_notice(active.clone())),
            });
            route(
                &self.codec,
                &self.conns,
                conn,
                &mut self.out,
                &mut self.woken,
            );
        }
        if was_active {
            warn!(
                why,
                active = active.as_deref().unwrap_or("none yet"),
                closed,
                "stepped down: standing by; clients were disconnected to find the active server"
            );
        }
    }

    /// Takes over with `engine` (loaded from the shared store): connections opened meanwhile
    /// are opened in it, with what they proved.
    fn activate(&mut self, mut engine: Engine, durability: Durability, lease: Lease) {
        if self.engine.standby().is_none() {
            // Already active (a second takeover without a step-down): step down first so that
            // nothing of the old engine survives.
            self.step_down(None, "taking the store over again");
        }
        for (conn, c) in &self.conns {
            engine.open(*conn);
            for p in &c.proofs {
                engine.prove(*conn, p.clone());
            }
        }
        engine.record_changes(true);
        self.engine = engine;
        self.durability = Some(durability);
        self.lease = Some(lease);
        self.issued = 0;
        self.synced = 0;
        info!(
            interactions = self.engine.stats().interactions,
            "active: serving"
        );
    }

    fn break_down(&mut self) {
        self.broken = true;
        self.failed.cancel();
        abandon(&mut self.held, &mut self.conns);
    }

    /// Handles one input.
    fn input(&mut self, input: Input) {
        if self.broken {
            // Nothing may be acknowledged any more; let connections close so the server can
            // stop.
            if let Input::Close { conn, done } = input {
                self.engine.close(conn, &mut self.out);
                self.out.clear();
                self.forget_link(conn);
                self.conns.remove(&conn);
                self.deferred.remove(&conn);
                let _ = done.send(());
            }
            return;
        }
        match input {
            Input::Open {
                conn,
                peer,
                outbox,
                link,
                proof,
            } => {
                self.engine.open(conn);
                let mut proofs = Vec::new();
                if link {
                    // In-process: the gateway's link speaks with the server's own authority.
                    proofs.push(ixn_core::Proof::InProcess);
                }
                proofs.extend(proof);
                for p in &proofs {
                    self.engine.prove(conn, p.clone());
                }
                if link {
                    self.link = Some(Arc::clone(&outbox));
                }
                self.conns.insert(
                    conn,
                    Conn {
                        peer,
                        outbox,
                        proofs,
                    },
                );
            }
            Input::Prove { conn, proof } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.proofs.push(proof.clone());
                }
                self.engine.prove(conn, proof);
            }
            Input::Activate {
                engine,
                durability,
                lease,
            } => self.activate(*engine, durability, lease),
            Input::StandBy { active } => {
                if self.engine.standby().is_none() {
                    self.step_down(active, "another server took the store over");
                } else {
                    self.engine.stand_by(active);
                }
            }
            Input::Flush { done } => {
                self.flush_metrics();
                let _ = done.send(());
            }
            Input::Close { conn, done } => {
                self.deferred.remove(&conn);
                self.forget_link(conn);
                self.engine.close(conn, &mut self.out);
                if self.held.is_empty() {
                    route(
                        &self.codec,
                        &self.conns,
                        conn,
                        &mut self.out,
                        &mut self.woken,
                    );
                    self.conns.remove(&conn);
                    let _ = done.send(());
                } else {
                    // Held outputs for this connection go out before it closes.
                    self.out.clear();
                    self.held.push_back(Held::CloseAck {
                        after: self.issued,
                        conn,
                        done,
                    });
                }
            }
            Input::Batch { conn, msgs, bytes } => {
                if self.fault == Some(Fault::EnginePanic) {
                    // Fault injection (IXN_FAULT=engine-panic): a real panic, to test that the
                    // server does not live on without its engine.
                    #[allow(clippy::panic)]
                    {
                        panic!("fault injection: the engine task panics (IXN_FAULT=engine-panic)");
                    }
                }
                if let Some(d) = self.deferred.get_mut(&conn) {
                    // Behind requests already deferred: keep the order.
                    d.msgs.extend(msgs);
                    d.bytes += bytes;
                } else {
                    self.run_batch(conn, msgs.into(), bytes);
                }
            }
            Input::Resume { conn } => {
                if let Some(d) = self.deferred.remove(&conn) {
                    self.run_batch(conn, d.msgs, d.bytes);
                }
            }
        }
    }

    /// Handles `msgs` of `conn` in order. Nothing is built for a connection that is closing;
    /// and once the connection's queue is past its soft bound, the rest is deferred until its
    /// writer has written the queue (`Input::Resume`): a client whose replies pile up gets no
    /// more work done for it, and others are served meanwhile.
    fn run_batch(&mut self, conn: ConnId, mut msgs: VecDeque<Message>, bytes: usize) {
        let Some(outbox) = self.conns.get(&conn).map(|c| Arc::clone(&c.outbox)) else {
            return; // closed meanwhile
        };
        while let Some(msg) = msgs.pop_front() {
            if outbox.is_closing() {
                debug!(
                    conn = conn.0,
                    dropped = msgs.len() + 1,
                    "requests of a closing connection dropped"
                );
                msgs.clear();
                break;
            }
            if outbox.defer_if_over() {
                msgs.push_front(msg);
                self.deferred.insert(conn, Deferred { msgs, bytes });
                return;
            }
            self.message(conn, &msg, &outbox);
        }
        outbox.handled_bytes(bytes);
    }

    /// Feeds `msg` to the engine and queues (or, waiting for the disk, holds) its outputs.
    fn message(&mut self, conn: ConnId, msg: &Message, outbox: &Outbox) {
        if self
            .lease
            .as_ref()
            .is_some_and(|l| !l.is_valid(Instant::now()))
        {
            // No renewal for too long (a frozen process, an unreachable database): another
            // server may be active. Nothing more is acknowledged; this request is answered as
            // a standby would.
            self.step_down(None, "the lease on the store lapsed");
        }
        let was_registered = self.engine.is_registered(conn);
        self.engine
            .handle(SystemTime::now(), conn, msg, &mut self.out);
        if !was_registered && self.engine.is_registered(conn) {
            // The connection's registration timeout ends here.
            outbox.registered.store(true, Ordering::Release);
        }
        if let Some(c) = self.conns.get(&conn) {
            log_milestones(conn, c, msg, &self.out);
        }
        self.count(conn, msg);
        if self.durability.is_some() {
            self.engine.drain_changes(&mut self.changes);
            if !self.changes.is_empty() {
                self.issued += 1;
                self.to_store
                    .push((self.issued, std::mem::take(&mut self.changes)));
            }
        }
        if self.held.is_empty() && self.issued <= self.synced {
            route(
                &self.codec,
                &self.conns,
                conn,
                &mut self.out,
                &mut self.woken,
            );
            answered(&self.conns, conn);
        } else {
            self.held.push_back(Held::Outputs {
                after: self.issued,
                requester: conn,
                outputs: std::mem::take(&mut self.out),
            });
        }
    }

    /// Counts `msg`'s outcome and the notifications it caused (in the task's own map).
    fn count(&mut self, conn: ConnId, msg: &Message) {
        let mut reply = None;
        let mut sent = 0u64;
        for o in &self.out {
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
                Output::Close { reason, .. } => self.metrics.disconnect(match reason {
                    ixn_core::CloseReason::NotRegistered => "not_registered",
                    ixn_core::CloseReason::InvalidClient => "invalid_client",
                    ixn_core::CloseReason::AuthenticationFailed => "authentication_failed",
                    _ => "other",
                }),
            }
        }
        self.notified += sent;
        if let Some(r) = reply {
            let code = if r.id == MessageId::EVENT_ERROR {
                r.attrs.get_int(attr::ERROR_CODE).unwrap_or(0)
            } else {
                0
            };
            *self.counts.entry((msg.id, r.id, code)).or_default() += 1;
        }
    }

    /// Adds the task's counts to the shared metrics, and sets the census gauges.
    fn flush_metrics(&mut self) {
        let m = &self.metrics;
        for ((request, reply, code), n) in self.counts.drain() {
            let outcome = if reply == MessageId::EVENT_ERROR {
                format!("EventError:{}", ixn_codec::ErrorCode::from_int(code))
            } else {
                reply.to_string()
            };
            // Unknown message ids share one label: a peer cannot make series without bound.
            let message = request.name().unwrap_or("unknown").to_owned();
            m.requests
                .get_or_create(&crate::metrics::RequestLabels { message, outcome })
                .inc_by(n);
        }
        m.notifications.inc_by(std::mem::take(&mut self.notified));
        let census = self.engine.census();
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        for (kind, n) in ixn_core::Census::CLIENT_TYPES
            .iter()
            .zip(census.clients_by_type)
        {
            m.clients
                .get_or_create(&crate::metrics::TypeLabels { r#type: kind })
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
                .get_or_create(&crate::metrics::StateLabels { state })
                .set(gauge(n));
        }
        m.stored_bytes.set(gauge(census.stats.stored_bytes));
        let (mut messages, mut bytes, mut longest) = (0usize, 0usize, 0usize);
        for c in self.conns.values() {
            let (n, b) = c.outbox.depth();
            messages += n;
            bytes += b;
            longest = longest.max(n);
        }
        m.outbox_messages.set(gauge(messages));
        m.outbox_bytes.set(gauge(bytes));
        m.outbox_max_messages.set(gauge(longest));
    }

    /// Forgets the link if `conn` is it (closing: its queue no longer holds inputs back).
    fn forget_link(&mut self, conn: ConnId) {
        if let (Some(l), Some(c)) = (self.link.as_ref(), self.conns.get(&conn))
            && Arc::ptr_eq(l, &c.outbox)
        {
            self.link = None;
        }
    }
}

/// Wakes the writers in `woken`. An outbox is listed once per take of its writer: the pushes
/// after the first one that asked for a wake-up join it ([`Outbox::push_batched`]), so sixteen
/// notifications to 1,000 subscribers list 1,000 outboxes, not 16,000. One listed twice (its
/// writer took the queue between two pushes) is woken twice, which is harmless.
fn wake_all(woken: &mut Vec<Arc<Outbox>>) {
    for o in woken.drain(..) {
        o.wake();
    }
}

/// One of `conn`'s pending requests has its outputs queued.
fn answered(conns: &HashMap<ConnId, Conn, FixedState>, conn: ConnId) {
    if let Some(c) = conns.get(&conn) {
        c.outbox.answered();
    }
}

/// Tells the engine task that `conn` is over and waits until its clients are dropped (R13), so
/// that the peer sees the close only after that. Returns at once if the engine task is gone.
pub(crate) async fn close(inputs: &mpsc::Sender<Input>, conn: ConnId) {
    let (done, dropped) = oneshot::channel();
    if inputs.send(Input::Close { conn, done }).await.is_ok() {
        let _ = dropped.await;
    }
}

/// Completes when the link's consumer next takes its queue (never without a link).
async fn link_taken(link: Option<&Outbox>) {
    match link {
        Some(l) => l.taken.notified().await,
        None => std::future::pending().await,
    }
}

/// The next sync report, or never when the server is ephemeral.
async fn next_synced(d: &mut Option<Durability>) -> Option<Result<u64, String>> {
    match d {
        Some(d) => d.synced.recv().await,
        None => std::future::pending().await,
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

/// After a store failure: held outputs can never be released (their changes may not be on
/// disk), but held close acknowledgements are sent so that connections can finish.
fn abandon(held: &mut VecDeque<Held>, conns: &mut HashMap<ConnId, Conn, FixedState>) {
    for h in held.drain(..) {
        if let Held::CloseAck { conn, done, .. } = h {
            conns.remove(&conn);
            let _ = done.send(());
        }
    }
}

fn release(
    h: Held,
    codec: &Codec,
    conns: &mut HashMap<ConnId, Conn, FixedState>,
    woken: &mut Vec<Arc<Outbox>>,
) {
    match h {
        Held::Outputs {
            requester,
            mut outputs,
            ..
        } => {
            route(codec, conns, requester, &mut outputs, woken);
            answered(conns, requester);
        }
        Held::CloseAck { conn, done, .. } => {
            conns.remove(&conn);
            let _ = done.send(());
        }
    }
}

/// Queues `out` (drained) on the outboxes. The requester's messages are queued last, so every
/// notification a request causes is queued to all its other recipients before the reply can be
/// written (spec section 6); per-connection order is kept.
fn route(
    codec: &Codec,
    conns: &HashMap<ConnId, Conn, FixedState>,
    requester: ConnId,
    out: &mut Vec<Output>,
    woken: &mut Vec<Arc<Outbox>>,
) {
    // One notification is shared by its recipients: encode it once, and each recipient's writer
    // copies the frame (adding its ProxyClientId) instead of encoding it again.
    let mut last: Option<(*const Message, usize, Option<Bytes>)> = None;
    for pass in [false, true] {
        for o in out.iter() {
            if (o.conn() == requester) != pass {
                continue;
            }
            let Some(c) = conns.get(&o.conn()) else {
                continue;
            };
            match o {
                Output::Send {
                    msg,
                    proxy_client_id,
                    ..
                } => {
                    let ptr = Arc::as_ptr(msg);
                    if last.as_ref().is_some_and(|(p, ..)| *p != ptr) {
                        last = None;
                    }
                    let (_, size, frame) = &*last.get_or_insert_with(|| {
                        let frame = (msg.id == MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
                            .then(|| codec.encode_to_bytes(msg).ok())
                            .flatten();
                        // An unencodable message is replaced by an error when written; count
                        // it as small.
                        let size = match &frame {
                            Some(f) => f.len(),
                            None => codec.encoded_len(msg).unwrap_or(64),
                        };
                        (ptr, size, frame)
                    });
                    let size = size + proxy_client_id.map_or(0, |_| ixn_codec::PROXY_PAIR_LEN);
                    let proxy_client_id = proxy_client_id.map(ixn_core::ClientId::get);
                    let item = match frame {
                        // The link hands messages to the gateway.
                        Some(frame) if !c.outbox.is_link() => Item::Shared {
                            frame: frame.clone(),
                            proxy_client_id,
                        },
                        _ => Item::Msg {
                            msg: Arc::clone(msg),
                            proxy_client_id,
                        },
                    };
                    match c.outbox.push_batched(item, size) {
                        Pushed::Queued => woken.push(Arc::clone(&c.outbox)),
                        Pushed::Joined | Pushed::Dropped => {}
                        Pushed::Overflowed { messages, bytes } => warn!(
                            conn = o.conn().0,
                            peer = %c.peer,
                            queued_messages = messages,
                            queued_bytes = bytes,
                            "slow consumer: outbound queue full (outbound_queue_messages / outbound_queue_bytes); disconnecting"
                        ),
                    }
                }
                Output::Close { reason, .. } => {
                    info!(conn = o.conn().0, peer = %c.peer, %reason, "closing connection");
                    // Wakes the writer itself.
                    c.outbox.close_after_queued();
                }
            }
        }
    }
    out.clear();
}

/// Info-level logs for registrations and logins; debug-level for every message.
fn log_milestones(conn: ConnId, c: &Conn, msg: &Message, out: &[Output]) {
    debug!(conn = conn.0, message = %msg.id, "request");
    let reply = out.iter().find(|o| o.conn() == conn).and_then(|o| match o {
        Output::Send { msg, .. } => Some(Arc::clone(msg)),
        Output::Close { .. } => None,
    });
    let Some(reply) = reply else { return };
    if reply.id == MessageId::EVENT_ERROR
        && reply.attrs.get_int(attr::ERROR_CODE)
            == Some(ixn_codec::ErrorCode::LimitExceeded.to_int())
    {
        info!(
            conn = conn.0,
            peer = %c.peer,
            request = %msg.id,
            description = reply.attrs.get_str(attr::ERROR_DESCRIPTION).map_or("", |s| s),
            "limit reached"
        );
    }
    if reply.id != MessageId::EVENT_ACK {
        return;
    }
    if msg.id == MessageId::REQUEST_REGISTER_CLIENT {
        let client_type = msg
            .attrs
            .get_int(attr::CLIENT_TYPE)
            .map(|t| ixn_codec::ClientType::from_int(t).to_string())
            .unwrap_or_default();
        info!(
            conn = conn.0,
            peer = %c.peer,
            client = msg.attrs.get_str(attr::CLIENT_NAME).map_or("", |s| s),
            client_type,
            "client registered"
        );
    } else if msg.id == MessageId::REQUEST_AGENT_LOGIN {
        info!(
            conn = conn.0,
            peer = %c.peer,
            agent = msg.attrs.get_str(attr::AGENT_ID).map_or("", |s| s),
            place = msg.attrs.get_str(attr::PLACE_ID).map_or("", |s| s),
            "agent logged in"
        );
    } else if msg.id == MessageId::REQUEST_AGENT_LOGOUT {
        info!(conn = conn.0, peer = %c.peer, "agent logged out");
    }
}

#[cfg(test)]
mod group_commit_tests;

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
