//! The engine task's group commits (its lingering before handing a round of changes over, and
//! the timing of each commit), driven through an in-process
//! connection on a `current_thread` runtime, with the store side replaced by channels the test
//! holds: each round handed over is seen exactly, and the test reports the syncs itself.
//! (A child of `engine_task`, so that its private parts are in reach, and a file of its own, so
//! that `engine_task` does not depend on the handle and the link it is tested through.)

use tokio::sync::mpsc;

/// What the engine task hands to its store thread, seen by the test instead.
type Rounds = std::sync::mpsc::Receiver<Vec<(u64, Vec<ixn_codec::Message>)>>;

/// An engine task on the demo configuration, durable through channels the test holds (it
/// sees each round handed over and reports the syncs itself), polling for a sync report for up
/// to `poll`, and an in-process connection registered as the demo's media server.
async fn media_server_on_a_test_store(
    poll: std::time::Duration,
) -> (
    crate::LocalLink,
    Rounds,
    mpsc::UnboundedSender<Result<u64, String>>,
    std::sync::Arc<crate::Metrics>,
) {
    use ixn_codec::{ClientType, Message, MessageId, attr};
    let config = std::sync::Arc::new(
        ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo").expect("demo"),
    );
    let (to_store, rounds) = std::sync::mpsc::channel();
    let (reports, synced) = mpsc::unbounded_channel();
    let d = crate::Durability {
        to_store,
        synced,
        poll,
    };
    let (handle, inputs) = crate::EngineHandle::channel();
    let mut engine = ixn_core::Engine::new(std::sync::Arc::clone(&config), 0);
    engine.record_changes(true);
    let metrics = std::sync::Arc::new(crate::Metrics::default());
    let task = super::EngineTask::new(engine, crate::codec(&config.limits), inputs, Some(d), None)
        .with_metrics(std::sync::Arc::clone(&metrics));
    tokio::spawn(task.run());
    let (mut link, serve) = handle.open_local("127.0.0.1:1".parse().expect("addr"), 4096, 64 << 20);
    tokio::spawn(serve);
    let register = Message::new(MessageId::REQUEST_REGISTER_CLIENT)
        .with(attr::REFERENCE_ID, 1)
        .with(attr::CLIENT_NAME, "emailsrv")
        .with(attr::CLIENT_TYPE, ClientType::MediaServer.to_int());
    link.requests.send(register).await.expect("send");
    let reply = replies(&mut link, 1).await;
    assert_eq!(reply[0].id, MessageId::EVENT_ACK, "{reply:?}");
    (link, rounds, reports, metrics)
}

/// The next round the engine task hands over (letting the other tasks run until it does).
async fn next_round(rounds: &Rounds) -> Vec<(u64, Vec<ixn_codec::Message>)> {
    loop {
        match rounds.try_recv() {
            Ok(round) => return round,
            Err(std::sync::mpsc::TryRecvError::Empty) => tokio::task::yield_now().await,
            Err(e) => panic!("the engine task is gone: {e}"),
        }
    }
}

/// The engine task sleeps until each sync's report (the lingering tests are about lingering).
const NO_POLL: std::time::Duration = std::time::Duration::ZERO;

/// The number of a round's last change: reporting it synced releases the whole round.
fn last_of(round: &[(u64, Vec<ixn_codec::Message>)]) -> u64 {
    round
        .last()
        .map(|(n, _)| *n)
        .expect("a round holds changes")
}

fn submit(n: i32) -> ixn_codec::Message {
    use ixn_codec::{Message, MessageId, attr};
    Message::new(MessageId::REQUEST_SUBMIT)
        .with(attr::REFERENCE_ID, n + 1)
        .with(attr::TENANT_ID, 101)
        .with(attr::MEDIA_TYPE, "email")
        .with(attr::INTERACTION_TYPE, "Inbound")
        .with(attr::QUEUE, "Inbound")
        .with(attr::INTERACTION_ID, format!("L{n}").as_str())
}

/// The next `n` messages delivered on `link`.
async fn replies(link: &mut crate::LocalLink, n: usize) -> Vec<ixn_codec::Message> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = link.deliveries.recv().await.expect("the engine answers");
        got.extend(batch.into_iter().map(|(m, _)| (*m).clone()));
    }
    got
}

/// A request that reaches the engine task while it lets the readers run after a round
/// joins that round's group commit: one sync for both, not one each.
#[tokio::test(flavor = "current_thread")]
async fn a_request_arriving_while_the_engine_lingers_joins_the_round() {
    let (mut link, rounds, reports, _) = media_server_on_a_test_store(NO_POLL).await;
    link.requests.send(submit(1)).await.expect("send");
    // Each yield lets every task woken meanwhile run first: the link forwards the first
    // submit and the engine task handles it before this task runs again (without the
    // lingering, the engine task hands it over alone; tried).
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    link.requests.send(submit(2)).await.expect("send");
    let round = next_round(&rounds).await;
    assert_eq!(
        round.len(),
        2,
        "both submits' changes in one round: {round:?}"
    );
    reports.send(Ok(2)).expect("report");
    let acks = replies(&mut link, 2).await;
    assert!(
        acks.iter().all(|m| m.id == ixn_codec::MessageId::EVENT_ACK),
        "{acks:?}"
    );
}

/// Sends a submit, lets the other tasks run twice (enough for the engine task to handle it,
/// not for it to end a linger), then takes the round handed over meanwhile, if any.
async fn send_and_look(
    link: &crate::LocalLink,
    rounds: &Rounds,
    n: i32,
) -> Option<Vec<(u64, Vec<ixn_codec::Message>)>> {
    link.requests.send(submit(n)).await.expect("send");
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    rounds.try_recv().ok()
}

/// A lone client: after [`super::commit::LINGER_UNPAID`] handovers of one request for which
/// lingering brought nothing, its requests are handed over at once; every
/// [`super::commit::LINGER_PROBE`]th handover still lingers, and lingering goes on from a probe that
/// brings something.
#[tokio::test(flavor = "current_thread")]
async fn lingering_stops_for_a_lone_client_until_a_probe_pays() {
    let (mut link, rounds, reports, _) = media_server_on_a_test_store(NO_POLL).await;
    let mut n = 0;
    let settle = |round: &Vec<(u64, Vec<ixn_codec::Message>)>| {
        let last = last_of(round);
        reports.send(Ok(last)).expect("report");
    };
    for i in 0..super::commit::LINGER_UNPAID {
        n += 1;
        let early = send_and_look(&link, &rounds, n).await;
        assert!(early.is_none(), "lone request {i} is lingered for");
        let round = next_round(&rounds).await;
        assert_eq!(round.len(), 1);
        settle(&round);
        replies(&mut link, 1).await;
    }
    for i in 1..super::commit::LINGER_PROBE {
        n += 1;
        let round = send_and_look(&link, &rounds, n).await.unwrap_or_else(|| {
            panic!("lone request {i} after lingering stopped is handed over at once")
        });
        assert_eq!(round.len(), 1);
        settle(&round);
        replies(&mut link, 1).await;
    }
    // The probe: this one is lingered for, and a request arriving meanwhile joins it.
    for probe_or_after in ["the probe", "the handover after a probe that paid"] {
        n += 1;
        assert!(
            send_and_look(&link, &rounds, n).await.is_none(),
            "{probe_or_after} lingers"
        );
        n += 1;
        link.requests.send(submit(n)).await.expect("send");
        let round = next_round(&rounds).await;
        assert_eq!(round.len(), 2, "{probe_or_after}");
        settle(&round);
        replies(&mut link, 2).await;
    }
}

/// Under a steady stream the engine task stops lingering at [`super::commit::LINGER_MAX`]
/// requests: what it hands over at once stays bounded, and every request is answered.
#[tokio::test(flavor = "current_thread")]
async fn a_steady_stream_is_handed_over_in_bounded_rounds() {
    let (mut link, rounds, reports, _) = media_server_on_a_test_store(NO_POLL).await;
    let n = 3 * super::commit::LINGER_MAX;
    for i in 0..i32::try_from(n).expect("small") {
        link.requests.send(submit(i)).await.expect("send");
    }
    let mut sizes = Vec::new();
    let mut last = 0;
    while last < u64::try_from(n).expect("small") {
        let round = next_round(&rounds).await;
        sizes.push(round.len());
        last = round.last().map_or(last, |(n, _)| *n);
        reports.send(Ok(last)).expect("report");
    }
    assert!(
        sizes
            .iter()
            .all(|s| *s < super::commit::LINGER_MAX + super::INPUTS_PER_WAKE),
        "{sizes:?}"
    );
    let acks = replies(&mut link, n).await;
    assert!(acks.iter().all(|m| m.id == ixn_codec::MessageId::EVENT_ACK));
}

/// The value of the series `name` (labels included) in `metrics`, 0 when it is not there yet.
fn series(metrics: &crate::Metrics, name: &str) -> f64 {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// `journal_commit_seconds` as `metrics` show it: (count, sum).
fn commits(metrics: &crate::Metrics) -> (u64, f64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a small count
    let count = series(metrics, "journal_commit_seconds_count") as u64;
    (count, series(metrics, "journal_commit_seconds_sum"))
}

/// How often the engine task's polling for a sync report ended with `outcome`.
fn polls(metrics: &crate::Metrics, outcome: &str) -> f64 {
    series(
        metrics,
        &format!("journal_sync_polls_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Longer than any test takes: the polling ends by the report or an input only.
const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Fails a test that would otherwise hang (an engine task that never hands the round over).
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within a minute"))
}

/// Each round handed to the store is timed from its hand-over until the store reports it
/// synced: no sample before the report, one per round after it (a report covering two
/// rounds gives two), each at least as long as the test held the report back.
#[tokio::test(flavor = "current_thread")]
async fn a_commit_is_timed_from_its_hand_over_to_the_sync_report() {
    let (mut link, rounds, reports, metrics) = media_server_on_a_test_store(NO_POLL).await;
    link.requests.send(submit(1)).await.expect("send");
    let first = next_round(&rounds).await;
    let handed = std::time::Instant::now();
    link.requests.send(submit(2)).await.expect("send");
    let second = next_round(&rounds).await;
    // The report is held back for a while (the engine task runs meanwhile): a commit is at
    // least that long. Timed from anywhere later (the report, the release), it would not be.
    let hold = std::time::Duration::from_millis(20);
    while handed.elapsed() < hold {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        commits(&metrics),
        (0, 0.0),
        "nothing is timed before the report"
    );
    let last = last_of(&second);
    assert!(first.last().is_some_and(|(n, _)| *n < last));
    reports.send(Ok(last)).expect("report");
    let acks = replies(&mut link, 2).await;
    assert!(acks.iter().all(|m| m.id == ixn_codec::MessageId::EVENT_ACK));
    let (count, sum) = commits(&metrics);
    assert_eq!(count, 2, "one sample per round");
    assert!(
        sum >= 2.0 * hold.as_secs_f64(),
        "two commits of at least {hold:?} each, {sum} s in all"
    );
}

/// With replies held for a sync and nothing else to do, the engine task polls for the sync's
/// report instead of sleeping, and releases the replies when it comes.
#[tokio::test(flavor = "current_thread")]
async fn the_engine_polls_for_the_report_of_the_sync_it_waits_for() {
    let (mut link, rounds, reports, metrics) = media_server_on_a_test_store(LONG_POLL).await;
    link.requests.send(submit(1)).await.expect("send");
    let round = next_round(&rounds).await;
    let last = last_of(&round);
    reports.send(Ok(last)).expect("report");
    let acks = within("the reply", replies(&mut link, 1)).await;
    assert_eq!(acks[0].id, ixn_codec::MessageId::EVENT_ACK, "{acks:?}");
    assert_eq!(
        polls(&metrics, "synced"),
        1.0,
        "the report was taken by polling"
    );
    assert_eq!(polls(&metrics, "timeout") + polls(&metrics, "input"), 0.0);
}

/// An input that arrives while the engine task polls ends the polling: it is handled (and its
/// change handed over) while the first sync is still out.
#[tokio::test(flavor = "current_thread")]
async fn an_input_ends_the_polling() {
    let (mut link, rounds, reports, metrics) = media_server_on_a_test_store(LONG_POLL).await;
    link.requests.send(submit(1)).await.expect("send");
    let first = next_round(&rounds).await;
    link.requests.send(submit(2)).await.expect("send");
    let second = within("the second round", next_round(&rounds)).await;
    assert_eq!(polls(&metrics, "input"), 1.0);
    let last = last_of(&second);
    assert!(first.last().is_some_and(|(n, _)| *n < last));
    reports.send(Ok(last)).expect("report");
    let acks = within("the replies", replies(&mut link, 2)).await;
    assert!(acks.iter().all(|m| m.id == ixn_codec::MessageId::EVENT_ACK));
}

/// The polling is bounded: once its window has passed, the engine task sleeps until the report
/// comes (and still releases the replies then).
#[tokio::test(flavor = "current_thread")]
async fn the_polling_stops_after_its_window() {
    let window = std::time::Duration::from_millis(2);
    let (mut link, rounds, reports, metrics) = media_server_on_a_test_store(window).await;
    link.requests.send(submit(1)).await.expect("send");
    let round = next_round(&rounds).await;
    within("the polling's end", async {
        while polls(&metrics, "timeout") < 1.0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let last = last_of(&round);
    reports.send(Ok(last)).expect("report");
    let acks = within("the reply", replies(&mut link, 1)).await;
    assert_eq!(acks[0].id, ixn_codec::MessageId::EVENT_ACK, "{acks:?}");
    assert_eq!(
        polls(&metrics, "synced"),
        0.0,
        "the report came to a sleeping task"
    );
    assert_eq!(polls(&metrics, "timeout"), 1.0);
}

/// A zero window: the engine task never polls.
#[tokio::test(flavor = "current_thread")]
async fn a_zero_window_never_polls() {
    let (mut link, rounds, reports, metrics) = media_server_on_a_test_store(NO_POLL).await;
    for n in 1..=3 {
        link.requests.send(submit(n)).await.expect("send");
        let round = next_round(&rounds).await;
        let last = last_of(&round);
        reports.send(Ok(last)).expect("report");
        within("the reply", replies(&mut link, 1)).await;
    }
    let all: f64 = ["synced", "input", "timeout"]
        .iter()
        .map(|o| polls(&metrics, o))
        .sum();
    assert_eq!(all, 0.0);
}
