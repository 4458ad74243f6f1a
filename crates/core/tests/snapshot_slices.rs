//! A snapshot that must read more than one slice is answered by `Engine::work`, a slice at a
//! time: other clients are served in between, the requester's later requests wait behind it
//! and come back in order with the answer, a closed connection ends its scan, and too many
//! waiting requests are refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ixn_codec::{ErrorCode, Message, MessageId, attr};
use ixn_core::{ConnId, Engine, Finished, MAX_HELD_BEHIND_SCAN, Output, SCAN_SLICE};
use std::sync::Arc;
use std::time::SystemTime;

const NOW: SystemTime = SystemTime::UNIX_EPOCH;
/// More than three slices.
const N: usize = 3 * SCAN_SLICE + 7;

fn engine() -> Engine {
    let config =
        Arc::new(ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo.toml").unwrap());
    let mut e = Engine::new(config, 3);
    for conn in [1, 2] {
        let mut out = Vec::new();
        e.handle(
            NOW,
            ConnId(conn),
            &Message::new(MessageId::REQUEST_REGISTER_CLIENT)
                .with(attr::CLIENT_NAME, "emailsrv")
                .with(attr::CLIENT_TYPE, 2),
            &mut out,
        );
    }
    for i in 0..N {
        let mut out = Vec::new();
        // One a second, so that an early stop going backward in time finds no ties.
        e.handle(
            NOW + std::time::Duration::from_secs(i as u64),
            ConnId(1),
            &Message::new(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, if i % 2 == 0 { "chat" } else { "email" })
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, "Inbound"),
            &mut out,
        );
        assert_eq!(out[0].message().unwrap().id, MessageId::EVENT_ACK);
    }
    e
}

fn take(condition: &str, reference: i32) -> Message {
    Message::new(MessageId::REQUEST_TAKE_SNAPSHOT)
        .with(attr::REFERENCE_ID, reference)
        .with(attr::CONDITION, condition)
}

fn ping(reference: i32) -> Message {
    Message::new(MessageId::PING).with(attr::REFERENCE_ID, reference)
}

/// Calls `work` until a scan is answered; how many calls it took.
fn work_until_answered(e: &mut Engine, out: &mut Vec<Output>) -> (usize, Finished) {
    for calls in 1..=N {
        if let Some(f) = e.work(NOW, out) {
            return (calls, f);
        }
        assert!(
            out.is_empty(),
            "a slice that did not finish answered {out:?}"
        );
    }
    panic!("the scan never finished");
}

#[test]
fn a_long_scan_is_answered_a_slice_at_a_time_and_keeps_its_clients_order() {
    // Every slot; the queue's index in an order it is not kept in (read whole).
    for (condition, order) in [
        ("MediaType = 'chat'", ""),
        (
            "Queue = 'Inbound' AND MediaType = 'chat'",
            "InteractionId DESC",
        ),
    ] {
        let mut e = engine();
        let mut out = Vec::new();
        e.handle(
            NOW,
            ConnId(1),
            &take(condition, 1).with(attr::ORDER, order),
            &mut out,
        );
        assert!(out.is_empty(), "answered at once: {out:?}");
        assert!(e.has_work());
        // The requester's next request waits; another client is served at once.
        e.handle(NOW, ConnId(1), &ping(2), &mut out);
        assert!(out.is_empty(), "{out:?}");
        e.handle(NOW, ConnId(2), &ping(3), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn(), ConnId(2));
        out.clear();
        let (calls, finished) = work_until_answered(&mut e, &mut out);
        assert!(calls >= 3, "{condition}: {calls} slices");
        assert!(!e.has_work());
        let reply = out[0].message().unwrap();
        assert_eq!(reply.id, MessageId::EVENT_SNAPSHOT_TAKEN, "{reply:?}");
        assert_eq!(reply.reference_id(), Some(1));
        // The default cap: 500 of the N / 2 chats.
        assert_eq!(reply.attrs.get_int(attr::NUMBER_OF_INTERACTIONS), Some(500));
        assert_eq!(finished.conn, ConnId(1));
        assert_eq!(finished.held.len(), 1);
        assert_eq!(finished.held[0].reference_id(), Some(2));
    }
}

#[test]
fn a_scan_of_a_queue_in_its_own_order_stops_once_it_has_enough() {
    let mut e = engine();
    let mut out = Vec::new();
    let condition = "Queue = 'Inbound' AND MediaType = 'chat'";
    for order in ["", "ReceivedAt", "ReceivedAt DESC"] {
        out.clear();
        e.handle(
            NOW,
            ConnId(1),
            &take(condition, 1).with(attr::ORDER, order),
            &mut out,
        );
        // 500 chats among the first (or last) thousand or so: one slice.
        let reply = out
            .first()
            .and_then(Output::message)
            .unwrap_or_else(|| panic!("{order:?}"));
        assert_eq!(
            reply.attrs.get_int(attr::NUMBER_OF_INTERACTIONS),
            Some(500),
            "{order:?}"
        );
        assert!(!e.has_work());
    }
}

#[test]
fn a_scan_whose_connection_closes_ends_unanswered() {
    let mut e = engine();
    let mut out = Vec::new();
    e.handle(NOW, ConnId(1), &take("MediaType = 'chat'", 1), &mut out);
    assert!(e.has_work());
    e.close(ConnId(1), &mut out);
    assert!(!e.has_work());
    assert!(e.work(NOW, &mut out).is_none());
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn requests_past_the_bound_behind_a_scan_are_refused() {
    let mut e = engine();
    let mut out = Vec::new();
    e.handle(NOW, ConnId(1), &take("MediaType = 'chat'", 1), &mut out);
    for r in 0..MAX_HELD_BEHIND_SCAN {
        e.handle(NOW, ConnId(1), &ping(10 + r as i32), &mut out);
    }
    assert!(out.is_empty());
    e.handle(NOW, ConnId(1), &ping(-1), &mut out);
    let refused = out[0].message().unwrap();
    assert_eq!(refused.reference_id(), Some(-1));
    assert_eq!(
        refused
            .attrs
            .get_int(attr::ERROR_CODE)
            .map(ErrorCode::from_int),
        Some(ErrorCode::LimitExceeded),
        "{refused:?}"
    );
    out.clear();
    let (_, finished) = work_until_answered(&mut e, &mut out);
    assert_eq!(finished.held.len(), MAX_HELD_BEHIND_SCAN);
    let refs: Vec<_> = finished.held.iter().map(|m| m.reference_id()).collect();
    let want: Vec<_> = (0..MAX_HELD_BEHIND_SCAN)
        .map(|r| Some(10 + r as i32))
        .collect();
    assert_eq!(refs, want, "held requests come back in order");
}

/// The answer to `msg` from conn 1: at once, or from `work`.
fn answer(e: &mut Engine, msg: &Message) -> Message {
    let mut out = Vec::new();
    e.handle(NOW, ConnId(1), msg, &mut out);
    if out.is_empty() {
        work_until_answered(e, &mut out);
    }
    out[0].message().unwrap()
}

#[test]
fn a_sliced_scan_selects_what_an_index_selects() {
    // A scan over every slot (sliced) against one over the queue's index (stopping early in
    // its own order, sliced in another): the same ids.
    let mut e = engine();
    for order in ["ReceivedAt DESC", "InteractionId DESC", ""] {
        let mut ids = Vec::new();
        for condition in ["NOT NOT (Queue = 'Inbound')", "Queue = 'Inbound'"] {
            let taken = answer(&mut e, &take(condition, 1).with(attr::ORDER, order));
            let sid = taken.attrs.get_str(attr::SNAPSHOT_ID).unwrap().clone();
            let page = answer(
                &mut e,
                &Message::new(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
                    .with(attr::SNAPSHOT_ID, sid.clone())
                    .with(attr::START_FROM, 0)
                    .with(attr::NUMBER_OF_INTERACTIONS, 500),
            );
            answer(
                &mut e,
                &Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, sid),
            );
            let list = page.attrs.get_list(attr::INTERACTIONS).unwrap();
            ids.push(list.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>());
        }
        assert_eq!(ids[0].len(), 500);
        assert_eq!(ids[0], ids[1], "{order:?}");
    }
}

#[test]
fn a_held_snapshot_costs_32_bytes_per_interaction() {
    let mut e = engine();
    assert_eq!(e.stats().snapshot_bytes, 0);
    let mut sids = Vec::new();
    for max in [500, 1, 137] {
        let taken = answer(
            &mut e,
            &take("Queue = 'Inbound'", 1).with(attr::SNAPSHOT_MAX_INTERACTIONS, max),
        );
        sids.push(taken.attrs.get_str(attr::SNAPSHOT_ID).unwrap().clone());
    }
    assert_eq!(e.stats().snapshot_bytes, 32 * (500 + 1 + 137));
    for sid in sids {
        answer(
            &mut e,
            &Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, sid),
        );
    }
    assert_eq!(e.stats().snapshot_bytes, 0);
}
