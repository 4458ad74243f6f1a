//! Scenario tests in the style of quinn-proto's: a small harness drives the engine with inputs
//! and a clock of its own, and each test asserts on the exact outputs, in order (which
//! connection, which message, every attribute), not on a summary of them.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ixn_codec::Message;
use ixn_config::{Config, DEMO_TOML};
use ixn_core::{ConnId, Engine, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The engine, a clock, and the outputs of the last input.
struct Harness {
    engine: Engine,
    now: SystemTime,
}

/// One output as the test reads it: the connection, then the message in the JSON form exactly
/// as the recipient gets it (ProxyClientId included), or `close` with the reason.
type Out = (u64, String);

impl Harness {
    fn new() -> Self {
        let config = Config::from_toml_str(DEMO_TOML, "demo.toml").unwrap();
        Self {
            engine: Engine::new(Arc::new(config), 7),
            // 2026-11-21T08:00:00Z
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_248_000),
        }
    }

    /// Moves the clock on.
    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// `json` arrives on `conn`; returns every output, in order.
    fn send(&mut self, conn: u64, json: &str) -> Vec<Out> {
        let msg = Message::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let mut out = Vec::new();
        self.engine.handle(self.now, ConnId(conn), &msg, &mut out);
        out.iter().map(show).collect()
    }

    /// `conn` ends; returns the outputs (none, by contract).
    fn close(&mut self, conn: u64) -> Vec<Out> {
        let mut out = Vec::new();
        self.engine.close(ConnId(conn), &mut out);
        out.iter().map(show).collect()
    }

    /// Sends and expects exactly `want`.
    fn expect(&mut self, conn: u64, json: &str, want: &[(u64, &str)]) {
        let got = self.send(conn, json);
        let want: Vec<Out> = want.iter().map(|(c, m)| (*c, normalize(m))).collect();
        assert_eq!(got, want, "after {json}");
    }

    fn desk(&mut self, conn: u64, agent: &str, place: &str) {
        self.send(
            conn,
            r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#,
        );
        let login = format!(
            r#"{{"message":"RequestAgentLogin","ReferenceId":2,"TenantId":101,"AgentId":"{agent}","PlaceId":"{place}"}}"#
        );
        let out = self.send(conn, &login);
        assert!(out[0].1.contains("EventAck"), "{out:?}");
    }

    fn media(&mut self, conn: u64) {
        let out = self.send(
            conn,
            r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"emailsrv","ClientType":"MediaServer"}"#,
        );
        assert!(out[0].1.contains("EventAck"), "{out:?}");
    }
}

fn show(o: &Output) -> Out {
    match o {
        Output::Send { conn, .. } => (conn.0, o.message().unwrap().to_json().unwrap()),
        Output::Close { conn, reason } => (conn.0, format!("close: {reason}")),
    }
}

/// A message written by hand, in the engine's JSON form (key order as given).
fn normalize(json: &str) -> String {
    if json.starts_with("close: ") {
        return json.to_owned();
    }
    Message::from_json(json).unwrap().to_json().unwrap()
}

const DRAFTS_A1: &str = r#"{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"}"#;

#[test]
fn a_place_notifies_after_the_reply_with_the_clock_in_received_at() {
    let mut h = Harness::new();
    h.desk(1, "a1", "p1");
    h.expect(
        1,
        &format!(
            r#"{{"message":"RequestWorkbinNotifications","ReferenceId":3,"Workbin":{DRAFTS_A1}}}"#
        ),
        &[(1, r#"{"message":"EventAck","ReferenceId":3}"#)],
    );
    h.media(2);
    h.advance(Duration::from_secs(90));
    h.expect(
        2,
        r#"{"message":"RequestSubmit","ReferenceId":4,"TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX1","UserData":{"Subject":"Hi"}}"#,
        &[(2, r#"{"message":"EventAck","ReferenceId":4,"InteractionId":"IX1"}"#)],
    );
    // The subscriber's notification comes after the requester's reply, and carries the
    // interaction exactly as stored: ReceivedAt is the harness clock at the submit.
    h.expect(
        2,
        &format!(r#"{{"message":"RequestPlaceInWorkbin","ReferenceId":5,"InteractionId":"IX1","Workbin":{DRAFTS_A1}}}"#),
        &[
            (2, r#"{"message":"EventAck","ReferenceId":5}"#),
            (
                1,
                &format!(
                    r#"{{"message":"EventWorkbinContentChanged","Workbin":{DRAFTS_A1},"WorkbinContentOperation":"PlacedIn","Interaction":{{"InteractionId":"IX1","TenantId":101,"MediaType":"email","InteractionType":"Inbound","InteractionState":"InWorkbin","InteractionWorkbinTypeId":"Drafts","InteractionAgentId":"a1","SubmittedBy":"emailsrv","ReceivedAt":"2026-11-21T08:01:30Z","UserData":{{"Subject":"Hi"}}}}}}"#
                ),
            ),
        ],
    );
}

#[test]
fn a_failed_request_gets_one_error_and_nothing_else() {
    let mut h = Harness::new();
    h.desk(1, "a1", "p1");
    h.desk(2, "a2", "p2");
    h.expect(
        2,
        r#"{"message":"RequestWorkbinNotifications","ReferenceId":3,"Workbin":{"WorkbinTypeId":"Team","WorkbinGroupId":"Sales"}}"#,
        &[(2, r#"{"message":"EventAck","ReferenceId":3}"#)],
    );
    h.expect(
        1,
        r#"{"message":"RequestGetWorkbinContent","ReferenceId":9,"Workbin":{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a2"}}"#,
        &[(
            1,
            r#"{"message":"EventError","ReferenceId":9,"ErrorCode":13,"ErrorDescription":"agent \"a1\" may not access workbin \"Drafts\" of agent \"a2\""}"#,
        )],
    );
    h.expect(
        1,
        r#"{"message":"RequestPlaceInWorkbin","ReferenceId":10,"InteractionId":"nope","Workbin":{"WorkbinTypeId":"Team","WorkbinGroupId":"Sales"}}"#,
        &[(
            1,
            r#"{"message":"EventError","ReferenceId":10,"ErrorCode":12,"ErrorDescription":"unknown interaction \"nope\""}"#,
        )],
    );
}

#[test]
fn a_request_before_registration_is_refused_and_the_connection_closed() {
    let mut h = Harness::new();
    h.expect(
        5,
        r#"{"message":"RequestAgentLogout","ReferenceId":1}"#,
        &[
            (
                5,
                r#"{"message":"EventError","ReferenceId":1,"ErrorCode":1,"ErrorDescription":"the first request on a connection must be RequestRegisterClient"}"#,
            ),
            (5, "close: first request was not RequestRegisterClient"),
        ],
    );
    // Ping needs no registration.
    h.expect(
        6,
        r#"{"message":"Ping","ReferenceId":7}"#,
        &[(6, r#"{"message":"Ping","ReferenceId":7}"#)],
    );
}

#[test]
fn a_proxys_logical_clients_are_addressed_by_proxy_client_id() {
    let mut h = Harness::new();
    h.expect(
        1,
        r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"gws","ClientType":"Proxy"}"#,
        &[(1, r#"{"message":"EventAck","ReferenceId":1,"ProxyClientId":1}"#)],
    );
    h.expect(
        1,
        r#"{"message":"RequestRegisterClient","ReferenceId":2,"ClientName":"desk","ClientType":"AgentApplication"}"#,
        &[(1, r#"{"message":"EventAck","ReferenceId":2,"ProxyClientId":2}"#)],
    );
    h.expect(
        1,
        r#"{"message":"RequestAgentLogin","ReferenceId":3,"ProxyClientId":2,"TenantId":101,"AgentId":"a1","PlaceId":"p1"}"#,
        &[(1, r#"{"message":"EventAck","ReferenceId":3,"ProxyClientId":2}"#)],
    );
    h.expect(
        1,
        &format!(r#"{{"message":"RequestWorkbinNotifications","ReferenceId":4,"ProxyClientId":2,"Workbin":{DRAFTS_A1}}}"#),
        &[(1, r#"{"message":"EventAck","ReferenceId":4,"ProxyClientId":2}"#)],
    );
    // A request naming no logical client is refused; the connection stays.
    h.expect(
        1,
        r#"{"message":"RequestAgentLogout","ReferenceId":5,"ProxyClientId":9}"#,
        &[(
            1,
            r#"{"message":"EventError","ReferenceId":5,"ErrorCode":1,"ErrorDescription":"a request on a proxy connection must name a registered logical client in ProxyClientId"}"#,
        )],
    );
    // The logical client's notification carries its ProxyClientId, last.
    h.media(2);
    h.send(
        2,
        r#"{"message":"RequestSubmit","ReferenceId":6,"TenantId":101,"MediaType":"chat","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX2"}"#,
    );
    let out = h.send(
        2,
        &format!(r#"{{"message":"RequestPlaceInWorkbin","ReferenceId":7,"InteractionId":"IX2","Workbin":{DRAFTS_A1}}}"#),
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1].0, 1);
    assert!(out[1].1.ends_with(r#""ProxyClientId":2}"#), "{}", out[1].1);
}

#[test]
fn a_closed_connection_hears_nothing_more_and_its_agent_may_log_in_again() {
    let mut h = Harness::new();
    h.desk(1, "a1", "p1");
    h.send(
        1,
        &format!(
            r#"{{"message":"RequestWorkbinNotifications","ReferenceId":3,"Workbin":{DRAFTS_A1}}}"#
        ),
    );
    assert_eq!(h.close(1), Vec::<Out>::new());
    h.media(2);
    h.send(
        2,
        r#"{"message":"RequestSubmit","ReferenceId":4,"TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX3"}"#,
    );
    h.expect(
        2,
        &format!(r#"{{"message":"RequestPlaceInWorkbin","ReferenceId":5,"InteractionId":"IX3","Workbin":{DRAFTS_A1}}}"#),
        &[(2, r#"{"message":"EventAck","ReferenceId":5}"#)],
    );
    h.desk(3, "a1", "p1");
}

#[test]
fn pull_naming_a_workbin_checks_and_moves_in_one_step() {
    let mut h = Harness::new();
    h.desk(1, "a1", "p1");
    h.media(2);
    h.send(
        2,
        r#"{"message":"RequestSubmit","ReferenceId":3,"TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX4"}"#,
    );
    h.expect(
        1,
        &format!(r#"{{"message":"RequestPull","ReferenceId":4,"ViewId":"_system_","PullParameters":{{"id":"IX4"}},"Workbin":{DRAFTS_A1}}}"#),
        &[(
            1,
            r#"{"message":"EventError","ReferenceId":4,"ErrorCode":14,"ErrorDescription":"interaction \"IX4\" is not in workbin \"Drafts\" of agent \"a1\" (it is queued in \"Inbound\")"}"#,
        )],
    );
    let out = h.send(
        1,
        r#"{"message":"RequestPull","ReferenceId":5,"ViewId":"_system_","PullParameters":{"id":"IX4"}}"#,
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].1.contains(r#""AssignedTo":"a1""#), "{}", out[0].1);
}
