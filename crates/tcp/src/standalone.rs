//! The TCP side alone, ephemeral, in a background task: an engine task and a listener, no
//! store, no web API. For embedding and for tools that need a server over TCP in process (the
//! `ixn conformance` command); `ixn-server` assembles the whole server.

use crate::connection::codec;
use crate::engine_task::EngineTask;
use crate::handle::EngineHandle;
use crate::listener::{Listener, bind};
use ixn_core::Engine;
use std::net::SocketAddr;
use std::time::Duration;

/// A TCP server started with [`start`]: stops when [`Started::shutdown`] is called or when
/// dropped.
#[derive(Debug)]
pub struct Started {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Started {
    /// Stops accepting, drains and closes every connection, and waits until the engine task
    /// has ended.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
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

/// Binds `addr` and serves `engine` over TCP on the current runtime, in a background task;
/// a closing connection may take `drain_timeout` to write what is queued.
pub async fn start(
    addr: SocketAddr,
    engine: Engine,
    drain_timeout: Duration,
) -> std::io::Result<Started> {
    let listener = bind(addr).await?;
    let addr = listener.local_addr()?;
    let limits = engine.config().limits;
    // No TLS; application passwords are checked as the full server checks them.
    let security = crate::security::Security::new(None, engine.config());
    let (handle, inputs) = EngineHandle::channel();
    let task = tokio::spawn(EngineTask::new(engine, codec(&limits), inputs, None, None).run());
    let mut tcp = Listener::new(
        listener,
        handle,
        &limits,
        limits.max_connections,
        drain_timeout,
    )
    .with_security(security);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        tcp.run(async move {
            let _ = stopped.await;
        })
        .await;
        tcp.shutdown().await;
        let _ = task.await;
    });
    Ok(Started {
        addr,
        stop: Some(stop),
        done: Some(done),
    })
}
