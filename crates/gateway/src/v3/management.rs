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

use super::workspace::{Workspace, ask, instance, operation_id, read_interaction, typed};
use crate::hub::{Hub, WebSession};
use crate::v3_shapes::bodies as b;
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
pub(crate) const IDS_PER_CONDITION: usize = 100;

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

/// A page position or size, or `default`.
fn index(given: Option<u32>, default: i32) -> Result<i32, V3Error> {
    given.map_or(Ok(default), |n| {
        i32::try_from(n).map_err(|_| V3Error::bad(format!("{n} is too large for a position")))
    })
}

/// The `SnapshotId` of an EventSnapshotTaken.
fn snapshot_id(taken: &Message) -> String {
    taken
        .attrs
        .get_str(attr::SNAPSHOT_ID)
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Reads positions `start`.. (`size` of them) of snapshot `sid`: each interaction as it is
/// now, one gone since as `{"id", "state": "Gone"}`.
pub(crate) async fn page(
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
    let req = typed::<b::GetSnapshotRequest>(&body)?;
    let op = operation_id(req.operation_id);
    let data = req.data;
    let condition = data.condition.as_str();
    let (start, size) = (index(data.start_index, 0)?, index(data.size, 100)?);
    let mut take = Message::new(MessageId::REQUEST_TAKE_SNAPSHOT).with(attr::CONDITION, condition);
    if let Some(order) = &data.order {
        take.attrs.push(attr::ORDER, order.as_str());
    }
    let taken = ask(&hub, &web, take, MessageId::EVENT_SNAPSHOT_TAKEN).await?;
    let sid = snapshot_id(&taken);
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
    let req = typed::<b::SnapshotPageRequest>(&body)?;
    let op = operation_id(req.operation_id);
    let data = req.data.unwrap_or_default();
    match operation.as_str() {
        "get-snapshot-content" => {
            let (start, size) = (index(data.start_index, 0)?, index(data.size, 100)?);
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

/// What a bulk operation did: the ids done, and the others with why.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) succeeded: Vec<String>,
    pub(crate) failed: Vec<Value>,
}

impl Outcome {
    fn failed(&mut self, id: &str, why: String) {
        self.failed.push(json!({"id": id, "message": why}));
    }
}

/// Moves `ids` to `target` (`Queue` or `Workbin`): a snapshot of exactly them (at most
/// [`IDS_PER_CONDITION`] at a time), RequestMoveInteractions, the snapshot released.
pub(crate) async fn move_ids(
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
        let sid = snapshot_id(&taken);
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
pub(crate) async fn each(
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
    let req = typed::<b::BulkRequest>(&body)?;
    let op = operation_id(req.operation_id);
    let data = req.data;
    let ids = data.interactions;
    let mut out = Outcome::default();
    let name = match operation.as_str() {
        "move-to-queue" => {
            let queue = data.queue.ok_or_else(|| {
                V3Error::bad("data.queue is required: {\"data\": {\"queue\": \"Inbound\", \"interactions\": [...]}}")
            })?;
            move_ids(&hub, &web, &ids, (attr::QUEUE, queue.into()), &mut out).await?;
            "MoveToQueue"
        }
        "move-to-workbin" => {
            let workbin = data.workbin_id.ok_or_else(|| {
                V3Error::bad("data.workbinId is required (and ownerId for an agent's workbin)")
            })?;
            let (info, _) = instance(&hub, &web, &workbin, data.owner_id.as_deref())?;
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
            for (pairs, key) in [
                (&data.added_user_data, attr::ADDED_PROPERTIES),
                (&data.updated_user_data, attr::CHANGED_PROPERTIES),
            ] {
                if let Some(pairs) = pairs {
                    let pairs = serde_json::to_value(pairs).unwrap_or(Value::Null);
                    change.attrs.push(key, kv_list(&pairs)?);
                }
            }
            if let Some(keys) = &data.deleted_user_data {
                let mut deleted = KvList::new();
                for k in keys {
                    deleted.push(k.clone(), "");
                }
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

/// `POST /workspace/v3/media-management/interactions/{id}/get-details`: accepted; a
/// `GetDetails` message follows with the interaction as the supervisor may read it.
pub(super) async fn get_details(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    supervisor(&hub, &web)?;
    let op = operation_id(typed::<b::Operation>(&body)?.operation_id);
    let interaction = read_interaction(&hub, &web, &id).await?;
    publish(
        &hub,
        &web,
        "GetDetails",
        &op,
        json!({"interaction": interaction}),
    );
    Ok(accepted(&op))
}
