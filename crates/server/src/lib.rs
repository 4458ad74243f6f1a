//! The ixn workbin server, assembled: the TCP side (`ixn-tcp`: listener, connections, the
//! engine task), the web API (`ixn-gateway`, on an in-process link of codec types) and the store
//! (`ixn-store`: the journal, compacting itself). The `ixn-server` binary is a thin command line
//! over this library; tests and embedders use it the same way.
//!
//! - If the engine task, the store, the web API or its link ends unexpectedly, [`serve_engine`]
//!   returns an error: the process does not live on half-working.
//! - [`serve`] returns after `shutdown` completes and every connection has drained (bounded by
//!   the drain timeout) and closed.
//! - At start the process raises its open-file limit and sizes the connection caps to fit it
//!   ([`connection_caps`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ixn_server::Error> {
//! let config = ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo.toml").unwrap();
//! let listener = ixn_server::bind("127.0.0.1:0".parse().unwrap()).await?;
//! println!("listening on {}", listener.local_addr()?);
//! ixn_server::serve(listener, std::sync::Arc::new(config), ixn_server::Options::default(), std::future::pending()).await
//! # }
//! ```

#![warn(missing_docs)]

pub use ixn_store::{Compacting, DEFAULT_COMPACT_MIN_BYTES, Store};
pub use shared::{DEFAULT_LEASE, SharedStore};

mod serving;
mod shared;
pub use ixn_tcp::{Fault, LISTEN_BACKLOG};

use ixn_config::Config;
use ixn_core::Engine;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

/// The server's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be set up.
    #[error(
        "cannot listen on {addr}: {source} (is another server using it? choose another address with --listen)"
    )]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Another I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory could not be opened or read.
    #[error(transparent)]
    Store(#[from] ixn_store::Error),
    /// Stored interactions that the configuration can no longer hold (their tenant has no queue
    /// left): starting would drop them, so the server refuses.
    #[error(
        "{count} stored interactions cannot be placed in this configuration, for example: {example}; restore the configuration they were stored under (or give their tenant a queue), or move the data directory away to start empty"
    )]
    Unplaceable {
        /// How many.
        count: usize,
        /// The first one's warning.
        example: String,
    },
    /// The TLS files could not be used.
    #[error("TLS: {0}; fix the file, or the [tls] section or --tls-* options that name it")]
    Tls(#[from] ixn_tls::Error),
    /// Applications must present client certificates, but no authority is configured to
    /// verify them.
    #[error(
        "application {0:?} has client_certificate = true, but no client certificate can be verified: set [tls] client_ca (or --tls-client-ca) to the authority that signs them"
    )]
    NoClientCa(String),
    /// The PostgreSQL store could not be opened or read.
    #[error(transparent)]
    Postgres(#[from] ixn_pgstore::Error),
    /// The web API could not start or failed.
    #[error(transparent)]
    Gateway(#[from] ixn_gateway::Error),
    /// The store failed while serving; the server stopped acknowledging and shut down.
    #[error("the store failed while serving (see the log); stopped")]
    StoreFailed,
    /// A part the server cannot run without ended unexpectedly (the engine task, the web API
    /// or its link to the engine); the server stopped rather than serve half-working.
    #[error("{0}; the server stopped (a supervisor should restart it)")]
    Failed(String),
}

impl Error {
    /// Whether only a change by a person cures this (a port in use, a configuration or
    /// certificate that does not fit, stored interactions the configuration cannot hold, a
    /// database user without the privileges it needs): the binary then exits 2, so that a
    /// supervisor does not restart into it.
    pub fn needs_a_fix(&self) -> bool {
        match self {
            Self::Listen { .. } | Self::Unplaceable { .. } | Self::Tls(_) | Self::NoClientCa(_) => {
                true
            }
            Self::Postgres(e) => e.needs_a_fix(),
            Self::Gateway(e) => matches!(
                e,
                ixn_gateway::Error::Listen { .. } | ixn_gateway::Error::Config(_)
            ),
            _ => false,
        }
    }
}

/// An engine rebuilt from a data directory, and the store to keep it durable.
#[derive(Debug)]
pub struct Recovered {
    /// The engine, holding every stored interaction, recording changes.
    pub engine: Engine,
    /// The journal (already compacted to the recovered state), wrapped so that it compacts
    /// itself again whenever it grows past twice the live state (and 64 MiB).
    pub store: Compacting<ixn_store::Journal>,
    /// What the engine made of the stored changes.
    pub restored: ixn_core::durable::Restored,
    /// What the journal held.
    pub opened: ixn_store::Opened,
    /// How long recovery took.
    pub elapsed: Duration,
}

/// Opens (or creates) the journal in `dir`, rebuilds an engine from it and compacts the journal
/// to the recovered state. A torn tail is cut off and reported in [`Recovered::opened`];
/// corruption elsewhere is an error naming the file and offset.
pub fn recover(dir: &std::path::Path, config: Arc<Config>, seed: u64) -> Result<Recovered, Error> {
    use ixn_store::Store as _;
    let started = std::time::Instant::now();
    let mut engine = Engine::new(config, seed);
    let mut restored = ixn_core::durable::Restored::default();
    let (mut store, opened) = ixn_store::Journal::open_with(dir, &mut |change| {
        engine.restore_one(change, &mut restored)
    })?;
    restored.interactions = engine.stats().interactions;
    // Compacting now would erase them: refuse before touching the journal.
    refuse_dropped(&restored)?;
    // Compacting also pins a new store's id-generator state.
    let snapshot = engine.snapshot();
    store.compact(&snapshot)?;
    let store = Compacting::new(store, &snapshot, DEFAULT_COMPACT_MIN_BYTES);
    engine.record_changes(true);
    // The journal (through its shadow) applies Moves: a move costs its id and new location.
    engine.record_moves(true);
    Ok(Recovered {
        engine,
        store,
        restored,
        opened,
        elapsed: started.elapsed(),
    })
}

/// Refuses to serve stored interactions that the configuration can no longer place (a start
/// would drop them): [`Error::Unplaceable`] with the first one's warning.
fn refuse_dropped(restored: &ixn_core::durable::Restored) -> Result<(), Error> {
    if restored.dropped == 0 {
        return Ok(());
    }
    let example = restored
        .warnings
        .iter()
        .find(|w| w.contains("dropped"))
        .cloned()
        .unwrap_or_default();
    Err(Error::Unplaceable {
        count: restored.dropped,
        example,
    })
}

/// What [`check`] found in a data directory.
#[derive(Debug)]
pub struct Checked {
    /// The live journal file, if the directory holds one.
    pub journal: Option<std::path::PathBuf>,
    /// What reading it found (records, bytes, a torn tail).
    pub opened: ixn_store::Opened,
    /// What the engine made of it.
    pub restored: ixn_core::durable::Restored,
}

/// Reads the data directory's journal as a start would, with `config`, without locking or
/// changing anything (a running server may hold the directory): corruption, and stored
/// interactions the configuration can no longer hold, are errors, as they would stop a start.
pub fn check(dir: &std::path::Path, config: Arc<Config>) -> Result<Checked, Error> {
    let mut engine = Engine::new(config, 1);
    let mut restored = ixn_core::durable::Restored::default();
    let Some(path) = ixn_store::live_journal(dir)? else {
        return Ok(Checked {
            journal: None,
            opened: ixn_store::Opened::default(),
            restored,
        });
    };
    let bytes = std::fs::read(&path).map_err(|source| {
        Error::Store(ixn_store::Error::Io {
            path: path.clone(),
            source,
        })
    })?;
    let opened = ixn_store::read_journal(&path, &bytes, &mut |change| {
        engine.restore_one(change, &mut restored)
    })?;
    restored.interactions = engine.stats().interactions;
    refuse_dropped(&restored)?;
    Ok(Checked {
        journal: Some(path),
        opened,
        restored,
    })
}

/// Settings that are not part of the configuration file.
#[derive(Debug)]
pub struct Options {
    /// How long a closing connection may take to write what is queued.
    pub drain_timeout: Duration,
    /// The engine's seed; `None` draws a random one.
    pub seed: Option<u64>,
    /// Serve the web API (HTTP + CometD, `ixn-gateway`) on this listener (see [`bind_http`]).
    pub http: Option<TcpListener>,
    /// TLS on both listeners (see [`tls`]); read again on SIGHUP.
    pub tls: Option<ixn_tls::Acceptor>,
    /// Serve `GET /metrics` on this listener of its own (`--metrics`); without it, metrics are
    /// served on the web API's listener when there is one.
    pub metrics: Option<TcpListener>,
    /// How long the engine task polls for a journal sync instead of sleeping (`--sync-poll`;
    /// see [`ixn_tcp::Durability::polling`]). Not used with a shared store.
    pub sync_poll: Duration,
    /// A fault to inject, for tests of failure handling (`IXN_FAULT` in the binary).
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(5),
            seed: None,
            http: None,
            tls: None,
            metrics: None,
            sync_poll: ixn_tcp::sync_poll_for_this_machine(),
            fault: None,
        }
    }
}

/// The TLS identity from `files` (`[tls]` or the `--tls-*` options), checked against what the
/// configuration's applications need: an application that must present a client certificate
/// needs an authority to verify it.
pub fn tls(
    files: Option<ixn_tls::ServerFiles>,
    config: &Config,
) -> Result<Option<ixn_tls::Acceptor>, Error> {
    let verifies = files.as_ref().is_some_and(|f| f.client_ca.is_some());
    if !verifies
        && let Some(((name, _), _)) = config
            .applications
            .iter()
            .find(|(_, a)| a.client_certificate)
    {
        return Err(Error::NoClientCa(name.clone()));
    }
    Ok(files.map(ixn_tls::Acceptor::load).transpose()?)
}

/// Warns about a listener on a non-loopback address that lets applications register without
/// authentication, or takes passwords without TLS.
pub(crate) fn warn_exposure(addr: SocketAddr, config: &Config, tls: bool) {
    if addr.ip().is_loopback() {
        return;
    }
    let mut open: Vec<&str> = config
        .applications
        .iter()
        .filter(|(_, a)| !a.required())
        .map(|((name, _), _)| name.as_str())
        .collect();
    open.sort_unstable();
    if !open.is_empty() {
        warn!(
            %addr,
            applications = %open.join(" "),
            "the native listener is reachable from other machines and these applications register without authentication; give them a password_hash or client_certificate = true (docs/operations.md, security)"
        );
    }
    if !tls {
        warn!(
            %addr,
            "the server listens on a non-loopback address without TLS: passwords (web sign-ins, application passwords) cross the network in clear; configure [tls]"
        );
    }
}

/// Reads the TLS files again at each SIGHUP, until `stop`. A failed reload keeps the previous
/// identity and logs which file is wrong. Without TLS, SIGHUP is logged and ignored (it must
/// not stop the server, as its default action would).
pub(crate) fn reload_on_sighup(
    tls: Option<ixn_tls::Acceptor>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hangups.recv() => if got.is_none() { return },
                () = stop.cancelled() => return,
            }
            let Some(tls) = &tls else {
                info!("SIGHUP: nothing to reload (no TLS configured)");
                continue;
            };
            match tls.reload() {
                Ok(()) => {
                    info!(cert = %tls.files().cert.display(), "SIGHUP: TLS certificate and key reloaded; new connections use them")
                }
                Err(e) => {
                    error!(error = %e, "SIGHUP: TLS reload failed; keeping the previous certificate")
                }
            }
        }
    }))
}

/// Descriptors kept for everything but connections: the store (journal, compaction's new file,
/// the directory), listeners, the runtime, standard streams, connections being refused.
pub const FD_RESERVE: u64 = 128;

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The connection caps that fit the open file limit: `(native, http)`. Each connection takes
/// one descriptor; [`FD_RESERVE`] stay free for the store and the rest, so that the store never
/// fails for want of one. The web API gets at most a quarter of what is left.
pub fn connection_caps(max_connections: usize, http_connections: Option<usize>) -> (usize, usize) {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft);
    let budget = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    let http = http_connections.map_or(0, |h| h.min(budget / 4).max(1));
    let native = max_connections.min(budget.saturating_sub(http)).max(1);
    (native, http)
}

/// A server started with [`start`]: stops when [`Started::shutdown`] is called or when dropped.
#[derive(Debug)]
pub struct Started {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), Error>>>,
}

impl Started {
    /// Stops accepting, drains and closes every connection, and waits until the server is done.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.done.take() {
            Some(done) => done.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `addr` and serves on the current runtime in a background task (for tests, embedding
/// and `ixn conformance`). Ephemeral: nothing is stored.
pub async fn start(
    addr: SocketAddr,
    config: Arc<Config>,
    options: Options,
) -> Result<Started, Error> {
    let seed = options.seed.unwrap_or_else(random_seed);
    start_engine(addr, Engine::new(config, seed), None, options).await
}

/// Like [`start`], with a prepared engine and, for durability, its store (see [`recover`]).
pub async fn start_engine(
    addr: SocketAddr,
    engine: Engine,
    store: Option<Box<dyn Store>>,
    options: Options,
) -> Result<Started, Error> {
    let listener = bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve_engine(listener, engine, store, options, async move {
        let _ = stopped.await;
    }));
    Ok(Started {
        addr,
        stop: Some(stop),
        done: Some(done),
    })
}

/// Like [`start`], as one of the servers sharing the PostgreSQL store `shared` (see
/// [`serve_shared`]): it listens at once, standing by until it holds the store.
pub async fn start_shared(
    addr: SocketAddr,
    config: Arc<Config>,
    shared: SharedStore,
    options: Options,
) -> Result<Started, Error> {
    let listener = bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = SharedStore {
        advertised: if shared.advertised.is_empty() {
            addr.to_string()
        } else {
            shared.advertised
        },
        ..shared
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve_shared(
        listener,
        config,
        shared,
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Started {
        addr,
        stop: Some(stop),
        done: Some(done),
    })
}

fn random_seed() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

/// Binds the web API's listener, after checking that `config` can run it (its `[http]`
/// applications exist), so that a mistake stops the start with a message naming the key.
pub async fn bind_http(addr: SocketAddr, config: &Config) -> Result<TcpListener, Error> {
    ixn_gateway::check_config(config)?;
    Ok(ixn_gateway::bind(addr).await?)
}

/// Binds a listening socket with [`LISTEN_BACKLOG`] and `SO_REUSEADDR`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    ixn_tcp::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// Serves `listener` with `config` until `shutdown` completes; then stops accepting, lets every
/// connection write what is queued (bounded by [`Options::drain_timeout`]), closes them and
/// returns. Ephemeral: nothing is stored.
pub async fn serve(
    listener: TcpListener,
    config: Arc<Config>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let seed = options.seed.unwrap_or_else(random_seed);
    serve_engine(listener, Engine::new(config, seed), None, options, shutdown).await
}

/// Like [`serve`], with a prepared engine and, for durability, its store: then no output leaves
/// before the changes that precede it are synced (group commit), and a store failure stops the
/// server with [`Error::StoreFailed`].
pub async fn serve_engine(
    listener: TcpListener,
    engine: Engine,
    store: Option<Box<dyn Store>>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    serving::serve_mode(
        listener,
        serving::Mode::Single { engine, store },
        options,
        shutdown,
    )
    .await
}

/// Who this server is for `holder` in the shared store: host name and process id.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host} pid {}", std::process::id())
}

/// Serves `listener` as one of several servers sharing the PostgreSQL store `shared`
/// (migrating its schema first): standing by (every request answered with EventError
/// NotActive naming the active server, `/health/ready` 503) until this server takes the store
/// over, then active until it stops, loses the store or is replaced; then standing by again.
/// See docs/scaling.md.
pub async fn serve_shared(
    listener: TcpListener,
    config: Arc<Config>,
    shared: SharedStore,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let lead = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            ixn_pgstore::Leadership::connect(
                &shared.url,
                &holder(),
                &shared.advertised,
                shared.lease,
            )
        })
        .await
        .map_err(|e| Error::Failed(format!("connecting to the shared store: {e}")))??
        .0
    };
    serving::serve_mode(
        listener,
        serving::Mode::Shared {
            config,
            shared,
            lead,
        },
        options,
        shutdown,
    )
    .await
}
