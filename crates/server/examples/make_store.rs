//! Writes a data directory holding N interactions (default 100,000) spread over the demo
//! agents' Drafts, with e-mail user data, to measure restart time and memory:
//!
//! ```sh
//! cargo run --release -p ixn-server --example make_store -- /tmp/ixn-100k 100000
//! /usr/bin/time -v target/release/ixn-server --data-dir /tmp/ixn-100k   # time to "listening"
//! ```

// A command-line aid: printing is its output, and a broken setup may panic.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::indexing_slicing)]

use ixn_codec::{KvList, Message, MessageId, attr};
use ixn_config::{Config, DEMO_TOML};
use ixn_core::ConnId;
use ixn_server::Store;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/ixn-100k".into());
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::from_toml_str(DEMO_TOML, "demo").unwrap();
    config.limits.max_interactions_per_workbin = n;
    let started = Instant::now();
    let mut r = ixn_server::recover(dir.as_ref(), Arc::new(config), 7).unwrap();
    // The raw journal: this example writes an uncompacted journal on purpose.
    let mut journal = r.store.into_inner();
    let (e, store) = (&mut r.engine, &mut journal);
    let mut out = Vec::new();
    let conn = ConnId(1);
    e.handle(
        SystemTime::now(),
        conn,
        &Message::new(MessageId::REQUEST_REGISTER_CLIENT)
            .with(attr::CLIENT_NAME, "emailsrv")
            .with(attr::CLIENT_TYPE, 2),
        &mut out,
    );
    let agents = ["a1", "a2", "a3", "sup1"];
    let mut batches = Vec::new();
    for i in 0..n {
        let id = format!("IX{i:014}");
        let submit = Message::new(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound")
            .with(attr::INTERACTION_ID, id.clone())
            .with(
                attr::USER_DATA,
                KvList::new()
                    .with("Subject", format!("Invoice {i} overdue"))
                    .with("FromAddress", format!("customer{i}@example.com"))
                    .with("Priority", (i % 5) as i32),
            );
        let place = Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
            .with(attr::INTERACTION_ID, id)
            .with(
                attr::WORKBIN,
                KvList::new()
                    .with(attr::WORKBIN_TYPE_ID, "Drafts")
                    .with(attr::WORKBIN_AGENT_ID, agents[i % agents.len()]),
            );
        for m in [submit, place] {
            out.clear();
            e.handle(SystemTime::now(), conn, &m, &mut out);
            let mut changes = Vec::new();
            e.drain_changes(&mut changes);
            batches.push(changes);
        }
        if batches.len() >= 4096 {
            store.append(&batches).unwrap();
            batches.clear();
        }
    }
    store.append(&batches).unwrap();
    println!(
        "{n} interactions ({} journal records) written to {dir} in {:?}",
        2 * n,
        started.elapsed()
    );
}
