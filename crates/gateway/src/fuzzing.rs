//! The `bayeux` fuzz target's body (built for tests and fuzzing only): any bytes as Bayeux
//! batches get replies, never a panic, and the replies keep the protocol's shape.

use crate::bayeux::protocol::{Settings, Transport, parse_batch, process};
use crate::bayeux::session::Offer;
use crate::bayeux::{Live, Registry, lock};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sessions in a map, at most four.
#[derive(Default)]
struct Sessions(Mutex<HashMap<String, Arc<Live>>>);

impl Registry for Sessions {
    fn find(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.0).get(id).cloned()
    }
    fn add(&self, live: Arc<Live>) -> Result<(), crate::bayeux::Refused> {
        let mut s = lock(&self.0);
        if s.len() >= 4 {
            return Err(crate::bayeux::Refused::TooMany(4));
        }
        s.insert(live.id.clone(), live);
        Ok(())
    }
    fn remove(&self, id: &str) {
        lock(&self.0).remove(id);
    }
    fn touch(&self, _: i32) {}
}

/// `data` is up to three batches separated by newlines, sent in turn by owner 1 (the first
/// byte's low bit clear: unauthenticated). Client ids are `c1`, `c2`, ... so that later
/// batches can name a session. Between batches a message is published and held connects are
/// answered. Oracles: every reply is an object with a `channel` and a boolean `successful`,
/// and an `id` echoed when the message had one; a batch with a handshake gets one reply; a
/// session's queue never passes its bound.
pub fn bayeux(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let caller = (first & 1 == 1).then_some(1);
    let sessions = Sessions::default();
    let settings = Settings {
        connect_timeout_ms: 1000,
        max_interval: Duration::from_millis(500),
    };
    let mut n = 0;
    let mut now = Instant::now();
    for part in rest.split(|b| *b == b'\n').take(3) {
        let Ok(batch) = parse_batch(part) else {
            continue;
        };
        let handshake = batch
            .iter()
            .any(|m| m.get("channel").and_then(Value::as_str) == Some("/meta/handshake"));
        let ids: Vec<Value> = batch
            .iter()
            .map(|m| m.get("id").cloned().unwrap_or(Value::Null))
            .collect();
        let mut ids_fn = || {
            n += 1;
            Some(format!("c{n}"))
        };
        let (replies, connect) = process(
            &sessions,
            settings,
            caller,
            batch,
            Transport::LongPolling,
            now,
            &mut ids_fn,
        );
        if handshake {
            assert_eq!(
                replies.len(),
                1,
                "a handshake batch gets one reply: {replies:?}"
            );
            assert!(connect.is_none());
        }
        for r in &replies {
            assert!(r.get("channel").is_some_and(Value::is_string), "{r}");
            assert!(r.get("successful").is_some_and(Value::is_boolean), "{r}");
            if let Some(id) = r.get("id") {
                assert!(ids.contains(id), "{r} echoes an id nobody sent");
            }
        }
        // Publish, then answer the held connect.
        let message = json!({"channel": "/v2/me/workbins", "data": {"n": 1}});
        for live in lock(&sessions.0).values() {
            let offered = live.offer("/v2/me/workbins", &crate::bayeux::reply::raw(&message), 2);
            assert!(matches!(
                offered,
                Offer::Queued | Offer::Ignored | Offer::Full
            ));
        }
        if let Some(c) = connect {
            let mut state = lock(&c.session.state);
            let g = state.begin_connect(now, c.timeout, settings.max_interval, c.acked);
            let out = state.finish_connect(
                now,
                g,
                &c.id,
                settings.connect_timeout_ms,
                settings.max_interval,
            );
            assert!(
                out.last().is_some_and(|r| {
                    serde_json::from_str::<Value>(r.get())
                        .is_ok_and(|v| v.get("channel") == Some(&json!("/meta/connect")))
                }),
                "the connect reply comes last: {out:?}"
            );
            assert!(
                out.len() <= 3,
                "at most the queue bound (2) and the reply: {out:?}"
            );
        }
        now += Duration::from_millis(300);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The committed seed corpus and every regression replay clean on stable.
    #[test]
    fn bayeux_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut seen = 0;
        for kind in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(kind).join("bayeux")) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name() == ".gitkeep" {
                    continue;
                }
                bayeux(&std::fs::read(e.path()).unwrap_or_default());
                seen += 1;
            }
        }
        assert!(seen >= 3, "the bayeux seed corpus is missing");
    }
}
