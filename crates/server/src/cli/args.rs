//! The command line of `ixn-server`: its options, and the parsers that turn their text into
//! values (each refusal names the option and says what to give instead).

use clap::{Parser, ValueEnum};
use ixn_config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
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
pub(crate) struct Args {
    /// Configuration file (TOML; `.json` for the same schema in JSON). Without it the server runs
    /// the built-in demo configuration (crates/config/demo.toml).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on: HOST:PORT, the host a name (localhost) or an IP address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000", value_parser = parse_addr)]
    pub(crate) listen: SocketAddr,
    /// Log level (error, warn, info, debug, trace, off) or comma-separated target=level
    /// directives such as `warn,ixn_server=debug`; RUST_LOG overrides it. Anything else is
    /// refused.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub(crate) log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub(crate) log_format: LogFormat,
    /// Directory of the durable store (created if missing). Every acknowledged change to an
    /// interaction is on disk there before the acknowledgement leaves.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ixn-data",
        conflicts_with = "ephemeral"
    )]
    pub(crate) data_dir: PathBuf,
    /// Compact the journal while running once it passes this size and twice the live state
    /// (compaction also runs at every start): bytes, or with a unit such as 64MiB or 100MB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub(crate) compact_at: u64,
    /// Keep everything in memory only (for tests and demos): a restart loses every interaction.
    #[arg(long)]
    pub(crate) ephemeral: bool,
    /// Where interactions are kept: `journal` (the data directory's journal, the default) or a
    /// PostgreSQL URL such as postgres://ixn:secret@db.example.com/ixn, which several servers
    /// may share: one is active, the others stand by and take over when it stops or dies.
    /// Overrides `[store]`.
    #[arg(long, value_name = "journal|URL", conflicts_with = "ephemeral")]
    pub(crate) store: Option<String>,
    /// With a shared store: the address (HOST:PORT) that standbys give clients for this server
    /// while it is active. Overrides `[store] advertise`; default: the --listen address.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) advertise: Option<String>,
    /// With a shared store: how long the active server may go without renewing its lease
    /// before a standby takes over (a frozen or cut-off server is replaced after about this
    /// long). Overrides `[store] lease_ms`; default 2s; at least 200ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_lease)]
    pub(crate) lease: Option<Duration>,
    /// Serve the web API (HTTP + CometD) on this address, or `off`. Default: `[http] listen`
    /// of the configuration (the demo configuration has 127.0.0.1:8080), else off.
    #[arg(long, value_name = "ADDR|off")]
    pub(crate) http: Option<String>,
    /// Serve the browser console at /console/ on the web API's listener (`on`), or not (`off`).
    /// Overrides `[http] console`; default on.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub(crate) console: Option<bool>,
    /// How long a closing connection may take to write what is queued (at shutdown too):
    /// seconds, or a duration such as 5s or 1500ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
    /// Check the configuration and the data directory's journal without starting (nothing is
    /// written, a running server's directory may be checked); print a summary; exit 0 when a
    /// start would succeed, 2 when it would not.
    #[arg(long)]
    pub(crate) check: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics on a listener of their own. Without
    /// it, they are at /metrics on the web API's listener (when the web API is on).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub(crate) metrics: Option<SocketAddr>,
    /// TLS on both listeners: the certificate chain (PEM). Overrides `[tls] cert`; needs
    /// --tls-key. The files are read again on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert. Overrides `[tls] key`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to (applications with
    /// `client_certificate = true`). Overrides `[tls] client_ca`.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_client_ca: Option<PathBuf>,
    /// With the journal: how long the engine polls for each sync's end before it sleeps, when
    /// replies wait for that sync and nothing else is to be done (0 to 10ms; 0 turns it off).
    /// Polling keeps the CPU from idling through the sync, which on a virtual machine makes the
    /// sync finish sooner, for CPU time that was idle. `auto` (the default): 500us, or 0 when a
    /// CPU quota (a container's) allows fewer CPUs than the process may run on.
    #[arg(long, value_name = "DURATION|auto", default_value = "auto", value_parser = parse_sync_poll)]
    pub(crate) sync_poll: SyncPoll,
    /// Threads that serve the connections and the web API (1 to 1024). Default: one per CPU
    /// this process may use. Fewer leave CPUs to other busy processes on the same machine (the
    /// store's threads are not counted).
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub(crate) workers: Option<usize>,
}

impl Args {
    /// The shared store's URL, when interactions are kept in PostgreSQL: `--store` over
    /// `[store]`.
    pub(crate) fn postgres(&self, config: &Config) -> Option<String> {
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

    /// The lease on a shared store: `--lease`, `[store] lease_ms`, or the default.
    pub(crate) fn lease(&self, config: &Config) -> Duration {
        self.lease.unwrap_or_else(|| {
            config
                .store
                .as_ref()
                .and_then(|s| s.lease_ms)
                .map_or(ixn_server::DEFAULT_LEASE, Duration::from_millis)
        })
    }

    /// The TLS files: the `--tls-*` options over `[tls]`.
    pub(crate) fn tls_files(
        &self,
        config: &Config,
    ) -> Result<Option<ixn_tls::ServerFiles>, String> {
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
pub(crate) enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// `HOST:PORT` as a socket address: an IP address, or a name resolved now (the first address
/// it has).
pub(crate) fn parse_addr(text: &str) -> Result<SocketAddr, String> {
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

/// `on` or `off`.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?}: write on or off")),
    }
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

/// `--lease`: a duration of at least 200 ms (a shorter lease could lapse between renewals).
fn parse_lease(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(200) {
        return Err(format!(
            "{text:?} is too short for a lease: give at least 200ms (default 2s)"
        ));
    }
    Ok(d)
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
pub(crate) enum SyncPoll {
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

/// A log filter from `--log-level` or RUST_LOG: a level, or comma-separated `target=level`
/// directives. A bare word that is not a level is refused: `tracing` would read it as a target
/// name and log nothing at all.
pub(crate) fn log_filter(text: &str) -> Result<EnvFilter, String> {
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
