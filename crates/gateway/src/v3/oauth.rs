//! The Authentication API's routes the Workspace API needs: `POST /auth/v3/oauth/token` (the
//! OAuth 2 password grant: a form-encoded body, the client's id and secret in HTTP Basic, the
//! agent's own password) and `GET /auth/v3/userinfo`, over `crate::tokens`.
//!
//! Refusals take RFC 6749's shape, `{"error", "error_description"}`: `invalid_client` (HTTP 401)
//! for an unknown client or a wrong secret, `invalid_grant` (400) for an unknown agent or a
//! wrong password, `unsupported_grant_type` and `invalid_request` (400) for the rest. Token
//! requests count against `[http] sign_ins_per_second` per client address, as sign-ins do.

use crate::hub::Hub;
use crate::tokens::BadToken;
use crate::v3_shapes::bodies as b;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ixn_config::AgentIdx;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// An OAuth 2 refusal.
fn refuse(http: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let body = b::OAuthError {
        error: error.to_owned(),
        error_description: description.into(),
    };
    let mut response = (http, axum::Json(body)).into_response();
    if http == StatusCode::UNAUTHORIZED
        && let Ok(v) = header::HeaderValue::from_str("Basic realm=\"auth\"")
    {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// The `application/x-www-form-urlencoded` body's fields.
fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /auth/v3/oauth/token`.
pub(crate) async fn token(
    State(hub): State<Arc<Hub>>,
    request: axum::extract::Request,
) -> Response {
    match grant(&hub, request).await {
        Ok(agent) => match hub.tokens.issue(agent, Instant::now()) {
            Some(access_token) => axum::Json(b::Token {
                access_token,
                token_type: "bearer".to_owned(),
                expires_in: hub.config.http.access_token_secs,
                scope: "*".to_owned(),
            })
            .into_response(),
            None => refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server holds as many access tokens as it may ([http] max_web_sessions); try again later",
            ),
        },
        Err(refusal) => refusal,
    }
}

/// The agent a token request may have a token for, or the refusal.
async fn grant(hub: &Hub, request: axum::extract::Request) -> Result<AgentIdx, Response> {
    let (parts, body) = request.into_parts();
    let limit = hub.config.http.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the body is larger than {limit} bytes ([http] max_body_bytes)"),
        )
    })?;
    if let Some(ip) = crate::listen::peer_of(&parts).map(|a| a.ip())
        && hub.credentials.sign_ins.check_key(&ip).is_err()
    {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            format!(
                "too many token requests from this address (at most {} a second, [http] sign_ins_per_second); wait a moment",
                hub.config.http.sign_ins_per_second
            ),
        ));
    }
    let (client_id, secret) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::parse_basic)
        .ok_or_else(|| {
            refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "send the client's id and secret as HTTP Basic credentials",
            )
        })?;
    let fields = form(&body);
    let field = |k: &str| fields.get(k).map(String::as_str);
    match field("grant_type") {
        Some("password") => {}
        Some(other) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported: use \"password\""),
            ));
        }
        None => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required (form-encoded: grant_type=password&username=...&password=...)",
            ));
        }
    }
    let form: b::TokenForm = serde_json::to_value(&fields)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the form does not fit (grant_type, username, password): {e}"),
            )
        })?;
    if form.client_id.as_ref().is_some_and(|id| *id != client_id) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id in the form is not the client of the HTTP Basic credentials",
        ));
    }
    if form.grant_type != "password" {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use grant_type=password",
        ));
    }
    check_client(hub, &client_id, secret).await?;
    check_agent(hub, &form.username, &form.password).await
}

/// The client's secret is right, or `invalid_client`.
async fn check_client(hub: &Hub, client_id: &str, secret: String) -> Result<(), Response> {
    let client = hub
        .config
        .http
        .oauth_clients
        .iter()
        .find(|c| c.id == client_id);
    // An unknown client costs a check all the same (no probing of client ids by timing).
    let checked = client.map_or_else(
        || hub.credentials.decoy_hash.clone(),
        |c| c.secret_hash.clone(),
    );
    match hub.credentials.passwords.check(secret, checked).await {
        Some(true) if client.is_some() => Ok(()),
        None => Err(busy()),
        Some(_) => {
            tracing::info!(client = %client_id, "token refused: unknown client or wrong secret");
            Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret ([[http.oauth_clients]])",
            ))
        }
    }
}

/// The agent `user` names when `password` is its own, or `invalid_grant`.
async fn check_agent(hub: &Hub, user: &str, password: &str) -> Result<AgentIdx, Response> {
    let config = &hub.config;
    let agent = config.agent(user).or_else(|| config.agent_by_user_id(user));
    let hash = agent.and_then(|a| config[a].password_hash.clone());
    let checked = hash
        .clone()
        .unwrap_or_else(|| hub.credentials.decoy_hash.clone());
    let verified = hub
        .credentials
        .passwords
        .check(password.to_owned(), checked)
        .await
        .ok_or_else(busy)?;
    match (agent, hash, verified) {
        (Some(agent), Some(_), true) => Ok(agent),
        _ => {
            tracing::info!(user, "token refused: unknown agent or wrong password");
            Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "unknown agent or wrong password",
            ))
        }
    }
}

fn busy() -> Response {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "too many password checks at once; try again in a moment",
    )
}

/// The agent of the request's `Authorization: Bearer` token, or the Workspace API's 401 saying
/// what is wrong with it.
pub(crate) fn bearer_agent(
    hub: &Hub,
    headers: &HeaderMap,
) -> Result<AgentIdx, crate::v3_shapes::V3Error> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .ok_or_else(|| {
            crate::v3_shapes::V3Error::unauthorized(
                "send Authorization: Bearer ACCESS_TOKEN (POST /auth/v3/oauth/token gives one)",
            )
        })?;
    hub.tokens
        .agent(&token, Instant::now())
        .map_err(|e| match e {
            BadToken::Unknown => crate::v3_shapes::V3Error::unauthorized(
                "the access token is unknown (revoked by a restart, or never given); ask /auth/v3/oauth/token for one",
            ),
            BadToken::Expired => crate::v3_shapes::V3Error::unauthorized(
                "the access token has expired ([http] access_token_secs); ask /auth/v3/oauth/token for a new one",
            ),
        })
}

/// `GET /auth/v3/userinfo`: who the Bearer token is for.
pub(crate) async fn userinfo(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    match bearer_agent(&hub, &headers) {
        Ok(a) => {
            let agent = &hub.config[a];
            axum::Json(b::UserInfo {
                sub: agent.user_id.clone(),
                user_name: agent.id.clone(),
                username: agent.id.clone(),
                login_name: agent.id.clone(),
                dbid: u32::try_from(a.get()).unwrap_or(u32::MAX),
            })
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}
