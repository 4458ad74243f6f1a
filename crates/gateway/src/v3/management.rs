//! Supervisor media management, `POST /workspace/v3/media-management/...`, on the engine's
//! snapshots (docs/protocol.md, "Snapshots"): `get-snapshot` (`{"data": {"condition", "order",
//! "startIndex", "size"}}`), `{snapshotId}/get-snapshot-content` (`{"data": {"startIndex",
//! "size"}}`), `{snapshotId}/release-snapshot`; and the bulk operations on listed interactions
//! (`{"data": {"interactions": [ids], ...}}`): `move-to-workbin` (`workbinId`, `ownerId`) and
//! `move-to-queue` (`queue`), each one RequestMoveInteractions of a snapshot of exactly those
//! interactions; `complete` and `cancel` (RequestStopProcessing each); `manage-user-data`
//! (`addedUserData`, `updatedUserData`, `deletedUserData`: RequestChangeProperties each).
//!
//! Only an agent that supervises a group may use them (403 otherwise). Each is accepted (code
//! 1); the result follows on `/workspace/v3/media-management` as a `SnapshotMessage` carrying the
//! `operationId`: `SnapshotContent` (`snapshotId`, `count`, `startIndex`, `interactions`),
//! `SnapshotReleased`, or the operation's name with `succeeded` and `failed` (each failed id
//! with the engine's reason).

use super::workspace::{Workspace, ask, body_json, instance, operation_id};
use crate::hub::{Hub, WebSession};
use crate::v3_shapes::{V3Error, accepted, kv_list};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ixn_codec::{KvList, Message, MessageId, attr};
use serde_json::{Value, json};
use std::sync::Arc;

/// Where media management results are published.
pub(crate) const CHANNEL: &str = "/workspace/v3/media-management";
/// Interactions named in one snapshot condition at most (the rest go in further ones).
const IDS_PER_CONDITION: usize = 100;

type Shared = State<Arc<Hub>>;

/// The caller, if it supervises a group.
fn supervisor(hub: &Hub, web: &WebSession) -> Result<(), V3Error> {
    let me = &hub.config[web.agent];
    if me.supervises.is_empty() {
        return Err(V3Error::new(
            StatusCode::FORBIDDEN,
            format!(
                "agent {:?} supervises no group: media management is for supervisors",
                me.id
            ),
        ));
    }
    Ok(())
}

fn publish(hub: &Hub, web: &WebSession, kind: &str, operation_id: &str, mut fields: Value) {
    if let Some(map) = fields.as_object_mut() {
        map.insert("messageType".into(), json!("SnapshotMessage"));
        map.insert("notificationType".into(), json!(kind));
        map.insert("operationId".into(), json!(operation_id));
    }
    hub.publish_now(web.client, CHANNEL, &fields);
}

/// A non-negative integer field of `data`, or `default`.
fn index(data: &Value, key: &str, default: i32) -> Result<i32, V3Error> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| V3Error::bad(format!("data.{key} must be a number from 0, not {v}"))),
    }
}

/// Reads positions `start`.. (`size` of them) of snapshot `sid`.
async fn page(
    hub: &Hub,
    web: &WebSession,
    sid: &str,
    start: i32,
    size: i32,
) -> Result<Vec<Value>, V3Error> {
    let msg = Message::new(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
        .with(attr::SNAPSHOT_ID, sid)
        .with(attr::START_FROM, start)
        .with(attr::NUMBER_OF_INTERACTIONS, size.max(1));
    let reply = ask(hub, web, msg, MessageId::EVENT_SNAPSHOT_INTERACTIONS).await?;
    Ok(reply
        .attrs
        .get_list(attr::INTERACTIONS)
        .into_iter()
        .flatten()
        .map(|(id, props)| match props.as_list() {
            Some(p) if !p.is_empty() => crate::v3_shapes::interaction(p),
            // Gone since the snapshot was taken: its place is kept.
            _ => json!({"id": &**id, "state": "Gone"}),
        })
        .collect())
}

/// `POST /workspace/v3/media-management/get-snapshot`.
pub(super) async fn get_snapshot(
    Workspace(web): Workspace,
    State(hub): Shared,
    body: Bytes,
) -> Result<Response, V3Error> {
    supervisor(&hub, &web)?;
    let body = body_json(&body)?;
    let op = operation_id(&body);
    let data = body.get("data").unwrap_or(&Value::Null);
    let condition = data
        .get("condition")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            V3Error::bad(
                "data.condition is required, such as \"MediaType = 'email'\" (docs/conditions.md)",
            )
        })?;
    let (start, size) = (index(data, "startIndex", 0)?, index(data, "size", 100)?);
    let mut take = Message::new(MessageId::REQUEST_TAKE_SNAPSHOT).with(attr::CONDITION, condition);
    if let Some(order) = data.get("order").and_then(Value::as_str) {
        take.attrs.push(attr::ORDER, order);
    }
    let taken = ask(&hub, &web, take, MessageId::EVENT_SNAPSHOT_TAKEN).await?;
    let sid = taken
        .attrs
        .get_str(attr::SNAPSHOT_ID)
        .map(ToString::to_string)
        .unwrap_or_default();
    let count = taken
        .attrs
        .get_int(attr::NUMBER_OF_INTERACTIONS)
        .unwrap_or(0);
    let interactions = page(&hub, &web, &sid, start, size).await?;
    publish(
        &hub,
        &web,
        "SnapshotContent",
        &op,
        json!({"snapshotId": sid, "condition": condition, "count": count, "startIndex": start, "interactions": interactions}),
    );
    Ok(accepted(&op))
}

/// `POST /workspace/v3/media-management/{snapshotId}/{operation}`: `get-snapshot-content`,
/// `release-snapshot`.
pub(super) async fn with_snapshot(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path((sid, operation)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, V3Error> {
    supervisor(&hub, &web)?;
    let body = body_json(&body)?;
    let op = operation_id(&body);
    let data = body.get("data").unwrap_or(&Value::Null);
    match operation.as_str() {
        "get-snapshot-content" => {
            let (start, size) = (index(data, "startIndex", 0)?, index(data, "size", 100)?);
            let interactions = page(&hub, &web, &sid, start, size).await?;
            publish(
                &hub,
                &web,
                "SnapshotContent",
                &op,
                json!({"snapshotId": sid, "startIndex": start, "interactions": interactions}),
            );
        }
        "release-snapshot" => {
            let msg = Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT)
                .with(attr::SNAPSHOT_ID, sid.as_str());
            ask(&hub, &web, msg, MessageId::EVENT_ACK).await?;
            publish(
                &hub,
                &web,
                "SnapshotReleased",
                &op,
                json!({"snapshotId": sid}),
            );
        }
        other => {
            return Err(V3Error::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no snapshot operation {other:?}: use get-snapshot-content or release-snapshot"
                ),
            ));
        }
    }
    Ok(accepted(&op))
}

/// The interaction ids a bulk operation lists.
fn listed(data: &Value) -> Result<Vec<String>, V3Error> {
    let ids = data
        .get("interactions")
        .and_then(Value::as_array)
        .ok_or_else(|| V3Error::bad("data.interactions is required: a list of interaction ids"))?;
    ids.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| V3Error::bad(format!("data.interactions: {v} is not an id")))
        })
        .collect()
}

/// What a bulk operation did: the ids done, and the others with why.
#[derive(Default)]
struct Outcome {
    succeeded: Vec<String>,
    failed: Vec<Value>,
}

impl Outcome {
    fn failed(&mut self, id: &str, why: String) {
        self.failed.push(json!({"id": id, "message": why}));
    }
}

/// Moves `ids` to `target` (`Queue` or `Workbin`): a snapshot of exactly them (at most
/// [`IDS_PER_CONDITION`] at a time), RequestMoveInteractions, the snapshot released.
async fn move_ids(
    hub: &Hub,
    web: &WebSession,
    ids: &[String],
    target: (&'static str, ixn_codec::Value),
    out: &mut Outcome,
) -> Result<(), V3Error> {
    for chunk in ids.chunks(IDS_PER_CONDITION) {
        let quoted: Vec<String> = chunk
            .iter()
            .map(|id| format!("'{}'", id.replace('\'', "''")))
            .collect();
        let condition = format!("InteractionId IN ({})", quoted.join(", "));
        let take = Message::new(MessageId::REQUEST_TAKE_SNAPSHOT)
            .with(attr::CONDITION, condition)
            .with(attr::SNAPSHOT_MAX_INTERACTIONS, IDS_PER_CONDITION as i32);
        let taken = ask(hub, web, take, MessageId::EVENT_SNAPSHOT_TAKEN).await?;
        let sid = taken
            .attrs
            .get_str(attr::SNAPSHOT_ID)
            .cloned()
            .unwrap_or_default();
        // Which of them the snapshot holds (the others are gone, or not the supervisor's to see).
        let held = Message::new(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
            .with(attr::SNAPSHOT_ID, sid.clone())
            .with(attr::START_FROM, 0)
            .with(attr::NUMBER_OF_INTERACTIONS, IDS_PER_CONDITION as i32);
        let held = ask(hub, web, held, MessageId::EVENT_SNAPSHOT_INTERACTIONS).await;
        let mv = Message::new(MessageId::REQUEST_MOVE_INTERACTIONS)
            .with(attr::SNAPSHOT_ID, sid.clone())
            .with(target.0, target.1.clone());
        let moved = match &held {
            Ok(_) => ask(hub, web, mv, MessageId::EVENT_INTERACTION_MOVED).await,
            Err(e) => Err(V3Error::new(e.http, e.message.clone())),
        };
        let release =
            Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, sid);
        let _ = ask(hub, web, release, MessageId::EVENT_ACK).await;
        let (held, moved) = (held?, moved?);
        let held = held
            .attrs
            .get_list(attr::INTERACTIONS)
            .cloned()
            .unwrap_or_default();
        let not_moved = moved
            .attrs
            .get_list(attr::NOT_MOVED)
            .cloned()
            .unwrap_or_default();
        for id in chunk {
            if held.get(id).is_none() {
                out.failed(
                    id,
                    format!("interaction {id:?} does not exist or is not one this supervisor sees"),
                );
            } else if let Some(why) = not_moved.get_list(id) {
                let why = why
                    .get_str(attr::ERROR_DESCRIPTION)
                    .map_or_else(String::new, ToString::to_string);
                out.failed(id, why);
            } else {
                out.succeeded.push(id.clone());
            }
        }
    }
    Ok(())
}

/// Runs `request(id)` for each of `ids`, counting what the engine acknowledged.
async fn each(
    hub: &Hub,
    web: &WebSession,
    ids: &[String],
    request: impl Fn(&str) -> Message,
    out: &mut Outcome,
) {
    for id in ids {
        match ask(hub, web, request(id), MessageId::EVENT_ACK).await {
            Ok(_) => out.succeeded.push(id.clone()),
            Err(e) => out.failed(id, e.message),
        }
    }
}

/// `POST /workspace/v3/media-management/{operation}`: `move-to-workbin`, `move-to-queue`,
/// `complete`, `cancel`, `manage-user-data`.
pub(super) async fn bulk(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(operation): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    supervisor(&hub, &web)?;
    let body = body_json(&body)?;
    let op = operation_id(&body);
    let data = body.get("data").unwrap_or(&Value::Null);
    let ids = listed(data)?;
    let mut out = Outcome::default();
    let name = match operation.as_str() {
        "move-to-queue" => {
            let queue = data.get("queue").and_then(Value::as_str).ok_or_else(|| {
                V3Error::bad("data.queue is required: {\"data\": {\"queue\": \"Inbound\", \"interactions\": [...]}}")
            })?;
            move_ids(&hub, &web, &ids, (attr::QUEUE, queue.into()), &mut out).await?;
            "MoveToQueue"
        }
        "move-to-workbin" => {
            let workbin = data
                .get("workbinId")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    V3Error::bad("data.workbinId is required (and ownerId for an agent's workbin)")
                })?;
            let (info, _) = instance(&hub, &web, workbin, &body)?;
            move_ids(&hub, &web, &ids, (attr::WORKBIN, info.into()), &mut out).await?;
            "MoveToWorkbin"
        }
        "complete" | "cancel" => {
            let reason = if operation == "cancel" {
                "Canceled"
            } else {
                "Completed"
            };
            let stop = |id: &str| {
                Message::new(MessageId::REQUEST_STOP_PROCESSING)
                    .with(attr::INTERACTION_ID, id.to_owned())
                    .with(attr::REASON, reason)
            };
            each(&hub, &web, &ids, stop, &mut out).await;
            if operation == "cancel" {
                "Cancel"
            } else {
                "Complete"
            }
        }
        "manage-user-data" => {
            let mut change = Message::new(MessageId::REQUEST_CHANGE_PROPERTIES);
            for (field, key) in [
                ("addedUserData", attr::ADDED_PROPERTIES),
                ("updatedUserData", attr::CHANGED_PROPERTIES),
            ] {
                if let Some(v) = data.get(field) {
                    change.attrs.push(key, kv_list(v)?);
                }
            }
            if let Some(keys) = data.get("deletedUserData") {
                let deleted = kv_list(keys).or_else(|_| {
                    let mut l = KvList::new();
                    for k in keys
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        l.push(k.to_owned(), "");
                    }
                    Ok::<_, V3Error>(l)
                })?;
                change.attrs.push(attr::DELETED_PROPERTIES, deleted);
            }
            let request = |id: &str| {
                let mut m = change.clone();
                m.attrs.push(attr::INTERACTION_ID, id.to_owned());
                m
            };
            each(&hub, &web, &ids, request, &mut out).await;
            "ManageUserData"
        }
        other => {
            return Err(V3Error::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no media management operation {other:?}: use get-snapshot, move-to-workbin, move-to-queue, complete, cancel or manage-user-data"
                ),
            ));
        }
    };
    publish(
        &hub,
        &web,
        name,
        &op,
        json!({"succeeded": out.succeeded, "failed": out.failed}),
    );
    Ok(accepted(&op))
}
