//! The task that owns the engine: it takes inputs from every connection through one channel,
//! feeds them to the engine one at a time, and queues the outputs on the connections' outboxes.
//!
//! [`EngineTask`] holds the engine and delegates each of its other jobs to a part that owns
//! that job's state:
//! - `routing` ([`Router`]): the connections, their outboxes, and the writers to wake;
//! - `commit` ([`Commit`]): group commit (changes numbered and handed to the store thread a
//!   round at a time, outputs held until synced, lingering for more requests);
//! - [`Durability`] (the crate's `durability`): the store thread and its flush threads;
//! - [`Lease`] (the crate's `lease`, with [`Roles`](crate::Roles) beside the handle):
//!   leadership over a shared store;
//! - `counts` ([`Counts`]): requests and notifications counted for the metrics.
//!
//! Its loop: take an input (and whatever else already waits, up to [`INPUTS_PER_WAKE`]), hand
//! it to the engine, route or hold the outputs; at the end of a round, hand the round's changes
//! to the store and wake the writers (so a subscriber hears several changes in one write). A
//! sync report releases what waited for it. One task owns the engine rather than a mutex
//! around it: the engine's calls are short and sequential anyway, and a single owner needs no
//! locking and keeps the order of inputs obvious.
//!
//! With a shared store it changes roles on `Activate` and `StandBy` inputs (sent through
//! [`Roles`](crate::Roles)): active, it serves an engine loaded from the store while its [`Lease`] is valid
//! (checked before each request and before releasing replies held for a commit); stepping down,
//! it abandons held replies, closes every network connection, tells the in-process link (an
//! unsolicited EventError NotActive) and serves a standby engine. A store failure then steps it
//! down instead of stopping the server.

mod commit;
mod counts;
mod routing;

use crate::durability::Durability;
use crate::input::{Input, Inputs, Serving};
use crate::lease::Lease;
use crate::outbox::Outbox;
use commit::{Commit, Held, LINGER_YIELDS};
use counts::Counts;
use foldhash::fast::FixedState;
use ixn_codec::{Codec, Message};
use ixn_core::{ConnId, Engine, Output};
use routing::{Conn, Router};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// A fault to inject (tests of what happens when a part of the server fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The engine task panics at its first message.
    EnginePanic,
}

/// Inputs handled before the writers they woke are told (bounds the delay coalescing adds).
const INPUTS_PER_WAKE: usize = 64;

/// How long a server whose lease lapsed holds requests while its leadership loop reads who
/// holds the lease now (one round trip to the database, normally); past it they are answered
/// naming nobody.
const LEARN_ACTIVE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// A step-down whose cause leaves the active server unknown (the lease lapsed, the store
/// failed): requests wait until the leadership loop names the lease's holder.
#[derive(Debug)]
struct Learning {
    /// When the requests are answered anyway (naming nobody).
    until: tokio::time::Instant,
    /// Whether the in-process link still has to hear of the step-down.
    tell_link: bool,
}

/// Requests of one connection put aside while its replies pile up, in order.
#[derive(Debug)]
struct Deferred {
    msgs: VecDeque<Message>,
    bytes: usize,
}

/// The task that owns the engine. It takes inputs from every connection through one channel,
/// feeds them to the engine one at a time, and queues the outputs on the connections' outboxes
/// (or, with [`Durability`], holds them until the changes before them are synced).
#[derive(Debug)]
pub struct EngineTask {
    engine: Engine,
    inputs: mpsc::Receiver<Input>,
    /// Tells the connections whether the engine serves (kept equal to `engine.is_active()`).
    serving: Serving,
    router: Router,
    commit: Commit,
    counts: Counts,
    /// Cancelled when the store fails (the server must stop).
    failed: CancellationToken,
    fault: Option<Fault>,
    deferred: HashMap<ConnId, Deferred, FixedState>,
    /// Outputs of the input being handled.
    out: Vec<Output>,
    metrics: Arc<crate::Metrics>,
    /// With a shared store: this server's hold on it while active.
    lease: Option<Lease>,
    /// Whether this task changes roles (a shared store): a store failure then steps down
    /// instead of stopping the server.
    roles: bool,
    /// Stepped down without knowing who is active: requests wait for the name.
    learning: Option<Learning>,
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
        inputs.serving.set(engine.is_active());
        Self {
            engine,
            inputs: inputs.rx,
            serving: inputs.serving,
            router: Router::new(codec),
            commit: Commit::new(durability),
            counts: Counts::default(),
            failed: CancellationToken::new(),
            fault,
            deferred: HashMap::default(),
            out: Vec::with_capacity(64),
            metrics: Arc::new(crate::Metrics::default()),
            lease: None,
            roles: false,
            learning: None,
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
            if let Some(report) = self.commit.poll_for_sync(&self.inputs, &self.metrics).await {
                self.on_synced(Some(report));
                self.end_round();
                continue;
            }
            let link_full = self.router.link_full();
            let learn_until = self.learning.as_ref().map(|l| l.until);
            let input = tokio::select! {
                () = sleep_until(learn_until), if learn_until.is_some() => {
                    warn!("the leadership loop did not name the active server in time; answering that nobody is known to be active");
                    self.learned(None);
                    self.end_round();
                    continue;
                }
                input = self.inputs.recv(), if self.commit.has_room() && !link_full => input,
                // A snapshot being taken: one slice, then the others get their turn.
                () = std::future::ready(()), if self.engine.has_work() && self.may_take() => {
                    self.scan_slice();
                    self.commit.round_done();
                    self.end_round();
                    tokio::task::yield_now().await;
                    continue;
                }
                () = link_taken(self.router.link()), if link_full => continue,
                s = self.commit.next_synced() => {
                    self.on_synced(s);
                    self.end_round();
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
            if self.commit.round_len() > 0 && self.commit.wants_linger() && self.linger().await {
                self.commit.linger_gained();
                continue;
            }
            self.commit.round_done();
            self.end_round();
        }
    }

    /// Hands the round's changes to the store and wakes the writers.
    fn end_round(&mut self) {
        self.commit.send_to_store();
        self.router.wake_all();
    }

    /// Lets the other tasks (the connections' readers) run up to [`LINGER_YIELDS`] times, after
    /// waking the writers already due; true as soon as an input is there to take.
    async fn linger(&mut self) -> bool {
        self.router.wake_all();
        for _ in 0..LINGER_YIELDS {
            tokio::task::yield_now().await;
            if !self.inputs.is_empty() && self.may_take() {
                return true;
            }
        }
        false
    }

    /// Whether the task may take another input now: not while its held outputs are at their
    /// bound, nor while the in-process link's queue is full.
    fn may_take(&self) -> bool {
        self.commit.has_room() && !self.router.link_full()
    }

    /// Whether the lease (with a shared store) has lapsed: nothing more may be acknowledged.
    fn lease_lapsed(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| !l.is_valid(Instant::now()))
    }

    /// The store synced up to a number (release what waited for it), or failed.
    fn on_synced(&mut self, s: Option<Result<u64, String>>) {
        let (why, failure) = match s {
            Some(Ok(_)) if self.lease_lapsed() => {
                // Committed, but the lease lapsed meanwhile: another server may be serving
                // already, so nothing more is acknowledged here.
                self.step_down_unknown("the lease on the store lapsed");
                return;
            }
            Some(Ok(n)) => {
                for h in self.commit.synced_up_to(n, &self.metrics) {
                    release(h, &mut self.router);
                }
                return;
            }
            Some(Err(e)) => ("the store failed", Some(e)),
            None => ("the store thread stopped", None),
        };
        let error = failure.as_deref().unwrap_or("");
        if self.roles {
            error!(
                why,
                error,
                "nothing more is acknowledged; standing by until this server can take the store over again"
            );
            self.step_down_unknown(why);
        } else {
            error!(
                why,
                error, "nothing more can be acknowledged; stopping the server"
            );
            self.break_down();
        }
    }

    /// Stops serving (a lapsed lease, a failed store, or another server took over): nothing
    /// held is acknowledged, every network connection is closed so that its clients find the
    /// active server, and a standby engine answers from now on (the in-process link stays, its
    /// clients dropped).
    fn step_down(&mut self, active: Option<String>, why: &str) {
        let Some(closed) = self.stand_down(active.clone()) else {
            return;
        };
        self.tell_link(active.clone());
        warn!(
            why,
            active = active.as_deref().unwrap_or("none yet"),
            closed,
            "stepped down: standing by; clients were disconnected to find the active server"
        );
    }

    /// Steps down for a cause that leaves the active server unknown (the lease lapsed, the
    /// store failed): requests wait (at most [`LEARN_ACTIVE_FOR`]) until the leadership loop,
    /// woken by the lease, names the lease's holder, so that no answer names nobody while
    /// another server serves.
    fn step_down_unknown(&mut self, why: &str) {
        let Some(closed) = self.stand_down(None) else {
            return;
        };
        self.learning = Some(Learning {
            until: tokio::time::Instant::now() + LEARN_ACTIVE_FOR,
            tell_link: true,
        });
        warn!(
            why,
            closed,
            "stepped down: standing by; clients were disconnected to find the active server (their requests wait for its name)"
        );
    }

    /// The leadership loop named the active server (or nobody), or the wait for it ended:
    /// the standby names it, and the requests that waited are answered.
    fn learned(&mut self, active: Option<String>) {
        self.engine.stand_by(active.clone());
        let Some(learning) = self.learning.take() else {
            return;
        };
        if learning.tell_link {
            self.tell_link(active);
        }
        self.replay_deferred();
    }

    /// Runs again what was deferred (requests held for the active server's name; a
    /// connection still past its bound defers its own again).
    fn replay_deferred(&mut self) {
        let waiting: Vec<ConnId> = self.deferred.keys().copied().collect();
        for conn in waiting {
            if let Some(d) = self.deferred.remove(&conn) {
                self.run_batch(conn, d.msgs, d.bytes);
            }
        }
    }

    /// The part of a step-down that does not depend on knowing the active server; the
    /// network connections closed, or `None` when it was not active.
    fn stand_down(&mut self, active: Option<String>) -> Option<usize> {
        let was_active = self.engine.is_active();
        let closes = self.commit.stop();
        self.ack_closes(closes);
        self.deferred.clear();
        self.learning = None;
        if let Some(lease) = self.lease.take() {
            lease.mark_stepped_down();
        }
        let mut engine = Engine::new(Arc::clone(self.engine.config()), 0);
        engine.stand_by(active);
        reopen(&mut engine, &self.router);
        self.engine = engine;
        self.serving.set(false);
        was_active.then(|| self.router.close_network())
    }

    /// Tells the in-process link that this server stepped down, naming `active`: the web
    /// gateway ends its sessions (CometD clients get 402 and handshake again).
    fn tell_link(&mut self, active: Option<String>) {
        if let Some(conn) = self.router.link_conn() {
            self.out.push(Output::Send {
                conn,
                proxy_client_id: None,
                msg: Arc::new(ixn_core::not_active_notice(active)),
            });
            self.router.route(conn, &mut self.out);
        }
    }

    /// Takes over with `engine` (loaded from the shared store): connections opened meanwhile
    /// are opened in it, with what they proved.
    fn activate(&mut self, mut engine: Engine, durability: Durability, lease: Lease) {
        if self.engine.is_active() {
            // Already active (a second takeover without a step-down): step down first so that
            // nothing of the old engine survives.
            self.step_down(None, "taking the store over again");
        }
        reopen(&mut engine, &self.router);
        engine.record_changes(true);
        self.engine = engine;
        self.serving.set(true);
        self.commit.start(durability);
        self.lease = Some(lease);
        info!(
            interactions = self.engine.stats().interactions,
            "active: serving"
        );
        if let Some(learning) = self.learning.take() {
            // Taken over again before the active server was named: the link still has to hear
            // that its clients are gone, and what waited is served now.
            if learning.tell_link {
                self.tell_link(None);
            }
            self.replay_deferred();
        }
    }

    fn break_down(&mut self) {
        self.failed.cancel();
        let closes = self.commit.break_down();
        self.ack_closes(closes);
    }

    /// Sends close acknowledgements that were held (their connections are forgotten).
    fn ack_closes(&mut self, closes: Vec<(ConnId, tokio::sync::oneshot::Sender<()>)>) {
        for (conn, done) in closes {
            self.router.remove(conn);
            let _ = done.send(());
        }
    }

    /// Handles one input.
    fn input(&mut self, input: Input) {
        if self.commit.is_broken() {
            // Nothing may be acknowledged any more; let connections close so the server can
            // stop.
            if let Input::Close { conn, done } = input {
                self.engine.close(conn, &mut self.out);
                self.out.clear();
                self.router.remove(conn);
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
                let c = Conn {
                    peer,
                    outbox,
                    proofs,
                };
                self.router.open(conn, link, c);
            }
            Input::Prove { conn, proof } => {
                self.router.prove(conn, proof.clone());
                self.engine.prove(conn, proof);
            }
            Input::Activate {
                engine,
                durability,
                lease,
            } => self.activate(*engine, durability, lease),
            Input::StandBy { active } => {
                if self.engine.is_active() {
                    self.step_down(active, "another server took the store over");
                } else {
                    self.learned(active);
                }
            }
            Input::Flush { done } => {
                self.counts.flush(&self.metrics, &self.engine, &self.router);
                let _ = done.send(());
            }
            Input::Close { conn, done } => self.close(conn, done),
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

    /// `conn` is over: the engine drops its clients; `done` fires once what is held for it has
    /// gone out (at once when nothing is held).
    fn close(&mut self, conn: ConnId, done: tokio::sync::oneshot::Sender<()>) {
        self.deferred.remove(&conn);
        self.router.forget_link(conn);
        self.engine.close(conn, &mut self.out);
        if self.commit.nothing_held() {
            self.router.route(conn, &mut self.out);
            self.router.remove(conn);
            let _ = done.send(());
        } else {
            // Held outputs for this connection go out before it closes.
            self.out.clear();
            self.commit.hold_close(conn, done);
        }
    }

    /// Handles `msgs` of `conn` in order. Nothing is built for a connection that is closing;
    /// and once the connection's queue is past its soft bound, the rest is deferred until its
    /// writer has written the queue (`Input::Resume`): a client whose replies pile up gets no
    /// more work done for it, and others are served meanwhile.
    fn run_batch(&mut self, conn: ConnId, mut msgs: VecDeque<Message>, bytes: usize) {
        let Some(outbox) = self.router.get(conn).map(|c| Arc::clone(&c.outbox)) else {
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
            if self.lease_lapsed() {
                // No renewal for too long (a frozen process, an unreachable database): another
                // server may be active. Nothing more is acknowledged; this request waits for
                // the active server's name and is answered as a standby would.
                self.step_down_unknown("the lease on the store lapsed");
            }
            if self.learning.is_some() || outbox.defer_if_over() {
                msgs.push_front(msg);
                let d = self.deferred.entry(conn).or_insert(Deferred {
                    msgs: VecDeque::new(),
                    bytes: 0,
                });
                d.msgs.extend(msgs);
                d.bytes += bytes;
                return;
            }
            self.message(conn, &msg, &outbox);
        }
        outbox.handled_bytes(bytes);
    }

    /// Reads one slice of the snapshot being taken ([`Engine::work`]); when it is answered, the
    /// requests that waited behind it run, before anything deferred for the connection.
    fn scan_slice(&mut self) {
        let Some(done) = self.engine.work(SystemTime::now(), &mut self.out) else {
            return;
        };
        let conn = done.conn;
        let asked = Message::new(ixn_codec::MessageId::REQUEST_TAKE_SNAPSHOT);
        self.counts.count(conn, &asked, &self.out, &self.metrics);
        self.commit.record(&mut self.engine);
        if self.commit.must_hold() {
            self.commit.hold(conn, std::mem::take(&mut self.out));
        } else {
            self.router.route(conn, &mut self.out);
            self.router.answered(conn);
        }
        if let Some(d) = self.deferred.get_mut(&conn) {
            for m in done.held.into_iter().rev() {
                d.msgs.push_front(m);
            }
        } else {
            self.run_batch(conn, done.held.into(), 0);
        }
    }

    /// Feeds `msg` to the engine and queues (or, waiting for the disk, holds) its outputs.
    fn message(&mut self, conn: ConnId, msg: &Message, outbox: &Outbox) {
        let was_registered = self.engine.is_registered(conn);
        self.engine
            .handle(SystemTime::now(), conn, msg, &mut self.out);
        if !was_registered && self.engine.is_registered(conn) {
            // The connection's registration timeout ends here.
            outbox.registered.store(true, Ordering::Release);
        }
        if let Some(c) = self.router.get(conn) {
            routing::log_milestones(conn, c, msg, &self.out);
        }
        self.counts.count(conn, msg, &self.out, &self.metrics);
        self.commit.record(&mut self.engine);
        if self.out.is_empty() {
            // A snapshot being taken, or a request waiting behind one: answered by `scan_slice`.
            return;
        }
        if self.commit.must_hold() {
            self.commit.hold(conn, std::mem::take(&mut self.out));
        } else {
            self.router.route(conn, &mut self.out);
            self.router.answered(conn);
        }
    }
}

/// Opens every connection `router` knows in `engine`, with what each proved (an engine that
/// takes over, or a standby after a step-down).
fn reopen(engine: &mut Engine, router: &Router) {
    for (conn, c) in router.conns() {
        engine.open(conn);
        for p in &c.proofs {
            engine.prove(conn, p.clone());
        }
    }
}

/// Sends what waited for a sync: a request's outputs, or a connection's close acknowledgement.
fn release(h: Held, router: &mut Router) {
    match h {
        Held::Outputs {
            requester,
            mut outputs,
            ..
        } => {
            router.route(requester, &mut outputs);
            router.answered(requester);
        }
        Held::CloseAck { conn, done, .. } => {
            router.remove(conn);
            let _ = done.send(());
        }
    }
}

/// Completes at `until` (never without it).
async fn sleep_until(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Completes when the link's consumer next takes its queue (never without a link).
async fn link_taken(link: Option<&Outbox>) {
    match link {
        Some(l) => l.taken.notified().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod group_commit_tests;
#[cfg(test)]
mod lease_tests;
