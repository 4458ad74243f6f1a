//! `fanout`: S logged-in agents subscribed to one agent-group workbin (`Team` of `group0`); one
//! media server moves interactions in and out of it with W changes in flight. Every change is a
//! notification to each of the S subscribers.
//!
//! A placement is `RequestChangeProperties` (UserData `t` = microseconds since the run began)
//! sent together with `RequestPlaceInWorkbin`; a removal is `RequestPlaceInQueue`. Subscribers
//! decode every `sample_every`-th notification and, for PlacedIn, record now - `t`:
//! place-to-delivery latency on one clock.
//!
//! With `--redis ADDR` the same shape runs against Redis pub/sub (S subscribers of one channel,
//! one publisher with W PUBLISH in flight, 100-byte messages carrying the timestamp), for
//! comparison in the same session.

use crate::error::Error;
use crate::report::{Report, round3};
use crate::run::{self, Window};
use crate::target::Setup;
use crate::target::Target;
use crate::wire::{self, Conn};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use ixn_codec::{ClientType, KvList, MessageId, Value, WorkbinContentOperation, attr};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// A fan-out run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) subscribers: usize,
    pub(crate) in_flight: usize,
    /// Target deliveries per second (paces the changes); `None` = as fast as possible.
    pub(crate) rate: Option<f64>,
    pub(crate) sample_every: u64,
}

impl Params {
    /// Time between changes when paced: `rate` deliveries/s over `subscribers` recipients each.
    pub(crate) fn interval(&self) -> Option<Duration> {
        self.rate
            .map(|r| Duration::from_secs_f64(self.subscribers.max(1) as f64 / r.max(1.0)))
    }
}

/// What the subscribers measured.
#[derive(Debug)]
pub(crate) struct Heard {
    pub(crate) deliveries: u64,
    /// Reads (CometD: replies or frames) that carried notifications; `fanout` does not count them.
    pub(crate) batches: u64,
    pub(crate) bytes: u64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) lost: u64,
    pub(crate) first_loss: Option<String>,
}

impl Heard {
    pub(crate) fn new() -> Self {
        Self {
            deliveries: 0,
            batches: 0,
            bytes: 0,
            latency: run::histogram(),
            lost: 0,
            first_loss: None,
        }
    }

    pub(crate) fn merge(&mut self, o: Self) {
        self.deliveries += o.deliveries;
        self.batches += o.batches;
        self.bytes += o.bytes;
        let _ = self.latency.add(&o.latency);
        self.lost += o.lost;
        if self.first_loss.is_none() {
            self.first_loss = o.first_loss;
        }
    }
}

pub(crate) fn micros_since(base: Instant) -> i64 {
    base.elapsed().as_micros() as i64
}

pub(crate) async fn run(setup: &Setup, p: Params) -> Result<Report, Error> {
    let target = Target::start(&setup.spawn, p.subscribers, p.subscribers + 1)?;
    let addr = target.addr;
    let base = Instant::now();
    let window = Window::new();

    // Subscribers: register, log in, subscribe, all sent at once.
    let mut set = JoinSet::new();
    for i in 0..p.subscribers {
        set.spawn(async move {
            let mut conn = Conn::connect(addr, None).await?;
            conn.call_all(&[
                wire::register("desk", ClientType::AgentApplication),
                wire::login(i),
                wire::subscribe(wire::team()),
            ])
            .await?;
            Ok::<_, Error>(conn)
        });
    }
    let mut subscribers = Vec::with_capacity(p.subscribers);
    while let Some(r) = set.join_next().await {
        subscribers
            .push(r.map_err(|e| Error::Setup(format!("a subscriber's setup failed: {e}")))??);
    }
    let mut listeners = JoinSet::new();
    for conn in subscribers {
        listeners.spawn(listen(conn, Arc::clone(&window), base, p.sample_every));
    }

    let publisher = start_media(addr, p, Arc::clone(&window), base, None).await?;

    let mut report = finish(
        &window,
        setup.bounds,
        "fanout",
        publisher,
        listeners,
        p,
        target.mode,
        |paced, secs| {
            format!(
                "fanout: {} subscriber(s), {} change(s) in flight, {paced}{secs:.1} s, {} server at {addr}",
                p.subscribers, p.in_flight, target.mode
            )
        },
    )
    .await?;
    // A long-running server is left as found.
    wire::remove_all(addr, ids(p.in_flight.max(1))).await?;
    if let Some(m) = target.memory() {
        report.figure("server_peak_rss_bytes", "server peak RSS", m.peak, "B");
    }
    Ok(report)
}

/// The interactions the media server of a fan-out moves (unique to this run).
pub(crate) fn ids(slots: usize) -> Vec<String> {
    (0..slots)
        .map(|k| format!("F{}-{k:06}", wire::run_tag()))
        .collect()
}

/// Starts the media server at `addr`: W interactions submitted to the queue, then moved into
/// and out of `Team` (see the module documentation) until the window stops; the task returns the
/// changes completed while recording.
pub(crate) async fn start_media(
    addr: SocketAddr,
    p: Params,
    window: Arc<Window>,
    base: Instant,
    gate: Option<Arc<Gate>>,
) -> Result<tokio::task::JoinHandle<Result<u64, Error>>, Error> {
    let mut media = Conn::connect(addr, None).await?;
    media.register("media", ClientType::MediaServer).await?;
    let slots = p.in_flight.max(1);
    let ids = ids(slots);
    let submits: Vec<_> = ids
        .iter()
        .map(|id| wire::submit(id, KvList::new().with("t", 0)))
        .collect();
    media.call_all(&submits).await?;
    let mut place = Vec::with_capacity(slots);
    let mut take_out = Vec::with_capacity(slots);
    for id in &ids {
        // `t` is the last value of the frame: its four bytes are patched before each send.
        let mut frame = wire::encode(&wire::change_properties(id, KvList::new().with("t", 0)))?;
        frame.extend(wire::encode(&wire::place(id, wire::team()))?);
        let t_at = wire::encode(&wire::change_properties(id, KvList::new().with("t", 0)))?
            .len()
            .saturating_sub(4);
        place.push((frame, t_at));
        take_out.push(wire::encode(&wire::place_in_queue(id))?);
    }
    Ok(tokio::spawn(publish(
        media, place, take_out, p, window, base, gate,
    )))
}

/// End-to-end flow control: a change may start only while fewer than W changes are not yet
/// delivered to every subscriber (counted as deliveries over subscribers), so that a transport
/// slower than the engine is measured at what it delivers, not at a queue that grows.
#[derive(Debug)]
pub(crate) struct Gate {
    delivered: std::sync::atomic::AtomicU64,
    subscribers: u64,
    in_flight: u64,
    notify: tokio::sync::Notify,
}

impl Gate {
    pub(crate) fn new(subscribers: usize, in_flight: usize) -> Arc<Self> {
        Arc::new(Self {
            delivered: std::sync::atomic::AtomicU64::new(0),
            subscribers: subscribers.max(1) as u64,
            in_flight: in_flight.max(1) as u64,
            notify: tokio::sync::Notify::new(),
        })
    }

    /// A subscriber received `n` changes.
    pub(crate) fn delivered(&self, n: u64) {
        let before = self
            .delivered
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        // Wake the publisher when a whole change is complete.
        if (before + n) / self.subscribers != before / self.subscribers {
            self.notify.notify_one();
        }
    }

    /// May change number `started + 1` start?
    pub(crate) fn allows(&self, started: u64) -> bool {
        let done = self.delivered.load(std::sync::atomic::Ordering::Relaxed) / self.subscribers;
        started < done + self.in_flight
    }

    /// Completes at the next wake-up [`Gate::delivered`] gives.
    pub(crate) async fn opened_once(&self) {
        self.notify.notified().await;
    }

    async fn opened(gate: Option<&Arc<Self>>) {
        match gate {
            Some(g) => g.notify.notified().await,
            None => std::future::pending().await,
        }
    }
}

/// Ends a run: measures, then gathers the publisher's count of changes and every subscriber's
/// figures into a report titled by `title(paced, seconds)`.
#[allow(clippy::too_many_arguments)] // one call per target kind; a struct would only rename them
async fn finish(
    window: &Window,
    bounds: run::Bounds,
    label: &str,
    publisher: tokio::task::JoinHandle<Result<u64, Error>>,
    mut listeners: JoinSet<Heard>,
    p: Params,
    server: &str,
    title: impl FnOnce(&str, f64) -> String,
) -> Result<Report, Error> {
    let elapsed = run::measure(window, bounds, label, "deliveries").await;
    let changes = publisher
        .await
        .map_err(|e| Error::Setup(format!("the publisher failed: {e}")))??;
    let mut heard = Heard::new();
    while let Some(r) = listeners.join_next().await {
        heard.merge(r.map_err(|e| Error::Setup(format!("a subscriber failed: {e}")))?);
    }
    let secs = elapsed.as_secs_f64();
    let paced = p
        .rate
        .map(|r| format!("paced at {} deliveries/s, ", run::thousands(r)))
        .unwrap_or_default();
    let mut report = Report::new("fanout", title(&paced, secs));
    report.param("subscribers", p.subscribers);
    report.param("in_flight", p.in_flight);
    report.param("rate", p.rate);
    report.param("sample_every", p.sample_every);
    report.param("server", server);
    report.param("seconds", round3(secs));
    fill_report(&mut report, &heard, changes, secs);
    Ok(report)
}

fn fill_report(report: &mut Report, heard: &Heard, changes: u64, secs: f64) {
    report.figure(
        "deliveries_per_sec",
        "delivered notifications/s",
        (heard.deliveries as f64 / secs).round(),
        "",
    );
    report.figure(
        "deliveries",
        "delivered notifications",
        heard.deliveries,
        "",
    );
    report.figure(
        "changes_per_sec",
        "changes/s",
        (changes as f64 / secs).round(),
        "",
    );
    if let Some(size) = heard.bytes.checked_div(heard.deliveries) {
        report.figure("notification_bytes", "notification size", size, "B");
    }
    report.latency("latency", "place-to-delivery", &heard.latency);
    report.figure("subscribers_lost", "subscribers lost", heard.lost, "");
    if let Some(e) = &heard.first_loss {
        report.figure("first_loss", "first loss", e.clone(), "");
    }
}

/// One subscriber: counts notifications, decodes every `sample_every`-th.
async fn listen(mut conn: Conn, window: Arc<Window>, base: Instant, sample_every: u64) -> Heard {
    let mut h = Heard::new();
    let mut seen = 0u64;
    let stop = window.wait_stop();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            r = conn.fill() => if let Err(e) = r {
                if !window.stopped() {
                    h.lost += 1;
                    h.first_loss = Some(e.to_string());
                }
                break;
            },
            () = &mut stop => break,
        }
        let recording = window.recording();
        let mut n = 0u64;
        while let Some(id) = conn.peek_id() {
            if id != MessageId::EVENT_WORKBIN_CONTENT_CHANGED || !recording {
                conn.skip();
                continue;
            }
            seen += 1;
            n += 1;
            // Only a sampled notification is taken and decoded; the others are counted and
            // dropped where they lie, as the Redis subscriber does.
            if !seen.is_multiple_of(sample_every.max(1)) {
                h.bytes += conn.skip() as u64;
                continue;
            }
            let Some(frame) = conn.next_frame() else {
                break;
            };
            h.bytes += frame.bytes.len() as u64;
            if let Some(t) = placed_at(&conn, frame) {
                let lat = (micros_since(base) - t).max(0) as u64 * 1000;
                let _ = h.latency.record(lat.max(100));
            }
        }
        h.deliveries += n;
        window.add(n);
    }
    h
}

/// The `t` of a PlacedIn notification.
fn placed_at(conn: &Conn, frame: wire::Frame) -> Option<i64> {
    let msg = conn.decode(frame).ok()?;
    if msg.attrs.get_int(attr::WORKBIN_CONTENT_OPERATION)
        != Some(WorkbinContentOperation::PlacedIn.to_int())
    {
        return None;
    }
    let Some(Value::List(ix)) = msg.attrs.get(attr::INTERACTION) else {
        return None;
    };
    let Some(Value::List(ud)) = ix.get(attr::USER_DATA) else {
        return None;
    };
    ud.get_int("t").map(i64::from)
}

/// The media server's loop: keeps W changes in flight (paced when a rate is given); returns the
/// changes completed while recording.
async fn publish(
    mut media: Conn,
    mut place: Vec<(Vec<u8>, usize)>,
    take_out: Vec<Vec<u8>>,
    p: Params,
    window: Arc<Window>,
    base: Instant,
    gate: Option<Arc<Gate>>,
) -> Result<u64, Error> {
    let mut started = 0u64;
    let slots = place.len().max(1);
    // Changes per second when paced.
    let interval = p.interval();
    let mut due = tokio::time::Instant::now();
    // Replies still due per change in flight (a placement has two).
    let mut pending: VecDeque<u8> = VecDeque::new();
    let mut next = 0usize; // position in the cycle: place 0..W-1, then take out 0..W-1
    let mut done = 0u64;
    let stop = window.wait_stop();
    tokio::pin!(stop);
    loop {
        // Start changes while there is room (and, when paced, while they are due).
        let now = tokio::time::Instant::now();
        while pending.len() < p.in_flight.max(1)
            && interval.is_none_or(|_| now >= due)
            && gate.as_ref().is_none_or(|g| g.allows(started))
        {
            started += 1;
            let k = next % slots;
            if next < slots {
                if let Some((frame, t_at)) = place.get_mut(k) {
                    let t = micros_since(base) as i32;
                    if let Some(bytes) = frame.get_mut(*t_at..*t_at + 4) {
                        bytes.copy_from_slice(&t.to_be_bytes());
                    }
                    media.queue_frame(frame);
                    pending.push_back(2);
                }
            } else if let Some(frame) = take_out.get(k) {
                media.queue_frame(frame);
                pending.push_back(1);
            }
            next = (next + 1) % (2 * slots);
            if let Some(i) = interval {
                due += i;
            }
        }
        media.flush().await?;
        let paced_wait = interval.is_some() && pending.len() < p.in_flight.max(1);
        let gated = gate.as_ref().filter(|g| !g.allows(started));
        tokio::select! {
            biased;
            () = &mut stop => break,
            r = media.fill() => r?,
            () = tokio::time::sleep_until(due), if paced_wait => continue,
            () = Gate::opened(gated), if gated.is_some() => continue,
        }
        while let Some(id) = media.peek_id() {
            if id != MessageId::EVENT_ACK {
                let frame = media.next_frame();
                let text = frame
                    .and_then(|f| media.decode(f).ok())
                    .and_then(|m| m.to_json().ok())
                    .unwrap_or_else(|| id.to_string());
                return Err(Error::Protocol(format!(
                    "the media server's change was refused: {text}"
                )));
            }
            media.skip();
            match pending.front_mut() {
                Some(left) if *left > 1 => *left -= 1,
                Some(_) => {
                    pending.pop_front();
                    if window.recording() {
                        done += 1;
                    }
                }
                None => return Err(Error::Protocol("a reply with no change in flight".into())),
            }
        }
    }
    Ok(done)
}

/// The same fan-out over Redis pub/sub.
pub(crate) async fn run_redis(
    setup: &Setup,
    redis: SocketAddr,
    p: Params,
    payload: usize,
) -> Result<Report, Error> {
    const CHANNEL: &str = "ixnload";
    let base = Instant::now();
    let window = Window::new();
    let push_len = format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{CHANNEL}\r\n${payload}\r\n",
        CHANNEL.len()
    )
    .len()
        + payload
        + 2;
    let mut listeners = JoinSet::new();
    for _ in 0..p.subscribers {
        let s = subscribe_redis(redis, CHANNEL).await?;
        listeners.spawn(listen_redis(
            s,
            push_len,
            payload,
            Arc::clone(&window),
            base,
            p.sample_every,
        ));
    }
    let publisher = tokio::spawn(publish_redis(
        redis,
        CHANNEL,
        p,
        payload,
        Arc::clone(&window),
        base,
    ));
    finish(
        &window,
        setup.bounds,
        "fanout (redis)",
        publisher,
        listeners,
        p,
        "redis",
        |paced, secs| {
            format!(
                "fanout over Redis pub/sub at {redis}: {} subscriber(s), {} PUBLISH in flight, {payload}-byte messages, {paced}{secs:.1} s",
                p.subscribers, p.in_flight
            )
        },
    )
    .await
}

/// A Redis connection subscribed to `channel` (its confirmation read).
async fn subscribe_redis(redis: SocketAddr, channel: &'static str) -> Result<TcpStream, Error> {
    let mut s = TcpStream::connect(redis)
        .await
        .map_err(|e| Error::Connect {
            addr: redis,
            source: e,
        })?;
    let _ = s.set_nodelay(true);
    let cmd = resp(&["SUBSCRIBE", channel]);
    s.write_all(&cmd).await.map_err(|e| lost(redis, e))?;
    // "*3 $9 subscribe $7 ixnload :1": read exactly its length.
    let confirm = format!(
        "*3\r\n$9\r\nsubscribe\r\n${}\r\n{channel}\r\n:",
        channel.len()
    );
    let mut got = BytesMut::new();
    while !(got.len() > confirm.len() && got.ends_with(b"\r\n")) {
        if s.read_buf(&mut got).await.map_err(|e| lost(redis, e))? == 0 {
            return Err(Error::Closed(redis));
        }
    }
    Ok(s)
}

/// Publishes with `p.in_flight` PUBLISH in flight (paced when asked) until the window stops:
/// how many were acknowledged while it recorded.
async fn publish_redis(
    redis: SocketAddr,
    channel: &'static str,
    p: Params,
    payload: usize,
    pub_window: Arc<Window>,
    base: Instant,
) -> Result<u64, Error> {
    let mut publisher = TcpStream::connect(redis)
        .await
        .map_err(|e| Error::Connect {
            addr: redis,
            source: e,
        })?;
    let _ = publisher.set_nodelay(true);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = Vec::new();
    let mut in_flight = 0usize;
    let mut done = 0u64;
    let interval = p.interval();
    let mut due = tokio::time::Instant::now();
    let stop = pub_window.wait_stop();
    tokio::pin!(stop);
    loop {
        let now = tokio::time::Instant::now();
        while in_flight < p.in_flight.max(1) && interval.is_none_or(|_| now >= due) {
            let stamp = format!("{:<payload$}", micros_since(base));
            wbuf.extend(resp(&["PUBLISH", channel, &stamp]));
            in_flight += 1;
            if let Some(i) = interval {
                due += i;
            }
        }
        if !wbuf.is_empty() {
            publisher
                .write_all(&wbuf)
                .await
                .map_err(|e| lost(redis, e))?;
            wbuf.clear();
        }
        let paced_wait = interval.is_some() && in_flight < p.in_flight.max(1);
        tokio::select! {
            biased;
            () = &mut stop => break,
            r = publisher.read_buf(&mut rbuf) => {
                if r.map_err(|e| lost(redis, e))? == 0 { return Err(Error::Closed(redis)); }
            }
            () = tokio::time::sleep_until(due), if paced_wait => continue,
        }
        // Each reply is one integer line.
        while let Some(end) = rbuf.iter().position(|&b| b == b'\n') {
            rbuf.advance(end + 1);
            in_flight = in_flight.saturating_sub(1);
            if pub_window.recording() {
                done += 1;
            }
        }
    }
    Ok(done)
}

fn lost(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::Lost { addr, source: e }
}

/// A RESP command.
fn resp(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend(format!("${}\r\n{p}\r\n", p.len()).into_bytes());
    }
    out
}

/// A Redis subscriber: every push has the same length; the payload starts with the timestamp.
async fn listen_redis(
    mut s: TcpStream,
    push_len: usize,
    payload: usize,
    window: Arc<Window>,
    base: Instant,
    sample_every: u64,
) -> Heard {
    let mut h = Heard::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut seen = 0u64;
    let stop = window.wait_stop();
    tokio::pin!(stop);
    loop {
        buf.reserve(64 * 1024);
        tokio::select! {
            biased;
            r = s.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    if !window.stopped() {
                        h.lost += 1;
                        h.first_loss = Some("the connection to Redis ended".into());
                    }
                    break;
                }
                Ok(_) => {}
            },
            () = &mut stop => break,
        }
        let recording = window.recording();
        let mut n = 0u64;
        while buf.len() >= push_len {
            if recording {
                seen += 1;
                n += 1;
                if seen.is_multiple_of(sample_every.max(1)) {
                    let start = push_len - 2 - payload;
                    let t = buf
                        .get(start..start + 20)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|s| s.trim().parse::<i64>().ok());
                    if let Some(t) = t {
                        let lat = (micros_since(base) - t).max(0) as u64 * 1000;
                        let _ = h.latency.record(lat.max(100));
                    }
                }
            }
            buf.advance(push_len);
        }
        h.deliveries += n;
        h.bytes += n * push_len as u64;
        window.add(n);
    }
    h
}
