//! The HTTP routes: sign-in, the contact center session, workbins, and the CometD endpoint.

use crate::cometd;
use crate::gws::{ApiError, Status, interaction_json};
use crate::hub::{Hub, WebSession};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ixn_codec::{KvList, Message, MessageId, attr};
use ixn_config::OwnerKind;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "IXNSESSION";

type Shared = State<Arc<Hub>>;

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    let base = hub.config.http.notifications_path.clone();
    let max_body = hub.config.http.max_body_bytes;
    Router::new()
        .route("/api/v2/me", get(me_get).post(me_post))
        .route("/api/v2/me/workbins", get(list_me).post(post_me_multi))
        .route("/api/v2/workbins", get(list_all).post(post_any_multi))
        .route("/api/v2/users/{user}/workbins", post(post_user_multi))
        .route("/api/v2/me/workbins/{id}", get(content_me).post(post_me))
        .route("/api/v2/workbins/{id}", get(content_any).post(post_any))
        .route(
            "/api/v2/users/{user}/workbins/{id}",
            get(content_user).post(post_user),
        )
        .route(&base, post(bayeux).get(upgrade))
        .route(&format!("{base}/"), post(bayeux))
        .route(&format!("{base}/{{kind}}"), post(bayeux_suffix))
        .route("/api/v2/signout", post(sign_out))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hub),
            guard,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(hub)
}

async fn not_found() -> ApiError {
    ApiError::new(
        Status::NotFound,
        "no such resource (docs/web-api.md lists the routes)",
    )
}

/// A response, plus the session cookie when this request signed in.
fn with_cookie(response: impl IntoResponse, cookie: Option<HeaderValue>) -> Response {
    let mut response = response.into_response();
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn ok(body: Map<String, Value>) -> Response {
    let mut out = Map::with_capacity(body.len() + 1);
    out.insert("statusCode".into(), json!(0));
    out.extend(body);
    axum::Json(Value::Object(out)).into_response()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// A request's headers and the client's address.
pub(crate) struct Caller {
    headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            headers: parts.headers.clone(),
            peer: crate::listen::peer_of(parts).map(|a| a.ip()),
        })
    }
}

/// Who is calling: the session cookie, or HTTP Basic (agent id and password), which signs in
/// (a new session token each time) and returns the cookie to set.
///
/// Sign-ins are limited per client address (`[http] sign_ins_per_second`; more get 429 without
/// a check), and a refusal costs one password check whether the agent exists or not.
async fn authenticate(
    hub: &Arc<Hub>,
    caller: &Caller,
) -> Result<(Arc<WebSession>, Option<HeaderValue>), ApiError> {
    let headers = &caller.headers;
    if let Some(web) = cookie_token(headers).and_then(|t| hub.web_by_token(&t)) {
        web.touch();
        return Ok((web, None));
    }
    let unauthenticated = |m: &str| ApiError::new(Status::Unauthenticated, m);
    let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthenticated(
            "not authenticated: send HTTP Basic credentials (agent id and password); later requests may use the IXNSESSION cookie instead",
        ));
    };
    let Some((user, password)) = crate::auth::parse_basic(basic) else {
        return Err(unauthenticated(
            "the Authorization header is not HTTP Basic credentials (base64 of agent-id:password)",
        ));
    };
    if let Some(ip) = caller.peer
        && hub.sign_ins.check_key(&ip).is_err()
    {
        tracing::info!(%ip, "HTTP sign-in refused: too many from this address");
        return Err(ApiError::new(
            Status::BadState,
            format!(
                "too many sign-ins from this address (at most {} a second, [http] sign_ins_per_second); wait a moment",
                hub.config.http.sign_ins_per_second
            ),
        )
        .with_http(StatusCode::TOO_MANY_REQUESTS));
    }
    let config = &hub.config;
    let agent = config
        .agent(&user)
        .or_else(|| config.agent_by_user_id(&user));
    let entry = agent.and_then(|a| config.agents.get(a.get()));
    let hash = entry.and_then(|e| e.password_hash.clone());
    // Unknown agent, or one without a password: check against the decoy all the same.
    let checked = hash.clone().unwrap_or_else(|| hub.decoy_hash.clone());
    let Some(verified) = hub.passwords.check(password, checked).await else {
        return Err(ApiError::new(
            Status::BadState,
            "too many sign-ins at once; try again in a moment",
        )
        .with_http(StatusCode::SERVICE_UNAVAILABLE));
    };
    let (Some(agent), Some(_), true) = (agent, hash, verified) else {
        let why = match (entry, verified) {
            (None, _) => "unknown agent".to_owned(),
            (Some(e), _) if e.password_hash.is_none() => {
                format!("agent {:?} has no password_hash in the configuration", e.id)
            }
            (Some(e), _) => format!("wrong password for agent {:?}", e.id),
        };
        // The reason is for the operator; the client learns nothing about which it was.
        tracing::info!(peer = ?caller.peer, %why, "HTTP sign-in refused");
        return Err(unauthenticated("unknown agent or wrong password"));
    };
    let (web, token) = hub.sign_in(agent).await?;
    let cookie =
        HeaderValue::from_str(&format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax")).ok();
    Ok((web, cookie))
}

/// `POST /api/v2/signout`: ends the caller's web session (its agent is logged out, its
/// subscriptions and CometD sessions end, every token of it stops working).
async fn sign_out(State(hub): Shared, headers: Caller) -> Response {
    let Some(web) = cookie_token(&headers.headers).and_then(|t| hub.web_by_token(&t)) else {
        return ApiError::new(
            Status::Unauthenticated,
            "not signed in: there is no web session to end",
        )
        .into_response();
    };
    hub.end_web_session(&web, "signed out").await;
    let mut response = ok(Map::new());
    if let Ok(expired) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    response
}

/// State-changing requests (any method but GET and HEAD) and WebSocket upgrades must come from
/// a page of the server's own origin or of `[http] allowed_origins` when they carry `Origin`,
/// and non-GET requests must be JSON (`Content-Type: application/json`) or carry
/// `X-Requested-With`: a form or `text/plain` post from a foreign page (CSRF) is refused before
/// any handler runs.
async fn guard(
    State(hub): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let method = request.method();
    let reading = *method == axum::http::Method::GET || *method == axum::http::Method::HEAD;
    let upgrade = headers.contains_key(header::UPGRADE);
    if !reading || upgrade {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let own = !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"));
            let allowed = hub
                .config
                .http
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/') == origin);
            if !own && !allowed {
                tracing::info!(%origin, "request from a foreign origin refused");
                return ApiError::new(
                    Status::Forbidden,
                    format!("requests from origin {origin:?} are not allowed; add it to [http] allowed_origins if it is yours"),
                )
                .with_http(StatusCode::FORBIDDEN)
                .into_response();
            }
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !reading && !json && !headers.contains_key("x-requested-with") {
            return ApiError::new(
                Status::Missing,
                "send state-changing requests with Content-Type: application/json (or an X-Requested-With header)",
            )
            .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .into_response();
        }
    }
    next.run(request).await
}

/// The request body as a JSON object with an `operationName`.
fn operation(
    body: Result<Bytes, BytesRejection>,
    max: usize,
) -> Result<(String, Map<String, Value>), ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Status::Missing,
                format!("the request body is larger than {max} bytes ([http] max_body_bytes)"),
            )
            .with_http(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::new(
                Status::Missing,
                format!("cannot read the request body: {e}"),
            )
        }
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            Status::Missing,
            format!("the body is not JSON ({e}); send an object such as {{\"operationName\":\"Subscribe\"}}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::new(
            Status::Missing,
            "the body must be a JSON object such as {\"operationName\":\"Subscribe\"}",
        ));
    };
    let Some(op) = map.get("operationName").and_then(Value::as_str) else {
        return Err(ApiError::new(
            Status::Missing,
            "operationName is required (a string)",
        ));
    };
    Ok((op.to_owned(), map))
}

fn engine_error(e: String) -> ApiError {
    ApiError::new(Status::Internal, e)
}

async fn me_get(State(hub): Shared, headers: Caller) -> Response {
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Some(agent) = hub.config.agents.get(web.agent.get()) else {
        return ApiError::new(Status::Internal, "agent missing").into_response();
    };
    let place = web.place();
    let mut user = Map::new();
    user.insert("id".into(), json!(agent.user_id));
    user.insert("employeeId".into(), json!(agent.id));
    user.insert("userName".into(), json!(agent.id));
    user.insert("contactCenterSession".into(), json!(place.is_some()));
    if let Some(p) = place {
        user.insert("place".into(), json!(p));
    }
    let mut body = Map::new();
    body.insert("user".into(), Value::Object(user));
    with_cookie(ok(body), cookie)
}

async fn me_post(
    State(hub): Shared,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    with_cookie(me_operation(&hub, &web, body).await, cookie)
}

async fn me_operation(
    hub: &Arc<Hub>,
    web: &Arc<WebSession>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (op, map) = match operation(body, hub.config.http.max_body_bytes) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let Some(agent) = hub.config.agents.get(web.agent.get()) else {
        return ApiError::new(Status::Internal, "agent missing").into_response();
    };
    match op.as_str() {
        "StartContactCenterSession" => {
            let Some(place) = map.get("place").and_then(Value::as_str) else {
                return ApiError::new(
                    Status::Missing,
                    "place is required: {\"operationName\":\"StartContactCenterSession\",\"place\":\"<place id>\"}",
                )
                .into_response();
            };
            if hub.config.place(place).is_none() {
                return ApiError::new(Status::NotFound, format!("no place {place:?} in the configuration"))
                    .into_response();
            }
            match web.place() {
                Some(p) if p == place => return ok(Map::new()),
                Some(p) => {
                    return ApiError::new(
                        Status::BadState,
                        format!("a contact center session is already started at place {p:?}; end it first (EndContactCenterSession)"),
                    )
                    .into_response();
                }
                None => {}
            }
            let msg = Message::new(MessageId::REQUEST_AGENT_LOGIN)
                .with(attr::TENANT_ID, agent.tenant)
                .with(attr::AGENT_ID, agent.id.as_str())
                .with(attr::PLACE_ID, place);
            match hub.request(Some(web.client), msg).await {
                Ok(r) if r.id == MessageId::EVENT_ACK => {
                    crate::hub::lock(&web.inner).place = Some(place.to_owned());
                    ok(Map::new())
                }
                Ok(r) => ApiError::from_engine(&r).into_response(),
                Err(e) => engine_error(e).into_response(),
            }
        }
        "EndContactCenterSession" => {
            if web.place().is_none() {
                return ApiError::new(Status::BadState, "no contact center session is started")
                    .into_response();
            }
            match hub
                .request(Some(web.client), Message::new(MessageId::REQUEST_AGENT_LOGOUT))
                .await
            {
                Ok(r) if r.id == MessageId::EVENT_ACK => {
                    crate::hub::lock(&web.inner).place = None;
                    ok(Map::new())
                }
                Ok(r) => ApiError::from_engine(&r).into_response(),
                Err(e) => engine_error(e).into_response(),
            }
        }
        other => ApiError::new(
            Status::Missing,
            format!("unknown operationName {other:?} for /api/v2/me: use StartContactCenterSession or EndContactCenterSession"),
        )
        .into_response(),
    }
}

/// Which path form addressed the workbin.
#[derive(Clone, Debug)]
enum Form {
    /// `/api/v2/me/workbins`
    Me,
    /// `/api/v2/workbins`
    Any,
    /// `/api/v2/users/{userId}/workbins`
    User(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkbinQuery {
    workbin_ids: Option<String>,
    agent_group: Option<String>,
    place_group: Option<String>,
}

/// A workbin the request names: its WorkbinInfo and the fields its messages carry.
struct Target {
    info: KvList,
    data: Map<String, Value>,
}

fn need_session(web: &WebSession) -> Result<String, ApiError> {
    web.place().ok_or_else(|| {
        ApiError::new(
            Status::BadState,
            "start a contact center session first: POST /api/v2/me {\"operationName\":\"StartContactCenterSession\",\"place\":\"<place id>\"}",
        )
    })
}

fn resolve(
    hub: &Hub,
    web: &WebSession,
    id: &str,
    form: &Form,
    query: &WorkbinQuery,
) -> Result<Target, ApiError> {
    let config = &hub.config;
    let me = config
        .agents
        .get(web.agent.get())
        .ok_or_else(|| ApiError::new(Status::Internal, "agent missing"))?;
    let wt = config
        .workbin_by_uuid(id)
        .or_else(|| config.workbin(id))
        .and_then(|t| config.workbins.get(t.get()))
        .filter(|w| w.tenant == me.tenant)
        .ok_or_else(|| {
            ApiError::new(
                Status::NotFound,
                format!("no workbin {id:?} (GET /api/v2/workbins lists them)"),
            )
        })?;
    let mut info = KvList::new().with(attr::WORKBIN_TYPE_ID, wt.name.as_str());
    let mut data = Map::new();
    data.insert("id".into(), json!(wt.uuid));
    data.insert("name".into(), json!(wt.name));
    let wrong = |param: &str| {
        ApiError::new(
            Status::Missing,
            format!(
                "{param} does not apply to workbin {:?}, whose owner is {}",
                wt.name,
                wt.owner.name()
            ),
        )
    };
    if query.agent_group.is_some() && wt.owner != OwnerKind::AgentGroup {
        return Err(wrong("agentGroup"));
    }
    if query.place_group.is_some() && wt.owner != OwnerKind::PlaceGroup {
        return Err(wrong("placeGroup"));
    }
    match wt.owner {
        OwnerKind::Agent => {
            let owner = match form {
                Form::User(user) => {
                    let a = config
                        .agent_by_user_id(user)
                        .and_then(|a| config.agents.get(a.get()))
                        .ok_or_else(|| {
                            ApiError::new(Status::NotFound, format!("no user {user:?}"))
                        })?;
                    data.insert("workbinUserId".into(), json!(user));
                    a.id.clone()
                }
                Form::Me | Form::Any => me.id.clone(),
            };
            info.push(attr::WORKBIN_AGENT_ID, owner);
        }
        OwnerKind::Place => {
            if let Form::User(_) = form {
                return Err(ApiError::new(
                    Status::BadState,
                    format!(
                        "workbin {:?} belongs to a place: address it with /api/v2/me/workbins at your own place",
                        wt.name
                    ),
                ));
            }
            // No owner key: the engine uses the agent's own place.
        }
        OwnerKind::AgentGroup => {
            let g = named_group(
                query.agent_group.as_deref(),
                "agentGroup",
                "agent group",
                &wt.name,
                |g| config.agent_group(g).is_some(),
            )?;
            info.push(attr::WORKBIN_GROUP_ID, g);
            data.insert("agentGroup".into(), json!(g));
        }
        OwnerKind::PlaceGroup => {
            let g = named_group(
                query.place_group.as_deref(),
                "placeGroup",
                "place group",
                &wt.name,
                |g| config.place_group(g).is_some(),
            )?;
            info.push(attr::WORKBIN_PLACE_GROUP_ID, g);
            data.insert("placeGroup".into(), json!(g));
        }
    }
    Ok(Target { info, data })
}

/// The group that `?{param}=` names for a workbin owned by groups of `kind`: missing is
/// `Missing`, unknown is `NotFound`.
fn named_group<'q>(
    value: Option<&'q str>,
    param: &str,
    kind: &str,
    workbin: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<&'q str, ApiError> {
    let g = value.ok_or_else(|| {
        ApiError::new(
            Status::Missing,
            format!("?{param}=NAME is required for workbin {workbin:?} (owned by {kind}s)"),
        )
    })?;
    if !exists(g) {
        return Err(ApiError::new(Status::NotFound, format!("no {kind} {g:?}")));
    }
    Ok(g)
}

async fn list_me(State(hub): Shared, headers: Caller) -> Response {
    list(hub, headers, true).await
}

async fn list_all(State(hub): Shared, headers: Caller) -> Response {
    list(hub, headers, false).await
}

/// The workbin types of the agent's tenant; with `mine`, each instance the agent can reach
/// (its own, its place's, its groups', supervised groups').
async fn list(hub: Arc<Hub>, headers: Caller, mine: bool) -> Response {
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let config = &hub.config;
    let Some(me) = config.agents.get(web.agent.get()) else {
        return ApiError::new(Status::Internal, "agent missing").into_response();
    };
    let place = web.place();
    let mut workbins = Vec::new();
    for wt in config.workbins.iter().filter(|w| w.tenant == me.tenant) {
        let base = json!({"id": wt.uuid, "name": wt.name, "ownerType": wt.owner.name()});
        if !mine {
            workbins.push(base);
            continue;
        }
        let with = |key: &str, value: &str| {
            let mut v = base.clone();
            crate::gws::put(&mut v, key, json!(value));
            v
        };
        match wt.owner {
            OwnerKind::Agent => workbins.push(with("workbinUserId", &me.user_id)),
            OwnerKind::Place => {
                if let Some(p) = &place {
                    workbins.push(with("placeId", p));
                }
            }
            OwnerKind::AgentGroup => {
                let mut groups: Vec<ixn_config::AgentGroupIdx> = Vec::new();
                for g in me.groups.iter().chain(&me.supervises) {
                    let g = *g;
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
                for g in groups {
                    if let Some(name) = config.agent_groups.get(g.get()) {
                        workbins.push(with("agentGroup", name));
                    }
                }
            }
            OwnerKind::PlaceGroup => {
                let groups = place
                    .as_deref()
                    .and_then(|p| config.place(p))
                    .and_then(|p| config.places.get(p.get()))
                    .map(|p| p.groups.clone())
                    .unwrap_or_default();
                for g in groups {
                    if let Some(name) = config.place_groups.get(g.get()) {
                        workbins.push(with("placeGroup", name));
                    }
                }
            }
        }
    }
    let mut body = Map::new();
    body.insert("workbins".into(), Value::Array(workbins));
    with_cookie(ok(body), cookie)
}

async fn content_me(
    State(hub): Shared,
    Path(id): Path<String>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
) -> Response {
    content(hub, headers, id, Form::Me, q).await
}

async fn content_any(
    State(hub): Shared,
    Path(id): Path<String>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
) -> Response {
    content(hub, headers, id, Form::Any, q).await
}

async fn content_user(
    State(hub): Shared,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
) -> Response {
    content(hub, headers, id, Form::User(user), q).await
}

async fn content(
    hub: Arc<Hub>,
    headers: Caller,
    id: String,
    form: Form,
    q: WorkbinQuery,
) -> Response {
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let result = async {
        need_session(&web)?;
        let target = resolve(&hub, &web, &id, &form, &q)?;
        let msg =
            Message::new(MessageId::REQUEST_GET_WORKBIN_CONTENT).with(attr::WORKBIN, target.info);
        let reply = hub
            .request(Some(web.client), msg)
            .await
            .map_err(engine_error)?;
        if reply.id != MessageId::EVENT_WORKBIN_CONTENT {
            return Err(ApiError::from_engine(&reply));
        }
        let interactions: Vec<Value> = reply
            .attrs
            .get_list(attr::INTERACTIONS)
            .map(|l| {
                l.iter()
                    .filter_map(|(_, v)| v.as_list().map(interaction_json))
                    .collect()
            })
            .unwrap_or_default();
        let mut body = target.data;
        body.insert("interactions".into(), Value::Array(interactions));
        Ok(ok(body))
    }
    .await;
    with_cookie(result.unwrap_or_else(IntoResponse::into_response), cookie)
}

async fn post_me(
    State(hub): Shared,
    Path(id): Path<String>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    workbin_post(hub, headers, Some(id), Form::Me, q, body).await
}

async fn post_any(
    State(hub): Shared,
    Path(id): Path<String>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    workbin_post(hub, headers, Some(id), Form::Any, q, body).await
}

async fn post_user(
    State(hub): Shared,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    workbin_post(hub, headers, Some(id), Form::User(user), q, body).await
}

async fn post_me_multi(
    State(hub): Shared,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    workbin_post(hub, headers, None, Form::Me, q, body).await
}

async fn post_any_multi(
    State(hub): Shared,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    workbin_post(hub, headers, None, Form::Any, q, body).await
}

async fn post_user_multi(
    State(hub): Shared,
    Path(user): Path<String>,
    Query(q): Query<WorkbinQuery>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    workbin_post(hub, headers, None, Form::User(user), q, body).await
}

/// `POST .../workbins/{id}` and `POST .../workbins?workbinIds=a,b`.
async fn workbin_post(
    hub: Arc<Hub>,
    headers: Caller,
    id: Option<String>,
    form: Form,
    q: WorkbinQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let result = workbin_operation(&hub, &web, id, form, q, body).await;
    with_cookie(result.unwrap_or_else(IntoResponse::into_response), cookie)
}

async fn workbin_operation(
    hub: &Arc<Hub>,
    web: &Arc<WebSession>,
    id: Option<String>,
    form: Form,
    q: WorkbinQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (op, map) = operation(body, hub.config.http.max_body_bytes)?;
    let ids: Vec<String> = match (&id, &q.workbin_ids) {
        (Some(id), None) => vec![id.clone()],
        (None, Some(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Status::Missing,
                "give the workbin in the path or in ?workbinIds=, not both",
            ));
        }
        (None, None) => Vec::new(),
    };
    if ids.is_empty() {
        return Err(ApiError::new(
            Status::Missing,
            "workbinIds is required: ?workbinIds=ID1,ID2 (or name one workbin in the path)",
        ));
    }
    if ids.len() > 64 {
        return Err(ApiError::new(
            Status::Missing,
            "at most 64 workbinIds per request",
        ));
    }
    need_session(web)?;
    let targets = ids
        .iter()
        .map(|i| resolve(hub, web, i, &form, &q))
        .collect::<Result<Vec<_>, _>>()?;
    match op.as_str() {
        "Subscribe" | "Unsubscribe" => {
            let unsubscribe = op == "Unsubscribe";
            let mut references = Map::new();
            let mut single = None;
            for (given, target) in ids.iter().zip(targets) {
                let msg = if unsubscribe {
                    Message::new(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS)
                        .with(attr::WORKBIN, target.info)
                } else {
                    Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
                        .with(attr::WORKBIN, target.info)
                        .with(attr::NOTIFY_PROPERTY_CHANGES, 0)
                };
                let reference = hub
                    .subscription(web.client, msg, target.data, unsubscribe)
                    .await
                    .map_err(engine_error)?;
                references.insert(given.clone(), json!(reference));
                single = Some(reference);
            }
            let mut body = Map::new();
            match (&id, single) {
                (Some(_), Some(r)) => {
                    body.insert("referenceId".into(), json!(r));
                }
                _ => {
                    body.insert("referenceIds".into(), Value::Object(references));
                }
            }
            Ok(ok(body))
        }
        "AddInteraction" | "PullInteraction" => {
            let [target] = <[Target; 1]>::try_from(targets).map_err(|_| {
                ApiError::new(
                    Status::Missing,
                    format!("{op} names one workbin, in the path"),
                )
            })?;
            let Some(interaction) = map.get("interactionId").and_then(Value::as_str) else {
                return Err(ApiError::new(
                    Status::Missing,
                    format!(
                        "interactionId is required: {{\"operationName\":\"{op}\",\"interactionId\":\"<id>\"}}"
                    ),
                ));
            };
            if op == "AddInteraction" {
                let msg = Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                    .with(attr::INTERACTION_ID, interaction)
                    .with(attr::WORKBIN, target.info);
                let reply = hub
                    .request(Some(web.client), msg)
                    .await
                    .map_err(engine_error)?;
                if reply.id != MessageId::EVENT_ACK {
                    return Err(ApiError::from_engine(&reply));
                }
                Ok(ok(Map::new()))
            } else {
                pull(hub, web, &target, interaction).await
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

/// PullInteraction: the interaction must be in the addressed workbin; it is then assigned to
/// the agent (RequestPull).
async fn pull(
    hub: &Hub,
    web: &WebSession,
    target: &Target,
    interaction: &str,
) -> Result<Response, ApiError> {
    let read = Message::new(MessageId::REQUEST_GET_INTERACTION_PROPERTIES)
        .with(attr::INTERACTION_ID, interaction);
    let props = hub
        .request(Some(web.client), read)
        .await
        .map_err(engine_error)?;
    if props.id != MessageId::EVENT_INTERACTION_PROPERTIES {
        return Err(ApiError::from_engine(&props));
    }
    let name = target.info.get_str(attr::WORKBIN_TYPE_ID).map_or("", |s| s);
    let here = props
        .attrs
        .get_list(attr::INTERACTION)
        .and_then(|p| p.get_str(attr::INTERACTION_WORKBIN_TYPE_ID))
        .is_some_and(|w| &**w == name);
    if !here {
        return Err(ApiError::new(
            Status::BadState,
            format!("interaction {interaction:?} is not in workbin {name:?}"),
        ));
    }
    let msg = Message::new(MessageId::REQUEST_PULL)
        .with(attr::VIEW_ID, "_system_")
        .with(
            attr::PULL_PARAMETERS,
            KvList::new().with(attr::PULL_ID, interaction),
        );
    let reply = hub
        .request(Some(web.client), msg)
        .await
        .map_err(engine_error)?;
    if reply.id != MessageId::EVENT_PULLED_INTERACTIONS {
        return Err(ApiError::from_engine(&reply));
    }
    let pulled = reply
        .attrs
        .get_list(attr::INTERACTIONS)
        .and_then(|l| {
            l.iter()
                .next()
                .and_then(|(_, v)| v.as_list().map(interaction_json))
        })
        .unwrap_or(Value::Null);
    let mut body = Map::new();
    body.insert("interaction".into(), pulled);
    Ok(ok(body))
}

/// The CometD endpoint over long-polling: `POST {base}`, `{base}/`.
async fn bayeux(
    State(hub): Shared,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bayeux_batch(hub, headers, body).await
}

/// `POST {base}/handshake|connect|disconnect` (the JS client's URL suffixes).
async fn bayeux_suffix(
    State(hub): Shared,
    Path(kind): Path<String>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !matches!(kind.as_str(), "handshake" | "connect" | "disconnect") {
        return not_found().await.into_response();
    }
    bayeux_batch(hub, headers, body).await
}

async fn bayeux_batch(
    hub: Arc<Hub>,
    headers: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bad = |status: StatusCode, e: String| {
        (status, axum::Json(json!([{"channel": "/meta/unknown", "successful": false, "error": format!("400::{e}")}]))).into_response()
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return bad(e.status(), e.body_text()),
    };
    let batch = match cometd::parse_batch(&body) {
        Ok(b) => b,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    // Unauthenticated callers still get Bayeux replies (the handshake says why it failed).
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok((w, c)) => (Some(w), c),
        Err(_) => (None, None),
    };
    let replies = cometd::long_poll(&hub, web.as_ref(), batch).await;
    with_cookie(axum::Json(Value::Array(replies)), cookie)
}

/// `GET {base}` with a WebSocket upgrade: CometD over WebSocket.
async fn upgrade(
    State(hub): Shared,
    headers: Caller,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return ApiError::new(
                Status::Missing,
                "this is the CometD endpoint: POST Bayeux messages (long-polling) or open a WebSocket here",
            )
            .into_response();
        }
    };
    let (web, cookie) = match authenticate(&hub, &headers).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let max = hub.config.http.max_body_bytes;
    let response = ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| cometd::websocket(hub, web, socket));
    with_cookie(response, cookie)
}
