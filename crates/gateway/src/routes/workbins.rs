//! Workbins: listing them, reading one's content, and the operations on them (Subscribe,
//! Unsubscribe, AddInteraction, PullInteraction). Which workbins an agent may reach, and
//! whether an interaction is in one, the engine decides (RequestGetWorkbins, RequestPull with
//! a Workbin); here the web API's names become WorkbinInfo and back.

use super::owner::{Addressed, Form, Target, WorkbinQuery, resolve, workbin_ids};
use super::shared::engine_error;
use crate::extract::{ApiBase, Body, Operation, SignedIn};
use crate::gws::{ApiError, Empty, Media, Status, Success, interaction_json};
use crate::hub::{Hub, WebSession};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use ixn_codec::{ByteString, KvList, Message, MessageId, attr};
use ixn_config::{OwnerKind, WorkbinType};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

type Shared = State<Arc<Hub>>;

/// A workbin as GWS describes it (the Workbin Resource): its names, id, URI and owner kind,
/// then the owner the request named (the project's own fields), then the content arrays that
/// were asked for.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkbinResource {
    workbin_name: String,
    /// The same name: GWS's samples use both keys.
    name: String,
    id: String,
    display_name: String,
    uri: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    workbin_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    place_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    place_group: Option<String>,
    #[serde(flatten)]
    content: serde_json::Map<String, Value>,
}

impl WorkbinResource {
    fn of(wt: &WorkbinType, uri: String) -> Self {
        Self {
            workbin_name: wt.name.clone(),
            name: wt.name.clone(),
            id: wt.uuid.clone(),
            display_name: wt.name.clone(),
            uri,
            kind: wt.owner.name(),
            workbin_user_id: None,
            place_id: None,
            agent_group: None,
            place_group: None,
            content: serde_json::Map::new(),
        }
    }
}

/// The fields `?fields=` may name in listings.
const LIST_FIELDS: [&str; 10] = [
    "workbinName",
    "name",
    "id",
    "displayName",
    "uri",
    "type",
    "workbinUserId",
    "placeId",
    "agentGroup",
    "placeGroup",
];

/// `?fields=`: absent or `*` for every field, else the listed ones (each one of
/// [`LIST_FIELDS`]).
fn fields(q: &WorkbinQuery) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = q.fields.as_deref() else {
        return Ok(None);
    };
    if list.trim() == "*" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !LIST_FIELDS.contains(&f) {
            return Err(ApiError::new(
                Status::Missing,
                format!(
                    "fields: unknown field {f:?}; use * or a comma-separated list of {}",
                    LIST_FIELDS.join(", ")
                ),
            ));
        }
        out.push(f.to_owned());
    }
    if out.is_empty() {
        return Err(ApiError::new(
            Status::Missing,
            format!(
                "fields is empty; use * or a comma-separated list of {}",
                LIST_FIELDS.join(", ")
            ),
        ));
    }
    Ok(Some(out))
}

/// Which content arrays a reply carries.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Include {
    /// None (no `?subresources=`).
    Nothing,
    /// `*`: every media that has items.
    All,
    /// These, each even when empty (`?subresources=chat,email`, or a media path).
    Only(Vec<Media>),
}

/// `?subresources=`: absent, `*`, or media names.
fn subresources(q: &WorkbinQuery) -> Result<Include, ApiError> {
    let Some(list) = q.subresources.as_deref() else {
        return Ok(Include::Nothing);
    };
    if list.trim() == "*" {
        return Ok(Include::All);
    }
    let mut media = Vec::new();
    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = Media::from_subresource(s).ok_or_else(|| {
            ApiError::new(
                Status::Missing,
                format!(
                    "subresources: unknown value {s:?}; use * or a comma-separated list of {}",
                    Media::ALL.map(Media::subresource).join(", ")
                ),
            )
        })?;
        if !media.contains(&m) {
            media.push(m);
        }
    }
    if media.is_empty() {
        return Err(ApiError::new(
            Status::Missing,
            "subresources is empty; use * or a comma-separated list of media",
        ));
    }
    Ok(Include::Only(media))
}

#[derive(Serialize)]
pub(super) struct Listing {
    workbins: Vec<Value>,
}

#[derive(Serialize)]
pub(super) struct Content {
    workbin: WorkbinResource,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Referenced {
    reference_id: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReferencedMany {
    reference_ids: serde_json::Map<String, Value>,
}

#[derive(Serialize)]
struct Pulled {
    interaction: Value,
}

/// A listing entry with only the asked fields.
fn listed(resource: &WorkbinResource, only: Option<&[String]>) -> Value {
    let mut v = serde_json::to_value(resource).unwrap_or(Value::Null);
    if let (Some(only), Some(map)) = (only, v.as_object_mut()) {
        map.retain(|k, _| only.iter().any(|f| f == k));
    }
    v
}

fn need_session(web: &WebSession) -> Result<String, ApiError> {
    web.place().ok_or_else(|| {
        ApiError::new(
            Status::BadState,
            "start a contact center session first: POST /api/v2/me {\"operationName\":\"StartContactCenterSession\",\"place\":\"<place id>\"}",
        )
    })
}

/// Asks the engine; an EventError (or another reply than `want`) becomes the GWS error.
async fn ask(
    hub: &Hub,
    web: &WebSession,
    msg: Message,
    want: MessageId,
) -> Result<Arc<Message>, ApiError> {
    hub.ask(web.client, msg, want).await
}

/// `GET /api/v2/me/workbins`: the instances the agent reaches (RequestGetWorkbins): its own
/// agent workbins (not those of agents it supervises, which it reaches by user id), its
/// place's once a session is started, its and its supervised groups', its place's groups'.
/// With `?workbinIds=`, the content of those workbins instead (see [`content_many`]).
async fn list_mine(
    web: Arc<WebSession>,
    hub: Arc<Hub>,
    base: String,
    q: WorkbinQuery,
) -> Result<Success<Listing>, ApiError> {
    if q.workbin_ids.is_some() {
        return content_many(hub, web, Form::Me, q, base).await;
    }
    let only = fields(&q)?;
    let config = &hub.config;
    let me = &config[web.agent];
    let msg = Message::new(MessageId::REQUEST_GET_WORKBINS).with(attr::AGENT_ID, me.id.as_str());
    let reply = ask(&hub, &web, msg, MessageId::EVENT_WORKBINS).await?;
    let instances = crate::gws::workbin_instances(&reply);
    let mut workbins = Vec::new();
    for info in instances {
        let name = info.get_str(attr::WORKBIN_TYPE_ID).map_or("", |s| s);
        let Some(ty) = config.workbin(name) else {
            continue;
        };
        let text = |key: &str| info.get_str(key).map(ByteString::to_string);
        let wt = &config[ty];
        let mut r = WorkbinResource::of(wt, format!("{base}/workbins/{}", wt.uuid));
        match wt.owner {
            OwnerKind::Agent => {
                if text(attr::WORKBIN_AGENT_ID).as_deref() != Some(me.id.as_str()) {
                    continue;
                }
                r.workbin_user_id = Some(me.user_id.clone());
            }
            OwnerKind::Place => r.place_id = text(attr::WORKBIN_PLACE_ID),
            OwnerKind::AgentGroup => r.agent_group = text(attr::WORKBIN_GROUP_ID),
            OwnerKind::PlaceGroup => r.place_group = text(attr::WORKBIN_PLACE_GROUP_ID),
        }
        workbins.push(listed(&r, only.as_deref()));
    }
    Ok(Success::new(Listing { workbins }))
}

/// `GET /api/v2/workbins`: the workbin types of the agent's tenant (RequestWorkbinTypesInfo).
/// With `?workbinIds=`, the content of those workbins instead.
async fn list_types(
    web: Arc<WebSession>,
    hub: Arc<Hub>,
    base: String,
    q: WorkbinQuery,
) -> Result<Success<Listing>, ApiError> {
    if q.workbin_ids.is_some() {
        return content_many(hub, web, Form::Any, q, base).await;
    }
    let only = fields(&q)?;
    let config = &hub.config;
    let msg = Message::new(MessageId::REQUEST_WORKBIN_TYPES_INFO)
        .with(attr::TENANT_ID, config[web.agent].tenant);
    let reply = ask(&hub, &web, msg, MessageId::EVENT_WORKBIN_TYPES_INFO).await?;
    let workbins = reply
        .attrs
        .get_list(attr::WORKBIN_TYPES)
        .into_iter()
        .flatten()
        .filter_map(|(name, _)| config.workbin(name))
        .map(|ty| {
            let wt = &config[ty];
            listed(
                &WorkbinResource::of(wt, format!("{base}/workbins/{}", wt.uuid)),
                only.as_deref(),
            )
        })
        .collect();
    Ok(Success::new(Listing { workbins }))
}

/// `GET /api/v2/users/{userId}/workbins?workbinIds=...`: several workbins' content by user.
async fn content_many(
    hub: Arc<Hub>,
    web: Arc<WebSession>,
    form: Form,
    q: WorkbinQuery,
    base: String,
) -> Result<Success<Listing>, ApiError> {
    let ids = workbin_ids(None, &q)?;
    let include = subresources(&q)?;
    need_session(&web)?;
    let mut workbins = Vec::with_capacity(ids.len());
    for id in &ids {
        let r = workbin(&hub, &web, id, &form, &q, include.clone(), &base).await?;
        workbins.push(serde_json::to_value(&r).unwrap_or(Value::Null));
    }
    Ok(Success::new(Listing { workbins }))
}

/// `GET .../workbins`: the agent's workbins (`me`), the workbin types (any), or, with
/// `?workbinIds=` (always for a user), their content.
pub(super) async fn list(
    SignedIn(web): SignedIn,
    State(hub): Shared,
    ApiBase(base): ApiBase,
    at: Addressed,
    Query(q): Query<WorkbinQuery>,
) -> Result<Success<Listing>, ApiError> {
    match at.form {
        Form::Me if q.workbin_ids.is_none() => list_mine(web, hub, base, q).await,
        Form::Any if q.workbin_ids.is_none() => list_types(web, hub, base, q).await,
        form => content_many(hub, web, form, q, base).await,
    }
}

/// `GET .../workbins/{id}` and `GET .../workbins/{id}/{media}`: one workbin's content.
pub(super) async fn get(
    SignedIn(web): SignedIn,
    State(hub): Shared,
    ApiBase(base): ApiBase,
    at: Addressed,
    Query(q): Query<WorkbinQuery>,
) -> Result<Success<Content>, ApiError> {
    let id = at.id.unwrap_or_default();
    content(hub, web, id, at.form, q, at.media, base).await
}

/// `POST .../workbins/{id}` and `POST .../workbins?workbinIds=a,b`: an operation.
pub(super) async fn post(
    SignedIn(web): SignedIn,
    State(hub): Shared,
    at: Addressed,
    Query(q): Query<WorkbinQuery>,
    body: Body<Operation>,
) -> Result<Response, ApiError> {
    operation(hub, web, at.id, at.form, q, body.0).await
}

async fn content(
    hub: Arc<Hub>,
    web: Arc<WebSession>,
    id: String,
    form: Form,
    q: WorkbinQuery,
    media: Option<String>,
    base: String,
) -> Result<Success<Content>, ApiError> {
    let mut include = subresources(&q)?;
    if let Some(m) = media {
        let m = Media::from_array(&m).ok_or_else(|| {
            ApiError::new(
                Status::NotFound,
                format!(
                    "no media {m:?} in a workbin; use one of {}",
                    Media::ALL.map(Media::array).join(", ")
                ),
            )
        })?;
        include = Include::Only(vec![m]);
    }
    need_session(&web)?;
    let workbin = workbin(&hub, &web, &id, &form, &q, include, &base).await?;
    Ok(Success::new(Content { workbin }))
}

/// Reads one workbin (RequestGetWorkbinContent: the engine checks access) as a resource with
/// the `include`d arrays.
async fn workbin(
    hub: &Hub,
    web: &WebSession,
    id: &str,
    form: &Form,
    q: &WorkbinQuery,
    include: Include,
    base: &str,
) -> Result<WorkbinResource, ApiError> {
    let target = resolve(hub, web, id, form, q)?;
    let wt = &hub.config[target.ty];
    let uri = match form {
        Form::User(user) => format!("{base}/users/{user}/workbins/{}", wt.uuid),
        Form::Me | Form::Any => format!("{base}/workbins/{}", wt.uuid),
    };
    let mut r = WorkbinResource::of(wt, uri);
    r.workbin_user_id = target.workbin.workbin_user_id.clone();
    r.agent_group = target.workbin.agent_group.clone();
    r.place_group = target.workbin.place_group.clone();
    let msg = Message::new(MessageId::REQUEST_GET_WORKBIN_CONTENT).with(attr::WORKBIN, target.info);
    let reply = ask(hub, web, msg, MessageId::EVENT_WORKBIN_CONTENT).await?;
    let mut arrays: Vec<(Media, Vec<Value>)> = match &include {
        Include::Nothing => return Ok(r),
        Include::All => Vec::new(),
        Include::Only(media) => media.iter().map(|m| (*m, Vec::new())).collect(),
    };
    for props in crate::gws::listed_interactions(&reply) {
        let media = Media::of(props.get_str(attr::MEDIA_TYPE).map_or("", |s| s));
        match arrays.iter_mut().find(|(m, _)| *m == media) {
            Some((_, items)) => items.push(interaction_json(props)),
            None if include == Include::All => arrays.push((media, vec![interaction_json(props)])),
            None => {}
        }
    }
    if include == Include::All {
        // In GWS's order of media.
        arrays.sort_by_key(|(m, _)| Media::ALL.iter().position(|x| x == m));
    }
    for (m, items) in arrays {
        r.content.insert(m.array().to_owned(), Value::Array(items));
    }
    Ok(r)
}

/// `POST .../workbins/{id}` and `POST .../workbins?workbinIds=a,b`.
async fn operation(
    hub: Arc<Hub>,
    web: Arc<WebSession>,
    id: Option<String>,
    form: Form,
    q: WorkbinQuery,
    op: Operation,
) -> Result<Response, ApiError> {
    let name = op.name()?;
    let ids = workbin_ids(id.as_deref(), &q)?;
    need_session(&web)?;
    let targets = ids
        .iter()
        .map(|i| resolve(&hub, &web, i, &form, &q))
        .collect::<Result<Vec<_>, _>>()?;
    match name {
        "Subscribe" | "Unsubscribe" => {
            let unsubscribe = name == "Unsubscribe";
            let mut references = serde_json::Map::new();
            let mut single = None;
            for (given, target) in ids.iter().zip(targets) {
                let msg = if unsubscribe {
                    Message::new(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS)
                        .with(attr::WORKBIN, target.info)
                } else {
                    // GWS's ItemUpdated: property changes reach v2 subscribers too.
                    Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
                        .with(attr::WORKBIN, target.info)
                        .with(attr::NOTIFY_PROPERTY_CHANGES, 1)
                };
                let reference = hub
                    .link
                    .subscription(web.client, msg, target.workbin, unsubscribe, None)
                    .await
                    .map_err(engine_error)?;
                references.insert(given.clone(), Value::from(reference));
                single = Some(reference);
            }
            Ok(match (&id, single) {
                (Some(_), Some(reference_id)) => {
                    Success::new(Referenced { reference_id }).into_response()
                }
                _ => Success::new(ReferencedMany {
                    reference_ids: references,
                })
                .into_response(),
            })
        }
        "AddInteraction" | "PullInteraction" => {
            let [target] = <[Target; 1]>::try_from(targets).map_err(|_| {
                ApiError::new(
                    Status::Missing,
                    format!("{name} names one workbin, in the path"),
                )
            })?;
            let Some(interaction) = op.interaction_id() else {
                return Err(ApiError::new(
                    Status::Missing,
                    format!(
                        "interactionId is required: {{\"operationName\":\"{name}\",\"interactionId\":\"<id>\"}}"
                    ),
                ));
            };
            if name == "AddInteraction" {
                let msg = Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                    .with(attr::INTERACTION_ID, interaction)
                    .with(attr::WORKBIN, target.info);
                ask(&hub, &web, msg, MessageId::EVENT_ACK).await?;
                Ok(Success::new(Empty {}).into_response())
            } else {
                pull(&hub, &web, target, interaction).await
            }
        }
        other => Err(ApiError::new(
            Status::Missing,
            format!(
                "unknown operationName {other:?} for a workbin: use Subscribe, Unsubscribe, AddInteraction or PullInteraction"
            ),
        )),
    }
}

/// PullInteraction: RequestPull naming the workbin, so that the engine checks that the
/// interaction is in it and assigns it to the agent in one step.
async fn pull(
    hub: &Hub,
    web: &WebSession,
    target: Target,
    interaction: &str,
) -> Result<Response, ApiError> {
    let msg = Message::new(MessageId::REQUEST_PULL)
        .with(attr::VIEW_ID, "_system_")
        .with(
            attr::PULL_PARAMETERS,
            KvList::new().with(attr::PULL_ID, interaction),
        )
        .with(attr::WORKBIN, target.info);
    let reply = ask(hub, web, msg, MessageId::EVENT_PULLED_INTERACTIONS).await?;
    let pulled = reply
        .attrs
        .get_list(attr::INTERACTIONS)
        .and_then(|l| {
            l.iter()
                .next()
                .and_then(|(_, v)| v.as_list().map(interaction_json))
        })
        .unwrap_or(Value::Null);
    Ok(Success::new(Pulled {
        interaction: pulled,
    })
    .into_response())
}
