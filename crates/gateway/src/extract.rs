//! What handlers take from a request: the signed-in agent ([`SignedIn`], which signs in with
//! HTTP Basic when there is no session cookie) and JSON bodies ([`Body`]).

use crate::bayeux::lock;
use crate::gws::{ApiError, Status};
use crate::hub::{Hub, WebSession};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "IXNSESSION";

/// Where [`SignedIn`] leaves the cookie of a new sign-in, for [`set_cookie`] to send.
#[derive(Clone, Default)]
struct CookieSlot(Arc<Mutex<Option<HeaderValue>>>);

/// Middleware: gives each request a [`CookieSlot`], and adds `Set-Cookie` to the response when
/// the request signed in.
pub(crate) async fn set_cookie(mut request: Request, next: axum::middleware::Next) -> Response {
    let slot = CookieSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(c) = lock(&slot.0).take() {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The session token in the request's cookie.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// The value of the request's cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The signed-in agent's web session: from the session cookie, or from HTTP Basic credentials
/// (agent id and password), which sign in (a new session token each time, sent back as the
/// cookie). Rejected with GWS status 20 (HTTP 401).
///
/// Sign-ins are limited per client address (`[http] sign_ins_per_second`; more get 429 without
/// a check), and a refusal costs one password check whether the agent exists or not.
pub(crate) struct SignedIn(pub(crate) Arc<WebSession>);

impl FromRequestParts<Arc<Hub>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        if let Some(web) = cookie_token(&parts.headers).and_then(|t| hub.web_by_token(&t)) {
            web.touch();
            return Ok(Self(web));
        }
        let (web, token) = sign_in(hub, parts).await?;
        if let (Some(slot), Ok(cookie)) = (
            parts.extensions.get::<CookieSlot>(),
            HeaderValue::from_str(&format!("{COOKIE}={token}; {}", hub.cookie_attrs)),
        ) {
            *lock(&slot.0) = Some(cookie);
        }
        Ok(Self(web))
    }
}

/// [`SignedIn`] when the request is signed in, `None` otherwise (CometD answers those itself).
pub(crate) struct MaybeSignedIn(pub(crate) Option<Arc<WebSession>>);

impl FromRequestParts<Arc<Hub>> for MaybeSignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        hub: &Arc<Hub>,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(
            SignedIn::from_request_parts(parts, hub)
                .await
                .ok()
                .map(|s| s.0),
        ))
    }
}

/// Checks HTTP Basic credentials and signs the agent in.
async fn sign_in(hub: &Arc<Hub>, parts: &Parts) -> Result<(Arc<WebSession>, String), ApiError> {
    let unauthenticated = |m: &str| ApiError::new(Status::Unauthenticated, m);
    let Some(basic) = parts
        .headers
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
    let peer = crate::listen::peer_of(parts).map(|a| a.ip());
    let agent = check_credentials(hub, peer, &user, password).await?;
    hub.sign_in(agent).await
}

/// Checks an agent's id (or user id) and password, at most `[http] sign_ins_per_second` a
/// second from `peer`; a refusal costs one password check whether the agent exists or not and
/// says nothing of which it was.
pub(crate) async fn check_credentials(
    hub: &Hub,
    peer: Option<std::net::IpAddr>,
    user: &str,
    password: String,
) -> Result<ixn_config::AgentIdx, ApiError> {
    let unauthenticated = |m: &str| ApiError::new(Status::Unauthenticated, m);
    if let Some(ip) = peer
        && hub.credentials.sign_ins.check_key(&ip).is_err()
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
    let agent = config.agent(user).or_else(|| config.agent_by_user_id(user));
    let entry = agent.map(|a| &config[a]);
    let hash = entry.and_then(|e| e.password_hash.clone());
    // Unknown agent, or one without a password: check against the decoy all the same.
    let checked = hash
        .clone()
        .unwrap_or_else(|| hub.credentials.decoy_hash.clone());
    let Some(verified) = hub.credentials.passwords.check(password, checked).await else {
        return Err(ApiError::new(
            Status::BadState,
            "too many sign-ins at once; try again in a moment",
        )
        .with_http(StatusCode::SERVICE_UNAVAILABLE));
    };
    let (Some(agent), Some(_), true) = (agent, hash, verified) else {
        let why = match entry {
            None => "unknown agent".to_owned(),
            Some(e) if e.password_hash.is_none() => {
                format!("agent {:?} has no password_hash in the configuration", e.id)
            }
            Some(e) => format!("wrong password for agent {:?}", e.id),
        };
        // The reason is for the operator; the client learns nothing about which it was.
        tracing::info!(?peer, %why, "HTTP sign-in refused");
        return Err(unauthenticated("unknown agent or wrong password"));
    };
    Ok(agent)
}

/// The API's base URI as the client reached it, `http://{Host}/api/v2`, for the `uri` fields
/// (the request's `Host`; `localhost` if it sent none or an odd one).
pub(crate) struct ApiBase(pub(crate) String);

impl FromRequestParts<Arc<Hub>> for ApiBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &Arc<Hub>,
    ) -> Result<Self, std::convert::Infallible> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .map_or_else(|| "localhost".to_owned(), str::to_owned);
        Ok(Self(format!("http://{host}/api/v2")))
    }
}

/// A JSON object body read as `T`. Errors are GWS status 1 (HTTP 400, or 413 past
/// `[http] max_body_bytes`) saying what to send.
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Arc<Hub>> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let max = hub.config.http.max_body_bytes;
        let bytes = axum::body::Bytes::from_request(request, hub)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        Status::Missing,
                        format!(
                            "the request body is larger than {max} bytes ([http] max_body_bytes)"
                        ),
                    )
                    .with_http(StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    ApiError::new(
                        Status::Missing,
                        format!("cannot read the request body: {e}"),
                    )
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                Status::Missing,
                format!("the body is not JSON ({e}); send an object such as {{\"operationName\":\"Subscribe\"}}"),
            )
        })?;
        if !value.is_object() {
            return Err(ApiError::new(
                Status::Missing,
                "the body must be a JSON object such as {\"operationName\":\"Subscribe\"}",
            ));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::new(Status::Missing, format!("the body does not fit: {e}")))
    }
}

/// The body of the operations (`POST /api/v2/me`, `POST .../workbins...`).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operation {
    /// Which operation.
    operation_name: Option<Value>,
    /// StartContactCenterSession: the place.
    #[serde(default)]
    place: Option<Value>,
    /// AddInteraction, PullInteraction: the interaction.
    #[serde(default)]
    interaction_id: Option<Value>,
}

impl Operation {
    /// `operationName`, required.
    pub(crate) fn name(&self) -> Result<&str, ApiError> {
        self.operation_name
            .as_ref()
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::new(Status::Missing, "operationName is required (a string)"))
    }

    /// `place`, when a string.
    pub(crate) fn place(&self) -> Option<&str> {
        self.place.as_ref().and_then(Value::as_str)
    }

    /// `interactionId`, when a string.
    pub(crate) fn interaction_id(&self) -> Option<&str> {
        self.interaction_id.as_ref().and_then(Value::as_str)
    }
}
