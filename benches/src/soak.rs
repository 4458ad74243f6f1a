//! `ixn-load soak`: one long-running server under the workloads mixed, for as long as asked.
//!
//! The server (spawned, or reached with `--addr` and `--http`) runs on the web configuration,
//! sized for every workload. In turn, each for a slice (`--slice`, 5 s by default): request/reply
//! (`rr place`, then `rr content`), fan-out, content reads of a large workbin, churn (clients
//! connecting, logging in, subscribing and leaving) and CometD fan-out. Each run removes what it
//! created, so the server should hold the same between runs whatever the time.
//!
//! Every `--every` (a minute by default), between two runs, a line: minutes, the server's RSS
//! and open descriptors (`/proc/PID`), its open connections and web sessions (its `/metrics`),
//! requests per second over the period, and the p99 of the request/reply runs. At the end, the
//! verdict over what followed the settling time (`--settle`, 5 minutes by default), comparing the
//! medians of the first and the last fifth of the lines (the allocator holds a few MiB more or
//! less from one quiet moment to the next, and a line may fall while a run's last sockets
//! close): RSS within 10%, p99 within 1.5 times, and no more descriptors (2 of slack). A failed
//! verdict makes ixn-load exit with status 3, like a run with wrong replies.

use crate::error::Error;
use crate::report::Report;
use crate::run::Bounds;
use crate::target::{self, Setup, Spawn, Target};
use crate::{churn, cometd_fanout, fanout, rr};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Agents in the soak's configuration (the largest workload's clients).
const AGENTS: usize = 300;
/// Subscribers of the fan-out runs.
const SUBSCRIBERS: usize = 200;
/// CometD sessions of the CometD runs.
const SESSIONS: usize = 50;
/// Clients of each churn round.
const CHURN: usize = 200;
/// Interactions of the content runs' workbin.
const ITEMS: usize = 1000;

/// Runs in one round of the mix.
const MIX: usize = 6;

/// What the soak runs against, and for how long.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) server_bin: Option<PathBuf>,
    /// A running server (`ixn-load soak-config`'s configuration): native address, web API,
    /// process id.
    pub(crate) addr: Option<(SocketAddr, SocketAddr, u32)>,
    pub(crate) duration: Duration,
    pub(crate) every: Duration,
    pub(crate) settle: Duration,
    pub(crate) slice: Duration,
    pub(crate) json: bool,
    /// Whether a failed verdict fails the run.
    pub(crate) judge: bool,
}

/// The soak's configuration: the web configuration (every agent signs in with ixn-load's
/// password) with room for every workload's connections.
pub(crate) fn config() -> Result<ixn_config::ConfigFile, Error> {
    target::web_config(AGENTS, 4 * AGENTS)
}

/// One period's line.
#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    rss: u64,
    fds: usize,
    connections: Option<f64>,
    web_sessions: Option<f64>,
    requests_per_sec: f64,
    p99_us: Option<f64>,
}

/// What the runs of one period added up to.
#[derive(Debug, Default)]
struct Period {
    operations: f64,
    busy: Duration,
    p99s: Vec<f64>,
}

impl Period {
    fn add(&mut self, report: &Report, took: Duration) {
        // Requests (request/reply and churn runs; fan-out deliveries are not requests) over the
        // runs that made them.
        if let Some(rate) = report.value("requests_per_sec") {
            self.operations += rate * took.as_secs_f64();
            self.busy += took;
        }
        if report.workload == "rr"
            && let Some(p) = report.value("latency_p99_us")
        {
            self.p99s.push(p);
        }
    }
}

/// Runs the soak; its verdict's failure, if any, is recorded as a problem.
pub(crate) async fn run(p: Params) -> Result<(), Error> {
    let (target, web) = match (&p.server_bin, p.addr) {
        (Some(bin), _) => {
            let (t, web) = target::start_bin(bin, target::Keep::Ephemeral, None, &config()?, true)?;
            let web = web.ok_or_else(|| {
                Error::Setup("the server did not say where its web API listens".into())
            })?;
            (t, web)
        }
        (None, Some((addr, web, pid))) => (
            Target::start(
                &Spawn::Addr {
                    addr,
                    pid: Some(pid),
                    web: Some(web),
                },
                0,
                0,
            )?,
            web,
        ),
        (None, None) => {
            return Err(Error::Setup(
                "give --server-bin PATH, or --addr ADDR --http ADDR --server-pid PID of a server started with `ixn-load soak-config`'s configuration".into(),
            ));
        }
    };
    let pid = target
        .pid
        .ok_or_else(|| Error::Setup("the server's process id is not known".into()))?;
    let setup = Setup {
        spawn: Spawn::Addr {
            addr: target.addr,
            pid: Some(pid),
            web: Some(web),
        },
        bounds: Bounds {
            warmup: Duration::from_millis(200),
            duration: Some(p.slice),
            requests: None,
            progress: false,
        },
    };
    if !p.json {
        println!(
            "soak: {} against {} (web API {web}), a line every {}",
            humantime::format_duration(p.duration),
            target.addr,
            humantime::format_duration(p.every)
        );
        println!(
            "{:>7} {:>10} {:>5} {:>6} {:>9} {:>11} {:>9}",
            "minutes", "RSS MiB", "fds", "conns", "web sess", "requests/s", "p99 µs"
        );
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut period = Period::default();
    let mut next_line = started + p.every;
    let mut turn = 0usize;
    while started.elapsed() < p.duration {
        let t0 = Instant::now();
        let report = run_one(&setup, turn).await?;
        period.add(&report, t0.elapsed());
        if let Some(problem) = report.problem() {
            return Err(Error::Setup(format!(
                "the soak's {} run failed: {problem}",
                report.workload
            )));
        }
        turn += 1;
        settled(web, 0.0).await?;
        // Lines fall between two whole rounds of the mix, so that each finds the server after
        // the same run.
        if turn.is_multiple_of(MIX) && Instant::now() >= next_line {
            let s = sample(started, pid, web, &std::mem::take(&mut period)).await;
            print_sample(&s, p.json);
            samples.push(s);
            next_line += p.every;
        }
    }
    if samples.is_empty() {
        let s = sample(started, pid, web, &period).await;
        print_sample(&s, p.json);
        samples.push(s);
    }
    let verdict = verdict(&samples, p.settle);
    match &verdict {
        Ok(text) => println!("soak: {text}"),
        Err(text) if p.judge => {
            println!("soak: FAILED: {text}");
            crate::report::problem(format!("soak: {text}"));
        }
        Err(text) => println!("soak: would fail (--no-verdict): {text}"),
    }
    Ok(())
}

/// The `turn`th run of the mix.
async fn run_one(setup: &Setup, turn: usize) -> Result<Report, Error> {
    let rr_params = |kind| rr::Params {
        kind,
        connections: 16,
        in_flight: 4,
        items: 3,
        hog: 0,
        hog_in_flight: 1,
    };
    match turn % MIX {
        0 => rr::run(setup, rr_params(rr::Kind::Place)).await,
        1 => rr::run(setup, rr_params(rr::Kind::Content)).await,
        2 => {
            fanout::run(
                setup,
                fanout::Params {
                    subscribers: SUBSCRIBERS,
                    in_flight: 16,
                    rate: None,
                    sample_every: 8,
                },
            )
            .await
        }
        3 => {
            let mut p = rr_params(rr::Kind::Content);
            p.connections = 1;
            p.items = ITEMS;
            rr::run(setup, p).await
        }
        4 => {
            churn::run(
                setup,
                churn::Params {
                    clients: CHURN,
                    concurrency: 50,
                },
            )
            .await
        }
        _ => {
            cometd_fanout::run(
                setup,
                &cometd_fanout::Side::Ixn,
                cometd_fanout::Params {
                    sessions: SESSIONS,
                    transport: cometd_fanout::Transport::LongPolling,
                    in_flight: 16,
                    rate: None,
                    sample_every: 8,
                    size: 0,
                    api: cometd_fanout::Api::V2,
                },
            )
            .await
        }
    }
}

/// Waits until the server holds at most `connections` native connections (a run's clients
/// are gone before the next run logs the same agents in): at most 30 s.
async fn settled(web: SocketAddr, connections: f64) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        let open = scrape(web)
            .await
            .and_then(|s| metric(&s, "ixn_connections_open"));
        if open.is_some_and(|n| n <= connections) {
            return Ok(());
        }
        last = open;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(Error::Setup(format!(
        "the server still holds {} connections 30 s after a run ended (its clients closed theirs)",
        last.map_or_else(|| "an unknown number of".into(), |n| n.to_string())
    )))
}

/// The server's state now and the period's figures.
async fn sample(started: Instant, pid: u32, web: SocketAddr, period: &Period) -> Sample {
    let scrape = scrape(web).await.unwrap_or_default();
    let mut p99s = period.p99s.clone();
    p99s.sort_by(f64::total_cmp);
    Sample {
        at: started.elapsed(),
        rss: target::memory_of(pid).map_or(0, |m| m.rss),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count),
        connections: metric(&scrape, "ixn_connections_open"),
        web_sessions: metric(&scrape, "ixn_web_sessions"),
        requests_per_sec: if period.busy.is_zero() {
            0.0
        } else {
            period.operations / period.busy.as_secs_f64()
        },
        // The median of the period's request/reply p99s (one per run).
        p99_us: p99s.get(p99s.len() / 2).copied(),
    }
}

fn print_sample(s: &Sample, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "workload": "soak",
                "seconds": s.at.as_secs(),
                "server_rss_bytes": s.rss,
                "server_fds": s.fds,
                "connections": s.connections,
                "web_sessions": s.web_sessions,
                "requests_per_sec": s.requests_per_sec.round(),
                "rr_p99_us": s.p99_us,
            })
        );
        return;
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    println!(
        "{:>7.1} {:>10.1} {:>5} {:>6} {:>9} {:>11.0} {:>9}",
        s.at.as_secs_f64() / 60.0,
        s.rss as f64 / (1024.0 * 1024.0),
        s.fds,
        opt(s.connections),
        opt(s.web_sessions),
        s.requests_per_sec,
        opt(s.p99_us),
    );
}

/// The verdict over the samples after `settle`: a sentence, `Err` when something grew.
fn verdict(samples: &[Sample], settle: Duration) -> Result<String, String> {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= settle).collect();
    let Some(base) = after.first() else {
        return Ok(format!(
            "no verdict: the run ended before its settling time ({})",
            humantime::format_duration(settle)
        ));
    };
    let mut wrong = Vec::new();
    let fifth = after.len().div_ceil(5);
    // The allocator keeps a few MiB more or less from one quiet moment to the next: the values
    // compared are the medians of the first and the last fifth of the lines.
    let (head, tail) = (
        after.get(..fifth).unwrap_or_default(),
        after.get(after.len() - fifth..).unwrap_or_default(),
    );
    let base_rss = median(head.iter().map(|s| s.rss as f64)).unwrap_or(0.0) as u64;
    let end_rss = median(tail.iter().map(|s| s.rss as f64)).unwrap_or(0.0) as u64;
    let max_rss = after.iter().map(|s| s.rss).max().unwrap_or(0);
    if end_rss as f64 > base_rss as f64 * 1.10 {
        wrong.push(format!(
            "RSS grew from {:.1} MiB to {:.1} MiB (medians of the first and last fifth; more than 10%)",
            mib(base_rss),
            mib(end_rss)
        ));
    }
    let fds = |part: &[&Sample]| {
        median(part.iter().map(|s| s.fds as f64)).map_or(base.fds, |m| m as usize)
    };
    let (base_fds, last) = (fds(head), fds(tail));
    if last > base_fds + 2 {
        wrong.push(format!("open descriptors grew from {base_fds} to {last}"));
    }
    let first = median(head.iter().filter_map(|s| s.p99_us));
    let end = median(tail.iter().filter_map(|s| s.p99_us));
    if let (Some(a), Some(b)) = (first, end)
        && b > a * 1.5
    {
        wrong.push(format!(
            "the request/reply p99 grew from {a:.0} µs to {b:.0} µs (more than 1.5 times)"
        ));
    }
    if wrong.is_empty() {
        Ok(format!(
            "held over {} periods after settling: RSS {:.1} MiB then {:.1} MiB ({:+.1}%; highest {:.1} MiB), descriptors {} then {last}, p99 {} µs then {} µs (medians of the first and last fifth)",
            after.len(),
            mib(base_rss),
            mib(end_rss),
            (end_rss as f64 / base_rss.max(1) as f64 - 1.0) * 100.0,
            mib(max_rss),
            base_fds,
            first.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
            end.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
        ))
    } else {
        Err(wrong.join("; "))
    }
}

/// The median (the lower one of an even count), if there are values.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The value of an unlabelled sample in a Prometheus text scrape.
fn metric(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The server's `/metrics`, through its web API.
async fn scrape(web: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut s = tokio::net::TcpStream::connect(web).await.ok()?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8(raw).ok()?;
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), get)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: u64, rss: u64, fds: usize, p99: f64) -> Sample {
        Sample {
            at: Duration::from_secs(60 * min),
            rss,
            fds,
            connections: Some(0.0),
            web_sessions: Some(0.0),
            requests_per_sec: 1000.0,
            p99_us: Some(p99),
        }
    }

    #[test]
    fn the_verdict_holds_for_a_flat_run_and_fails_on_growth() {
        let settle = Duration::from_secs(300);
        let flat: Vec<Sample> = (1..=30).map(|m| at(m, 100 << 20, 40, 500.0)).collect();
        assert!(verdict(&flat, settle).is_ok());
        // A steady climb fails; one high line among flat ones (the allocator) does not.
        let rss: Vec<Sample> = (1..=30)
            .map(|m| at(m, (100 << 20) + (m << 20), 40, 500.0))
            .collect();
        assert!(verdict(&rss, settle).unwrap_err().contains("RSS grew"));
        let mut spike = flat.clone();
        spike[20].rss = 130 << 20;
        assert!(verdict(&spike, settle).is_ok());
        // Descriptors that stay fail; one line taken while sockets close does not.
        let mut fds = flat.clone();
        for s in &mut fds[24..] {
            s.fds = 50;
        }
        assert!(verdict(&fds, settle).unwrap_err().contains("descriptors"));
        let mut transient = flat.clone();
        transient[5].fds = 39;
        transient[29].fds = 45;
        assert!(verdict(&transient, settle).is_ok());
        let p99: Vec<Sample> = (1..=30)
            .map(|m| at(m, 100 << 20, 40, 500.0 + 50.0 * m as f64))
            .collect();
        assert!(verdict(&p99, settle).unwrap_err().contains("p99"));
        // Growth before the settling time does not count.
        let mut early = flat;
        early[0].rss = 10 << 20;
        assert!(verdict(&early, settle).is_ok());
    }

    #[test]
    fn an_unlabelled_sample_is_read_from_a_scrape() {
        let scrape =
            "# HELP ixn_connections_open x\nixn_connections_open 3\nixn_connections_open_total 9\n";
        assert_eq!(metric(scrape, "ixn_connections_open"), Some(3.0));
        assert_eq!(metric(scrape, "ixn_web_sessions"), None);
    }
}
