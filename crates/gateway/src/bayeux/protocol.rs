//! One batch of Bayeux messages: handshake, subscribe, unsubscribe, disconnect answered at
//! once, `/meta/connect` handed back to the transport to hold. No I/O; time is `now`.

use super::reply::{failure, put, set_id, unknown_session};
use super::session::{Closed, Session};
use super::{Live, Registry, channels, lock};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// How a batch reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    LongPolling,
    WebSocket,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::LongPolling => "long-polling",
            Self::WebSocket => "websocket",
        }
    }
}

/// The timing settings of `[http]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// The longest a connect is held.
    pub(crate) connect_timeout_ms: u64,
    /// How long a session lives without a connect.
    pub(crate) max_interval: Duration,
}

/// A `/meta/connect` for the transport to answer after the other messages of its batch.
pub(crate) struct Connect {
    pub(crate) id: Value,
    pub(crate) session: Arc<Live>,
    pub(crate) timeout: Duration,
    pub(crate) acked: Option<u64>,
}

/// Parses a request body (or WebSocket frame): an array of messages, or one message.
pub(crate) fn parse_batch(text: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(m @ Value::Object(_)) => Ok(vec![m]),
        Ok(_) => Err("a Bayeux request is a JSON array of messages".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

/// Handles the non-connect messages of a batch from `caller` (the owner id of the web session
/// that sent it, if signed in); returns their replies and the connect to hold.
/// `new_client_id` makes a `clientId` for a handshake.
pub(crate) fn process(
    registry: &impl Registry,
    settings: Settings,
    caller: Option<i32>,
    batch: Vec<Value>,
    transport: Transport,
    now: Instant,
    new_client_id: &mut dyn FnMut() -> Option<String>,
) -> (Vec<Value>, Option<Connect>) {
    let mut replies = Vec::with_capacity(batch.len());
    let mut connect = None;
    // The spec: other messages batched with a handshake are ignored.
    let handshake = batch
        .iter()
        .find(|m| m.get("channel").and_then(Value::as_str) == Some("/meta/handshake"));
    let batch = match handshake {
        Some(h) => vec![h.clone()],
        None => batch,
    };
    for msg in batch {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let Some(channel) = msg.get("channel").and_then(Value::as_str) else {
            replies.push(failure(
                &id,
                "/meta/unknown",
                "400::a Bayeux message needs a channel",
            ));
            continue;
        };
        if channel == "/meta/handshake" {
            replies.push(handshake_reply(
                registry,
                settings,
                caller,
                &msg,
                &id,
                transport,
                now,
                new_client_id,
            ));
            continue;
        }
        // The session must belong to the caller's web session (no bare clientId is trusted).
        let session = msg
            .get("clientId")
            .and_then(Value::as_str)
            .and_then(|c| registry.find(c))
            .filter(|s| !s.is_closed() && caller == Some(s.owner));
        let Some(session) = session else {
            replies.push(unknown_session(&id, channel));
            continue;
        };
        registry.touch(session.owner);
        match channel {
            "/meta/connect" => {
                let asked = msg
                    .pointer("/advice/timeout")
                    .and_then(Value::as_u64)
                    .unwrap_or(settings.connect_timeout_ms);
                let acked = msg.pointer("/ext/ack").and_then(Value::as_u64);
                if let Some(previous) = connect.replace(Connect {
                    id,
                    session,
                    timeout: Duration::from_millis(asked.min(settings.connect_timeout_ms)),
                    acked,
                }) {
                    // Two connects in one batch: the first is answered empty.
                    let mut r = json!({"channel": "/meta/connect", "successful": true});
                    set_id(&mut r, &previous.id);
                    replies.push(r);
                }
            }
            "/meta/subscribe" | "/meta/unsubscribe" => {
                replies.push(subscription(&session, channel, &msg, &id));
            }
            "/meta/disconnect" => {
                registry.remove(&session.id);
                session.close(Closed::Disconnected);
                info!(session = %session.id, "CometD session disconnected");
                let mut r = json!({"channel": channel, "successful": true});
                set_id(&mut r, &id);
                replies.push(r);
            }
            _ => {
                // Publishing is not part of this API: clients only listen.
                replies.push(failure(&id, channel, "403::publish_denied"));
            }
        }
    }
    (replies, connect)
}

/// `/meta/subscribe` and `/meta/unsubscribe`: only the caller's own `/v2/me/` (GWS) and
/// `/workspace/v3/` (Workspace API) channels.
fn subscription(session: &Live, channel: &str, msg: &Value, id: &Value) -> Value {
    let subscribe = channel == "/meta/subscribe";
    let wanted: Vec<String> = match msg.get("subscription") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let mut reply = if wanted.is_empty() {
        failure(id, channel, "403::subscription_missing")
    } else if let Some(bad) = wanted.iter().find(|c| !channels::valid(c)) {
        failure(id, channel, &format!("403:{bad}:subscription_invalid"))
    } else if let Some(bad) = wanted
        .iter()
        .find(|c| subscribe && !c.starts_with("/v2/me/") && !c.starts_with("/workspace/v3/"))
    {
        failure(
            id,
            channel,
            &format!(
                "403:{bad}:subscription_denied: only the signed-in agent's /v2/me/ and /workspace/v3/ channels may be subscribed"
            ),
        )
    } else {
        lock(&session.state).set_subscriptions(&wanted, subscribe);
        let mut r = json!({"channel": channel, "successful": true});
        set_id(&mut r, id);
        r
    };
    put(
        &mut reply,
        "subscription",
        msg.get("subscription").cloned().unwrap_or(Value::Null),
    );
    put(&mut reply, "clientId", json!(session.id));
    reply
}

#[allow(clippy::too_many_arguments)]
fn handshake_reply(
    registry: &impl Registry,
    settings: Settings,
    caller: Option<i32>,
    msg: &Value,
    id: &Value,
    transport: Transport,
    now: Instant,
    new_client_id: &mut dyn FnMut() -> Option<String>,
) -> Value {
    let refuse = |error: &str, reconnect: Value| {
        let mut r = failure(id, "/meta/handshake", error);
        put(&mut r, "advice", reconnect);
        r
    };
    let Some(owner) = caller else {
        return refuse(
            "401::not authenticated: sign in with HTTP Basic (agent id and password) first",
            json!({"reconnect": "none"}),
        );
    };
    let ours = ["websocket", "long-polling"];
    let theirs: Vec<&str> = msg
        .get("supportedConnectionTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let common: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|t| theirs.contains(t))
        .collect();
    if common.is_empty() {
        return refuse(
            "400::no common connection type: this server offers websocket and long-polling",
            json!({"reconnect": "none"}),
        );
    }
    let Some(client_id) = new_client_id() else {
        return refuse(
            "500::no randomness for a client id",
            json!({"reconnect": "none"}),
        );
    };
    let ack = msg.pointer("/ext/ack") == Some(&Value::Bool(true));
    let session = Session::new(now, ack, settings.max_interval);
    if let Err(e) = registry.add(Arc::new(Live::new(client_id.clone(), owner, session))) {
        return refuse(
            &format!("503::{e}"),
            json!({"reconnect": "handshake", "interval": 10_000}),
        );
    }
    debug!(session = %client_id, transport = transport.name(), ack, "CometD handshake");
    let mut reply = json!({
        "channel": "/meta/handshake",
        "successful": true,
        "clientId": client_id,
        "version": "1.0",
        "minimumVersion": "1.0",
        "supportedConnectionTypes": common,
        "advice": {"reconnect": "retry", "interval": 0, "timeout": settings.connect_timeout_ms},
    });
    if ack {
        put(&mut reply, "ext", json!({"ack": true}));
    }
    set_id(&mut reply, id);
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A registry in a map, with a cap.
    #[derive(Default)]
    struct Map {
        sessions: Mutex<HashMap<String, Arc<Live>>>,
        cap: usize,
    }

    impl Registry for Map {
        fn find(&self, id: &str) -> Option<Arc<Live>> {
            lock(&self.sessions).get(id).cloned()
        }
        fn add(&self, live: Arc<Live>) -> Result<(), crate::bayeux::Refused> {
            let mut s = lock(&self.sessions);
            if s.len() >= self.cap {
                return Err(crate::bayeux::Refused::TooMany(self.cap));
            }
            s.insert(live.id.clone(), live);
            Ok(())
        }
        fn remove(&self, id: &str) {
            lock(&self.sessions).remove(id);
        }
        fn touch(&self, _: i32) {}
    }

    const SETTINGS: Settings = Settings {
        connect_timeout_ms: 30_000,
        max_interval: Duration::from_secs(10),
    };

    fn run(
        reg: &Map,
        caller: Option<i32>,
        batch: Value,
        now: Instant,
    ) -> (Vec<Value>, Option<Connect>) {
        let mut n = 0;
        let mut ids = || {
            n += 1;
            Some(format!("c{n}"))
        };
        let Value::Array(batch) = batch else {
            panic!("a batch is an array")
        };
        process(
            reg,
            SETTINGS,
            caller,
            batch,
            Transport::LongPolling,
            now,
            &mut ids,
        )
    }

    #[test]
    fn handshake_subscribe_connect_disconnect() {
        let reg = Map {
            cap: 1,
            ..Map::default()
        };
        let now = Instant::now();
        let hs = json!([{"id": "1", "channel": "/meta/handshake", "supportedConnectionTypes": ["long-polling"]}]);
        let (r, _) = run(&reg, None, hs.clone(), now);
        assert_eq!(
            r[0]["error"],
            json!("401::not authenticated: sign in with HTTP Basic (agent id and password) first")
        );
        let (r, _) = run(&reg, Some(7), hs.clone(), now);
        assert_eq!(
            (r[0]["successful"].clone(), r[0]["clientId"].clone()),
            (json!(true), json!("c1"))
        );
        assert_eq!(r[0]["supportedConnectionTypes"], json!(["long-polling"]));
        // Past the cap: 503 and advice to handshake later.
        let (r, _) = run(&reg, Some(7), hs, now);
        assert!(r[0]["error"].as_str().unwrap().starts_with("503::"));
        // Another web session cannot use c1.
        let sub = json!([{"id": "2", "channel": "/meta/subscribe", "clientId": "c1", "subscription": "/v2/me/workbins"}]);
        let (r, _) = run(&reg, Some(8), sub.clone(), now);
        assert_eq!(r[0]["error"], "402::session_unknown");
        let (r, _) = run(&reg, Some(7), sub, now);
        assert_eq!(r[0]["successful"], true);
        let denied =
            json!([{"channel": "/meta/subscribe", "clientId": "c1", "subscription": "/v2/other"}]);
        let (r, _) = run(&reg, Some(7), denied, now);
        assert!(
            r[0]["error"]
                .as_str()
                .unwrap()
                .contains("subscription_denied")
        );
        // Two connects in a batch: the first is answered at once, the second is held.
        let two = json!([{"id": "3", "channel": "/meta/connect", "clientId": "c1"}, {"id": "4", "channel": "/meta/connect", "clientId": "c1", "advice": {"timeout": 99_999_999}}]);
        let (r, c) = run(&reg, Some(7), two, now);
        assert_eq!(r[0]["id"], "3");
        let c = c.unwrap();
        assert_eq!(
            (c.id.clone(), c.timeout),
            (json!("4"), Duration::from_secs(30)),
            "clamped"
        );
        let bye = json!([{"id": "5", "channel": "/meta/disconnect", "clientId": "c1"}]);
        let (r, _) = run(&reg, Some(7), bye, now);
        assert_eq!(r[0]["successful"], true);
        assert!(reg.find("c1").is_none() && c.session.is_closed());
    }

    #[test]
    fn messages_batched_with_a_handshake_are_ignored() {
        let reg = Map {
            cap: 4,
            ..Map::default()
        };
        let batch = json!([{"channel": "/meta/connect", "clientId": "x"}, {"channel": "/meta/handshake", "supportedConnectionTypes": ["websocket"]}]);
        let (r, c) = run(&reg, Some(1), batch, Instant::now());
        assert_eq!(r.len(), 1);
        assert!(c.is_none());
        assert_eq!(r[0]["channel"], "/meta/handshake");
    }

    #[test]
    fn batches_parse() {
        assert_eq!(
            parse_batch(b"[{\"channel\":\"/meta/connect\"}]")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_batch(b"{\"channel\":\"/meta/connect\"}")
                .unwrap()
                .len(),
            1
        );
        assert!(parse_batch(b"3").is_err());
        assert!(parse_batch(b"[").is_err());
    }
}
