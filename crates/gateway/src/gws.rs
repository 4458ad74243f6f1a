//! The Genesys Web Services shapes: status codes, errors, interactions as state resources.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ixn_codec::{ErrorCode, KvList, Message, Value, attr};
use ixn_config::Config;
use serde::Serialize;
use serde_json::{Map, json};

/// GWS `statusCode` values (docs/web-api.md).
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

    /// The HTTP status it is answered with.
    pub(crate) fn http_status(&self) -> StatusCode {
        self.http.unwrap_or(self.status.http())
    }

    /// The engine answered EventError: its code becomes the closest GWS status.
    pub(crate) fn from_engine(reply: &Message) -> Self {
        let code = reply.attrs.get_int(attr::ERROR_CODE).unwrap_or(99);
        let e = Self::new(status_of(code), engine_reason(reply));
        if ErrorCode::from_int(code) == ErrorCode::NotActive {
            // A standby: a load balancer or client should go to the active server.
            return e.with_http(StatusCode::SERVICE_UNAVAILABLE);
        }
        e
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
        | ErrorCode::InteractionLocked
        | ErrorCode::LimitExceeded => Status::BadState,
        ErrorCode::Forbidden => Status::Forbidden,
        ErrorCode::UnknownAgent
        | ErrorCode::UnknownPlace
        | ErrorCode::UnknownTenant
        | ErrorCode::UnknownWorkbin
        | ErrorCode::UnknownOwner
        | ErrorCode::UnknownInteraction
        | ErrorCode::UnknownSnapshot => Status::NotFound,
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

/// The media kinds of GWS workbin subresources and state resources. An interaction's
/// `MediaType` picks one (`twitter` and `tweet` are Tweet; any other type is Open, GWS's
/// openmedia).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Media {
    Chat,
    Email,
    Facebook,
    Tweet,
    FacebookSession,
    Workitem,
    Open,
}

impl Media {
    /// Every kind, in the order GWS lists them.
    pub(crate) const ALL: [Self; 7] = [
        Self::Chat,
        Self::Email,
        Self::Facebook,
        Self::Tweet,
        Self::FacebookSession,
        Self::Workitem,
        Self::Open,
    ];

    /// The kind of an interaction's media type.
    pub(crate) fn of(media_type: &str) -> Self {
        match media_type {
            "chat" => Self::Chat,
            "email" => Self::Email,
            "facebook" => Self::Facebook,
            "twitter" | "tweet" => Self::Tweet,
            "facebooksession" => Self::FacebookSession,
            "workitem" => Self::Workitem,
            _ => Self::Open,
        }
    }

    /// Its `?subresources=` value.
    pub(crate) fn subresource(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Email => "email",
            Self::Facebook => "facebook",
            Self::Tweet => "tweet",
            Self::FacebookSession => "facebooksession",
            Self::Workitem => "workitem",
            Self::Open => "openmedia",
        }
    }

    /// The array of a workbin's content holding this kind (also the media path segment).
    pub(crate) fn array(self) -> &'static str {
        match self {
            Self::Chat => "chats",
            Self::Email => "emails",
            Self::Facebook => "facebooks",
            Self::Tweet => "tweets",
            Self::FacebookSession => "facebooksessions",
            Self::Workitem => "workitems",
            Self::Open => "openmedias",
        }
    }

    /// The CometD state-resource key.
    pub(crate) fn state_resource(self) -> &'static str {
        match self {
            Self::Chat => "chatStateResourceV2",
            Self::Email => "emailStateResourceV2",
            Self::Facebook => "facebookStateResourceV2",
            Self::Tweet => "tweetStateResourceV2",
            Self::FacebookSession => "facebooksessionStateResourceV2",
            Self::Workitem => "workitemStateResourceV2",
            Self::Open => "openmediaStateResourceV2",
        }
    }

    /// The kind a `?subresources=` value names.
    pub(crate) fn from_subresource(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.subresource() == s)
    }

    /// The kind a media path segment (`emails`, `chats`...) names.
    pub(crate) fn from_array(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.array() == s)
    }
}

/// The state-resource key for a media type (the CometD messages' key of the interaction).
pub(crate) fn state_resource_key(media: &str) -> &'static str {
    Media::of(media).state_resource()
}

/// A date as GWS writes it, `2016-04-15 17:52:35.000+0000`, from the engine's RFC 3339 UTC
/// form `2016-04-15T17:52:35Z`. Anything else is passed through unchanged.
pub(crate) fn gws_date(rfc3339: &str) -> String {
    let b = rfc3339.as_bytes();
    let shape = b.len() == 20
        && b.get(10) == Some(&b'T')
        && b.get(19) == Some(&b'Z')
        && rfc3339
            .char_indices()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit());
    match (shape, rfc3339.get(..10), rfc3339.get(11..19)) {
        (true, Some(day), Some(time)) => format!("{day} {time}.000+0000"),
        _ => rfc3339.to_owned(),
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

/// An interaction's properties as a GWS state resource of its media (the items of a workbin's
/// content arrays and of the CometD messages): `id`, `capabilities` (none: this server offers
/// no interaction operations through them), `receivedDate` (GWS form) and `userData` always;
/// for chat `chatType` and `participants`, for e-mail `from`, `to` (an array) and `subject`, for
/// workitems `workitemType`, from the interaction and its UserData (`FromAddress`, `To`,
/// `Subject`, `Nickname`). The project's own fields follow where no GWS field has the name:
/// `mediaType`, `interactionType`, `interactionSubtype`, `interactionState`, `queue`,
/// `assignedTo`, `submittedBy`, and `nickname` and `subject` for chat.
pub(crate) fn interaction_json(props: &KvList) -> serde_json::Value {
    let mut map = Map::new();
    let text = |key: &str| props.get_str(key).map(|s| json!(&**s));
    let media = Media::of(props.get_str(attr::MEDIA_TYPE).map_or("", |s| s));
    let user_data = props.get_list(attr::USER_DATA);
    let ud = |key: &str| user_data.and_then(|u| u.get(key)).map(value_json);
    if let Some(id) = text(attr::INTERACTION_ID) {
        map.insert("id".into(), id);
    }
    map.insert("capabilities".into(), json!([]));
    match media {
        Media::Chat => {
            if let Some(t) = text(attr::INTERACTION_TYPE) {
                map.insert("chatType".into(), t);
            }
            map.insert("participants".into(), json!([]));
        }
        Media::Email => {
            if let Some(from) = ud("FromAddress") {
                map.insert("from".into(), from);
            }
            if let Some(to) = user_data.and_then(|u| u.get("To")) {
                let to = match to.as_str() {
                    Some(s) => json!(
                        s.split([',', ';'])
                            .map(str::trim)
                            .filter(|a| !a.is_empty())
                            .collect::<Vec<_>>()
                    ),
                    None => value_json(to),
                };
                map.insert("to".into(), to);
            }
            if let Some(subject) = ud("Subject") {
                map.insert("subject".into(), subject);
            }
        }
        Media::Workitem => {
            if let Some(t) = text(attr::INTERACTION_TYPE) {
                map.insert("workitemType".into(), t);
            }
        }
        _ => {}
    }
    if let Some(d) = props.get_str(attr::RECEIVED_AT) {
        map.insert("receivedDate".into(), json!(gws_date(d)));
    }
    map.insert(
        "userData".into(),
        user_data.map_or_else(|| json!({}), kv_json),
    );
    // The project's own fields, where GWS has none of the name.
    for (key, from) in [
        ("mediaType", attr::MEDIA_TYPE),
        ("interactionType", attr::INTERACTION_TYPE),
        ("interactionSubtype", attr::INTERACTION_SUBTYPE),
        ("interactionState", attr::INTERACTION_STATE),
        ("queue", attr::QUEUE),
        ("assignedTo", attr::ASSIGNED_TO),
        ("submittedBy", attr::SUBMITTED_BY),
    ] {
        if let Some(v) = text(from) {
            map.insert(key.into(), v);
        }
    }
    if media == Media::Chat {
        for (key, from) in [("nickname", "Nickname"), ("subject", "Subject")] {
            if let Some(v) = ud(from) {
                map.insert(key.into(), v);
            }
        }
    }
    serde_json::Value::Object(map)
}

/// The WorkbinInfo of every instance an `EventWorkbins` lists (type, then owner).
pub(crate) fn workbin_instances(reply: &Message) -> impl Iterator<Item = &KvList> {
    reply
        .attrs
        .get_list(attr::WORKBINS)
        .into_iter()
        .flatten()
        .filter_map(|(_, owners)| owners.as_list())
        .flatten()
        .filter_map(|(_, info)| info.as_list())
}

/// The properties of every interaction an `EventWorkbinContent` lists.
pub(crate) fn listed_interactions(reply: &Message) -> impl Iterator<Item = &KvList> {
    reply
        .attrs
        .get_list(attr::INTERACTIONS)
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_list())
}

/// GWS's reply envelope, as documented in the OpenAPI document (`statusCode` 0 on success, the
/// resource's fields beside it; a refusal's `statusMessage` says why).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reply {
    pub(crate) status_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status_message: Option<String>,
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
        assert_eq!(state_resource_key("twitter"), "tweetStateResourceV2");
        for m in Media::ALL {
            assert_eq!(Media::from_subresource(m.subresource()), Some(m));
            assert_eq!(Media::from_array(m.array()), Some(m));
        }
        assert_eq!(
            gws_date("2026-11-21T08:16:16Z"),
            "2026-11-21 08:16:16.000+0000"
        );
        assert_eq!(gws_date("yesterday"), "yesterday");
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
        assert_eq!(j["capabilities"], json!([]));
        let chat = KvList::new()
            .with(attr::INTERACTION_ID, "C1")
            .with(attr::MEDIA_TYPE, "chat")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::INTERACTION_STATE, "InWorkbin")
            .with(attr::RECEIVED_AT, "2016-04-15T17:52:35Z")
            .with(attr::USER_DATA, KvList::new().with("To", "x"));
        let j = interaction_json(&chat);
        assert_eq!(j["chatType"], "Inbound");
        assert_eq!(j["participants"], json!([]));
        assert_eq!(j["receivedDate"], "2016-04-15 17:52:35.000+0000");
        assert_eq!(j["interactionState"], "InWorkbin");
        assert!(j.get("to").is_none() && j.get("state").is_none());
        let email = KvList::new()
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::USER_DATA, KvList::new().with("To", "a@x, b@y;c@z"));
        assert_eq!(interaction_json(&email)["to"], json!(["a@x", "b@y", "c@z"]));
    }
}
