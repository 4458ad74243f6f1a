//! `rr` and `content`: connections that each keep a number of requests in flight and time every
//! reply.
//!
//! Each connection cycles through a fixed program of pre-encoded requests (`ping`; a content
//! read; subscribe then cancel; place then pull). The server answers one connection's requests
//! in order, so a reply is matched to the oldest request in flight, and a program such as
//! "subscribe, cancel" stays valid with any number in flight: the server sees the requests in
//! program order.

use crate::error::Error;
use crate::report::Report;
use crate::run::{self, Window};
use crate::target::Setup;
use crate::target::Target;
use crate::wire::{self, Conn};
use clap::ValueEnum;
use hdrhistogram::Histogram;
use ixn_codec::{ClientType, KvList, Message, MessageId};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// The request an `rr` run repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Ping (touches no state: the server's connection answers it when none of its earlier
    /// requests is still at the engine).
    Ping,
    /// RequestGetWorkbinContent of the agent's Drafts holding `--items` interactions.
    Content,
    /// RequestWorkbinNotifications then RequestCancelWorkbinNotifications.
    Subscribe,
    /// RequestPlaceInWorkbin (into the agent's Drafts) then RequestPull (out of it).
    Place,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Content => "content",
            Self::Subscribe => "subscribe",
            Self::Place => "place",
        }
    }
}

/// Requests a connection repeats, with the reply each expects.
#[derive(Debug)]
pub(crate) struct Program {
    frames: Vec<Vec<u8>>,
    expect: Vec<MessageId>,
}

impl Program {
    pub(crate) fn single(msg: Message, reply: MessageId) -> Result<Self, Error> {
        Self::new(&[(msg, reply)])
    }

    fn new(steps: &[(Message, MessageId)]) -> Result<Self, Error> {
        let mut frames = Vec::new();
        let mut expect = Vec::new();
        for (m, e) in steps {
            frames.push(wire::encode(m)?);
            expect.push(*e);
        }
        Ok(Self { frames, expect })
    }
}

/// What one connection measured.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) ops: u64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// Bytes of the replies taken while recording.
    pub(crate) reply_bytes: u64,
}

impl Measured {
    fn new() -> Self {
        Self {
            ops: 0,
            latency: run::histogram(),
            errors: 0,
            first_error: None,
            reply_bytes: 0,
        }
    }

    /// Requests/s, requests and latency percentiles over `elapsed`.
    pub(crate) fn figures(&self, report: &mut Report, elapsed: std::time::Duration) {
        report.figure(
            "requests_per_sec",
            "requests/s",
            (self.ops as f64 / elapsed.as_secs_f64()).round(),
            "",
        );
        report.figure("requests", "requests", self.ops, "");
        report.latency("latency", "latency", &self.latency);
    }

    pub(crate) fn merge(&mut self, other: Self) {
        self.ops += other.ops;
        let _ = self.latency.add(&other.latency);
        self.errors += other.errors;
        self.reply_bytes += other.reply_bytes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Waits for every connection's figures and adds them up.
pub(crate) async fn collect(
    mut drivers: JoinSet<Result<Measured, Error>>,
) -> Result<Measured, Error> {
    let mut total = Measured::new();
    while let Some(r) = drivers.join_next().await {
        total.merge(r.map_err(|e| Error::Setup(format!("a connection failed: {e}")))??);
    }
    Ok(total)
}

/// Keeps `in_flight` requests of `program` in flight on `conn` until the window stops.
pub(crate) async fn drive(
    mut conn: Conn,
    program: Arc<Program>,
    in_flight: usize,
    window: Arc<Window>,
) -> Result<Measured, Error> {
    let len = program.frames.len();
    let mut m = Measured::new();
    let mut sent: VecDeque<(Instant, usize)> = VecDeque::with_capacity(in_flight);
    let mut next = 0usize;
    let start = Instant::now();
    for _ in 0..in_flight.max(1) {
        if let Some(f) = program.frames.get(next) {
            conn.queue_frame(f);
        }
        sent.push_back((start, next));
        next = (next + 1) % len.max(1);
    }
    conn.flush().await?;
    let stop = window.wait_stop();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            r = conn.fill() => r?,
            () = &mut stop => break,
        }
        let now = Instant::now();
        let recording = window.recording();
        let mut done = 0u64;
        while let Some(id) = conn.peek_id() {
            if id == MessageId::EVENT_WORKBIN_CONTENT_CHANGED {
                conn.skip();
                continue;
            }
            let Some((at, step)) = sent.pop_front() else {
                return Err(Error::Protocol(format!(
                    "{id} arrived with no request in flight"
                )));
            };
            let Some(frame) = conn.next_frame() else {
                break;
            };
            if program.expect.get(step) != Some(&id) {
                m.errors += 1;
                if m.first_error.is_none() {
                    let text = conn
                        .decode(frame)
                        .ok()
                        .and_then(|r| r.to_json().ok())
                        .unwrap_or_else(|| id.to_string());
                    m.first_error = Some(text);
                }
            } else if recording {
                m.reply_bytes += frame.bytes.len() as u64;
            }
            if recording {
                let _ = m.latency.record((now - at).as_nanos() as u64);
                done += 1;
            }
            if let Some(f) = program.frames.get(next) {
                conn.queue_frame(f);
            }
            sent.push_back((now, next));
            next = (next + 1) % len.max(1);
        }
        m.ops += done;
        window.add(done);
        if window.stopped() {
            break;
        }
        conn.flush().await?;
    }
    Ok(m)
}

/// An `rr` (or `content`) run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) kind: Kind,
    pub(crate) connections: usize,
    pub(crate) in_flight: usize,
    /// Interactions in each agent's Drafts (content reads).
    pub(crate) items: usize,
    /// Interactions in the workbin of an extra connection pipelining content reads while the
    /// others are measured (0: none).
    pub(crate) hog: usize,
    /// Content reads that connection keeps in flight.
    pub(crate) hog_in_flight: usize,
}

pub(crate) async fn run(setup: &Setup, p: Params) -> Result<Report, Error> {
    let hogs = usize::from(p.hog > 0);
    let target = Target::start(&setup.spawn, p.connections + hogs, p.connections + hogs + 1)?;
    let addr = target.addr;
    if p.kind == Kind::Content && p.items > 0 {
        let agents: Vec<usize> = (0..p.connections).collect();
        prefill(addr, &agents, p.items).await?;
    }
    // The hog is the agent after the measured ones.
    let hog = if p.hog > 0 {
        let agent = p.connections;
        prefill(addr, &[agent], p.hog).await?;
        let mut conn = Conn::connect(addr, None).await?;
        conn.register("desk", ClientType::AgentApplication).await?;
        conn.call(&wire::login(agent)).await?;
        let program = Program::single(
            wire::content(wire::drafts(agent)),
            MessageId::EVENT_WORKBIN_CONTENT,
        )?;
        Some((conn, program))
    } else {
        None
    };
    let ready = ready_connections(addr, p).await?;
    let window = Window::new();
    let mut drivers = JoinSet::new();
    for (conn, program) in ready {
        drivers.spawn(drive(
            conn,
            Arc::new(program),
            p.in_flight,
            Arc::clone(&window),
        ));
    }
    // The hog counts its reads on a window of its own (stopped with the measured one), so the
    // figures are the measured connections'.
    let hog_window = Window::new();
    let hog_driver = hog.map(|(conn, program)| {
        tokio::spawn(drive(
            conn,
            Arc::new(program),
            p.hog_in_flight,
            Arc::clone(&hog_window),
        ))
    });
    let label = format!("rr {}", p.kind.name());
    let elapsed =
        run::measure_with(&window, &[&hog_window], setup.bounds, &label, "requests").await;
    let total = collect(drivers).await?;
    remove_created(addr, p).await?;
    let hog_measured = match hog_driver {
        Some(d) => Some(
            d.await
                .map_err(|e| Error::Setup(format!("the hog failed: {e}")))??,
        ),
        None => None,
    };
    Ok(report_of(
        p,
        &target,
        elapsed,
        &total,
        hog_measured.as_ref(),
    ))
}

/// Every connection registered and (except for ping) logged in as its own agent, with the
/// program it repeats.
async fn ready_connections(
    addr: std::net::SocketAddr,
    p: Params,
) -> Result<Vec<(Conn, Program)>, Error> {
    // Every connection registers and (except for ping) logs in its own agent.
    let mut set = JoinSet::new();
    for i in 0..p.connections {
        set.spawn(async move {
            let mut conn = Conn::connect(addr, None).await?;
            conn.register("desk", ClientType::AgentApplication).await?;
            if p.kind != Kind::Ping {
                conn.call(&wire::login(i)).await?;
            }
            let program = match p.kind {
                Kind::Ping => Program::new(&[(wire::ping(), MessageId::PING)])?,
                Kind::Content => Program::new(&[(
                    wire::content(wire::drafts(i)),
                    MessageId::EVENT_WORKBIN_CONTENT,
                )])?,
                Kind::Subscribe => Program::new(&[
                    (wire::subscribe(wire::drafts(i)), MessageId::EVENT_ACK),
                    (wire::cancel(wire::drafts(i)), MessageId::EVENT_ACK),
                ])?,
                Kind::Place => {
                    let id = place_id(i);
                    conn.call(&wire::submit(&id, small_user_data(i))).await?;
                    Program::new(&[
                        (wire::place(&id, wire::drafts(i)), MessageId::EVENT_ACK),
                        (wire::pull(&id), MessageId::EVENT_PULLED_INTERACTIONS),
                    ])?
                }
            };
            Ok::<_, Error>((conn, program))
        });
    }
    let mut ready = Vec::with_capacity(p.connections);
    while let Some(r) = set.join_next().await {
        ready.push(r.map_err(|e| Error::Setup(format!("a connection's setup failed: {e}")))??);
    }
    Ok(ready)
}

/// The report of a run: its parameters and the figures measured.
fn report_of(
    p: Params,
    target: &Target,
    elapsed: std::time::Duration,
    total: &Measured,
    hog_measured: Option<&Measured>,
) -> Report {
    let addr = target.addr;
    let workload = if p.kind == Kind::Content && p.connections == 1 {
        "content"
    } else {
        "rr"
    };
    let mut report = Report::new(
        workload,
        format!(
            "{}: {} connection(s) x {} in flight{}, {:.1} s, {} server at {}",
            if workload == "content" {
                "content".to_owned()
            } else {
                format!("rr {}", p.kind.name())
            },
            p.connections,
            p.in_flight,
            if p.kind == Kind::Content {
                format!(", {} interactions per workbin", p.items)
            } else {
                String::new()
            },
            elapsed.as_secs_f64(),
            target.mode,
            addr
        ),
    );
    report.param("kind", p.kind.name());
    report.param("connections", p.connections);
    report.param("in_flight", p.in_flight);
    if p.kind == Kind::Content {
        report.param("items", p.items);
    }
    report.param("server", target.mode);
    report.param("seconds", crate::report::round3(elapsed.as_secs_f64()));
    total.figures(&mut report, elapsed);
    if p.kind == Kind::Content && total.ops > 0 {
        report.figure(
            "reply_bytes",
            "reply size",
            total.reply_bytes / total.ops,
            "B",
        );
    }
    report.figure("errors", "unexpected replies", total.errors, "");
    if let Some(e) = &total.first_error {
        report.figure("first_error", "first unexpected reply", e.clone(), "");
    }
    if let Some(h) = hog_measured {
        report.param("hog_items", p.hog);
        report.param("hog_in_flight", p.hog_in_flight);
        report.figure(
            "hog_reads_per_sec",
            "hog content reads/s",
            (h.ops as f64 / elapsed.as_secs_f64()).round(),
            "",
        );
        report.figure("hog_errors", "hog unexpected replies", h.errors, "");
    }
    if let Some(m) = target.memory() {
        report.figure("server_peak_rss_bytes", "server peak RSS", m.peak, "B");
    }
    report
}

/// Two small UserData keys, as a typical e-mail carries.
pub(crate) fn small_user_data(i: usize) -> KvList {
    KvList::new()
        .with("Subject", format!("load test {i}"))
        .with("Priority", 3)
}

/// The interaction connection `i` of `rr place` moves (unique to this run).
fn place_id(i: usize) -> String {
    format!("RR{}-{i:06}", wire::run_tag())
}

/// Interaction `k` of agent `a`'s prefilled Drafts (unique to this run).
fn content_id(a: usize, k: usize) -> String {
    format!("C{}-{a:06}-{k:06}", wire::run_tag())
}

/// What a run created, removed once it is measured (a long-running server is left as found).
async fn remove_created(addr: std::net::SocketAddr, p: Params) -> Result<(), Error> {
    let mut ids: Vec<String> = Vec::new();
    if p.kind == Kind::Place {
        ids.extend((0..p.connections).map(place_id));
    }
    if p.kind == Kind::Content && p.items > 0 {
        ids.extend((0..p.connections).flat_map(|a| (0..p.items).map(move |k| content_id(a, k))));
    }
    if p.hog > 0 {
        ids.extend((0..p.hog).map(|k| content_id(p.connections, k)));
    }
    if ids.is_empty() {
        return Ok(());
    }
    wire::remove_all(addr, ids).await
}

/// Places `items` new interactions in the Drafts workbin of each agent of `agents`, through one
/// media-server connection with many requests in flight.
pub(crate) async fn prefill(
    addr: std::net::SocketAddr,
    agents: &[usize],
    items: usize,
) -> Result<(), Error> {
    let mut media = Conn::connect(addr, None).await?;
    media.register("media", ClientType::MediaServer).await?;
    let mut batch = Vec::with_capacity(512);
    for &a in agents {
        for k in 0..items {
            let id = content_id(a, k);
            batch.push(wire::submit(&id, small_user_data(k)));
            batch.push(wire::place(&id, wire::drafts(a)));
            if batch.len() >= 512 {
                media.call_all(&batch).await?;
                batch.clear();
            }
        }
    }
    media.call_all(&batch).await?;
    Ok(())
}

/// `rr ping` against Redis (`PING`, answered `+PONG`), with the same driver loop and timing as
/// against ixn: the comparison then differs only in the server.
pub(crate) async fn run_redis(
    setup: &Setup,
    redis: std::net::SocketAddr,
    connections: usize,
    in_flight: usize,
) -> Result<Report, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PING: &[u8] = b"PING\r\n";
    let window = Window::new();
    let mut drivers = JoinSet::new();
    for _ in 0..connections {
        let mut s = tokio::net::TcpStream::connect(redis)
            .await
            .map_err(|e| Error::Connect {
                addr: redis,
                source: e,
            })?;
        let _ = s.set_nodelay(true);
        let window = Arc::clone(&window);
        drivers.spawn(async move {
            let lost = |e| Error::Lost {
                addr: redis,
                source: e,
            };
            let mut m = Measured::new();
            let mut sent: VecDeque<Instant> = VecDeque::with_capacity(in_flight);
            let mut out = Vec::with_capacity(in_flight * PING.len());
            let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
            let start = Instant::now();
            for _ in 0..in_flight {
                out.extend_from_slice(PING);
                sent.push_back(start);
            }
            s.write_all(&out).await.map_err(lost)?;
            let stop = window.wait_stop();
            tokio::pin!(stop);
            loop {
                buf.clear();
                tokio::select! {
                    biased;
                    r = s.read_buf(&mut buf) => if r.map_err(lost)? == 0 {
                        return Err(Error::Closed(redis));
                    },
                    () = &mut stop => break,
                }
                let now = Instant::now();
                let recording = window.recording();
                out.clear();
                let mut done = 0u64;
                // Every reply is "+PONG\r\n": one line each (a read may end mid-line; the rest
                // of that line comes with the next read and ends in its own newline).
                for _ in buf.iter().filter(|&&b| b == b'\n') {
                    let at = sent.pop_front().unwrap_or(now);
                    if recording {
                        let _ = m.latency.record((now - at).as_nanos() as u64);
                        done += 1;
                    }
                    out.extend_from_slice(PING);
                    sent.push_back(now);
                }
                m.ops += done;
                window.add(done);
                if window.stopped() {
                    break;
                }
                if !out.is_empty() {
                    s.write_all(&out).await.map_err(lost)?;
                }
            }
            Ok::<_, Error>(m)
        });
    }
    let elapsed = run::measure(&window, setup.bounds, "rr ping (redis)", "requests").await;
    let total = collect(drivers).await?;
    let mut report = Report::new(
        "rr",
        format!(
            "rr ping over Redis at {redis} (PING, +PONG): {connections} connection(s) x {in_flight} in flight, {:.1} s",
            elapsed.as_secs_f64()
        ),
    );
    report.param("kind", "ping");
    report.param("connections", connections);
    report.param("in_flight", in_flight);
    report.param("server", "redis");
    report.param("seconds", crate::report::round3(elapsed.as_secs_f64()));
    total.figures(&mut report, elapsed);
    Ok(report)
}
