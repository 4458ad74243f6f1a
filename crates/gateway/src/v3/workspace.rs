//! The workspace session: `initialize-workspace` (a Bearer token starts or joins the agent's
//! web session and sets `WORKSPACE_SESSIONID`), the CometD endpoint, `activate-channels`
//! (RequestAgentLogin at a place), `logout`, `current-session`, and the workbin reads whose
//! results come over CometD as `WorkbinsMessage`s, as Genesys's server sends them.

use super::oauth::bearer_agent;
use crate::bayeux::Live;
use crate::bayeux::protocol::parse_batch;
use crate::bayeux::reply::raw;
use crate::hub::{Hub, WebSession};
use crate::v3_shapes::WORKBINS;
use crate::v3_shapes::bodies as b;
use crate::v3_shapes::{V3Error, accepted, done};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ixn_codec::{ByteString, KvList, Message, MessageId, attr};
use ixn_config::OwnerKind;
use serde_json::{Value, json};
use std::sync::Arc;

/// The workspace session's cookie.
pub(crate) const COOKIE: &str = "WORKSPACE_SESSIONID";
/// Where the client hears that the workspace is initialized.
pub(crate) const INITIALIZATION: &str = "/workspace/v3/initialization";

type Shared = State<Arc<Hub>>;

/// The web session of the request's `WORKSPACE_SESSIONID` cookie.
fn cookie_session(hub: &Hub, headers: &HeaderMap) -> Option<Arc<WebSession>> {
    crate::extract::cookie(headers, COOKIE).and_then(|token| hub.web_by_token(&token))
}

/// The caller's workspace session (from its cookie), or 401.
pub(crate) struct Workspace(pub(crate) Arc<WebSession>);

impl FromRequestParts<Arc<Hub>> for Workspace {
    type Rejection = V3Error;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, V3Error> {
        let web = cookie_session(hub, &parts.headers).ok_or_else(|| {
            V3Error::unauthorized(format!(
                "no workspace session: POST /workspace/v3/initialize-workspace with a Bearer token first, and send its {COOKIE} cookie"
            ))
        })?;
        web.touch();
        Ok(Self(web))
    }
}

/// A JSON object body, or an empty one.
pub(super) fn body_json(body: &[u8]) -> Result<Value, V3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(V3Error::bad(
            "the body must be a JSON object such as {\"data\": {}}",
        )),
        Err(e) => Err(V3Error::bad(format!("the body is not JSON: {e}"))),
    }
}

/// The request's `operationId`, or a new one.
pub(super) fn operation_id(given: Option<String>) -> String {
    given
        .or_else(|| crate::auth::random_token(8))
        .unwrap_or_default()
}

/// The body, read as the route's documented type `T`.
pub(super) fn typed<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, V3Error> {
    crate::v3_shapes::checked(&body_json(body)?)
}

/// The user as the Workspace API describes it.
fn user(hub: &Hub, web: &WebSession) -> Value {
    let a = &hub.config[web.agent];
    json!({
        "id": a.user_id,
        "dbid": web.agent.get(),
        "userName": a.id,
        "employeeId": a.id,
        "agentLogin": a.id,
        "defaultPlace": web.place(),
        "tenantDBID": a.tenant,
        "activeSession": web.place().is_some(),
    })
}

/// `POST /workspace/v3/initialize-workspace`: the Bearer token's agent gets its web session
/// (a new logical client, or the one it has) and the cookie; the initialization is announced
/// on CometD once the client subscribes to [`INITIALIZATION`].
pub(super) async fn initialize(State(hub): Shared, headers: HeaderMap) -> Response {
    let agent = match bearer_agent(&hub, &headers) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let (_web, token) = match hub.sign_in(agent).await {
        Ok(signed) => signed,
        Err(e) => return V3Error::from_gws(&e).into_response(),
    };
    let mut response = accepted(&crate::auth::random_token(8).unwrap_or_default());
    if let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}={token}; {}", hub.cookie_attrs)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// What the initialization channel carries once the workspace is ready.
fn initialization(hub: &Hub, web: &WebSession) -> Value {
    json!({
        "channel": INITIALIZATION,
        "data": {
            "messageType": "WorkspaceInitializationComplete",
            "state": "Complete",
            "data": {"user": user(hub, web), "configuration": {}},
        },
    })
}

/// A session that subscribed to [`INITIALIZATION`] hears, at once, that its workspace is ready.
fn greet(hub: &Hub, web: &WebSession, live: &Arc<Live>, channel: &str) {
    if channel == INITIALIZATION {
        let message = raw(&initialization(hub, web));
        live.offer(
            INITIALIZATION,
            &message,
            hub.config.http.cometd_queue_messages,
        );
        live.wake();
    }
}

async fn cometd_batch(hub: Arc<Hub>, headers: &HeaderMap, body: &[u8]) -> Response {
    let web = cookie_session(&hub, headers);
    let batch = match parse_batch(body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!([{"channel": "/meta/unknown", "successful": false, "error": format!("400::{e}")}])),
            )
                .into_response();
        }
    };
    let on_subscribed = |live: &Arc<Live>, channel: &str| {
        if let Some(w) = &web {
            greet(&hub, w, live, channel);
        }
    };
    let replies = crate::cometd::long_poll_with(&hub, web.as_ref(), batch, &on_subscribed).await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::bayeux::reply::batch_text(&replies),
    )
        .into_response()
}

/// `POST /workspace/v3/notifications`: CometD (long-polling), its session from the cookie.
pub(super) async fn notifications(State(hub): Shared, headers: HeaderMap, body: Bytes) -> Response {
    cometd_batch(hub, &headers, &body).await
}

/// `POST /workspace/v3/notifications/handshake|connect|disconnect|subscribe|unsubscribe`.
pub(super) async fn notifications_suffix(
    State(hub): Shared,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !matches!(
        kind.as_str(),
        "handshake" | "connect" | "disconnect" | "subscribe" | "unsubscribe"
    ) {
        return V3Error::new(
            StatusCode::NOT_FOUND,
            format!("no CometD endpoint {kind:?}"),
        )
        .into_response();
    }
    cometd_batch(hub, &headers, &body).await
}

/// Asks the engine for `web`'s logical client; an EventError becomes this API's error.
pub(crate) async fn ask(
    hub: &Hub,
    web: &WebSession,
    msg: Message,
    want: MessageId,
) -> Result<Arc<Message>, V3Error> {
    hub.ask(web.client, msg, want)
        .await
        .map_err(|e| V3Error::from_gws(&e))
}

/// `POST /workspace/v3/activate-channels` `{"data": {"agentId", "placeName"}}`: the agent logs
/// in at the place.
pub(super) async fn activate_channels(
    Workspace(web): Workspace,
    State(hub): Shared,
    body: Bytes,
) -> Result<Response, V3Error> {
    let data = typed::<b::ActivateChannels>(&body)?.data;
    let me = &hub.config[web.agent];
    if let Some(agent) = &data.agent_id
        && *agent != me.id
    {
        return Err(V3Error::new(
            StatusCode::FORBIDDEN,
            format!("agentId {agent:?} is not the signed-in agent ({:?})", me.id),
        ));
    }
    let place = data.place_name.or(data.dn).ok_or_else(|| {
        V3Error::bad(
            "data.placeName is required: {\"data\": {\"agentId\": \"a1\", \"placeName\": \"p1\"}}",
        )
    })?;
    let place = place.as_str();
    if hub.config.place(place).is_none() {
        return Err(V3Error::new(
            StatusCode::NOT_FOUND,
            format!("no place {place:?} in the configuration"),
        ));
    }
    match web.place() {
        Some(p) if p == place => return Ok(done(None)),
        Some(p) => {
            return Err(V3Error::new(
                StatusCode::CONFLICT,
                format!("the channels are active at place {p:?}; log out first"),
            ));
        }
        None => {}
    }
    let msg = Message::new(MessageId::REQUEST_AGENT_LOGIN)
        .with(attr::TENANT_ID, me.tenant)
        .with(attr::AGENT_ID, me.id.as_str())
        .with(attr::PLACE_ID, place);
    ask(&hub, &web, msg, MessageId::EVENT_ACK).await?;
    web.set_place(Some(place.to_owned()));
    Ok(done(None))
}

/// `POST /workspace/v3/logout`: the web session ends (the agent is logged out, its CometD
/// sessions close, its cookies stop working).
pub(super) async fn logout(Workspace(web): Workspace, State(hub): Shared) -> Response {
    hub.end_web_session(&web, "logged out (Workspace API)")
        .await;
    let mut response = done(None);
    if let Ok(expired) =
        HeaderValue::from_str(&format!("{COOKIE}=; {}; Max-Age=0", hub.cookie_attrs))
    {
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    response
}

/// `GET /workspace/v3/current-session`: the user and whether its channels are active.
pub(super) async fn current(Workspace(web): Workspace, State(hub): Shared) -> Response {
    done(Some(json!({"user": user(&hub, &web)})))
}

/// A `WorkbinsMessage` to every CometD session of `web`.
fn publish_workbins(
    hub: &Hub,
    web: &WebSession,
    name: &str,
    operation_id: &str,
    mut fields: Value,
) {
    if let Some(map) = fields.as_object_mut() {
        map.insert("name".into(), json!(name));
        map.insert("messageType".into(), json!("WorkbinsMessage"));
        map.insert("operationId".into(), json!(operation_id));
    }
    hub.publish_now(web.client, WORKBINS, &fields);
}

/// The owner of workbin type `wt` for `web`'s agent: itself, its place, its first group, its
/// place's first group.
fn own_instance(hub: &Hub, web: &WebSession, kind: OwnerKind) -> Option<(&'static str, String)> {
    let config = &hub.config;
    let me = &config[web.agent];
    match kind {
        OwnerKind::Agent => Some((attr::WORKBIN_AGENT_ID, me.id.clone())),
        OwnerKind::Place => web.place().map(|p| (attr::WORKBIN_PLACE_ID, p)),
        OwnerKind::AgentGroup => me
            .groups
            .first()
            .map(|g| (attr::WORKBIN_GROUP_ID, config[*g].to_owned())),
        OwnerKind::PlaceGroup => web
            .place()
            .and_then(|p| config.place(&p))
            .and_then(|p| config[p].groups.first().copied())
            .map(|g| (attr::WORKBIN_PLACE_GROUP_ID, config[g].to_owned())),
    }
}

/// `POST /workspace/v3/workbins/get-workbins`: accepted; `EventWorkbins` follows on
/// [`WORKBINS`] with the workbins the agent reaches (RequestGetWorkbins).
pub(super) async fn get_workbins(
    Workspace(web): Workspace,
    State(hub): Shared,
    body: Bytes,
) -> Result<Response, V3Error> {
    let op = operation_id(typed::<b::Operation>(&body)?.operation_id);
    let me = &hub.config[web.agent];
    let msg = Message::new(MessageId::REQUEST_GET_WORKBINS).with(attr::AGENT_ID, me.id.as_str());
    let reply = ask(&hub, &web, msg, MessageId::EVENT_WORKBINS).await?;
    let mut workbins = Vec::new();
    for info in crate::gws::workbin_instances(&reply) {
        let name = info.get_str(attr::WORKBIN_TYPE_ID).map_or("", |s| s);
        let Some(ty) = hub.config.workbin(name) else {
            continue;
        };
        let wt = &hub.config[ty];
        let owner = info
            .iter()
            .nth(1)
            .and_then(|(_, v)| v.as_str())
            .map(ByteString::to_string);
        workbins.push(json!({
            "id": wt.uuid,
            "workbinName": wt.name,
            "displayName": wt.name,
            "type": wt.owner.name(),
            "ownerId": owner,
        }));
    }
    publish_workbins(
        &hub,
        &web,
        "EventWorkbins",
        &op,
        json!({"workbins": workbins}),
    );
    Ok(accepted(&op))
}

/// The workbin instance a request names: type `id` (its UUID or name), owned by `owner_id`
/// (`data.ownerId`: an agent, for an agent workbin) or by the agent's own (itself, its place, its
/// group, its place's group); its WorkbinInfo and owner's name.
pub(super) fn instance(
    hub: &Hub,
    web: &WebSession,
    id: &str,
    owner_id: Option<&str>,
) -> Result<(KvList, String), V3Error> {
    let config = &hub.config;
    let ty = config
        .workbin_by_uuid(id)
        .or_else(|| config.workbin(id))
        .ok_or_else(|| {
            V3Error::new(
                StatusCode::NOT_FOUND,
                format!("no workbin {id:?}: use an id that get-workbins lists"),
            )
        })?;
    let wt = &config[ty];
    let owner = match owner_id {
        Some(o) if wt.owner == OwnerKind::Agent => Some((attr::WORKBIN_AGENT_ID, o.to_owned())),
        _ => own_instance(hub, web, wt.owner),
    };
    let Some((key, owner)) = owner else {
        return Err(V3Error::new(
            StatusCode::CONFLICT,
            format!(
                "workbin {:?} belongs to the agent's place or its group: activate the channels at a place first",
                wt.name
            ),
        ));
    };
    let info = KvList::new()
        .with(attr::WORKBIN_TYPE_ID, wt.name.as_str())
        .with(key, owner.as_str());
    Ok((info, owner))
}

/// `POST /workspace/v3/workbins/{id}/get-content` (`{"data": {"ownerId"}}` for another agent's
/// workbin): accepted; `EventWorkbinContent` follows on [`WORKBINS`].
pub(super) async fn get_content(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    let req = typed::<b::WorkbinRequest>(&body)?;
    let op = operation_id(req.operation_id);
    let owner_id = req.data.and_then(|d| d.owner_id);
    let (info, owner) = instance(&hub, &web, &id, owner_id.as_deref())?;
    let workbin = content_of(&hub, &web, info, &owner).await?;
    publish_workbins(
        &hub,
        &web,
        "EventWorkbinContent",
        &op,
        json!({"workbin": workbin}),
    );
    Ok(accepted(&op))
}

/// `POST /workspace/v3/workbins/{id}/subscribe` and `.../unsubscribe` (`{"data": {"ownerId",
/// "notifyPropertyChanges"}}`): accepted; `EventAck` (or `EventError`) follows on
/// [`WORKBINS`], before any change the subscription brings; then each change as
/// `EventWorkbinContentChanged` (`Update` only with `notifyPropertyChanges`).
async fn subscription(
    web: &WebSession,
    hub: &Hub,
    id: &str,
    op: &str,
    data: &b::WorkbinData,
    unsubscribe: bool,
) -> Result<(), V3Error> {
    let (info, _) = instance(hub, web, id, data.owner_id.as_deref())?;
    let workbin = crate::gws::WorkbinRef::from_info(&hub.config, &info);
    let msg = if unsubscribe {
        Message::new(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, info)
    } else {
        let props = data.notify_property_changes.unwrap_or(false);
        Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
            .with(attr::WORKBIN, info)
            .with(attr::NOTIFY_PROPERTY_CHANGES, i32::from(props))
    };
    hub.link
        .subscription(web.client, msg, workbin, unsubscribe, Some(op.to_owned()))
        .await
        .map_err(|e| V3Error::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(())
}

/// One workbin's subscribe or unsubscribe request.
async fn subscription_of(
    web: &WebSession,
    hub: &Hub,
    id: &str,
    body: &[u8],
    unsubscribe: bool,
) -> Result<Response, V3Error> {
    let req = typed::<b::WorkbinRequest>(body)?;
    let op = operation_id(req.operation_id);
    subscription(
        web,
        hub,
        id,
        &op,
        &req.data.unwrap_or_default(),
        unsubscribe,
    )
    .await?;
    Ok(accepted(&op))
}

/// `POST /workspace/v3/workbins/{id}/subscribe`.
pub(super) async fn subscribe(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    subscription_of(&web, &hub, &id, &body, false).await
}

/// `POST /workspace/v3/workbins/{id}/unsubscribe`.
pub(super) async fn unsubscribe(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    subscription_of(&web, &hub, &id, &body, true).await
}

/// The content of workbin instance `info` (owned by `owner`) as the Workspace API lists it.
async fn content_of(
    hub: &Hub,
    web: &WebSession,
    info: KvList,
    owner: &str,
) -> Result<Value, V3Error> {
    let name = info
        .get_str(attr::WORKBIN_TYPE_ID)
        .map(ByteString::to_string);
    let uuid = name
        .as_deref()
        .and_then(|n| hub.config.workbin(n))
        .map(|t| hub.config[t].uuid.clone());
    let msg = Message::new(MessageId::REQUEST_GET_WORKBIN_CONTENT).with(attr::WORKBIN, info);
    let reply = ask(hub, web, msg, MessageId::EVENT_WORKBIN_CONTENT).await?;
    let interactions: Vec<Value> = crate::gws::listed_interactions(&reply)
        .map(crate::v3_shapes::interaction)
        .collect();
    Ok(json!({"id": uuid, "workbinName": name, "ownerId": owner, "interactions": interactions}))
}

/// `POST /workspace/v3/workbins/get-contents` `{"data": {"workbinIds", "ownerId"}}`: accepted;
/// `EventWorkbinsContent` follows, the workbins by id.
pub(super) async fn get_contents(
    Workspace(web): Workspace,
    State(hub): Shared,
    body: Bytes,
) -> Result<Response, V3Error> {
    let req = typed::<b::WorkbinsRequest>(&body)?;
    let op = operation_id(req.operation_id);
    let mut workbins = serde_json::Map::new();
    for id in req.data.workbin_ids.list() {
        let (info, owner) = instance(&hub, &web, &id, req.data.owner_id.as_deref())?;
        workbins.insert(id, content_of(&hub, &web, info, &owner).await?);
    }
    publish_workbins(
        &hub,
        &web,
        "EventWorkbinsContent",
        &op,
        json!({"workbins": workbins}),
    );
    Ok(accepted(&op))
}

/// `POST /workspace/v3/workbins/subscribe` and `.../unsubscribe` for several workbins
/// (`{"data": {"workbinIds", "ownerId", "notifyPropertyChanges"}}`): one outcome each.
async fn subscriptions(
    web: &WebSession,
    hub: &Hub,
    body: &[u8],
    unsubscribe: bool,
) -> Result<Response, V3Error> {
    let req = typed::<b::WorkbinsRequest>(body)?;
    let op = operation_id(req.operation_id);
    let data = b::WorkbinData {
        owner_id: req.data.owner_id,
        notify_property_changes: req.data.notify_property_changes,
        workbin_id: None,
    };
    for id in req.data.workbin_ids.list() {
        subscription(web, hub, &id, &op, &data, unsubscribe).await?;
    }
    Ok(accepted(&op))
}

/// `POST /workspace/v3/workbins/subscribe`.
pub(super) async fn subscribe_many(
    Workspace(web): Workspace,
    State(hub): Shared,
    body: Bytes,
) -> Result<Response, V3Error> {
    subscriptions(&web, &hub, &body, false).await
}

/// `POST /workspace/v3/workbins/unsubscribe`.
pub(super) async fn unsubscribe_many(
    Workspace(web): Workspace,
    State(hub): Shared,
    body: Bytes,
) -> Result<Response, V3Error> {
    subscriptions(&web, &hub, &body, true).await
}

/// `POST /workspace/v3/workbins/{id}/add-interaction` `{"data": {"interactionId", "ownerId"}}`:
/// RequestPlaceInWorkbin; accepted, then `EventAck` (`operation` `AddInteraction`).
pub(super) async fn add_interaction(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    let req = typed::<b::AddInteractionRequest>(&body)?;
    let op = operation_id(req.operation_id);
    let (info, _) = instance(&hub, &web, &id, req.data.owner_id.as_deref())?;
    let msg = Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
        .with(attr::INTERACTION_ID, req.data.interaction_id.as_str())
        .with(attr::WORKBIN, info);
    ask(&hub, &web, msg, MessageId::EVENT_ACK).await?;
    publish_workbins(
        &hub,
        &web,
        "EventAck",
        &op,
        json!({"operation": "AddInteraction", "interactionId": req.data.interaction_id}),
    );
    Ok(accepted(&op))
}

/// `POST /workspace/v3/workbins/interactions/{id}/get-details`: accepted;
/// `EventGetInteractionDetails` follows with the interaction.
pub(super) async fn get_details(
    Workspace(web): Workspace,
    State(hub): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, V3Error> {
    let op = operation_id(typed::<b::Operation>(&body)?.operation_id);
    let interaction = read_interaction(&hub, &web, &id).await?;
    publish_workbins(
        &hub,
        &web,
        "EventGetInteractionDetails",
        &op,
        json!({"interaction": interaction}),
    );
    Ok(accepted(&op))
}

/// Interaction `id` as `web`'s agent may read it (RequestGetInteractionProperties), in the
/// Workspace API's shape.
pub(crate) async fn read_interaction(
    hub: &Hub,
    web: &WebSession,
    id: &str,
) -> Result<Value, V3Error> {
    let msg = Message::new(MessageId::REQUEST_GET_INTERACTION_PROPERTIES)
        .with(attr::INTERACTION_ID, id.to_owned());
    let reply = ask(hub, web, msg, MessageId::EVENT_INTERACTION_PROPERTIES).await?;
    Ok(reply
        .attrs
        .get_list(attr::INTERACTION)
        .map_or(Value::Null, crate::v3_shapes::interaction))
}
