//! The Genesys Web Services shapes: status codes, errors, interactions as state resources.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ixn_codec::{ErrorCode, KvList, Message, Value, attr};
use ixn_config::Config;
use serde::Serialize;
use serde_json::{Map, json};

/// GWS `statusCode` values (spec section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// 1: a required parameter is missing or malformed.
    Missing = 1,
    /// 2: the parameter is not valid for the current state.
    BadState = 2,
    /// 3: forbidden.
    Forbidden = 3,
    /// 4: internal error.
    Internal = 4,
    /// 6: no such resource.
    NotFound = 6,
    /// 20: not authenticated.
    Unauthenticated = 20,
}

impl Status {
    fn http(self) -> StatusCode {
        match self {
            Self::Missing | Self::BadState => StatusCode::BAD_REQUEST,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

/// A failed web request: a GWS status code and a message for people.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: Status,
    pub(crate) message: String,
    /// Overrides the HTTP status (413 for oversize bodies, 503 when full).
    pub(crate) http: Option<StatusCode>,
}

impl ApiError {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            http: None,
        }
    }

    pub(crate) fn with_http(mut self, http: StatusCode) -> Self {
        self.http = Some(http);
        self
    }

    /// The engine answered EventError: its code becomes the closest GWS status.
    pub(crate) fn from_engine(reply: &Message) -> Self {
        let code = reply.attrs.get_int(attr::ERROR_CODE).unwrap_or(99);
        Self::new(status_of(code), engine_reason(reply))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"statusCode": self.status as u8, "statusMessage": self.message});
        let mut response =
            (self.http.unwrap_or(self.status.http()), axum::Json(body)).into_response();
        if self.status == Status::Unauthenticated {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ixn\""),
            );
        }
        response
    }
}

/// The GWS status for an engine error code (docs/web-api.md has the table).
pub(crate) fn status_of(code: i32) -> Status {
    match ErrorCode::from_int(code) {
        ErrorCode::MissingAttribute | ErrorCode::InvalidAttribute => Status::Missing,
        ErrorCode::AgentNotLoggedIn
        | ErrorCode::InvalidState
        | ErrorCode::AgentLoggedInElsewhere
        | ErrorCode::NotSubscribed
        | ErrorCode::DuplicateInteraction
        | ErrorCode::LimitExceeded => Status::BadState,
        ErrorCode::Forbidden => Status::Forbidden,
        ErrorCode::UnknownAgent
        | ErrorCode::UnknownPlace
        | ErrorCode::UnknownTenant
        | ErrorCode::UnknownWorkbin
        | ErrorCode::UnknownOwner
        | ErrorCode::UnknownInteraction => Status::NotFound,
        _ => Status::Internal,
    }
}

/// "Forbidden (13): ..." from an EventError.
pub(crate) fn engine_reason(reply: &Message) -> String {
    let code = reply.attrs.get_int(attr::ERROR_CODE).unwrap_or(99);
    let name = ErrorCode::from_int(code)
        .name()
        .map_or_else(|| format!("error {code}"), str::to_owned);
    let description = reply
        .attrs
        .get_str(attr::ERROR_DESCRIPTION)
        .map_or("", |s| s);
    format!("{name} ({code}): {description}")
}

/// A successful response: `statusCode` 0, then `body`'s fields.
#[derive(Debug, Serialize)]
pub(crate) struct Success<T> {
    #[serde(rename = "statusCode")]
    status_code: u8,
    #[serde(flatten)]
    body: T,
}

impl<T: Serialize> Success<T> {
    pub(crate) fn new(body: T) -> Self {
        Self {
            status_code: 0,
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}

/// A response with no fields but `statusCode`.
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

/// A workbin instance as the web API names it: its type's UUID and name, and its owner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkbinRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workbin_agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workbin_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workbin_place_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) agent_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) place_group: Option<String>,
}

impl WorkbinRef {
    /// The web form of an engine WorkbinInfo: the one place where the engine's owner names
    /// become the web API's (an agent's employee id is also shown as its user id).
    pub(crate) fn from_info(config: &Config, info: &KvList) -> Self {
        let name = info.get_str(attr::WORKBIN_TYPE_ID).map_or("", |s| s);
        let text = |key: &str| info.get_str(key).map(|s| s.to_string());
        let agent = text(attr::WORKBIN_AGENT_ID);
        Self {
            id: config.workbin(name).map(|t| config[t].uuid.clone()),
            name: name.to_owned(),
            workbin_user_id: agent
                .as_deref()
                .and_then(|a| config.agent(a))
                .map(|a| config[a].user_id.clone()),
            workbin_agent_id: agent,
            workbin_place_id: text(attr::WORKBIN_PLACE_ID),
            agent_group: text(attr::WORKBIN_GROUP_ID),
            place_group: text(attr::WORKBIN_PLACE_GROUP_ID),
        }
    }
}

/// The state-resource key for a media type (spec section 7; openmedia for any other).
pub(crate) fn state_resource_key(media: &str) -> &'static str {
    match media {
        "chat" => "chatStateResourceV2",
        "email" => "emailStateResourceV2",
        "facebook" => "facebookStateResourceV2",
        "twitter" => "tweetStateResourceV2",
        "facebooksession" => "facebooksessionStateResourceV2",
        "workitem" => "workitemStateResourceV2",
        _ => "openmediaStateResourceV2",
    }
}

/// A KVList as a JSON object (ints, strings, nested lists; binary as base64; a repeated key
/// keeps its last value).
pub(crate) fn kv_json(list: &KvList) -> serde_json::Value {
    let mut map = Map::new();
    for (k, v) in list.iter() {
        map.insert(k.to_string(), value_json(v));
    }
    serde_json::Value::Object(map)
}

fn value_json(v: &Value) -> serde_json::Value {
    use base64::Engine as _;
    if let Some(i) = v.as_int() {
        json!(i)
    } else if let Some(s) = v.as_str() {
        json!(&**s)
    } else if let Some(l) = v.as_list() {
        kv_json(l)
    } else if let Some(b) = v.as_binary() {
        json!(base64::engine::general_purpose::STANDARD.encode(b))
    } else {
        serde_json::Value::Null
    }
}

/// An interaction's properties as the web API shows them: `id`, `mediaType`, `state`,
/// `interactionType`, `interactionSubtype`, `queue`, `assignedTo`, `submittedBy`,
/// `receivedDate`, `userData`, and for e-mail `from`, `to`, `subject`, for chat `nickname`
/// and `subject` (from UserData keys `FromAddress`, `To`, `Subject`, `Nickname`).
pub(crate) fn interaction_json(props: &KvList) -> serde_json::Value {
    let mut map = Map::new();
    let mut put = |key: &str, from: &str| {
        if let Some(v) = props.get(from) {
            map.insert(key.to_owned(), value_json(v));
        }
    };
    put("id", attr::INTERACTION_ID);
    put("mediaType", attr::MEDIA_TYPE);
    put("state", attr::INTERACTION_STATE);
    put("interactionType", attr::INTERACTION_TYPE);
    put("interactionSubtype", attr::INTERACTION_SUBTYPE);
    put("queue", attr::QUEUE);
    put("assignedTo", attr::ASSIGNED_TO);
    put("submittedBy", attr::SUBMITTED_BY);
    put("receivedDate", attr::RECEIVED_AT);
    let user_data = props.get_list(attr::USER_DATA);
    map.insert(
        "userData".into(),
        user_data.map_or_else(|| json!({}), kv_json),
    );
    let media = props.get_str(attr::MEDIA_TYPE).map_or("", |s| s);
    let extra: &[(&str, &str)] = match media {
        "email" => &[
            ("from", "FromAddress"),
            ("to", "To"),
            ("subject", "Subject"),
        ],
        "chat" => &[("nickname", "Nickname"), ("subject", "Subject")],
        _ => &[],
    };
    if let Some(ud) = user_data {
        for (key, from) in extra {
            if let Some(v) = ud.get(from) {
                map.insert((*key).to_owned(), value_json(v));
            }
        }
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_codes_map_to_gws_statuses() {
        assert_eq!(status_of(ErrorCode::Forbidden.to_int()), Status::Forbidden);
        assert_eq!(
            status_of(ErrorCode::UnknownInteraction.to_int()),
            Status::NotFound
        );
        assert_eq!(
            status_of(ErrorCode::AgentNotLoggedIn.to_int()),
            Status::BadState
        );
        assert_eq!(
            status_of(ErrorCode::MissingAttribute.to_int()),
            Status::Missing
        );
        assert_eq!(status_of(99), Status::Internal);
        assert_eq!(state_resource_key("email"), "emailStateResourceV2");
        assert_eq!(state_resource_key("sms"), "openmediaStateResourceV2");
    }

    #[test]
    fn interactions_show_media_fields() {
        let props = KvList::new()
            .with(attr::INTERACTION_ID, "IX1")
            .with(attr::MEDIA_TYPE, "email")
            .with(
                attr::USER_DATA,
                KvList::new().with("Subject", "Hi").with("n", 3),
            );
        let j = interaction_json(&props);
        assert_eq!(j["id"], "IX1");
        assert_eq!(j["subject"], "Hi");
        assert_eq!(j["userData"]["n"], 3);
    }
}
