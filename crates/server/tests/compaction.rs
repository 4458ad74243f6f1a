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
    let server = start_durable(r.engine, store).await;
    let mut m = Client::connect(server.addr).await.unwrap();
    m.register("emailsrv", ClientType::MediaServer)
        .await
        .unwrap();
    const N: usize = 10;
    const CHANGES: usize = 3000;
    for i in 0..N {
        m.request_ok(
            submit(format!("C{i}"))
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

    // The records' bytes (the file also holds preallocated space, zeros, after them).
    let live = ixn_store::live_journal(&dir).unwrap().unwrap();
    let size = ixn_store::read_journal(&live, &std::fs::read(&live).unwrap(), &mut |_| {})
        .unwrap()
        .used;
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "the journal and its lock"
    );
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

#[test]
fn a_configuration_that_cannot_hold_stored_interactions_refuses_to_start_and_erases_nothing() {
    let dir = std::env::temp_dir().join(format!("ixn-unplaceable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Arc::new(Config::from_toml_str(DEMO_TOML, "demo").unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = ixn_server::recover(&dir, Arc::clone(&config), 1).unwrap();
    rt.block_on(async {
        let server = start_durable(r.engine, r.store).await;
        let mut m = Client::connect(server.addr).await.unwrap();
        m.register("emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        for (id, wb) in [("KEEP-Q", None), ("KEEP-WB", Some("Review"))] {
            m.request_ok(submit(id)).await.unwrap();
            if let Some(wb) = wb {
                m.request_ok(
                    Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                        .with(attr::INTERACTION_ID, id)
                        .with(
                            attr::WORKBIN,
                            KvList::new()
                                .with(attr::WORKBIN_TYPE_ID, wb)
                                .with(attr::WORKBIN_AGENT_ID, "a1"),
                        ),
                )
                .await
                .unwrap();
            }
        }
        m.close().await.unwrap();
        server.shutdown().await.unwrap();
    });
    let journal_before: Vec<Vec<u8>> = files(&dir);

    // Without the Review workbin type, its interaction goes to the tenant's first queue.
    let mut no_review = ixn_config::ConfigFile::clone(&config.file);
    no_review.workbin.retain(|w| w.name != "Review");
    let relocated =
        ixn_server::recover(&dir, Arc::new(Config::validate(no_review).unwrap()), 2).unwrap();
    assert_eq!(
        (
            relocated.restored.interactions,
            relocated.restored.relocated
        ),
        (2, 1)
    );
    assert!(
        relocated.restored.warnings[0].contains("KEEP-WB"),
        "{:?}",
        relocated.restored.warnings
    );
    drop(relocated);

    // Without any queue, nothing can hold them: refused, and the journal is left as it was.
    let journal_now = files(&dir);
    let mut no_queue = ixn_config::ConfigFile::clone(&config.file);
    no_queue.queue.clear();
    no_queue.workbin.retain(|w| w.name != "Review");
    let err =
        ixn_server::recover(&dir, Arc::new(Config::validate(no_queue).unwrap()), 3).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("2 stored interactions cannot be placed") && text.contains("KEEP"),
        "{text}"
    );
    assert_eq!(files(&dir), journal_now, "nothing was erased");
    assert_ne!(
        journal_now, journal_before,
        "the successful recovery compacted"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// RequestSubmit of an e-mail into Inbound with the given id.
fn submit(id: impl Into<String>) -> Message {
    Message::new(MessageId::REQUEST_SUBMIT)
        .with(attr::TENANT_ID, 101)
        .with(attr::MEDIA_TYPE, "email")
        .with(attr::INTERACTION_TYPE, "Inbound")
        .with(attr::QUEUE, "Inbound")
        .with(attr::INTERACTION_ID, id.into())
}

/// A server on an ephemeral loopback port with this engine and durable store.
async fn start_durable(
    engine: ixn_core::Engine,
    store: impl ixn_server::Store + 'static,
) -> ixn_server::Started {
    ixn_server::start_engine(
        "127.0.0.1:0".parse().unwrap(),
        engine,
        Some(Box::new(store)),
        ixn_server::Options::default(),
    )
    .await
    .unwrap()
}

fn files(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}
