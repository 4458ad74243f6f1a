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

mod connection;
mod engine_task;
mod outbox;

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
}

/// Settings that are not part of the configuration file.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long a closing connection may take to write what is queued.
    pub drain_timeout: Duration,
    /// The engine's seed; `None` draws a random one.
    pub seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(5),
            seed: None,
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
/// and `ixn conformance`).
pub async fn start(
    addr: SocketAddr,
    config: Arc<Config>,
    options: Options,
) -> Result<Started, Error> {
    let listener = bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, config, options, async move {
        let _ = stopped.await;
    }));
    Ok(Started {
        addr,
        stop: Some(stop),
        done: Some(done),
    })
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
/// returns.
pub async fn serve(
    listener: TcpListener,
    config: Arc<Config>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let limits = config.limits;
    let codec = Codec::new(ixn_codec::Limits {
        max_frame_len: limits.max_frame_len,
        max_depth: limits.max_kvlist_depth,
    });
    let seed = options
        .seed
        .unwrap_or_else(|| RandomState::new().hash_one(std::process::id()));
    let engine = Engine::new(config, seed);
    let (tx, rx) = mpsc::channel(4096);
    let engine_task = tokio::spawn(engine_task::run(engine, codec, rx));
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
    tokio::pin!(shutdown);
    info!(addr = %listener.local_addr()?, "listening");
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
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
    info!("stopped");
    Ok(())
}
