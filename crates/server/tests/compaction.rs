//! The journal compacts itself while the server runs: many changes to few interactions leave a
//! small journal, and a restart sees every acknowledged change.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_client::Client;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use ixn_config::{Config, DEMO_TOML};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_stays_small_under_many_changes_and_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("ixn-compaction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Arc::new(Config::from_toml_str(DEMO_TOML, "demo").unwrap());
    let r = ixn_server::recover(&dir, Arc::clone(&config), 1).unwrap();
    let store = r.store.with_min_bytes(16 * 1024);
    let server = ixn_server::start_engine(
        "127.0.0.1:0".parse().unwrap(),
        r.engine,
        Some(Box::new(store)),
        ixn_server::Options::default(),
    )
    .await
    .unwrap();
    let mut m = Client::connect(server.addr).await.unwrap();
    m.register("emailsrv", ClientType::MediaServer)
        .await
        .unwrap();
    const N: usize = 10;
    const CHANGES: usize = 3000;
    for i in 0..N {
        m.request_ok(
            Message::new(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, "email")
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, "Inbound")
                .with(attr::INTERACTION_ID, format!("C{i}"))
                .with(attr::USER_DATA, KvList::new().with("Body", "x".repeat(200))),
        )
        .await
        .unwrap();
    }
    for n in 0..CHANGES {
        m.request_ok(
            Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
                .with(attr::INTERACTION_ID, format!("C{}", n % N))
                .with(attr::CHANGED_PROPERTIES, KvList::new().with("n", n as i32)),
        )
        .await
        .unwrap();
    }
    m.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .unwrap()
        .unwrap();

    let size: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    // Without compaction the journal would hold 3,010 changes of ~300 bytes (about 900 KB).
    assert!(
        size < 64 * 1024,
        "the journal was compacted while running: {size} bytes"
    );

    let again = ixn_server::recover(&dir, config, 2).unwrap();
    assert_eq!(again.restored.interactions, N);
    let snapshot = again.engine.snapshot();
    for i in 0..N {
        let put = snapshot
            .iter()
            .find(|p| {
                p.attrs
                    .get_str(attr::INTERACTION_ID)
                    .is_some_and(|id| *id == format!("C{i}"))
            })
            .unwrap();
        let last = (0..CHANGES).rev().find(|n| n % N == i).unwrap() as i32;
        assert_eq!(
            put.attrs.get_list(attr::USER_DATA).unwrap().get_int("n"),
            Some(last),
            "C{i}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
