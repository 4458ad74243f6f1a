//! The HTTP accept loop: HTTP/1.1 on hyper with a connection cap and a header read timeout.
//!
//! - At most `max_connections` connections are served at once (a WebSocket counts until it
//!   closes); further clients wait in the listen queue, which costs the process no descriptor.
//! - A client must send a request's headers within the header read timeout, counted from the
//!   connection's start or, on a kept-alive connection, from the previous response, so idle and
//!   slow-header sockets are closed.
//! - Each request carries its peer address (`ConnectInfo`), for per-address sign-in limits.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// A socket that holds its connection's place under the cap until it is dropped (also after a
/// WebSocket upgrade has taken it over).
struct Held<S> {
    stream: S,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `stop` is cancelled; then stops accepting, asks every
/// connection to finish its current request, and returns once all have closed. With `tls`,
/// each connection starts with a TLS handshake, bounded by the header read timeout.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    header_read_timeout: Duration,
    tls: Option<ixn_tls::Acceptor>,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut full_logged = false;
    loop {
        // A place first, then a client: past the cap, clients wait in the listen queue.
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(p) => {
                full_logged = false;
                p
            }
            Err(_) => {
                if !full_logged {
                    warn!(
                        max_connections,
                        "HTTP connections at their cap ([http] max_connections); new clients wait until one closes"
                    );
                    full_logged = true;
                }
                tokio::select! {
                    p = Arc::clone(&permits).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = stop.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Typically out of descriptors: back off rather than spin.
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        let acceptor = tls.as_ref().map(ixn_tls::Acceptor::current);
        tracker.spawn(async move {
            let Some(acceptor) = acceptor else {
                let held = Held {
                    stream,
                    _permit: permit,
                };
                return serve_connection(held, peer, app, header_read_timeout, stop).await;
            };
            let handshake = tokio::select! {
                r = tokio::time::timeout(header_read_timeout, acceptor.accept(stream)) => r,
                () = stop.cancelled() => return,
            };
            match handshake {
                Ok(Ok(stream)) => {
                    let held = Held {
                        stream,
                        _permit: permit,
                    };
                    serve_connection(held, peer, app, header_read_timeout, stop).await;
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => {
                    debug!(%peer, "TLS handshake not finished within the header read timeout")
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Serves one HTTP/1.1 connection (with upgrades) until it ends or the server stops.
async fn serve_connection<S>(
    held: Held<S>,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(held);
    let service = hyper::service::service_fn(
        move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        },
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        debug!(%peer, error = %e, "HTTP connection ended");
    }
}

/// The client's address as the accept loop saw it.
pub(crate) fn peer_of(parts: &axum::http::request::Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
