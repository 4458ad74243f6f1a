//! `ixn-server`: runs the workbin server.

// A command-line program: speaking to its user on stdout and stderr is its job.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use clap::{Parser, ValueEnum};
use ixn_config::{Config, DEMO_TOML};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// The ixn workbin server: clients register, log agents in, subscribe to workbins and move
/// interactions; every request gets EventAck or EventError, every change is pushed to
/// subscribers.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  ixn-server                                      the demo configuration, journal in ./ixn-data\n  ixn-server --config site.toml --data-dir /var/lib/ixn\n  ixn-server --ephemeral --listen localhost:7001 --http off\n  ixn-server --check --config site.toml --data-dir /var/lib/ixn\n  ixn-server --store postgres://ixn@db/ixn --listen 0.0.0.0:7000 --advertise ixn1.example.com:7000"
)]
struct Args {
    /// Configuration file (TOML; `.json` for the same schema in JSON). Without it the server runs
    /// the built-in demo configuration (crates/config/demo.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on: HOST:PORT, the host a name (localhost) or an IP address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000", value_parser = parse_addr)]
    listen: SocketAddr,
    /// Log level (error, warn, info, debug, trace, off) or comma-separated target=level
    /// directives such as `warn,ixn_server=debug`; RUST_LOG overrides it. Anything else is
    /// refused.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Directory of the durable store (created if missing). Every acknowledged change to an
    /// interaction is on disk there before the acknowledgement leaves.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ixn-data",
        conflicts_with = "ephemeral"
    )]
    data_dir: PathBuf,
    /// Compact the journal while running once it passes this size and twice the live state
    /// (compaction also runs at every start): bytes, or with a unit such as 64MiB or 100MB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    compact_at: u64,
    /// Keep everything in memory only (for tests and demos): a restart loses every interaction.
    #[arg(long)]
    ephemeral: bool,
    /// Where interactions are kept: `journal` (the data directory's journal, the default) or a
    /// PostgreSQL URL such as postgres://ixn:secret@db.example.com/ixn, which several servers
    /// may share: one is active, the others stand by and take over when it stops or dies.
    /// Overrides `[store]`.
    #[arg(long, value_name = "journal|URL", conflicts_with = "ephemeral")]
    store: Option<String>,
    /// With a shared store: the address (HOST:PORT) that standbys give clients for this server
    /// while it is active. Overrides `[store] advertise`; default: the --listen address.
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Serve the web API (HTTP + CometD) on this address, or `off`. Default: `[http] listen`
    /// of the configuration (the demo configuration has 127.0.0.1:8080), else off.
    #[arg(long, value_name = "ADDR|off")]
    http: Option<String>,
    /// How long a closing connection may take to write what is queued (at shutdown too):
    /// seconds, or a duration such as 5s or 1500ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Check the configuration and the data directory's journal without starting (nothing is
    /// written, a running server's directory may be checked); print a summary; exit 0 when a
    /// start would succeed, 2 when it would not.
    #[arg(long)]
    check: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics on a listener of their own. Without
    /// it, they are at /metrics on the web API's listener (when the web API is on).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    metrics: Option<SocketAddr>,
    /// TLS on both listeners: the certificate chain (PEM). Overrides `[tls] cert`; needs
    /// --tls-key. The files are read again on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert. Overrides `[tls] key`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to (applications with
    /// `client_certificate = true`). Overrides `[tls] client_ca`.
    #[arg(long, value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// With the journal: how long the engine polls for each sync's end before it sleeps, when
    /// replies wait for that sync and nothing else is to be done (0 to 10ms; 0 turns it off).
    /// Polling keeps the CPU from idling through the sync, which on a virtual machine makes the
    /// sync finish sooner, for CPU time that was idle. `auto` (the default): 500us, or 0 when a
    /// CPU quota (a container's) allows fewer CPUs than the process may run on.
    #[arg(long, value_name = "DURATION|auto", default_value = "auto", value_parser = parse_sync_poll)]
    sync_poll: SyncPoll,
    /// Threads that serve the connections and the web API (1 to 1024). Default: one per CPU
    /// this process may use. Fewer leave CPUs to other busy processes on the same machine (the
    /// store's threads are not counted).
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    workers: Option<usize>,
}

impl Args {
    /// The shared store's URL, when interactions are kept in PostgreSQL: `--store` over
    /// `[store]`.
    fn postgres(&self, config: &Config) -> Option<String> {
        match self.store.as_deref() {
            Some("journal") => None,
            Some(url) => Some(url.to_owned()),
            None => config
                .store
                .as_ref()
                .filter(|s| s.kind == ixn_config::StoreKind::Postgres)
                .and_then(|s| s.url.clone()),
        }
    }

    /// The TLS files: the `--tls-*` options over `[tls]`.
    fn tls_files(&self, config: &Config) -> Result<Option<ixn_tls::ServerFiles>, String> {
        let from_config = config.tls.as_ref();
        let cert = self
            .tls_cert
            .clone()
            .or_else(|| from_config.map(|t| t.cert.clone()));
        let key = self
            .tls_key
            .clone()
            .or_else(|| from_config.map(|t| t.key.clone()));
        let client_ca = self
            .tls_client_ca
            .clone()
            .or_else(|| from_config.and_then(|t| t.client_ca.clone()));
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(ixn_tls::ServerFiles {
                cert,
                key,
                client_ca,
            })),
            _ if client_ca.is_some() => Err(
                "--tls-client-ca needs a server certificate too: give --tls-cert and --tls-key (or [tls] in the configuration)"
                    .to_owned(),
            ),
            _ => Ok(None),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// `HOST:PORT` as a socket address: an IP address, or a name resolved now (the first address
/// it has).
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

/// A size in bytes: a number, or a number and a unit: B, kB, MB, GB (powers of 1000), KiB,
/// MiB, GiB (powers of 1024); K, M, G are taken as KiB, MiB, GiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write bytes, or e.g. 64MiB or 100MB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use B, kB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// A duration: seconds (5, 0.5), or with units (5s, 1500ms, 1m).
fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?}: {e}; write seconds, or e.g. 5s or 1500ms"))
}

/// Most `--workers`: more threads than this only cost memory and scheduling.
const MAX_WORKERS: usize = 1024;

/// `--workers`: a count of threads, 1 to [`MAX_WORKERS`].
fn parse_workers(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number of threads; give 1 to {MAX_WORKERS} (or leave --workers out for one per CPU)"
        )),
    }
}

/// `--sync-poll`.
#[derive(Clone, Copy, Debug)]
enum SyncPoll {
    /// What suits this machine ([`ixn_tcp::sync_poll_for_this_machine`]).
    Auto,
    Window(Duration),
}

/// `--sync-poll`: `auto`, or a duration up to [`ixn_tcp::MAX_SYNC_POLL`].
fn parse_sync_poll(text: &str) -> Result<SyncPoll, String> {
    if text.trim() == "auto" {
        return Ok(SyncPoll::Auto);
    }
    let d = parse_duration(text)?;
    if d > ixn_tcp::MAX_SYNC_POLL {
        return Err(format!(
            "{text:?} is longer than a sync is worth polling for; give 0 (off) to 10ms, e.g. 500us"
        ));
    }
    Ok(SyncPoll::Window(d))
}

/// Writes a line to stderr, ignoring a failure (a full or closed stderr must not panic the
/// server, as `eprintln!` would).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A log filter from `--log-level` or RUST_LOG: a level, or comma-separated `target=level`
/// directives. A bare word that is not a level is refused: `tracing` would read it as a target
/// name and log nothing at all.
fn log_filter(text: &str) -> Result<EnvFilter, String> {
    const LEVELS: &str = "error, warn, info, debug, trace or off";
    if text.trim().is_empty() {
        return Err(format!("no level given; use one of {LEVELS}"));
    }
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if level
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_err()
        {
            return Err(format!(
                "{directive:?} is not a level ({LEVELS}) nor a target=level directive such as ixn_server=debug"
            ));
        }
    }
    EnvFilter::try_new(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => {
            log_filter(&env).map_err(|e| format!("bad RUST_LOG {env:?}: {e}"))
        }
        _ => log_filter(&args.log_level)
            .map_err(|e| format!("bad --log-level {:?}: {e}", args.log_level)),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            say!("ixn-server: {e}");
            return ExitCode::from(2);
        }
    };
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A failed log write is dropped: never reported on stderr (which may be the failing
    // writer) and never a panic.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_ansi(colour);
    match args.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let config = match &args.config {
        Some(path) => Config::load(path),
        None => Config::from_toml_str(DEMO_TOML, "built-in demo configuration"),
    };
    let config = match config {
        Ok(c) => Arc::new(c),
        Err(e) => {
            say!("ixn-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(store) = args.store.as_deref()
        && store != "journal"
        && !ixn_pgstore::is_url(store)
    {
        say!(
            "ixn-server: --store {store:?} is neither `journal` nor a PostgreSQL URL; give e.g. --store postgres://ixn:secret@localhost/ixn"
        );
        return ExitCode::from(2);
    }
    let tls = match args
        .tls_files(&config)
        .and_then(|f| ixn_server::tls(f, &config).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => {
            say!("ixn-server: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return check(&args, &config, tls.as_ref());
    }
    let http_addr = match args.http.as_deref() {
        Some("off") => None,
        Some(text) => match parse_addr(text) {
            Ok(a) => Some(a),
            Err(e) => {
                say!("ixn-server: bad --http: {e}, or off");
                return ExitCode::from(2);
            }
        },
        None => config.http_listen,
    };
    let postgres = if args.ephemeral {
        None
    } else {
        args.postgres(&config)
    };
    if postgres.is_none() && !args.ephemeral && args.data_dir.exists() && !args.data_dir.is_dir() {
        say!(
            "ixn-server: --data-dir {} is a file, not a directory; give a directory (it is created if missing), or --ephemeral",
            args.data_dir.display()
        );
        return ExitCode::from(2);
    }
    // Sockets and the store share the descriptor limit: take all the system allows, and size
    // the connection caps from it (ixn_server::serve_engine).
    match ixn_server::raise_fd_limit() {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    // Recovery first, so that "listening" means ready.
    let recovered = if args.ephemeral || postgres.is_some() {
        None
    } else {
        let seed =
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id());
        match ixn_server::recover(&args.data_dir, Arc::clone(&config), seed) {
            Ok(r) => {
                log_recovery(&r);
                Some(r)
            }
            Err(e) => {
                say!(
                    "ixn-server: cannot open the data directory {}: {e}",
                    args.data_dir.display()
                );
                return ExitCode::from(2);
            }
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say!("ixn-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        workers = runtime.metrics().num_workers(),
        "threads serving connections"
    );
    runtime.block_on(async move {
        let listener = match ixn_server::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                say!("ixn-server: {e}");
                return ExitCode::FAILURE;
            }
        };
                let addr = listener.local_addr().map_or(args.listen, |a| a);
        let http = match http_addr {
            Some(a) => match ixn_server::bind_http(a, &config).await {
                Ok(l) => Some(l),
                Err(e) => {
                    say!("ixn-server: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        let metrics = match args.metrics {
            Some(a) => match ixn_server::bind(a).await {
                Ok(l) => Some(l),
                Err(e) => {
                    say!("ixn-server: --metrics: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
        let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
        // The first stdout line is for programs (tests, `ixn conformance --server-bin`).
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
                let _ = writeln!(out, "ixn-server listening on {addr}");
        if let Some(h) = http_addr {
            let _ = writeln!(
                out,
                "web API listening on {scheme}://{h} (CometD at {scheme}://{h}{})",
                config.http.notifications_path
            );
        }
        if let Some(m) = metrics_addr {
            let _ = writeln!(out, "metrics at http://{m}/metrics");
        } else if let Some(h) = http_addr {
            let _ = writeln!(out, "metrics at {scheme}://{h}/metrics");
        }
        if args.config.is_none() {
            let _ = writeln!(
                out,
                "no --config given: running the built-in demo configuration (tenant 101; agents a1 a2 a3 sup1; \
                 places p1-p4; workbins Drafts Review Team Desk Floor; applications desk emailsrv router gws)\n\
                 try: ixn watch --addr {addr} --agent a1 --place p1 --workbin Drafts"
            );
        }
        let advertised = args
            .advertise
            .clone()
            .or_else(|| config.store.as_ref().and_then(|s| s.advertise.clone()))
            .unwrap_or_else(|| addr.to_string());
        let _ = writeln!(
            out,
            "{}",
            match (&recovered, &postgres) {
                (_, Some(url)) => format!(
                    "store: PostgreSQL {} (shared: active while this server holds the lease, else standing by; clients are sent to {advertised} while it is active)",
                    ixn_pgstore::redact(url)
                ),
                (Some(r), None) => format!(
                    "data directory: {} ({} interactions loaded)",
                    args.data_dir.display(),
                    r.restored.interactions
                ),
                (None, None) => "--ephemeral: nothing is stored; a restart loses every interaction".to_owned(),
            }
        );
        let _ = writeln!(
            out,
            "stop it with Ctrl-C or SIGTERM: connections are drained and closed, then it exits 0"
        );
        let _ = out.flush();
        drop(out);
                let options = ixn_server::Options {
            drain_timeout: args.drain_timeout,
            http,
            tls,
            metrics,
            fault: fault_from_env(),
            sync_poll: match args.sync_poll {
                SyncPoll::Auto => ixn_tcp::sync_poll_for_this_machine(),
                SyncPoll::Window(d) => d,
            },
            ..Default::default()
        };
        let served = match (recovered, postgres) {
            (_, Some(url)) => {
                let lease = config
                    .store
                    .as_ref()
                    .and_then(|s| s.lease_ms)
                    .map_or(ixn_server::DEFAULT_LEASE, Duration::from_millis);
                let shared = ixn_server::SharedStore {
                    url,
                    lease,
                    advertised,
                };
                ixn_server::serve_shared(listener, config, shared, options, shutdown_signal()).await
            }
            (Some(r), None) => {
                                let store: Box<dyn ixn_server::Store> = Box::new(r.store.with_min_bytes(args.compact_at));
                ixn_server::serve_engine(listener, r.engine, Some(store), options, shutdown_signal()).await
            }
            (None, None) => {
                tracing::warn!("--ephemeral: interactions are kept in memory only and are lost when the server stops");
                ixn_server::serve(listener, config, options, shutdown_signal()).await
            }
        };
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                say!("ixn-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `IXN_FAULT=engine-panic`: the engine task panics at its first message (tests use it to check
/// that the process exits non-zero rather than living on without an engine).
fn fault_from_env() -> Option<ixn_server::Fault> {
    match std::env::var("IXN_FAULT").ok()?.as_str() {
        "engine-panic" => Some(ixn_server::Fault::EnginePanic),
        other => {
            tracing::warn!(value = other, "unknown IXN_FAULT ignored");
            None
        }
    }
}

/// `--check`: the configuration (already valid once loaded), what the web API needs of it,
/// and the journal as a start would read it.
fn check(args: &Args, config: &Arc<Config>, tls: Option<&ixn_tls::Acceptor>) -> ExitCode {
    let origin = args
        .config
        .as_ref()
        .map_or("the built-in demo configuration".to_owned(), |p| {
            p.display().to_string()
        });
    println!(
        "configuration {origin}: ok (tenants {}, applications {}, agents {}, places {}, agent groups {}, place groups {}, workbin types {}, queues {})",
        config.tenants.len(),
        config.applications.len(),
        config.agents().len(),
        config.places().len(),
        config.agent_groups().len(),
        config.place_groups().len(),
        config.workbins().len(),
        config.queues().len()
    );
    let http = match args.http.as_deref() {
        Some("off") => None,
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                say!(
                    "ixn-server: bad --http {text:?}: {e}; give an address such as 127.0.0.1:8080, or off"
                );
                return ExitCode::from(2);
            }
        },
        None => config.http_listen,
    };
    match http {
        Some(addr) => match ixn_gateway::check_config(config) {
            Ok(()) => println!(
                "web API: would listen on {}://{addr}",
                if tls.is_some() { "https" } else { "http" }
            ),
            Err(e) => {
                say!("ixn-server: {e}");
                return ExitCode::from(2);
            }
        },
        None => println!("web API: off"),
    }
    match tls {
        Some(t) => println!(
            "TLS: certificate {} and key {} ok{}",
            t.files().cert.display(),
            t.files().key.display(),
            t.files()
                .client_ca
                .as_ref()
                .map_or(String::new(), |ca| format!(
                    "; client certificates verified against {}",
                    ca.display()
                ))
        ),
        None => println!("TLS: off"),
    }
    let authenticated: Vec<&str> = {
        let mut v: Vec<&str> = config
            .applications
            .iter()
            .filter(|(_, a)| a.required())
            .map(|((n, _), _)| n.as_str())
            .collect();
        v.sort_unstable();
        v
    };
    println!(
        "client authentication: {}",
        if authenticated.is_empty() {
            "none (every configured application registers without a password or certificate)"
                .to_owned()
        } else {
            format!("required of {}", authenticated.join(" "))
        }
    );
    if args.ephemeral {
        println!("data directory: none (--ephemeral)");
        return ExitCode::SUCCESS;
    }
    if let Some(url) = args.postgres(config) {
        let lease = config
            .store
            .as_ref()
            .and_then(|s| s.lease_ms)
            .map_or(ixn_server::DEFAULT_LEASE, Duration::from_millis);
        return match ixn_pgstore::inspect(&url, lease) {
            Ok(i) => {
                let redacted = ixn_pgstore::redact(&url);
                match (i.schema, &i.leader) {
                    (0, _) | (_, None) => println!(
                        "store: PostgreSQL {redacted}: reachable, no ixn schema yet (a start creates it)"
                    ),
                    (schema, Some(l)) => println!(
                        "store: PostgreSQL {redacted}: schema version {schema}, {} interactions stored; {}",
                        i.interactions,
                        if l.expired {
                            "no server active".to_owned()
                        } else {
                            format!(
                                "active server {} ({}, epoch {}): a start here would stand by",
                                l.advertised, l.holder, l.epoch
                            )
                        }
                    ),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                say!("ixn-server: the store would not open: {e}");
                ExitCode::from(2)
            }
        };
    }
    match ixn_server::check(&args.data_dir, Arc::clone(config)) {
        Ok(c) => {
            match &c.journal {
                None => println!(
                    "data directory {}: no journal yet (a start creates one)",
                    args.data_dir.display()
                ),
                Some(path) => {
                    println!(
                        "data directory {}: journal {}, {} records, {} bytes; {} interactions stored ({} would be put in a queue: their location is no longer configured)",
                        args.data_dir.display(),
                        path.display(),
                        c.opened.records,
                        c.opened.bytes,
                        c.restored.interactions,
                        c.restored.relocated
                    );
                    if let Some((offset, bytes)) = c.opened.torn_tail {
                        println!(
                            "  a torn write at byte {offset} ({bytes} bytes, never acknowledged) would be cut off"
                        );
                    }
                    for w in &c.restored.warnings {
                        println!("  {w}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!(
                "ixn-server: the data directory {} would not start: {e}",
                args.data_dir.display()
            );
            ExitCode::from(2)
        }
    }
}

fn log_recovery(r: &ixn_server::Recovered) {
    if let Some((offset, bytes)) = r.opened.torn_tail {
        tracing::warn!(
            file = %r.opened.path.display(),
            offset,
            bytes,
            "the journal ended with a torn write (never acknowledged); it was cut off"
        );
    }
    for w in &r.restored.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        file = %r.opened.path.display(),
        created = r.opened.created,
        records = r.opened.records,
        journal_bytes = r.opened.bytes,
        changes = r.restored.changes,
        interactions = r.restored.interactions,
        relocated = r.restored.relocated,
        dropped = r.restored.dropped,
        millis = r.elapsed.as_millis() as u64,
        "store loaded and compacted"
    );
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}
