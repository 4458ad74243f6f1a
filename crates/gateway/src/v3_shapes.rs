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
