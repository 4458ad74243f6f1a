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
//! - Limits: `max_connections` (more are refused and logged), `registration_timeout_secs`,
//!   `max_frame_len` and `max_kvlist_depth` (a malformed frame gets an EventError and a close).
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

pub use compacting::{Compacting, DEFAULT_COMPACT_MIN_BYTES};
pub use ixn_store::Store;

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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(5),
            seed: None,
            http: None,
        }
    }
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
    let (tx, rx) = mpsc::channel(4096);
    let failed = CancellationToken::new();
    let durability = store.map(|store| {
        let (to_store, batches) = std::sync::mpsc::channel();
        let (synced_tx, synced) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new()
            .name("ixn-store".into())
            .spawn(move || engine_task::store_thread(store, batches, synced_tx));
        if let Err(e) = spawned {
            error!(error = %e, "cannot start the store thread");
        }
        engine_task::Durability { to_store, synced }
    });
    let engine_task = tokio::spawn(engine_task::run(
        engine,
        codec,
        rx,
        durability,
        failed.clone(),
    ));
    let settings = ConnSettings {
        codec,
        registration_timeout: Duration::from_secs(limits.registration_timeout_secs),
        drain_timeout: options.drain_timeout,
        max_messages: limits.outbound_queue_messages,
        max_bytes: limits.outbound_queue_bytes,
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut next_conn = 0u64;
    let mut options = options;
    let web_failed = CancellationToken::new();
    let web_failure = Arc::new(std::sync::Mutex::new(None));
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
        tracker.spawn(local);
        let config = Arc::clone(engine_config);
        let (stopping, web_failed) = (stop.clone(), web_failed.clone());
        let web_failure = Arc::clone(&web_failure);
        tracker.spawn(async move {
            let served =
                ixn_gateway::serve(
                    http,
                    config,
                    link,
                    async move { stopping.cancelled().await },
                )
                .await;
            if let Err(e) = served {
                error!(error = %e, "the web API failed; stopping the server");
                *web_failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                web_failed.cancel();
            }
        });
    }
    tokio::pin!(shutdown);
    info!(addr = %listener.local_addr()?, "listening");
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
                        () = failed.cancelled() => break,
            () = web_failed.cancelled() => break,
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
            warn!(%peer, max_connections = limits.max_connections, "refusing connection: max_connections reached");
            drop(stream);
            continue;
        };
        next_conn += 1;
        let conn = ConnId(next_conn);
        let (tx, stop) = (tx.clone(), stop.clone());
        tracker.spawn(async move {
            connection::serve(stream, conn, peer, tx, settings, stop).await;
            drop(permit);
        });
    }
    info!(
        connections = tracker.len(),
        "shutting down: draining connections"
    );
    drop(listener);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    drop(tx);
    let _ = engine_task.await;
    if failed.is_cancelled() {
        error!("stopped after a store failure");
        return Err(Error::StoreFailed);
    }
    let web_error = web_failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(e) = web_error {
        return Err(Error::Gateway(e));
    }
    info!("stopped");
    Ok(())
}
