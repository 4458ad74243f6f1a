//! A standby's engine answers every message with EventError NotActive (20), naming the
//! active server when one is known, and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_codec::{ErrorCode, Message, MessageId, attr};
use ixn_config::{Config, DEMO_TOML};
use ixn_core::{ConnId, Engine, Output, Role};
use std::sync::Arc;
use std::time::SystemTime;

fn engine() -> Engine {
    Engine::new(
        Arc::new(Config::from_toml_str(DEMO_TOML, "demo.toml").unwrap()),
        7,
    )
}

fn only_reply(out: &[Output]) -> &Message {
    match out {
        [Output::Send { msg, .. }] => msg,
        other => panic!("expected exactly one reply, got {other:?}"),
    }
}

fn register(reference: i32) -> Message {
    Message::new(MessageId::REQUEST_REGISTER_CLIENT)
        .with(attr::REFERENCE_ID, reference)
        .with(attr::CLIENT_NAME, "desk")
        .with(attr::CLIENT_TYPE, 1)
}

#[test]
fn a_standby_refuses_everything_and_names_the_active_server() {
    let mut e = engine();
    e.stand_by(Some("10.0.0.7:7000".to_owned()));
    assert_eq!(
        e.role(),
        &Role::Standby {
            active: Some("10.0.0.7:7000".to_owned())
        }
    );
    let conn = ConnId(1);
    e.open(conn);
    for msg in [
        register(5),
        Message::new(MessageId::PING).with(attr::REFERENCE_ID, 5),
    ] {
        let mut out = Vec::new();
        e.handle(SystemTime::now(), conn, &msg, &mut out);
        let reply = only_reply(&out);
        assert_eq!(reply.id, MessageId::EVENT_ERROR, "{reply:?}");
        assert_eq!(
            reply.attrs.get_int(attr::ERROR_CODE),
            Some(ErrorCode::NotActive.to_int())
        );
        assert_eq!(ErrorCode::NotActive.to_int(), 20);
        assert_eq!(reply.attrs.get_int(attr::REFERENCE_ID), Some(5));
        assert_eq!(
            reply
                .attrs
                .get_str(attr::ACTIVE_SERVER)
                .map(|s| s.to_string()),
            Some("10.0.0.7:7000".to_owned())
        );
    }
    assert!(!e.is_registered(conn), "a standby registers nobody");
}

#[test]
fn a_standby_without_an_active_server_says_so() {
    let mut e = engine();
    e.stand_by(None);
    let conn = ConnId(1);
    e.open(conn);
    let mut out = Vec::new();
    e.handle(SystemTime::now(), conn, &register(1), &mut out);
    let reply = only_reply(&out);
    assert_eq!(
        reply.attrs.get_int(attr::ERROR_CODE),
        Some(ErrorCode::NotActive.to_int())
    );
    assert!(reply.attrs.get_str(attr::ACTIVE_SERVER).is_none());
    let text = reply
        .attrs
        .get_str(attr::ERROR_DESCRIPTION)
        .unwrap()
        .to_string();
    assert!(text.contains("no server is active"), "{text}");
}

#[test]
fn an_active_engine_registers_as_before() {
    let mut e = engine();
    assert!(e.is_active());
    let conn = ConnId(1);
    e.open(conn);
    let mut out = Vec::new();
    e.handle(SystemTime::now(), conn, &register(1), &mut out);
    assert_eq!(only_reply(&out).id, MessageId::EVENT_ACK);
}
