//! Building Bayeux replies.

use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Sets `key` on a JSON object (nothing for other values).
pub(crate) fn put(target: &mut Value, key: &str, value: Value) {
    if let Some(map) = target.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

pub(crate) fn set_id(reply: &mut Value, id: &Value) {
    if !id.is_null() {
        put(reply, "id", id.clone());
    }
}

/// The reply for an unknown or expired `clientId`: the client handshakes again.
pub(crate) fn unknown_session(id: &Value, channel: &str) -> Value {
    let mut reply = json!({
        "channel": channel,
        "successful": false,
        "error": "402::session_unknown",
        "advice": {"reconnect": "handshake", "interval": 0},
    });
    set_id(&mut reply, id);
    reply
}

pub(crate) fn failure(id: &Value, channel: &str, error: &str) -> Value {
    let mut reply = json!({"channel": channel, "successful": false, "error": error});
    set_id(&mut reply, id);
    reply
}

/// A Bayeux message as sent: its JSON text, written once and shared by every session it goes
/// to (a notification to a thousand sessions is serialized once, not a thousand times).
pub(crate) type Raw = Arc<RawValue>;

/// `v` as a [`Raw`] message.
pub(crate) fn raw(v: &Value) -> Raw {
    serde_json::value::to_raw_value(v)
        .map_or_else(|_| Arc::from(RawValue::NULL.to_owned()), Arc::from)
}

/// A batch of messages as the JSON array a transport sends.
pub(crate) fn batch_text(messages: &[Raw]) -> String {
    let len = messages.iter().map(|m| m.get().len() + 1).sum::<usize>();
    let mut out = String::with_capacity(len + 2);
    out.push('[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m.get());
    }
    out.push(']');
    out
}
