//! The ixn TCP server: accepts connections, runs each as a framed transport, and drives the
//! sans-IO engine (`ixn-core`) from one owner task.
//!
//! ```text
//!  socket --> reader task (decode) --\                                   /--> outbox --> writer task (encode) --> socket
//!  socket --> reader task (decode) ----> mpsc --> engine task (Engine) ---+--> outbox --> writer task (encode) --> socket
//!  socket --> reader task (decode) --/      (bounded)                      \--> outbox --> writer task (encode) --> socket
//! ```
//!
//! - Every connection has a bounded outbound queue ([`ixn_config::Limits::outbound_queue_messages`]
//!   and `outbound_queue_bytes`); a client that does not read and passes it is disconnected and
//!   logged, without delaying anyone else (the engine task never waits on a socket).
//! - The engine task queues every notification of a request on its other recipients before it
//!   queues the reply, so the ordering rule of spec section 6 holds across connections.
//! - Limits: `max_connections` (lowered to fit the open file limit; a connection past it gets
//!   EventError LimitExceeded and a close), `registration_timeout_secs` (until registration),
//!   `max_frame_len` and `max_kvlist_depth` (a malformed frame gets an EventError and a close),
//!   `max_partial_frame_bytes` and `frame_timeout_secs` (incomplete frames).
//! - Pacing: a connection whose replies pile up has its requests deferred and is not read; the
//!   web gateway's in-process link is never cut off (the engine task waits for it instead).
//! - If the engine task, the store, the web API or its link ends unexpectedly, [`serve`] returns
//!   an error: the process does not live on half-working.
//! - [`serve`] returns after `shutdown` completes and every connection has drained (bounded by the
//!   drain timeout) and closed.
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

mod compacting;
mod connection;
mod engine_task;
mod local;
mod outbox;
mod partial;

pub use compacting::{Compacting, DEFAULT_COMPACT_MIN_BYTES};
pub use engine_task::Fault;
pub use ixn_store::Store;
pub use local::{Delivery, LocalLink};

use connection::ConnSettings;
use ixn_codec::Codec;
use ixn_config::Config;
use ixn_core::{ConnId, Engine};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// Listen backlog: 10,000 clients connecting at once must not wait on SYN retries.
pub const LISTEN_BACKLOG: u32 = 4096;

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
    if restored.dropped > 0 {
        // Compacting now would erase them: refuse before touching the journal.
        let example = restored
            .warnings
            .iter()
            .find(|w| w.contains("dropped"))
            .cloned()
            .unwrap_or_default();
        return Err(Error::Unplaceable {
            count: restored.dropped,
            example,
        });
    }
    // Compacting also pins a new store's id-generator state.
    let snapshot = engine.snapshot();
    store.compact(&snapshot)?;
    let store = Compacting::new(store, &snapshot, DEFAULT_COMPACT_MIN_BYTES);
    engine.record_changes(true);
    Ok(Recovered {
        engine,
        store,
        restored,
        opened,
        elapsed: started.elapsed(),
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
            fault: None,
        }
    }
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

/// Refusals (error frame, then close) in progress at once; past it, a connection over the cap is
/// closed without one.
const MAX_REFUSING: usize = 64;

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
    let listen = |e| Error::Listen { addr, source: e };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(listen)?;
    socket.set_reuseaddr(true).map_err(listen)?;
    socket.bind(addr).map_err(listen)?;
    socket.listen(LISTEN_BACKLOG).map_err(listen)
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
    let limits = engine.config().limits;
    let engine_config = &Arc::clone(engine.config());
    let codec = Codec::new(ixn_codec::Limits {
        max_frame_len: limits.max_frame_len,
        max_depth: limits.max_kvlist_depth,
    });
    let (native_cap, http_cap) = connection_caps(
        limits.max_connections,
        options
            .http
            .as_ref()
            .map(|_| engine_config.http.max_connections),
    );
    if native_cap < limits.max_connections {
        warn!(
            max_connections = limits.max_connections,
            allowed = native_cap,
            "the open file limit allows fewer connections than max_connections; raise the hard limit (ulimit -Hn, LimitNOFILE=) to serve more"
        );
    }
    let (tx, rx) = mpsc::channel(4096);
    let failed = CancellationToken::new();
    let mut store_thread = None;
    let durability = store.map(|store| {
        let (to_store, batches) = std::sync::mpsc::channel();
        let (synced_tx, synced) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new()
            .name("ixn-store".into())
            .spawn(move || engine_task::store_thread(store, batches, synced_tx));
        match spawned {
            Ok(t) => store_thread = Some(t),
            Err(e) => error!(error = %e, "cannot start the store thread"),
        }
        engine_task::Durability { to_store, synced }
    });
    let mut engine_task = Some(tokio::spawn(engine_task::run(
        engine,
        codec,
        rx,
        durability,
        failed.clone(),
        options.fault,
    )));
    let settings = ConnSettings {
        codec,
        registration_timeout: Duration::from_secs(limits.registration_timeout_secs),
        drain_timeout: options.drain_timeout,
        max_messages: limits.outbound_queue_messages,
        max_bytes: limits.outbound_queue_bytes,
    };
    let partials = Arc::new(partial::Partials::new(
        limits.max_partial_frame_bytes,
        Duration::from_secs(limits.frame_timeout_secs),
    ));
    let permits = Arc::new(Semaphore::new(native_cap));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(Arc::clone(&partials).sweep(stop.clone()));
    let mut next_conn = 0u64;
    let mut options = options;
    // The web API and its link to the engine: if either ends before shutdown, the server stops.
    let mut web_task = None;
    let mut link_task = None;
    if let Some(http) = options.http.take() {
        next_conn += 1;
        let peer = http.local_addr()?;
        let (link, local) = local::open(
            ConnId(next_conn),
            peer,
            tx.clone(),
            limits.outbound_queue_messages,
            limits.outbound_queue_bytes,
        );
        link_task = Some(tokio::spawn(local));
        let config = Arc::clone(engine_config);
        let stopping = stop.clone();
        let link = ixn_gateway::Link {
            requests: link.requests,
            deliveries: link.deliveries,
        };
        web_task = Some(tokio::spawn(ixn_gateway::serve(
            http,
            config,
            link,
            http_cap,
            async move { stopping.cancelled().await },
        )));
    }
    tokio::pin!(shutdown);
    info!(addr = %listener.local_addr()?, max_connections = native_cap, "listening");
    let mut failure: Option<String> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            () = failed.cancelled() => break,
            ended = until_done(&mut engine_task) => {
                failure = Some(format!("the engine task ended unexpectedly: {}", ended_why(ended)));
                break;
            }
            ended = until_done(&mut web_task) => {
                failure = Some(match ended {
                    Ok(Ok(())) => "the web API stopped unexpectedly".to_owned(),
                    Ok(Err(e)) => format!("the web API failed: {e}"),
                    Err(e) => format!("the web API ended unexpectedly: {}", ended_why(Err::<(), _>(e))),
                });
                break;
            }
            ended = until_done(&mut link_task) => {
                failure = Some(match ended {
                    Ok(Ok(())) => "the web API's link to the engine closed".to_owned(),
                    Ok(Err(why)) => format!("the web API's link to the engine failed: {why}"),
                    Err(e) => format!("the web API's link to the engine ended unexpectedly: {}", ended_why(Err::<(), _>(e))),
                });
                break;
            }
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Typically out of file descriptors: back off rather than spin.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            warn!(%peer, max_connections = native_cap, "refusing connection: max_connections reached");
            if let Ok(slot) = Arc::clone(&refusing).try_acquire_owned() {
                tracker.spawn(async move {
                    refuse_full(stream, codec, native_cap).await;
                    drop(slot);
                });
            }
            continue;
        };
        next_conn += 1;
        let conn = ConnId(next_conn);
        let (tx, stop, partials) = (tx.clone(), stop.clone(), Arc::clone(&partials));
        tracker.spawn(async move {
            connection::serve(stream, conn, peer, tx, settings, partials, stop).await;
            drop(permit);
        });
    }
    if let Some(why) = &failure {
        error!("{why}; stopping the server");
    }
    info!(
        connections = tracker.len(),
        "shutting down: draining connections"
    );
    drop(listener);
    stop.cancel();
    let mut web_error = None;
    if let Some(web) = web_task.take()
        && let Ok(Err(e)) = web.await
    {
        web_error = Some(e);
    }
    if let Some(link) = link_task.take() {
        let _ = link.await;
    }
    tracker.close();
    tracker.wait().await;
    drop(tx);
    if let Some(engine) = engine_task.take() {
        let _ = engine.await;
    }
    // The store (and its lock on the data directory) is released before this returns, so that
    // the directory can be opened again at once.
    if let Some(t) = store_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    if failed.is_cancelled() {
        error!("stopped after a store failure");
        return Err(Error::StoreFailed);
    }
    if let Some(why) = failure {
        return Err(Error::Failed(why));
    }
    if let Some(e) = web_error {
        return Err(Error::Gateway(e));
    }
    info!("stopped");
    Ok(())
}

/// Completes when the task completes (never without one), and forgets it.
async fn until_done<T>(
    task: &mut Option<tokio::task::JoinHandle<T>>,
) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => {
            let ended = t.await;
            *task = None;
            ended
        }
        None => std::future::pending().await,
    }
}

/// Why a task ended: its panic message, or that it returned.
fn ended_why<T>(ended: Result<T, tokio::task::JoinError>) -> String {
    match ended {
        Ok(_) => "it returned".to_owned(),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            format!("panicked: {text}")
        }
        Err(e) => e.to_string(),
    }
}

/// Tells a connection past `max_connections` that the server is full (EventError
/// LimitExceeded), then closes it. What the peer sent meanwhile is read and dropped for a
/// moment, so that the close does not reset the connection before the error is read.
async fn refuse_full(stream: tokio::net::TcpStream, codec: Codec, cap: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let reply = ixn_codec::Message::new(ixn_codec::MessageId::EVENT_ERROR)
        .with(ixn_codec::attr::ERROR_CODE, ixn_codec::ErrorCode::LimitExceeded.to_int())
        .with(
            ixn_codec::attr::ERROR_DESCRIPTION,
            format!("the server is full: it serves at most {cap} connections (max_connections); try again later"),
        );
    let Ok(frame) = codec.encode_to_bytes(&reply) else {
        return;
    };
    let mut stream = stream;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if stream.write_all(&frame).await.is_err() {
            return;
        }
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}
