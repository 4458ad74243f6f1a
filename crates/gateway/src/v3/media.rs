//! The agent's operations on one interaction, `POST /workspace/v3/media/{mediatype}/
//! interactions/{id}/{operation}`: `pull` (from a workbin: `{"data": {"workbinId", "ownerId"}}`,
//! or wherever the agent may pull it from), `place-in-queue` (`{"data": {"queue"}}`),
//! `complete`, `attach-user-data` and `update-user-data` (`{"data": [{"key", "type",
//! "value"}]}`) and `delete-user-data` (`{"data": {"keys": [...]}}`). Each is the engine's
//! request of the same meaning for the agent's logical client; accepted (code 1), then
//! `InteractionStateChanged` on `/workspace/v3/media` with the interaction as it is now.

use super::workspace::{Workspace, instance, operation_id, typed};
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

/// Where interaction changes made through this API are told.
pub(crate) const MEDIA: &str = "/workspace/v3/media";

/// User data pairs as a KVList.
fn pairs(data: &[b::Kvpair]) -> Result<KvList, V3Error> {
    kv_list(&serde_json::to_value(data).unwrap_or(Value::Null))
}

/// The engine request an operation is, and its `operationId`.
fn request(
    hub: &Hub,
    web: &WebSession,
    id: &str,
    operation: &str,
    body: &[u8],
) -> Result<(Message, Option<String>), V3Error> {
    let change = |key: &'static str, data: &[b::Kvpair]| -> Result<Message, V3Error> {
        Ok(Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
            .with(attr::INTERACTION_ID, id)
            .with(key, pairs(data)?))
    };
    Ok(match operation {
        "pull" => {
            let req = typed::<b::WorkbinRequest>(body)?;
            let mut m = Message::new(MessageId::REQUEST_PULL)
                .with(attr::VIEW_ID, "_system_")
                .with(attr::PULL_PARAMETERS, KvList::new().with(attr::PULL_ID, id));
            let data = req.data.unwrap_or_default();
            if let Some(workbin) = &data.workbin_id {
                let (info, _) = instance(hub, web, workbin, data.owner_id.as_deref())?;
                m.attrs.push(attr::WORKBIN, info);
            }
            (m, req.operation_id)
        }
        "place-in-queue" => {
            let req = typed::<b::PlaceInQueueRequest>(body)?;
            let m = Message::new(MessageId::REQUEST_PLACE_IN_QUEUE)
                .with(attr::INTERACTION_ID, id)
                .with(attr::QUEUE, req.data.queue);
            (m, req.operation_id)
        }
        "complete" => {
            let req = typed::<b::Operation>(body)?;
            let m = Message::new(MessageId::REQUEST_STOP_PROCESSING).with(attr::INTERACTION_ID, id);
            (m, req.operation_id)
        }
        "attach-user-data" | "update-user-data" => {
            let req = typed::<b::UserDataRequest>(body)?;
            let key = if operation == "attach-user-data" {
                attr::ADDED_PROPERTIES
            } else {
                attr::CHANGED_PROPERTIES
            };
            (change(key, &req.data)?, req.operation_id)
        }
        "delete-user-data" => {
            let req = typed::<b::DeleteUserDataRequest>(body)?;
            let mut deleted = KvList::new();
            for k in req.data.keys {
                deleted.push(k, "");
            }
            let m = Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
                .with(attr::INTERACTION_ID, id)
                .with(attr::DELETED_PROPERTIES, deleted);
            (m, req.operation_id)
        }
        other => {
            return Err(V3Error::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no interaction operation {other:?}: use pull, place-in-queue, complete, attach-user-data, update-user-data or delete-user-data"
                ),
            ));
        }
    })
}

/// `POST /workspace/v3/media/{mediatype}/interactions/{id}/{operation}`.
pub(super) async fn operation(
    Workspace(web): Workspace,
    State(hub): State<Arc<Hub>>,
    Path((mediatype, id, operation)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, V3Error> {
    let (msg, given) = request(&hub, &web, &id, &operation, &body)?;
    let op = operation_id(given);
    let want = if operation == "pull" {
        MessageId::EVENT_PULLED_INTERACTIONS
    } else {
        MessageId::EVENT_ACK
    };
    super::workspace::ask(&hub, &web, msg, want).await?;
    let interaction = if operation == "complete" {
        json!({"id": id, "mediatype": mediatype, "state": "Completed"})
    } else {
        match super::workspace::read_interaction(&hub, &web, &id).await {
            Ok(Value::Null) => json!({"id": id}),
            Ok(i) => i,
            // Done, but no longer the agent's to read (placed in a queue it may not see).
            Err(_) => json!({"id": id, "mediatype": mediatype}),
        }
    };
    let notification = match operation.as_str() {
        "attach-user-data" | "update-user-data" | "delete-user-data" => "PropertiesChanged",
        _ => "StatusChange",
    };
    hub.publish_now(
        web.client,
        MEDIA,
        &json!({
            "messageType": "InteractionStateChanged",
            "notificationType": notification,
            "operationId": op,
            "interaction": interaction,
        }),
    );
    Ok(accepted(&op))
}
