//! `ixn-load`: the load generator for the ixn server.
//!
//! Workloads: `rr` (request/reply with many in flight), `fanout` (one change, many subscribers),
//! `content` (reading a large workbin), `churn` (clients coming and going), `echo` (a bare
//! tokio echo of the same frames: the ceiling), and `soak` (the workloads mixed against one
//! server for a long time, its memory, descriptors and latency followed). Each can spawn the server itself
//! (`--server-bin`) with a configuration sized to the run, or load a running one (`--addr`,
//! started with the configuration `ixn-load config` prints). See docs/performance.md.

// A command-line tool: its table goes to stdout, its progress line to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod churn;
mod cometd;
mod cometd_fanout;
mod echo;
mod error;
mod fanout;
mod report;
mod rr;
mod run;
mod snapshot;
mod soak;
mod target;
mod wire;

use clap::{Args, Parser, Subcommand};
use error::Error;
use report::Report;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use target::Setup;

/// Load generator for the ixn workbin server.
#[derive(Debug, Parser)]
#[command(
    name = "ixn-load",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  ixn-load rr ping -c 50 -p 16 --server-bin target/release/ixn-server\n  ixn-load fanout -s 1000 -w 16 --server-bin target/release/ixn-server\n  ixn-load cometd -s 1000 --server-bin target/release/ixn-server\n  ixn-load cometd -s 1000 --faye benches/faye/server.js --size 700\n  ixn-load cometd-first -n 200 --server-bin target/release/ixn-server\n  ixn-load soak --duration 30m --server-bin target/release/ixn-server\n  ixn-load snapshot --server-bin target/release/ixn-server --postgres postgres://postgres@127.0.0.1/postgres\n  ixn-load config --agents 100 > load.toml"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The options of `ixn-load rr`.
#[derive(Debug, clap::Args)]
struct RrArgs {
    /// The request repeated.
    #[arg(value_enum, default_value = "ping")]
    kind: rr::Kind,
    /// Connections (each a registered client; logged in as its own agent except for ping).
    #[arg(short = 'c', long, default_value = "50", value_delimiter = ',')]
    connections: Vec<usize>,
    /// Requests in flight per connection.
    #[arg(short = 'p', long, default_value = "1", value_delimiter = ',')]
    in_flight: Vec<usize>,
    /// Interactions in each agent's Drafts for `content`.
    #[arg(long, default_value_t = 3)]
    items: usize,
    /// `ping` only: load Redis at this address instead (PING, +PONG), with the same driver.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    redis: Option<SocketAddr>,
    /// Fairness: one more connection pipelines content reads of a workbin of this many
    /// interactions (`--hog-in-flight` at once) while the others are measured.
    #[arg(long, value_name = "N", default_value_t = 0)]
    hog: usize,
    /// Content reads the hog keeps in flight.
    #[arg(long, value_name = "K", default_value_t = 64)]
    hog_in_flight: usize,
    #[command(flatten)]
    common: Common,
}

/// The options of `ixn-load fanout`.
#[derive(Debug, clap::Args)]
struct FanoutArgs {
    /// Subscribers (1 to 10,000); several, comma-separated, run one after another.
    #[arg(short = 's', long, default_value = "1000", value_delimiter = ',')]
    subscribers: Vec<usize>,
    /// Changes in flight.
    #[arg(short = 'w', long, default_value_t = 16)]
    in_flight: usize,
    /// Pace the changes to this many delivered notifications per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Decode every Nth notification for the latency figures (default 1 when paced, else 8).
    #[arg(long)]
    sample_every: Option<u64>,
    /// Run against Redis pub/sub at this address instead (same shape, `--size`-byte messages).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    redis: Option<SocketAddr>,
    /// With --redis: each PUBLISH payload's size in bytes (at least 24: it carries the
    /// send time). To compare like with like, give the `notification size` an ixn run of
    /// the same shape reports (each delivery adds Redis's own framing, reported too).
    #[arg(long, value_name = "BYTES", default_value_t = 100, requires = "redis", value_parser = clap::value_parser!(u32).range(24..=1_048_576))]
    size: u32,
    #[command(flatten)]
    common: Common,
}

/// The options of `ixn-load cometd`.
#[derive(Debug, clap::Args)]
struct CometdArgs {
    /// Sessions (one agent each); several, comma-separated, run one after another.
    #[arg(short = 's', long, default_value = "1000", value_delimiter = ',')]
    sessions: Vec<usize>,
    /// Transports, each measured in turn.
    #[arg(long, value_enum, default_values_t = [cometd_fanout::Transport::LongPolling, cometd_fanout::Transport::Websocket], value_delimiter = ',')]
    transport: Vec<cometd_fanout::Transport>,
    /// Changes in flight.
    #[arg(short = 'w', long, default_value_t = 16)]
    in_flight: usize,
    /// Pace the changes to this many delivered messages per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Decode every Nth message for the latency figures (default 1 when paced, else 8).
    #[arg(long)]
    sample_every: Option<u64>,
    /// Run against Faye instead: `node SCRIPT` (benches/faye/server.js, after `npm ci` there).
    #[arg(long, value_name = "SCRIPT", conflicts_with = "server_bin")]
    faye: Option<PathBuf>,
    /// With --faye: each message's size in bytes of JSON (give the `message size` an ixn run
    /// of the same shape reports).
    #[arg(long, value_name = "BYTES", default_value_t = 600, requires = "faye")]
    size: usize,
    /// ixn's web APIs to load, each measured in turn: GWS v2, the Workspace API v3.
    #[arg(long, value_enum, default_values_t = [cometd_fanout::Api::V2], value_delimiter = ',', conflicts_with = "faye")]
    api: Vec<cometd_fanout::Api>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Request/reply: C connections, each keeping P requests in flight.
    Rr(RrArgs),
    /// Fan-out: S agents subscribed to one agent-group workbin; a media server places and
    /// removes interactions with W changes in flight.
    Fanout(FanoutArgs),
    /// Content: GetWorkbinContent of one workbin holding N interactions.
    Content {
        /// Interactions in the workbin (up to 100,000); several, comma-separated, run in turn.
        #[arg(short = 'n', long, default_value = "1000", value_delimiter = ',')]
        items: Vec<usize>,
        /// Requests in flight.
        #[arg(short = 'p', long, default_value_t = 1)]
        in_flight: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Churn: K clients connect, register, log in, subscribe and disconnect, over and over.
    Churn {
        /// Clients per round; several, comma-separated, run in turn.
        #[arg(short = 'k', long, default_value = "10000", value_delimiter = ',')]
        clients: Vec<usize>,
        /// Clients setting up at once.
        #[arg(long, default_value_t = 1000)]
        concurrency: usize,
        #[command(flatten)]
        common: Common,
    },
    /// The ceiling: `rr ping` against a bare tokio echo server in this process (2 worker
    /// threads, like the server), no engine, no decoding.
    Echo {
        #[arg(short = 'c', long, default_value = "50", value_delimiter = ',')]
        connections: Vec<usize>,
        #[arg(short = 'p', long, default_value = "16", value_delimiter = ',')]
        in_flight: Vec<usize>,
        #[command(flatten)]
        bounds: BoundArgs,
    },
    /// CometD fan-out: N agents signed in to the web API, each with one CometD session and
    /// subscribed to one agent-group workbin; the media server moves interactions in and out of
    /// it. Or the same shape against Faye (`--faye SCRIPT`).
    Cometd(CometdArgs),
    /// CometD: how long the first message of a new CometD session takes after the HTTP reply
    /// that caused it (a REST Subscribe), over long-polling and WebSocket. Uses the demo
    /// configuration (agent a1).
    CometdFirst {
        /// Samples per transport.
        #[arg(short = 'n', long, default_value_t = 200)]
        samples: usize,
        /// Transports to measure.
        #[arg(long, value_enum, default_values_t = [cometd::Transport::LongPolling, cometd::Transport::Websocket], value_delimiter = ',')]
        transport: Vec<cometd::Transport>,
        /// Spawn this ixn-server binary (demo configuration, ephemeral ports).
        #[arg(long, value_name = "PATH", required_unless_present = "http")]
        server_bin: Option<PathBuf>,
        /// A running server with the demo configuration, its web API at this address.
        #[arg(long, value_name = "ADDR", conflicts_with = "server_bin", value_parser = parse_addr)]
        http: Option<SocketAddr>,
        /// Print one JSON object per run instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Soak: the workloads mixed (request/reply, fan-out, content reads, churn, CometD) against
    /// one server for `--duration`, a line every `--every` with its RSS, open descriptors,
    /// connections, requests/s and p99, and a verdict at the end (exit status 3 when its memory,
    /// descriptors or p99 grew after `--settle`).
    Soak(SoakArgs),
    /// Snapshots over many interactions (`--interactions` in `--places` queues and workbins),
    /// each question also asked of PostgreSQL on the same interactions (`--postgres`); the
    /// others' round trips while one client takes full-scan snapshots; memory per held
    /// interaction.
    Snapshot(SnapshotArgs),
    /// Print the configuration `soak` expects, for a server started by hand
    /// (`ixn-server --config FILE --ephemeral`) and soaked with `--addr`, `--http` and
    /// `--server-pid`.
    SoakConfig,
    /// Print the configuration the workloads expect, for a server started by hand
    /// (`ixn-server --config FILE --ephemeral`) and loaded with `--addr`.
    Config {
        /// Agents (agent0..), enough for the largest run: connections for rr, subscribers for
        /// fanout, clients for churn.
        #[arg(long, default_value_t = 10_000)]
        agents: usize,
        /// Connections the server must accept.
        #[arg(long, default_value_t = 10_100)]
        connections: usize,
    },
}

/// The options of `ixn-load snapshot`.
#[derive(Debug, clap::Args)]
struct SnapshotArgs {
    /// Spawn this ixn-server binary.
    #[arg(long, value_name = "PATH")]
    server_bin: PathBuf,
    /// Interactions stored.
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    interactions: usize,
    /// Queues and workbins they are spread over (half each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    places: u32,
    /// Round trips measured per question.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Other clients pinging while one takes full-scan snapshots.
    #[arg(long, default_value_t = 50)]
    others: usize,
    /// A PostgreSQL URL whose user may create databases: the server runs on a new database
    /// `ixnsnap` there and each question is also asked of its table.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    json: bool,
}

/// The options of `ixn-load soak`.
#[derive(Debug, clap::Args)]
struct SoakArgs {
    /// Spawn this ixn-server binary (ephemeral, the soak's configuration).
    #[arg(long, value_name = "PATH", required_unless_present = "addr")]
    server_bin: Option<PathBuf>,
    /// A running server started with `ixn-load soak-config`'s configuration (its native port).
    #[arg(long, value_name = "ADDR", conflicts_with = "server_bin", requires_all = ["http", "server_pid"], value_parser = parse_addr)]
    addr: Option<SocketAddr>,
    /// With --addr: the server's web API (CometD runs and its /metrics).
    #[arg(long, value_name = "ADDR", requires = "addr", value_parser = parse_addr)]
    http: Option<SocketAddr>,
    /// With --addr: the server's process id (its memory and descriptors).
    #[arg(long, value_name = "PID", requires = "addr")]
    server_pid: Option<u32>,
    /// How long to soak (e.g. 30m).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// A line this often.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    every: Duration,
    /// The verdict compares what follows this much time (the server's warm-up).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    settle: Duration,
    /// Each workload's run in the mix lasts this long.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    slice: Duration,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    json: bool,
    /// Print the verdict without failing on it (a smoke run too short to judge growth).
    #[arg(long)]
    no_verdict: bool,
}

/// Where the server is and how long to load it.
#[derive(Debug, Args)]
struct Common {
    /// Spawn this ixn-server binary on 127.0.0.1 (ephemeral port) with a generated
    /// configuration sized to the run.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Load the server at this address instead (start it with `ixn-load config`'s output); or
    /// several, comma-separated, of servers sharing a store: the active one is found (a
    /// standby's answer names it) and loaded.
    #[arg(
        long,
        value_name = "ADDR[,ADDR...]",
        conflicts_with = "server_bin",
        value_parser = parse_addr,
        value_delimiter = ','
    )]
    addr: Vec<SocketAddr>,
    /// With --addr: the server's process id, to report its memory.
    #[arg(long, value_name = "PID", requires = "addr")]
    server_pid: Option<u32>,
    /// Spawn the server keeping everything in memory (the default).
    #[arg(long, conflicts_with = "data_dir")]
    ephemeral: bool,
    /// Spawn the server durable, its journal in DIR/ixn-load-data (emptied before each run).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Speak TLS. With --server-bin, the spawned server gets a throwaway certificate made for
    /// the run; with --addr, give the authority of the server's certificate with --tls-ca.
    #[arg(long)]
    tls: bool,
    /// With --addr and --tls: CA certificates (PEM) the server's certificate chains to.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_ca: Option<PathBuf>,
    /// With --tls: the name the server's certificate carries (default localhost).
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    tls_name: String,
    #[command(flatten)]
    bounds: BoundArgs,
}

#[derive(Debug, Args)]
struct BoundArgs {
    /// Measure for this long (e.g. 10s, 500ms; default 5s unless --requests is given).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop once this many operations (requests, deliveries, client cycles) are measured.
    #[arg(long)]
    requests: Option<u64>,
    /// Run this long before measuring.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    warmup: Duration,
    /// Print one JSON object per run instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Load generator threads (1 = one event loop, as redis-benchmark).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// `HOST:PORT`: an IP address, or a name resolved now (the first address it has).
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    const HINT: &str = "give HOST:PORT, such as 127.0.0.1:7000, localhost:7000 or [::1]:7000";
    if let Ok(a) = text.parse() {
        return Ok(a);
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text:?} names no address; {HINT}")),
        Err(e) => Err(format!("{text:?}: {e}; {HINT}")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 10s, 500ms or 2m)"))
}

/// The active server among `addrs` (servers sharing a store): each is asked to register the
/// load's media server; a standby answers EventError NotActive, naming the active server (tried
/// next). Tries for up to 10 s (a takeover in progress).
async fn find_active(addrs: &[SocketAddr]) -> Result<SocketAddr, Error> {
    use ixn_codec::{ClientType, ErrorCode, MessageId, attr};
    let started = std::time::Instant::now();
    let mut last = String::from("nothing tried");
    let mut next: Option<SocketAddr> = None;
    loop {
        let order: Vec<SocketAddr> = next
            .take()
            .into_iter()
            .chain(addrs.iter().copied())
            .collect();
        for addr in order {
            let probe = async {
                let mut conn = wire::Conn::connect(addr, None).await?;
                conn.call(&wire::register("media", ClientType::MediaServer))
                    .await
            };
            match tokio::time::timeout(Duration::from_secs(3), probe).await {
                Ok(Ok(reply)) if reply.id == MessageId::EVENT_ACK => return Ok(addr),
                Ok(Ok(reply))
                    if reply.attrs.get_int(attr::ERROR_CODE)
                        == Some(ErrorCode::NotActive.to_int()) =>
                {
                    last = format!("{addr} stands by");
                    if let Some(active) = reply
                        .attrs
                        .get_str(attr::ACTIVE_SERVER)
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                        .filter(|a| *a != addr)
                    {
                        next = Some(active);
                        break;
                    }
                }
                Ok(Ok(reply)) => {
                    return Err(Error::Setup(format!(
                        "{addr} refused the load's media server: {reply:?}; start the servers with `ixn-load config`'s configuration"
                    )));
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("{addr}: no answer within 3 s"),
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(Error::Setup(format!(
                "no active server among the --addr list within 10 s (last: {last})"
            )));
        }
        if next.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn setup(common: &Common) -> Result<Setup, Error> {
    if common.tls && !common.addr.is_empty() {
        let Some(ca) = &common.tls_ca else {
            return Err(Error::Setup(
                "--tls with --addr needs --tls-ca FILE: the authority of the server's certificate"
                    .into(),
            ));
        };
        wire::use_tls(ca, &common.tls_name)?;
    }
    let spawn = match (common.addr.as_slice(), &common.server_bin) {
        ([addr], _) => target::Spawn::Addr {
            addr: *addr,
            pid: common.server_pid,
            web: None,
        },
        ([_, _, ..], _) => target::Spawn::Addr {
            addr: find_active(&common.addr).await?,
            pid: common.server_pid,
            web: None,
        },
        ([], Some(bin)) => target::Spawn::Bin {
            bin: bin.clone(),
            data_dir: common.data_dir.as_ref().map(|d| d.join(RUN_DATA)),
            tls: common.tls.then(throwaway_pki).transpose()?,
        },
        ([], None) => {
            return Err(Error::Setup(
                "give --server-bin PATH (spawn a server) or --addr ADDR (load a running one)"
                    .into(),
            ));
        }
    };
    Ok(Setup {
        spawn,
        bounds: bounds(&common.bounds),
    })
}

/// The throwaway certificate and key of [`throwaway_pki`], removed when ixn-load ends.
static PKI: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();

/// A throwaway authority and a certificate for localhost and 127.0.0.1, for a spawned
/// server's `--tls-cert` and `--tls-key`; load connections trust the authority.
fn throwaway_pki() -> Result<(PathBuf, PathBuf), Error> {
    use ixn_tls::test_pki::Authority;
    // One per process: load connections trust the first authority made.
    if let Some(files) = PKI.get() {
        return Ok(files.clone());
    }
    let dir = std::env::temp_dir().join(format!("ixn-load-tls-{}", std::process::id()));
    let fail = |e: &dyn std::fmt::Display| Error::Setup(format!("TLS certificates: {e}"));
    std::fs::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let ca = Authority::new("ixn-load throwaway CA").map_err(|e| fail(&e))?;
    let ca_path = dir.join("ca.crt");
    ca.write(&ca_path).map_err(|e| fail(&e))?;
    let files = ca
        .server(&["localhost", "127.0.0.1"])
        .map_err(|e| fail(&e))?
        .write(&dir, "server")
        .map_err(|e| fail(&e))?;
    wire::use_tls(&ca_path, "localhost")?;
    Ok(PKI.get_or_init(|| files).clone())
}

fn bounds(b: &BoundArgs) -> run::Bounds {
    run::Bounds {
        warmup: b.warmup,
        duration: b.duration,
        requests: b.requests,
        progress: !b.quiet && !b.json,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of connections need thousands of descriptors; a spawned server inherits this.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let threads = match &cli.cmd {
        Cmd::Rr(RrArgs { common, .. })
        | Cmd::Fanout(FanoutArgs { common, .. })
        | Cmd::Content { common, .. }
        | Cmd::Churn { common, .. }
        | Cmd::Cometd(CometdArgs { common, .. }) => common.bounds.threads,
        Cmd::Echo { bounds, .. } => bounds.threads,
        Cmd::Config { .. }
        | Cmd::CometdFirst { .. }
        | Cmd::Soak(_)
        | Cmd::SoakConfig
        | Cmd::Snapshot(_) => 1,
    };
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ixn-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(cli.cmd));
    drop(rt); // spawned servers are stopped before their certificates go
    if let Some((cert, _)) = PKI.get()
        && let Some(dir) = cert.parent()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    match result {
        Ok(()) => {
            let problems = report::PROBLEMS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if problems.is_empty() {
                return ExitCode::SUCCESS;
            }
            for p in problems.iter() {
                eprintln!("ixn-load: {p} (see the figures above; the server's log says why)");
            }
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("ixn-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> Result<(), Error> {
    match cmd {
        Cmd::Config {
            agents,
            connections,
        } => {
            print!("{}", target::config_toml(agents, connections)?);
            Ok(())
        }
        Cmd::SoakConfig => soak_config(),
        Cmd::Snapshot(a) => {
            snapshot::run(snapshot::Params {
                bin: a.server_bin,
                interactions: a.interactions.max(1),
                places: a.places as usize,
                samples: a.samples.max(1),
                others: a.others,
                postgres: a.postgres,
                json: a.json,
            })
            .await
        }
        Cmd::Soak(a) => soak_cmd(a).await,
        Cmd::Rr(args) => rr_cmd(args).await,
        Cmd::Cometd(args) => cometd_cmd(args).await,
        Cmd::CometdFirst {
            samples,
            transport,
            server_bin,
            http,
            json,
        } => {
            let target = match (server_bin, http) {
                (_, Some(addr)) => cometd::Target::Http(addr),
                (Some(bin), None) => cometd::Target::Bin(bin),
                (None, None) => {
                    return Err(Error::Setup("give --server-bin PATH or --http ADDR".into()));
                }
            };
            for t in transport {
                show(&cometd::run(&target, t, samples.max(1)).await?, json);
            }
            Ok(())
        }
        Cmd::Content {
            items,
            in_flight,
            common,
        } => {
            let s = setup(&common).await?;
            for &n in &items {
                clean(&common);
                let params = rr::Params {
                    kind: rr::Kind::Content,
                    connections: 1,
                    in_flight: in_flight.max(1),
                    items: n,
                    hog: 0,
                    hog_in_flight: 1,
                };
                show(&rr::run(&s, params).await?, common.bounds.json);
            }
            Ok(())
        }
        Cmd::Fanout(args) => fanout_cmd(args).await,
        Cmd::Churn {
            clients,
            concurrency,
            common,
        } => {
            let s = setup(&common).await?;
            for &k in &clients {
                clean(&common);
                let params = churn::Params {
                    clients: k.max(1),
                    concurrency,
                };
                show(&churn::run(&s, params).await?, common.bounds.json);
            }
            Ok(())
        }
        Cmd::Echo {
            connections,
            in_flight,
            bounds: b,
        } => {
            for &c in &connections {
                for &p in &in_flight {
                    show(&echo::run(bounds(&b), c.max(1), p.max(1)).await?, b.json);
                }
            }
            Ok(())
        }
    }
}

/// `ixn-load soak-config`.
fn soak_config() -> Result<(), Error> {
    let text = toml::to_string(&soak::config()?)
        .map_err(|e| Error::Setup(format!("cannot write the configuration as TOML: {e}")))?;
    print!(
        "# Generated by `ixn-load soak-config`: the configuration `ixn-load soak --addr` expects\n# (every agent's password is `{}`).\n\n{text}",
        target::WEB_PASSWORD
    );
    Ok(())
}

/// `ixn-load soak`.
async fn soak_cmd(a: SoakArgs) -> Result<(), Error> {
    soak::run(soak::Params {
        server_bin: a.server_bin,
        addr: a
            .addr
            .zip(a.http)
            .zip(a.server_pid)
            .map(|((n, w), p)| (n, w, p)),
        duration: a.duration,
        every: a.every,
        settle: a.settle,
        slice: a.slice,
        json: a.json,
        judge: !a.no_verdict,
    })
    .await
}

/// `ixn-load rr`.
async fn rr_cmd(args: RrArgs) -> Result<(), Error> {
    let RrArgs {
        kind,
        connections,
        in_flight,
        items,
        redis,
        hog,
        hog_in_flight,
        common,
    } = args;
    if let Some(r) = redis {
        if kind != rr::Kind::Ping {
            return Err(Error::Setup(
                "--redis goes with `rr ping` only (Redis has no workbins)".into(),
            ));
        }
        let s = Setup {
            spawn: target::Spawn::Addr {
                addr: r,
                pid: None,
                web: None,
            },
            bounds: bounds(&common.bounds),
        };
        for &c in &connections {
            for &p in &in_flight {
                let report = rr::run_redis(&s, r, c.max(1), p.max(1)).await?;
                show(&report, common.bounds.json);
            }
        }
        return Ok(());
    }
    let s = setup(&common).await?;
    for &c in &connections {
        for &p in &in_flight {
            clean(&common);
            let params = rr::Params {
                kind,
                connections: c.max(1),
                in_flight: p.max(1),
                items,
                hog,
                hog_in_flight: hog_in_flight.max(1),
            };
            show(&rr::run(&s, params).await?, common.bounds.json);
        }
    }
    Ok(())
}

/// `ixn-load cometd`.
async fn cometd_cmd(args: CometdArgs) -> Result<(), Error> {
    let CometdArgs {
        sessions,
        transport,
        in_flight,
        rate,
        sample_every,
        faye,
        size,
        api,
        common,
    } = args;
    let side = match faye {
        Some(script) => cometd_fanout::Side::Faye(script),
        None => cometd_fanout::Side::Ixn,
    };
    let s = match side {
        cometd_fanout::Side::Ixn => setup(&common).await?,
        cometd_fanout::Side::Faye(_) => Setup {
            spawn: target::Spawn::Addr {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                pid: None,
                web: None,
            },
            bounds: bounds(&common.bounds),
        },
    };
    let apis = match side {
        cometd_fanout::Side::Ixn => api,
        cometd_fanout::Side::Faye(_) => vec![cometd_fanout::Api::V2],
    };
    for &n in &sessions {
        for (&t, &a) in transport
            .iter()
            .flat_map(|t| apis.iter().map(move |a| (t, a)))
        {
            clean(&common);
            let params = cometd_fanout::Params {
                sessions: n.max(1),
                transport: t,
                in_flight: in_flight.max(1),
                rate,
                sample_every: sample_every.unwrap_or(if rate.is_some() { 1 } else { 8 }),
                size,
                api: a,
            };
            show(
                &cometd_fanout::run(&s, &side, params).await?,
                common.bounds.json,
            );
        }
    }
    Ok(())
}

/// `ixn-load fanout`.
async fn fanout_cmd(args: FanoutArgs) -> Result<(), Error> {
    let FanoutArgs {
        subscribers,
        in_flight,
        rate,
        sample_every,
        redis,
        size,
        common,
    } = args;
    let s = match redis {
        Some(_) => Setup {
            spawn: target::Spawn::Addr {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                pid: None,
                web: None,
            },
            bounds: bounds(&common.bounds),
        },
        None => setup(&common).await?,
    };
    for &n in &subscribers {
        clean(&common);
        let params = fanout::Params {
            subscribers: n.max(1),
            in_flight: in_flight.max(1),
            rate,
            sample_every: sample_every.unwrap_or(if rate.is_some() { 1 } else { 8 }),
        };
        let report = match redis {
            Some(r) => fanout::run_redis(&s, r, params, size as usize).await?,
            None => fanout::run(&s, params).await?,
        };
        show(&report, common.bounds.json);
    }
    Ok(())
}

/// The subdirectory of `--data-dir` that runs use (only it is ever removed).
const RUN_DATA: &str = "ixn-load-data";

/// A durable run starts on an empty journal.
fn clean(common: &Common) {
    if let (Some(dir), Some(_)) = (&common.data_dir, &common.server_bin) {
        let _ = std::fs::remove_dir_all(dir.join(RUN_DATA));
    }
}

fn show(report: &Report, json: bool) {
    use std::io::Write;
    if let Some(p) = report.problem() {
        report::problem(p);
    }
    // A closed stdout (`| head`) is not worth a panic.
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(out, "{}", report.to_json())
    } else {
        writeln!(out, "{}", report.to_table())
    };
}
