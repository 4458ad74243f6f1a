//! The accept loop (the shape of mini-redis' `Listener`): a place is taken for each
//! connection before it is served, a connection past the cap is told the server is full, and
//! each accepted connection runs as a [`Handler`] until it ends. At shutdown the listener stops
//! accepting, lets every connection drain (bounded) and waits for them.

use crate::connection::codec;
use crate::connection::{ConnSettings, Handler, Parts};
use crate::handle::EngineHandle;
use crate::partial::Partials;
use crate::security::Security;
use ixn_codec::Codec;
use ixn_config::Limits;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// Listen backlog: 10,000 clients connecting at once must not wait on SYN retries.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Refusals (error frame, then close) in progress at once; past it, a connection over the cap is
/// closed without one.
const MAX_REFUSING: usize = 64;

/// Binds a listening socket with [`LISTEN_BACKLOG`] and `SO_REUSEADDR`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts native connections and serves each on the engine task.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    engine: EngineHandle,
    settings: ConnSettings,
    /// Connections served at most at once.
    cap: usize,
    permits: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    partials: Arc<Partials>,
    security: Arc<Security>,
    metrics: Arc<crate::Metrics>,
    /// Cancelled at shutdown: connections drain and close.
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Listener {
    /// A listener serving at most `cap` connections at once with `limits` (frame sizes,
    /// queues, timeouts); a closing connection may take `drain_timeout` to write what is
    /// queued.
    pub fn new(
        listener: TcpListener,
        engine: EngineHandle,
        limits: &Limits,
        cap: usize,
        drain_timeout: Duration,
    ) -> Self {
        let settings = ConnSettings {
            codec: codec(limits),
            registration_timeout: Duration::from_secs(limits.registration_timeout_secs),
            drain_timeout,
            max_messages: limits.outbound_queue_messages,
            max_bytes: limits.outbound_queue_bytes,
        };
        let partials = Arc::new(Partials::new(
            limits.max_partial_frame_bytes,
            Duration::from_secs(limits.frame_timeout_secs),
        ));
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(Arc::clone(&partials).sweep(stop.clone()));
        Self {
            listener,
            engine,
            settings,
            cap,
            permits: Arc::new(Semaphore::new(cap)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            partials,
            security: Arc::new(Security::default()),
            metrics: Arc::new(crate::Metrics::default()),
            stop,
            tracker,
        }
    }

    /// Counts connections and disconnects into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<crate::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves connections with TLS and client authentication (plain TCP and no password
    /// check otherwise).
    #[must_use]
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = Arc::new(security);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` completes. Cancel-safe: dropping the future stops
    /// accepting and loses no connection already accepted.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(
            addr = ?self.listener.local_addr().ok(),
            max_connections = self.cap,
            tls = self.security.tls.is_some(),
            "listening"
        );
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                a = self.listener.accept() => a,
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
            self.serve(stream, peer);
        }
    }

    /// Serves an accepted connection as a [`Handler`], or refuses it past the cap.
    fn serve(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        self.metrics.connections_accepted.inc();
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.metrics
                .disconnect(crate::metrics::Disconnect::MaxConnections);
            warn!(%peer, max_connections = self.cap, "refusing connection: max_connections reached");
            // Under TLS the refusal would need a handshake first: the connection is closed.
            if self.security.tls.is_none()
                && let Ok(slot) = Arc::clone(&self.refusing).try_acquire_owned()
            {
                let (codec, cap) = (self.settings.codec, self.cap);
                self.tracker.spawn(async move {
                    refuse_full(stream, codec, cap).await;
                    drop(slot);
                });
            }
            return;
        };
        let parts = Parts {
            conn: self.engine.next_conn(),
            peer,
            inputs: self.engine.sender(),
            serving: self.engine.serving(),
            settings: self.settings,
            partials: Arc::clone(&self.partials),
            shutdown: self.stop.clone(),
            security: Arc::clone(&self.security),
            metrics: Arc::clone(&self.metrics),
        };
        let handler = Handler { stream, parts };
        self.tracker.spawn(async move {
            handler.run().await;
            drop(permit);
        });
    }

    /// Stops accepting, lets every connection write what is queued (bounded by the drain
    /// timeout), closes them and waits until all are gone.
    pub async fn shutdown(self) {
        info!(
            connections = self.tracker.len(),
            "shutting down: draining connections"
        );
        drop(self.listener);
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
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
