//! What the console does to interactions, each a native request on the caller's logical
//! client (the engine checks access and locks): read one, change its user data, move it to a
//! workbin or a queue, complete, lock and unlock it, one at a time or many at once; and the
//! workbin subscriptions whose changes reach the page over CometD (`/v2/me/workbins`).

use super::shared::{Console, ConsoleError};
use crate::gws::WorkbinRef;
use crate::hub::Hub;
use crate::v3::management::{Outcome, each, move_ids};
use crate::v3::workspace::{ask, read_interaction};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ixn_codec::{KvList, Message, MessageId, Value as Wire, attr};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::sync::Arc;

type Shared = State<Arc<Hub>>;

/// Interactions one bulk call names at most.
const MAX_BULK: usize = 500;
/// User data keys one change names at most.
const MAX_KEYS: usize = 100;

/// The keys a WorkbinInfo may have.
const WORKBIN_KEYS: [&str; 5] = [
    attr::WORKBIN_TYPE_ID,
    attr::WORKBIN_AGENT_ID,
    attr::WORKBIN_PLACE_ID,
    attr::WORKBIN_GROUP_ID,
    attr::WORKBIN_PLACE_GROUP_ID,
];

fn body<T: DeserializeOwned>(bytes: &[u8], example: &str) -> Result<T, ConsoleError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ConsoleError::bad(format!("the body does not fit ({e}); send {example}")))
}

/// A WorkbinInfo from the console's JSON (`{"WorkbinTypeId": "Drafts", "WorkbinAgentId": "a1"}`,
/// as `GET /console/api/workbins` lists it).
fn workbin_info(given: &Map<String, Value>) -> Result<KvList, ConsoleError> {
    let mut info = KvList::new();
    for (k, v) in given {
        let (Some(key), Some(v)) = (WORKBIN_KEYS.iter().find(|x| **x == k), v.as_str()) else {
            return Err(ConsoleError::bad(format!(
                "workbin key {k:?} is not one of {} with a string value",
                WORKBIN_KEYS.join(", ")
            )));
        };
        info.push(*key, v);
    }
    if info.get_str(attr::WORKBIN_TYPE_ID).is_none() {
        return Err(ConsoleError::bad("the workbin needs its WorkbinTypeId"));
    }
    Ok(info)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Subscription {
    workbin: Map<String, Value>,
    subscribe: bool,
}

/// `POST /console/api/subscriptions` `{"workbin": {...}, "subscribe": true}`: changes to the
/// workbin (placed in, taken out, properties changed) reach the caller's CometD sessions on
/// `/v2/me/workbins` as GWS `WorkbinStateChangeMessage`s.
pub(super) async fn subscribe(
    Console(web): Console,
    State(hub): Shared,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ConsoleError> {
    let req: Subscription = body(
        &bytes,
        "{\"workbin\": {\"WorkbinTypeId\": \"Drafts\", \"WorkbinAgentId\": \"a1\"}, \"subscribe\": true}",
    )?;
    let info = workbin_info(&req.workbin)?;
    let workbin = WorkbinRef::from_info(&hub.config, &info);
    let msg = if req.subscribe {
        Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
            .with(attr::WORKBIN, info)
            .with(attr::NOTIFY_PROPERTY_CHANGES, 1)
    } else {
        Message::new(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, info)
    };
    let reference = hub
        .link
        .subscription(web.client, msg, workbin, !req.subscribe, None)
        .await
        .map_err(|e| ConsoleError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({"referenceId": reference})))
}

/// `GET /console/api/interactions/{id}`: its properties and user data.
pub(super) async fn details(
    Console(web): Console,
    State(hub): Shared,
    Path(id): Path<String>,
) -> Result<Json<Value>, ConsoleError> {
    Ok(Json(
        json!({"interaction": read_interaction(&hub, &web, &id).await?}),
    ))
}

/// A user data value from JSON: a string or an integer.
fn wire_value(key: &str, v: &Value) -> Result<Wire, ConsoleError> {
    match v {
        Value::String(s) => Ok(Wire::from(s.as_str())),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Wire::from)
            .ok_or_else(|| ConsoleError::bad(format!("{key:?}: {n} is not a 32-bit integer"))),
        _ => Err(ConsoleError::bad(format!(
            "{key:?}: a user data value is a string or an integer"
        ))),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Target {
    /// `move`: a workbin (WorkbinInfo keys) ...
    workbin: Option<Map<String, Value>>,
    /// ... or a queue.
    queue: Option<String>,
    /// `user-data`: keys to set.
    set: Map<String, Value>,
    /// `user-data`: keys to delete.
    delete: Vec<String>,
    /// `bulk`: the interactions.
    ids: Vec<String>,
}

/// RequestPlaceInWorkbin or RequestPlaceInQueue for `move`.
fn destination(t: &Target) -> Result<(&'static str, Wire), ConsoleError> {
    match (&t.workbin, &t.queue) {
        (Some(w), None) => Ok((attr::WORKBIN, Wire::from(workbin_info(w)?))),
        (None, Some(q)) => Ok((attr::QUEUE, Wire::from(q.as_str()))),
        _ => Err(ConsoleError::bad(
            "name the destination: {\"workbin\": {\"WorkbinTypeId\": ...}} or {\"queue\": \"Inbound\"}",
        )),
    }
}

/// The request `action` makes (those that need only the interaction's id).
fn simple(action: &str) -> Result<MessageId, ConsoleError> {
    Ok(match action {
        "complete" => MessageId::REQUEST_STOP_PROCESSING,
        "lock" => MessageId::REQUEST_LOCK_INTERACTION,
        "unlock" => MessageId::REQUEST_UNLOCK_INTERACTION,
        other => {
            return Err(ConsoleError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no action {other:?}: use user-data, move, complete, lock or unlock (bulk: move, complete, lock, unlock)"
                ),
            ));
        }
    })
}

/// `POST /console/api/interactions/{id}/{action}`: `user-data` (`{"set": {k: v}, "delete":
/// [k]}`), `move` (`{"workbin": {...}}` or `{"queue": "..."}`), `complete`, `lock`, `unlock`.
pub(super) async fn one(
    Console(web): Console,
    State(hub): Shared,
    Path((id, action)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ConsoleError> {
    let t: Target = if bytes.is_empty() {
        Target::default()
    } else {
        body(&bytes, "{\"set\": {\"Subject\": \"...\"}}")?
    };
    let msg = match action.as_str() {
        "user-data" => user_data(&id, &t)?,
        "move" => {
            let (key, value) = destination(&t)?;
            let m = if key == attr::QUEUE {
                MessageId::REQUEST_PLACE_IN_QUEUE
            } else {
                MessageId::REQUEST_PLACE_IN_WORKBIN
            };
            Message::new(m)
                .with(attr::INTERACTION_ID, id.as_str())
                .with(key, value)
        }
        other => Message::new(simple(other)?).with(attr::INTERACTION_ID, id.as_str()),
    };
    ask(&hub, &web, msg, MessageId::EVENT_ACK).await?;
    Ok(Json(json!({})))
}

/// RequestChangeProperties: `set` as ChangedProperties, `delete` as DeletedProperties.
fn user_data(id: &str, t: &Target) -> Result<Message, ConsoleError> {
    if t.set.is_empty() && t.delete.is_empty() {
        return Err(ConsoleError::bad(
            "nothing to change: send {\"set\": {\"key\": \"value\"}} and/or {\"delete\": [\"key\"]}",
        ));
    }
    if t.set.len() + t.delete.len() > MAX_KEYS {
        return Err(ConsoleError::bad(format!(
            "at most {MAX_KEYS} keys in one change"
        )));
    }
    let mut msg = Message::new(MessageId::REQUEST_CHANGE_PROPERTIES).with(attr::INTERACTION_ID, id);
    if !t.set.is_empty() {
        let mut set = KvList::new();
        for (k, v) in &t.set {
            set.push(k.clone(), wire_value(k, v)?);
        }
        msg.attrs.push(attr::CHANGED_PROPERTIES, set);
    }
    if !t.delete.is_empty() {
        let mut deleted = KvList::new();
        for k in &t.delete {
            deleted.push(k.clone(), "");
        }
        msg.attrs.push(attr::DELETED_PROPERTIES, deleted);
    }
    Ok(msg)
}

/// `POST /console/api/bulk/{action}` `{"ids": [...], ...}`: `move` (to `workbin` or `queue`:
/// one RequestMoveInteractions per 100), `complete`, `lock`, `unlock` (one request each):
/// `{"done": [ids], "failed": [{"id", "message"}]}`.
pub(super) async fn bulk(
    Console(web): Console,
    State(hub): Shared,
    Path(action): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ConsoleError> {
    let t: Target = body(&bytes, "{\"ids\": [\"...\"], \"queue\": \"Inbound\"}")?;
    if t.ids.is_empty() || t.ids.len() > MAX_BULK {
        return Err(ConsoleError::bad(format!(
            "name 1 to {MAX_BULK} interactions in \"ids\""
        )));
    }
    let mut out = Outcome::default();
    if action == "move" {
        let target = destination(&t)?;
        move_ids(&hub, &web, &t.ids, target, &mut out).await?;
    } else {
        let m = simple(&action)?;
        let request = |id: &str| Message::new(m).with(attr::INTERACTION_ID, id);
        each(&hub, &web, &t.ids, request, &mut out).await;
    }
    Ok(Json(json!({"done": out.succeeded, "failed": out.failed})))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn workbin_info_takes_only_workbin_keys() {
        let ok = serde_json::json!({"WorkbinTypeId": "Drafts", "WorkbinAgentId": "a1"});
        let info = super::workbin_info(ok.as_object().unwrap()).unwrap();
        assert_eq!(info.len(), 2);
        for bad in [
            serde_json::json!({"WorkbinTypeId": "Drafts", "Queue": "x"}),
            serde_json::json!({"WorkbinAgentId": "a1"}),
            serde_json::json!({"WorkbinTypeId": 7}),
        ] {
            assert!(super::workbin_info(bad.as_object().unwrap()).is_err());
        }
    }
}
