//! `churn`: K clients connect, register, log in and subscribe to their Drafts, stay idle for a
//! moment, then all disconnect; over and over until the run's bound. Reports how long K clients
//! take to be ready, cycles per second, and the server's memory per idle registered connection
//! (resident memory with the K connections up minus before the first round, divided by K).

use crate::error::Error;
use crate::report::{Report, round3};
use crate::run::{self, Window};
use crate::target::Setup;
use crate::target::Target;
use crate::wire::{self, Conn};
use ixn_codec::ClientType;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A churn run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) clients: usize,
    /// Clients setting up at once.
    pub(crate) concurrency: usize,
}

pub(crate) async fn run(setup: &Setup, p: Params) -> Result<Report, Error> {
    let target = Target::start(&setup.spawn, p.clients, p.clients)?;
    let addr = target.addr;
    // Let the server finish starting before its baseline is read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = target.memory();
    let window = Window::new();
    let bounds = run::Bounds {
        warmup: Duration::ZERO,
        ..setup.bounds
    };
    let measuring = {
        let window = Arc::clone(&window);
        tokio::spawn(async move { run::measure(&window, bounds, "churn", "client cycles").await })
    };
    // Let measure() open the window.
    while !window.recording() && !window.stopped() {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let mut rounds: Vec<Duration> = Vec::new();
    let mut per_conn: Option<f64> = None;
    let mut connected_rss = None;
    let mut round = 0usize;
    let loopback = addr.ip().is_loopback() && addr.is_ipv4();
    // Runs started a few seconds apart begin at addresses far apart (the clock's seconds), so
    // that one run's rounds do not meet the TIME_WAIT sockets of the run before.
    let first = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as usize * 7);
    loop {
        // Each round connects from its own loopback address, so TIME_WAIT sockets of earlier
        // rounds never use up the ports.
        let source = loopback
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + ((first + round) % 250) as u8)));
        let t0 = Instant::now();
        let conns = connect_all(addr, source, p).await?;
        let took = t0.elapsed();
        rounds.push(took);
        if round == 0 {
            // Idle, registered, logged in, subscribed: what each costs the server.
            tokio::time::sleep(Duration::from_millis(200)).await;
            connected_rss = target.memory();
            if let (Some(b), Some(c)) = (baseline, connected_rss) {
                per_conn = Some(c.rss.saturating_sub(b.rss) as f64 / p.clients.max(1) as f64);
            }
        }
        window.add(p.clients as u64);
        drop(conns);
        round += 1;
        if window.stopped() {
            break;
        }
        // Give the server a moment to see the closes before the next storm.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = measuring.await;
    let measured = Measured {
        total: started.elapsed().as_secs_f64(),
        rounds,
        baseline,
        connected_rss,
        per_conn,
    };
    let mut report = report_of(p, &target, &measured);
    if let Some(m) = target.memory() {
        report.figure("server_peak_rss_bytes", "server peak RSS", m.peak, "B");
    }
    Ok(report)
}

/// Every client of a round connected from `source`, registered, logged in and subscribed.
async fn connect_all(
    addr: std::net::SocketAddr,
    source: Option<IpAddr>,
    p: Params,
) -> Result<Vec<Conn>, Error> {
    let permits = Arc::new(Semaphore::new(p.concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..p.clients {
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut conn = Conn::connect(addr, source).await?;
            conn.call_all(&[
                wire::register("desk", ClientType::AgentApplication),
                wire::login(i),
                wire::subscribe(wire::drafts(i)),
            ])
            .await?;
            Ok::<_, Error>(conn)
        });
    }
    let mut conns = Vec::with_capacity(p.clients);
    while let Some(r) = set.join_next().await {
        conns.push(r.map_err(|e| Error::Setup(format!("a client failed: {e}")))??);
    }
    Ok(conns)
}

/// What a churn run measured.
struct Measured {
    total: f64,
    rounds: Vec<Duration>,
    baseline: Option<crate::target::Memory>,
    connected_rss: Option<crate::target::Memory>,
    per_conn: Option<f64>,
}

/// The report of a run: its parameters and figures.
fn report_of(p: Params, target: &Target, m: &Measured) -> Report {
    let Measured {
        total,
        rounds,
        baseline,
        connected_rss,
        per_conn,
    } = m;
    let (total, addr) = (*total, target.addr);
    let mut report = Report::new(
        "churn",
        format!(
            "churn: {} clients per round (connect, register, log in, subscribe; then disconnect), {} round(s), {total:.1} s, {} server at {addr}",
            p.clients,
            rounds.len(),
            target.mode
        ),
    );
    report.param("clients", p.clients);
    report.param("concurrency", p.concurrency);
    report.param("server", target.mode);
    report.param("seconds", round3(total));
    report.figure("rounds", "rounds", rounds.len(), "");
    if let Some(first) = rounds.first() {
        report.figure(
            "first_round_ms",
            "first round: all clients ready in",
            round3(first.as_secs_f64() * 1000.0),
            "ms",
        );
    }
    if let Some(best) = rounds.iter().min() {
        report.figure(
            "best_round_ms",
            "best round",
            round3(best.as_secs_f64() * 1000.0),
            "ms",
        );
    }
    report.figure(
        "cycles_per_sec",
        "client cycles/s",
        ((rounds.len() * p.clients) as f64 / total).round(),
        "",
    );
    // Each cycle is connect, register, login, subscribe and disconnect: 3 requests.
    report.figure(
        "requests_per_sec",
        "requests/s (3 per cycle)",
        ((rounds.len() * p.clients * 3) as f64 / total).round(),
        "",
    );
    if let Some(b) = baseline {
        report.figure("server_baseline_rss_bytes", "server RSS before", b.rss, "B");
    }
    if let Some(c) = connected_rss {
        report.figure(
            "server_connected_rss_bytes",
            "server RSS, clients idle",
            c.rss,
            "B",
        );
    }
    if let Some(pc) = per_conn {
        report.figure(
            "bytes_per_idle_connection",
            "server memory per idle client",
            pc.round(),
            "B",
        );
    }
    report
}
