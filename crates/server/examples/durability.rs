//! Durable versus ephemeral throughput of RequestPlaceInWorkbin with 1, 16 and 64 concurrent
//! clients (each with one request in flight, moving its own interaction between two workbins),
//! against an in-process server on loopback.
//!
//! `cargo run --release -p ixn-server --example durability -- [SECONDS per run, default 3]`

// A command-line aid: printing is its output, and a broken setup may panic.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::indexing_slicing)]

use ixn_client::Client;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use ixn_config::{Config, DEMO_TOML};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

async fn run(clients: usize, durable: bool, secs: u64) -> f64 {
    let mut config = Config::from_toml_str(DEMO_TOML, "demo").unwrap();
    config.limits.max_interactions_per_workbin = 1_000_000;
    let config = Arc::new(config);
    let dir = std::env::temp_dir().join(format!("ixn-durability-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let addr = "127.0.0.1:0".parse().unwrap();
    let server = if durable {
        let r = ixn_server::recover(&dir, config, 1).unwrap();
        ixn_server::start_engine(
            addr,
            r.engine,
            Some(Box::new(r.store)),
            ixn_server::Options::default(),
        )
        .await
        .unwrap()
    } else {
        ixn_server::start(addr, config, ixn_server::Options::default())
            .await
            .unwrap()
    };
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (done, addr) = (Arc::clone(&done), server.addr);
            tokio::spawn(async move {
                let mut c = Client::connect(addr).await.unwrap();
                c.register("emailsrv", ClientType::MediaServer)
                    .await
                    .unwrap();
                let id = format!("BENCH{i}");
                c.request_ok(
                    Message::new(MessageId::REQUEST_SUBMIT)
                        .with(attr::TENANT_ID, 101)
                        .with(attr::MEDIA_TYPE, "email")
                        .with(attr::INTERACTION_TYPE, "Inbound")
                        .with(attr::QUEUE, "Inbound")
                        .with(attr::INTERACTION_ID, id.clone()),
                )
                .await
                .unwrap();
                let wb = |a: &'static str| {
                    KvList::new()
                        .with(attr::WORKBIN_TYPE_ID, "Drafts")
                        .with(attr::WORKBIN_AGENT_ID, a)
                };
                let mut flip = false;
                while Instant::now() < deadline {
                    flip = !flip;
                    let m = Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                        .with(attr::INTERACTION_ID, id.clone())
                        .with(attr::WORKBIN, wb(if flip { "a1" } else { "a2" }));
                    c.request_ok(m).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    println!("clients  ephemeral/s  durable/s  durable/ephemeral");
    for clients in [1usize, 16, 64] {
        let eph = run(clients, false, secs).await;
        let dur = run(clients, true, secs).await;
        println!("{clients:>7}  {eph:>11.0}  {dur:>9.0}  {:>17.2}", dur / eph);
    }
}
