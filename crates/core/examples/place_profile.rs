//! Profiling aid: one agent subscribed to a group workbin and a media server moving an
//! interaction between that workbin and another, N times (default 100,000). Prints the time per
//! request. Run it under `valgrind --tool=callgrind` to see where the instructions go.
//!
//! `cargo run --release -p ixn-core --example place_profile -- 1000000`

// A command-line aid: printing is its output, and a broken setup may panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::print_stdout)]

use ixn_codec::{KvList, Message, MessageId, attr};
use ixn_config::{Config, ConfigFile, Limits};
use ixn_core::{ConnId, Engine, Output};
use std::sync::Arc;
use std::time::SystemTime;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let cfg = Config::validate(ConfigFile::synthetic(4, 2, Limits::default())).unwrap();
    let mut e = Engine::new(Arc::new(cfg), 1);
    let mut out: Vec<Output> = Vec::new();
    let now = SystemTime::UNIX_EPOCH;
    let setup = [
        (
            1,
            r#"{"message":"RequestRegisterClient","ClientName":"desk","ClientType":"AgentApplication"}"#,
        ),
        (
            1,
            r#"{"message":"RequestAgentLogin","TenantId":101,"AgentId":"agent0","PlaceId":"place0"}"#,
        ),
        (
            1,
            r#"{"message":"RequestWorkbinNotifications","Workbin":{"WorkbinTypeId":"Team","WorkbinGroupId":"group0"}}"#,
        ),
        (
            2,
            r#"{"message":"RequestRegisterClient","ClientName":"media","ClientType":"MediaServer"}"#,
        ),
        (
            2,
            r#"{"message":"RequestSubmit","TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX1","UserData":{"Subject":"s","Priority":3}}"#,
        ),
    ];
    for (conn, json) in setup {
        out.clear();
        e.handle(
            now,
            ConnId(conn),
            &Message::from_json(json).unwrap(),
            &mut out,
        );
    }
    let wb = |g: &str| {
        KvList::new()
            .with(attr::WORKBIN_TYPE_ID, "Team")
            .with(attr::WORKBIN_GROUP_ID, g)
    };
    let place = |r: i32, g: &str| {
        Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
            .with(attr::REFERENCE_ID, r)
            .with(attr::INTERACTION_ID, "IX1")
            .with(attr::WORKBIN, wb(g))
    };
    let (a, b) = (place(1, "group0"), place(2, "group1"));
    let start = std::time::Instant::now();
    for i in 0..n {
        out.clear();
        e.handle(now, ConnId(2), if i % 2 == 0 { &a } else { &b }, &mut out);
    }
    let el = start.elapsed();
    println!(
        "{n} places in {el:?}: {:.0} ns each, {:.0}/s",
        el.as_nanos() as f64 / n as f64,
        n as f64 / el.as_secs_f64()
    );
}
