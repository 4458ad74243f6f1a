//! The runner is not a rubber stamp: wrong expectations, unread messages and missing closes
//! each fail their scenario with a line that says what arrived.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_conformance::{Embedded, load_dir, run_all};
use serde_json::json;

fn scenario(steps: serde_json::Value) -> serde_json::Value {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/config.json"
    ))
    .unwrap();
    json!({"name": "deliberately wrong", "config": serde_json::from_str::<serde_json::Value>(&config).unwrap(), "steps": steps})
}

fn register(client: &str) -> serde_json::Value {
    json!({"client": client, "send": {"message": "RequestRegisterClient", "ReferenceId": 1, "ClientName": "desk", "ClientType": "AgentApplication"}})
}

#[test]
fn each_kind_of_mismatch_fails_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("ixn-runner-fails-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "a-wrong-message",
            json!([register("d"), {"client": "d", "expect": {"message": "EventError"}}]),
            "should be \"EventError\"",
        ),
        ("b-unread", json!([register("d")]), "unexpected message"),
        (
            "c-not-closed",
            json!([register("d"), {"client": "d", "expect": {"message": "EventAck"}}, {"client": "d", "expect_closed": true}]),
            "still open",
        ),
        (
            "d-nothing",
            json!([register("d"), {"client": "d", "expect": {"message": "EventAck"}}, {"client": "d", "expect": {"message": "EventAck"}}]),
            "nothing arrived",
        ),
        (
            "e-not-silent",
            json!([register("d"), {"client": "d", "expect_silence": true}]),
            "expected silence",
        ),
    ];
    for (file, steps, _) in &cases {
        std::fs::write(
            dir.join(format!("{file}.json")),
            scenario(steps.clone()).to_string(),
        )
        .unwrap();
    }
    let scenarios = load_dir(&dir).unwrap();
    let mut report = Vec::new();
    let summary = run_all(&scenarios, &mut Embedded, &mut report).unwrap();
    let text = String::from_utf8(report).unwrap();
    assert_eq!((summary.passed, summary.failed), (0, cases.len()), "{text}");
    for (file, _, why) in &cases {
        let line = text.lines().find(|l| l.contains(file)).unwrap();
        assert!(line.starts_with("FAIL") && line.contains(why), "{line}");
    }
    assert!(text.ends_with("0 passed, 5 failed\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}
