//! `echo`: the ceiling. A bare tokio echo server (2 worker threads, in this process but on its
//! own runtime) returns every byte it reads; `rr ping`'s driver loads it. The reply to a Ping
//! frame is the same frame, so the driver's checks hold; there is no engine, no decoding and no
//! registration.

use crate::error::Error;
use crate::report::{Report, round3};
use crate::rr::{self, Program};
use crate::run::{self, Bounds, Window};
use crate::wire::{self, Conn};
use ixn_codec::MessageId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// Starts the echo server on its own thread; returns its address.
fn start_echo() -> Result<SocketAddr, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Setup(format!("cannot bind the echo server: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Setup(format!("echo server: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Setup(format!("echo server: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Setup(format!("echo server runtime: {e}")))?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                let Some(chunk) = buf.get(..n) else { return };
                                if s.write_all(chunk).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    Ok(addr)
}

pub(crate) async fn run(
    bounds: Bounds,
    connections: usize,
    in_flight: usize,
) -> Result<Report, Error> {
    let addr = start_echo()?;
    let window = Window::new();
    let mut drivers = JoinSet::new();
    for _ in 0..connections {
        let conn = Conn::connect(addr, None).await?;
        let program = Arc::new(Program::single(wire::ping(), MessageId::PING)?);
        drivers.spawn(rr::drive(conn, program, in_flight, Arc::clone(&window)));
    }
    let elapsed = run::measure(&window, bounds, "echo", "requests").await;
    let total = rr::collect(drivers).await?;
    let mut report = Report::new(
        "echo",
        format!(
            "echo (bare tokio echo, the ceiling): {connections} connection(s) x {in_flight} in flight, {:.1} s",
            elapsed.as_secs_f64()
        ),
    );
    report.param("connections", connections);
    report.param("in_flight", in_flight);
    report.param("seconds", round3(elapsed.as_secs_f64()));
    total.figures(&mut report, elapsed);
    Ok(report)
}
