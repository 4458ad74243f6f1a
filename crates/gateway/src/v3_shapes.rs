//! The Workspace API v3's shapes: its replies `{"status": {"code", "message"}, "data"}` (code 0: done,
//! 1: accepted, the result follows over CometD with the `operationId`), and its errors, whose
//! code is the HTTP status (docs/workspace-api.md).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A refused Workspace API request: the HTTP status (also the `status.code`) and why.
#[derive(Debug)]
pub(crate) struct V3Error {
    pub(crate) http: StatusCode,
    pub(crate) message: String,
}

impl V3Error {
    pub(crate) fn new(http: StatusCode, message: impl Into<String>) -> Self {
        Self {
            http,
            message: message.into(),
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A GWS-shaped refusal (the engine's, or a shared check's) in this API's shape.
    pub(crate) fn from_gws(e: &crate::gws::ApiError) -> Self {
        Self::new(e.http_status(), e.message.clone())
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = json!({"status": {"code": self.http.as_u16(), "message": self.message}});
        let mut response = (self.http, axum::Json(body)).into_response();
        if self.http == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"workspace\""),
            );
        }
        response
    }
}

/// Done: `{"status": {"code": 0}}`, with `data` when there is some.
pub(crate) fn done(data: Option<Value>) -> Response {
    let mut body = json!({"status": {"code": 0}});
    if let (Some(d), Some(map)) = (data, body.as_object_mut()) {
        map.insert("data".into(), d);
    }
    axum::Json(body).into_response()
}

/// Accepted: `{"status": {"code": 1}, "operationId": id}`; the result comes over CometD.
pub(crate) fn accepted(operation_id: &str) -> Response {
    axum::Json(json!({"status": {"code": 1}, "operationId": operation_id})).into_response()
}

/// A KVList as the Workspace API writes user data: `[{"key", "type", "value"}]` (`str`, `int`,
/// `kvlist`, `binary` as base64).
pub(crate) fn kv_pairs(list: &ixn_codec::KvList) -> Value {
    use base64::Engine as _;
    use ixn_codec::Value as V;
    Value::Array(
        list.iter()
            .map(|(k, v)| {
                let (ty, value) = match v {
                    V::Str(s) => ("str", json!(&**s)),
                    V::Int(n) => ("int", json!(n)),
                    V::List(l) => ("kvlist", kv_pairs(l)),
                    V::Binary(b) => (
                        "binary",
                        json!(base64::engine::general_purpose::STANDARD.encode(b)),
                    ),
                };
                json!({"key": &**k, "type": ty, "value": value})
            })
            .collect(),
    )
}

/// `[{"key", "type", "value"}]` (or a plain JSON object) as a KVList; the error (400) says
/// which pair is wrong.
pub(crate) fn kv_list(value: &Value) -> Result<ixn_codec::KvList, V3Error> {
    let mut out = ixn_codec::KvList::new();
    match value {
        Value::Array(pairs) => {
            for (i, p) in pairs.iter().enumerate() {
                let key = p
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| V3Error::bad(format!("pair {i} has no \"key\"")))?;
                let v = p.get("value").unwrap_or(&Value::Null);
                let ty = p.get("type").and_then(Value::as_str).unwrap_or("str");
                match (ty, v) {
                    ("int", Value::Number(n)) => {
                        let n =
                            n.as_i64()
                                .and_then(|n| i32::try_from(n).ok())
                                .ok_or_else(|| {
                                    V3Error::bad(format!(
                                        "pair {key:?}: {n} is not a 32-bit integer"
                                    ))
                                })?;
                        out.push(key.to_owned(), n);
                    }
                    ("kvlist", v) => out.push(key.to_owned(), kv_list(v)?),
                    ("str", Value::String(s)) => out.push(key.to_owned(), s.clone()),
                    (ty, v) => {
                        return Err(V3Error::bad(format!(
                            "pair {key:?}: a value {v} of type {ty:?} (use str, int or kvlist)"
                        )));
                    }
                }
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => out.push(k.clone(), s.clone()),
                    Value::Number(n) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                        Some(n) => out.push(k.clone(), n),
                        None => {
                            return Err(V3Error::bad(format!(
                                "{k:?}: {n} is not a 32-bit integer"
                            )));
                        }
                    },
                    other => out.push(k.clone(), kv_list(other)?),
                }
            }
        }
        other => {
            return Err(V3Error::bad(format!(
                "user data must be [{{key, type, value}}], not {other}"
            )));
        }
    }
    Ok(out)
}

/// An interaction as the Workspace API describes it: its properties, and its user data as
/// key-value pairs.
pub(crate) fn interaction(props: &ixn_codec::KvList) -> Value {
    use ixn_codec::attr;
    let text = |k: &str| props.get_str(k).map(|s| json!(&**s));
    let mut map = serde_json::Map::new();
    for (name, key) in [
        ("id", attr::INTERACTION_ID),
        ("mediatype", attr::MEDIA_TYPE),
        ("interactionType", attr::INTERACTION_TYPE),
        ("interactionSubtype", attr::INTERACTION_SUBTYPE),
        ("state", attr::INTERACTION_STATE),
        ("queue", attr::QUEUE),
        ("workbinTypeId", attr::INTERACTION_WORKBIN_TYPE_ID),
        ("agentId", attr::INTERACTION_AGENT_ID),
        ("placeId", attr::INTERACTION_PLACE_ID),
        ("agentGroupId", attr::INTERACTION_AGENT_GROUP_ID),
        ("placeGroupId", attr::INTERACTION_PLACE_GROUP_ID),
        ("assignedTo", attr::ASSIGNED_TO),
        ("submittedBy", attr::SUBMITTED_BY),
        ("receivedAt", attr::RECEIVED_AT),
    ] {
        if let Some(v) = text(key) {
            map.insert(name.into(), v);
        }
    }
    map.insert(
        "isLocked".into(),
        json!(props.get_int(attr::IS_LOCKED) == Some(1)),
    );
    map.insert(
        "userData".into(),
        props
            .get_list(attr::USER_DATA)
            .map_or_else(|| json!([]), kv_pairs),
    );
    Value::Object(map)
}

/// Where the Workspace API publishes workbin results and changes.
pub(crate) const WORKBINS: &str = "/workspace/v3/workbins";

/// The outcome of a Workspace API workbin subscribe or unsubscribe, as a `WorkbinsMessage`.
pub(crate) fn subscription_outcome(
    reply: &ixn_codec::Message,
    operation_id: &str,
    workbin_id: &str,
    unsubscribe: bool,
) -> Value {
    let ok = reply.id == ixn_codec::MessageId::EVENT_ACK;
    let mut m = json!({
        "messageType": "WorkbinsMessage",
        "name": if ok { "EventAck" } else { "EventError" },
        "operation": if unsubscribe { "UnsubscribeWorkbinEvents" } else { "SubscribeWorkbinEvents" },
        "operationId": operation_id,
        "workbinId": workbin_id,
    });
    if !ok && let Some(map) = m.as_object_mut() {
        map.insert(
            "errorMessage".into(),
            json!(crate::gws::engine_reason(reply)),
        );
    }
    m
}

/// An EventWorkbinContentChanged as the Workspace API's `EventWorkbinContentChanged`
/// (`workbinContentOperation` `Add`, `Remove` or `Update`).
pub(crate) fn content_changed(
    config: &ixn_config::Config,
    msg: &ixn_codec::Message,
) -> Option<Value> {
    use ixn_codec::{WorkbinContentOperation as Op, attr};
    let op = match Op::from_int(msg.attrs.get_int(attr::WORKBIN_CONTENT_OPERATION)?) {
        Op::PlacedIn => "Add",
        Op::TakenOut => "Remove",
        _ => "Update",
    };
    let info = msg.attrs.get_list(attr::WORKBIN)?;
    let props = msg.attrs.get_list(attr::INTERACTION)?;
    let name = info.get_str(attr::WORKBIN_TYPE_ID).map_or("", |s| s);
    let id = config.workbin(name).map(|t| config[t].uuid.clone());
    let owner = info
        .iter()
        .nth(1)
        .and_then(|(_, v)| v.as_str())
        .map(|s| s.to_string());
    Some(json!({
        "messageType": "WorkbinsMessage",
        "name": "EventWorkbinContentChanged",
        "workbinContentOperation": op,
        "workbin": {"id": id, "workbinName": name, "ownerId": owner},
        "interaction": interaction(props),
    }))
}

/// The request and reply bodies of the Workspace API, as documented in its OpenAPI document
/// (`crate::openapi`); each route checks its body against its type before reading it.
pub(crate) mod bodies {
    use serde::{Deserialize, Serialize};
    use serde_json::Value;
    use utoipa::ToSchema;

    /// `status` of every reply: 0 done, 1 accepted (the result follows over CometD), else the
    /// HTTP status of a refusal.
    #[derive(Debug, Serialize, Deserialize, ToSchema)]
    pub(crate) struct Status {
        pub(crate) code: u16,
        #[serde(default)]
        pub(crate) message: Option<String>,
    }

    /// A reply: its status, the data of a done operation, the id of an accepted one.
    #[derive(Debug, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Reply {
        pub(crate) status: Status,
        #[serde(default)]
        pub(crate) data: Option<Value>,
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
    }

    /// A body with nothing but an optional `operationId` (other fields are ignored).
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Operation {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
    }

    /// `activate-channels`.
    #[derive(Debug, Deserialize, ToSchema)]
    pub(crate) struct ActivateChannels {
        pub(crate) data: ActivateChannelsData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct ActivateChannelsData {
        #[serde(default)]
        pub(crate) agent_id: Option<String>,
        #[serde(default)]
        pub(crate) place_name: Option<String>,
        #[serde(default)]
        pub(crate) dn: Option<String>,
    }

    /// A workbin operation: whose instance (`ownerId`, an agent's), and for a subscription
    /// whether property changes are wanted.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct WorkbinRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        #[serde(default)]
        pub(crate) data: Option<WorkbinData>,
    }

    #[derive(Debug, Default, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct WorkbinData {
        #[serde(default)]
        pub(crate) owner_id: Option<String>,
        #[serde(default)]
        pub(crate) notify_property_changes: Option<bool>,
        #[serde(default)]
        pub(crate) workbin_id: Option<String>,
    }

    /// Several workbins (`workbinIds`: a list, or ids separated by commas) of one owner.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct WorkbinsRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: WorkbinsData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct WorkbinsData {
        pub(crate) workbin_ids: Ids,
        #[serde(default)]
        pub(crate) owner_id: Option<String>,
        #[serde(default)]
        pub(crate) notify_property_changes: Option<bool>,
    }

    /// Ids as a list, or as one string separated by commas.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum Ids {
        List(Vec<String>),
        Joined(String),
    }

    impl Ids {
        pub(crate) fn list(&self) -> Vec<String> {
            match self {
                Self::List(l) => l.clone(),
                Self::Joined(s) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }
        }
    }

    /// `add-interaction`.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct AddInteractionRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: AddInteractionData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct AddInteractionData {
        pub(crate) interaction_id: String,
        #[serde(default)]
        pub(crate) owner_id: Option<String>,
    }

    /// One user data pair.
    #[derive(Debug, Deserialize, Serialize, ToSchema)]
    pub(crate) struct Kvpair {
        pub(crate) key: String,
        /// `str`, `int`, `kvlist` (then `value` is a list of pairs) or `binary` (base64).
        #[serde(rename = "type", default)]
        pub(crate) kind: Option<String>,
        pub(crate) value: Value,
    }

    /// `attach-user-data`, `update-user-data`.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct UserDataRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: Vec<Kvpair>,
    }

    /// `delete-user-data`.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct DeleteUserDataRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: KeysData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    pub(crate) struct KeysData {
        pub(crate) keys: Vec<String>,
    }

    /// `place-in-queue`.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct PlaceInQueueRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: QueueData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    pub(crate) struct QueueData {
        pub(crate) queue: String,
    }

    /// `media-management/get-snapshot`.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct GetSnapshotRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: GetSnapshotData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct GetSnapshotData {
        /// docs/conditions.md
        pub(crate) condition: String,
        #[serde(default)]
        pub(crate) order: Option<String>,
        #[serde(default)]
        pub(crate) start_index: Option<u32>,
        #[serde(default)]
        pub(crate) size: Option<u32>,
    }

    /// `media-management/{snapshotId}/get-snapshot-content`.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct SnapshotPageRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        #[serde(default)]
        pub(crate) data: Option<SnapshotPage>,
    }

    #[derive(Debug, Default, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct SnapshotPage {
        #[serde(default)]
        pub(crate) start_index: Option<u32>,
        #[serde(default)]
        pub(crate) size: Option<u32>,
    }

    /// The bulk operations of media management.
    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct BulkRequest {
        #[serde(default)]
        pub(crate) operation_id: Option<String>,
        pub(crate) data: BulkData,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct BulkData {
        pub(crate) interactions: Vec<String>,
        #[serde(default)]
        pub(crate) queue: Option<String>,
        #[serde(default)]
        pub(crate) workbin_id: Option<String>,
        #[serde(default)]
        pub(crate) owner_id: Option<String>,
        #[serde(default)]
        pub(crate) added_user_data: Option<Vec<Kvpair>>,
        #[serde(default)]
        pub(crate) updated_user_data: Option<Vec<Kvpair>>,
        #[serde(default)]
        pub(crate) deleted_user_data: Option<Vec<String>>,
    }

    /// The token route's form (`application/x-www-form-urlencoded`).
    #[derive(Debug, Deserialize, ToSchema)]
    pub(crate) struct TokenForm {
        /// `password`
        pub(crate) grant_type: String,
        pub(crate) username: String,
        pub(crate) password: String,
        #[serde(default)]
        pub(crate) client_id: Option<String>,
    }

    /// The token route's answer.
    #[derive(Debug, Serialize, ToSchema)]
    pub(crate) struct Token {
        pub(crate) access_token: String,
        /// `bearer`
        pub(crate) token_type: String,
        pub(crate) expires_in: u64,
        pub(crate) scope: String,
    }

    /// An OAuth 2 refusal.
    #[derive(Debug, Serialize, ToSchema)]
    pub(crate) struct OAuthError {
        pub(crate) error: String,
        pub(crate) error_description: String,
    }

    /// `userinfo`.
    #[derive(Debug, Serialize, ToSchema)]
    pub(crate) struct UserInfo {
        pub(crate) sub: String,
        pub(crate) user_name: String,
        pub(crate) username: String,
        #[serde(rename = "loginName")]
        pub(crate) login_name: String,
        pub(crate) dbid: u32,
    }
}

/// `body` read as `T` (the route's documented body): a wrong type or a missing field is a 400
/// naming it.
pub(crate) fn checked<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, V3Error> {
    serde_json::from_value(body.clone())
        .map_err(|e| V3Error::bad(format!("the body does not fit this route: {e}")))
}
