//! The web API of the ixn workbin server: the workbin operations of the Genesys Web Services API
//! v2 over HTTP, and their notifications over CometD (Bayeux 1.0, long-polling and WebSocket).
//!
//! The gateway is a client of the engine like any other: it registers as a `Proxy` application
//! on a [`Link`] (an in-process connection the server gives it, with the same engine task,
//! bounded outbox and ordering rules as a TCP connection), and registers one logical client per
//! signed-in agent. Every web request becomes native requests on that logical client, so every
//! rule of the contract holds unchanged; replies come back by ReferenceId, notifications by
//! ProxyClientId.
//!
//! ```text
//!  HTTP (axum) --> routes / cometd --> Hub --requests--> Link --> engine
//!                                       ^                          |
//!                  CometD sessions <-- pump <--deliveries-- Link <-+
//! ```
//!
//! - `routes/`: one module per resource (`me`, `workbins`, `notifications`); `extract.rs`
//!   authenticates (the `SignedIn` extractor) and reads JSON bodies into serde
//!   types; `gws.rs` holds the GWS shapes.
//! - `bayeux/`: Bayeux without I/O (channels, a session's state machine taking `now`, the
//!   handling of a batch); `cometd.rs` adds the transports and the waiting.
//! - `hub.rs`: the engine link, web sessions and the CometD registry, with the one lock
//!   order of the gateway.
//!
//! - Authentication: HTTP Basic (agent id and password, checked against the agent's argon2
//!   `password_hash`), then the `IXNSESSION` cookie. One web session per agent.
//! - CometD sessions have bounded queues, a deadline at every moment (the sweeper removes them
//!   `max_interval_ms` after their last connect), and optional acknowledgement (the `ack`
//!   extension), so a reply lost with a dropped long-poll is sent again.
//!
//! docs/web-api.md documents every route with examples.

#![warn(missing_docs)]

mod auth;
mod bayeux;
mod cometd;
mod console;
mod engine_link;
mod error;
mod extract;
/// Fuzz target bodies (test and fuzzing builds only).
#[cfg(any(test, fuzzing))]
pub mod fuzzing;

pub use engine_link::LinkError;
pub use error::{Error, Refused};
pub use ixn_codec::link::{Delivery, Link};
mod gws;
mod hub;
mod listen;
mod metrics;
mod openapi;
pub use metrics::{
    CONTENT_TYPE as METRICS_CONTENT_TYPE, Scrape, WebMetrics, classic as metrics_classic,
};
mod routes;
mod sessions;
mod tokens;
mod v3;
mod v3_shapes;

use ixn_config::{AppType, Config};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::info;

/// Listen backlog of the HTTP listener: clients past `[http] max_connections` wait there.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the HTTP listener (backlog [`LISTEN_BACKLOG`]).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    let listen = |source| Error::Listen { addr, source };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(listen)?;
    socket.set_reuseaddr(true).map_err(listen)?;
    socket.bind(addr).map_err(listen)?;
    socket.listen(LISTEN_BACKLOG).map_err(listen)
}

/// Checks that `config` can run the web API: its `[http]` applications exist with the right
/// types. The message names the key to fix.
pub fn check_config(config: &Config) -> Result<(), Error> {
    let http = &config.http;
    if !config.application_allowed(&http.proxy_application, AppType::Proxy) {
        return Err(Error::Config(format!(
            "the configuration has no [[application]] {:?} of type Proxy, which the web API registers as; add one, or name another in [http] proxy_application",
            http.proxy_application
        )));
    }
    if !config.application_allowed(&http.client_application, AppType::AgentApplication) {
        return Err(Error::Config(format!(
            "the configuration has no [[application]] {:?} of type AgentApplication, which each signed-in agent's client registers as; add one, or name another in [http] client_application",
            http.client_application
        )));
    }
    Ok(())
}

/// Serves the web API on `listener` until `shutdown` completes: registers with the engine over
/// `link`, then answers HTTP and CometD on at most `max_connections` connections at once (the
/// server sizes it from `[http] max_connections` and its open file limit). At shutdown, held
/// long-polls are answered at once and every web session's client is unregistered. If the
/// engine side of the link ends first, it stops too, with [`Error::LinkLost`].
pub async fn serve(
    listener: TcpListener,
    config: Arc<Config>,
    link: Link,
    max_connections: usize,
    tls: Option<ixn_tls::Acceptor>,
    metrics: Arc<WebMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    check_config(&config)?;
    let Link {
        requests,
        deliveries,
    } = link;
    let hub = hub::Hub::new(config, requests, tls.is_some(), Arc::clone(&metrics))?;
    let weak = Arc::downgrade(&hub);
    metrics.attach(Box::new(move || {
        weak.upgrade().map(|h| {
            let c = h.counts();
            (c.web_sessions, c.cometd_sessions)
        })
    }));
    let pump = tokio::spawn(hub::pump(Arc::clone(&hub), deliveries));
    if !hub.register_proxy().await.map_err(Error::Register)? {
        // A standby: registered once this server takes the store over.
        hub.proxy_lost();
    }
    let keeper = tokio::spawn(hub::proxy_keeper(Arc::clone(&hub)));
    let sweeper = tokio::spawn(hub::sweeper(Arc::clone(&hub)));
    let app = routes::router(Arc::clone(&hub));
    let addr = listener.local_addr()?;
    info!(%addr, notifications = %hub.config.http.notifications_path, max_connections, tls = tls.is_some(), "web API listening");
    let stopping = hub.shutdown.clone();
    let link_lost = hub.link_lost.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            () = link_lost.cancelled() => {}
        }
        // Release held long-polls so that the graceful stop does not wait for them.
        stopping.cancel();
    });
    let header_timeout = std::time::Duration::from_secs(hub.config.http.header_read_timeout_secs);
    listen::serve(
        listener,
        app,
        max_connections,
        header_timeout,
        tls,
        hub.shutdown.clone(),
    )
    .await;
    sweeper.abort();
    keeper.abort();
    if hub.link_lost.is_cancelled() {
        pump.abort();
        return Err(Error::LinkLost);
    }
    hub.end_all_web_sessions().await;
    pump.abort();
    info!("web API stopped");
    Ok(())
}
