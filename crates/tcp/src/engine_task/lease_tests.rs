//! The engine task's step-down when its lease lapses (a frozen process, an unreachable
//! database): requests wait for the leadership loop to name the lease's holder, and are
//! answered naming nobody only if that takes longer than [`super::LEARN_ACTIVE_FOR`]. Driven
//! through an in-process connection with the leadership loop's side played by the test.

use ixn_codec::{ClientType, ErrorCode, Message, MessageId, attr};
use std::sync::Arc;

/// A shared-store engine task made active under a lease that has already lapsed, an
/// in-process link to it, the roles, and what the lease's wake sends.
async fn active_under_a_lapsed_lease() -> (
    crate::LocalLink,
    crate::Roles,
    std::sync::mpsc::Receiver<()>,
    StoreSide,
) {
    let config =
        Arc::new(ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo").expect("demo"));
    let (handle, inputs) = crate::EngineHandle::channel();
    let task = super::EngineTask::standby(
        Arc::clone(&config),
        crate::codec(&config.limits),
        inputs,
        None,
    );
    tokio::spawn(task.run());
    let (link, serve) = handle.open_local("127.0.0.1:1".parse().expect("addr"), 4096, 64 << 20);
    tokio::spawn(serve);
    let (durability, store) = durability();
    let (woke, wakes) = std::sync::mpsc::channel();
    let lease = crate::Lease::with_wake(std::time::Instant::now(), move || {
        let _ = woke.send(());
    });
    let roles = handle.roles();
    let mut engine = ixn_core::Engine::new(config, 0);
    engine.record_changes(true);
    // Roles are told from the leadership loop's thread (a blocking send).
    let roles = tokio::task::spawn_blocking(move || {
        assert!(roles.activate(engine, durability, lease));
        roles
    })
    .await
    .expect("activate");
    (link, roles, wakes, store)
}

/// A store side the test holds: the rounds handed over and the sync reports (kept alive by
/// the caller, so that the store never looks gone).
type StoreSide = (
    std::sync::mpsc::Receiver<Vec<(u64, Vec<Message>)>>,
    tokio::sync::mpsc::UnboundedSender<Result<u64, String>>,
);

fn durability() -> (crate::Durability, StoreSide) {
    let (to_store, rounds) = std::sync::mpsc::channel();
    let (reports, synced) = tokio::sync::mpsc::unbounded_channel();
    let d = crate::Durability {
        to_store,
        synced,
        poll: std::time::Duration::ZERO,
    };
    (d, (rounds, reports))
}

/// Waits until the lease's wake was called (the leadership loop woken).
async fn woken(wakes: &std::sync::mpsc::Receiver<()>) {
    loop {
        match wakes.try_recv() {
            Ok(()) => return,
            Err(std::sync::mpsc::TryRecvError::Empty) => tokio::task::yield_now().await,
            Err(e) => panic!("the lease was dropped without waking: {e}"),
        }
    }
}

fn register() -> Message {
    Message::new(MessageId::REQUEST_REGISTER_CLIENT)
        .with(attr::REFERENCE_ID, 1)
        .with(attr::CLIENT_NAME, "emailsrv")
        .with(attr::CLIENT_TYPE, ClientType::MediaServer.to_int())
}

/// The next `n` messages delivered on `link`.
async fn next(link: &mut crate::LocalLink, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = link.deliveries.recv().await.expect("the engine answers");
        got.extend(batch.into_iter().map(|(m, _)| (*m).clone()));
    }
    got
}

fn assert_not_active(m: &Message, active: Option<&str>) {
    assert_eq!(m.id, MessageId::EVENT_ERROR, "{m:?}");
    assert_eq!(
        m.attrs.get_int(attr::ERROR_CODE),
        Some(ErrorCode::NotActive.to_int()),
        "{m:?}"
    );
    assert_eq!(
        m.attrs.get_str(attr::ACTIVE_SERVER).map(|s| s.as_ref()),
        active,
        "{m:?}"
    );
}

/// The request that finds the lease lapsed waits, the loop is woken, and once it names the
/// new active server both the link's notice and the reply name it.
#[tokio::test(flavor = "current_thread")]
async fn a_lapsed_lease_holds_requests_until_the_active_server_is_named() {
    let (mut link, roles, wakes, _reports) = active_under_a_lapsed_lease().await;
    link.requests.send(register()).await.expect("send");
    // The step-down wakes the leadership loop at once.
    woken(&wakes).await;
    // Nothing is answered before the name is known.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        link.deliveries.try_recv().is_err(),
        "answered before the name"
    );
    tokio::task::spawn_blocking(move || assert!(roles.stand_by(Some("10.0.0.2:7000".into()))))
        .await
        .expect("stand by");
    let got = next(&mut link, 2).await;
    assert_not_active(&got[0], Some("10.0.0.2:7000"));
    assert_eq!(got[0].reference_id(), None, "the unsolicited notice first");
    assert_not_active(&got[1], Some("10.0.0.2:7000"));
    assert_eq!(got[1].reference_id(), Some(1));
}

/// Without a name from the leadership loop (a database that does not answer), the held
/// requests are answered naming nobody after the bounded wait.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn held_requests_are_answered_naming_nobody_after_the_bounded_wait() {
    let (mut link, _roles, _wakes, _reports) = active_under_a_lapsed_lease().await;
    let sent = tokio::time::Instant::now();
    link.requests.send(register()).await.expect("send");
    let got = next(&mut link, 2).await;
    assert!(
        sent.elapsed() >= super::LEARN_ACTIVE_FOR,
        "{:?}",
        sent.elapsed()
    );
    assert_not_active(&got[0], None);
    assert_not_active(&got[1], None);
    assert_eq!(got[1].reference_id(), Some(1));
}

/// Taken over again before the name came (the database was back at once): what waited is
/// served by the new active engine, after the link heard its clients are gone.
#[tokio::test(flavor = "current_thread")]
async fn a_takeover_while_waiting_for_the_name_serves_what_waited() {
    let (mut link, roles, wakes, _reports) = active_under_a_lapsed_lease().await;
    link.requests.send(register()).await.expect("send");
    woken(&wakes).await;
    let config =
        Arc::new(ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo").expect("demo"));
    let (durability, _store) = durability();
    let lease = crate::Lease::new(std::time::Instant::now() + std::time::Duration::from_secs(60));
    let mut engine = ixn_core::Engine::new(config, 0);
    engine.record_changes(true);
    tokio::task::spawn_blocking(move || assert!(roles.activate(engine, durability, lease)))
        .await
        .expect("activate");
    let got = next(&mut link, 2).await;
    assert_not_active(&got[0], None);
    assert_eq!(
        got[0].reference_id(),
        None,
        "the link hears its clients are gone"
    );
    assert_eq!(got[1].id, MessageId::EVENT_ACK, "{:?}", got[1]);
    assert_eq!(got[1].reference_id(), Some(1));
}
