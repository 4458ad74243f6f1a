//! Building Bayeux replies.

use serde_json::{Value, json};

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
