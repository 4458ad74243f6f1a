//! The agent's operations on one interaction, `POST /workspace/v3/media/{mediatype}/
//! interactions/{id}/{operation}`: `pull` (from a workbin: `{"data": {"workbinId", "ownerId"}}`,
//! or wherever the agent may pull it from), `place-in-queue` (`{"data": {"queue"}}`),
//! `complete`, `attach-user-data` and `update-user-data` (`{"data": [{"key", "type",
//! "value"}]}`) and `delete-user-data` (`{"data": {"keys": [...]}}`). Each is the engine's
//! request of the same meaning for the agent's logical client; accepted (code 1), then
//! `InteractionStateChanged` on `/workspace/v3/media` with the interaction as it is now.

use super::workspace::{Workspace, body_json, instance, operation_id};
use crate::hub::{Hub, WebSession};
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

/// The engine request an operation is.
fn request(
    hub: &Hub,
    web: &WebSession,
    id: &str,
    operation: &str,
    body: &Value,
) -> Result<Message, V3Error> {
    let data = body.get("data").unwrap_or(&Value::Null);
    let change = |key: &'static str| -> Result<Message, V3Error> {
        Ok(Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
            .with(attr::INTERACTION_ID, id)
            .with(key, kv_list(data)?))
    };
    Ok(match operation {
        "pull" => {
            let mut m = Message::new(MessageId::REQUEST_PULL)
                .with(attr::VIEW_ID, "_system_")
                .with(attr::PULL_PARAMETERS, KvList::new().with(attr::PULL_ID, id));
            if let Some(workbin) = data.get("workbinId").and_then(Value::as_str) {
                let (info, _) = instance(hub, web, workbin, body)?;
                m.attrs.push(attr::WORKBIN, info);
            }
            m
        }
        "place-in-queue" => {
            let queue = data.get("queue").and_then(Value::as_str).ok_or_else(|| {
                V3Error::bad("data.queue is required: {\"data\": {\"queue\": \"Inbound\"}}")
            })?;
            Message::new(MessageId::REQUEST_PLACE_IN_QUEUE)
                .with(attr::INTERACTION_ID, id)
                .with(attr::QUEUE, queue)
        }
        "complete" => {
            Message::new(MessageId::REQUEST_STOP_PROCESSING).with(attr::INTERACTION_ID, id)
        }
        "attach-user-data" => change(attr::ADDED_PROPERTIES)?,
        "update-user-data" => change(attr::CHANGED_PROPERTIES)?,
        "delete-user-data" => {
            let keys = data.get("keys").and_then(Value::as_array).ok_or_else(|| {
                V3Error::bad("data.keys is required: {\"data\": {\"keys\": [\"Subject\"]}}")
            })?;
            let mut deleted = KvList::new();
            for k in keys {
                let k = k
                    .as_str()
                    .ok_or_else(|| V3Error::bad(format!("data.keys: {k} is not a string")))?;
                deleted.push(k.to_owned(), "");
            }
            Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
                .with(attr::INTERACTION_ID, id)
                .with(attr::DELETED_PROPERTIES, deleted)
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
    let body = body_json(&body)?;
    let op = operation_id(&body);
    let msg = request(&hub, &web, &id, &operation, &body)?;
    let want = if operation == "pull" {
        MessageId::EVENT_PULLED_INTERACTIONS
    } else {
        MessageId::EVENT_ACK
    };
    super::workspace::ask(&hub, &web, msg, want).await?;
    let interaction = if operation == "complete" {
        json!({"id": id, "mediatype": mediatype, "state": "Completed"})
    } else {
        let read = Message::new(MessageId::REQUEST_GET_INTERACTION_PROPERTIES)
            .with(attr::INTERACTION_ID, id.as_str());
        match super::workspace::ask(&hub, &web, read, MessageId::EVENT_INTERACTION_PROPERTIES).await
        {
            Ok(r) => r
                .attrs
                .get_list(attr::INTERACTION)
                .map_or_else(|| json!({"id": id}), crate::v3_shapes::interaction),
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
