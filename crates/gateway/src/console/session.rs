//! Signing in to the console (`POST /console/api/session`: the web API's credentials, sign-in
//! limit and session cookie, then the place) and who the caller is (`GET /console/api/me`).
//! Signing out is the web API's `POST /api/v2/signout`.

use super::shared::ConsoleError;
use crate::extract::COOKIE;
use crate::hub::{Hub, WebSession};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Longest agent id, password or place accepted (the configuration's are shorter).
const MAX_FIELD: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    agent: String,
    password: String,
    /// The place to work at (workbins and snapshots need the agent logged in at one).
    place: String,
}

/// `POST /console/api/session` `{"agent", "password", "place"}`: signs the agent in (the
/// `IXNSESSION` cookie), logs it in at the place, and answers as `GET /console/api/me`.
pub(super) async fn sign_in(
    State(hub): State<Arc<Hub>>,
    request: axum::extract::Request,
) -> Result<Response, ConsoleError> {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let body = axum::body::to_bytes(request.into_body(), hub.config.http.max_body_bytes)
        .await
        .map_err(|e| ConsoleError::bad(format!("cannot read the body: {e}")))?;
    let req: SignIn = serde_json::from_slice(&body).map_err(|e| {
        ConsoleError::bad(format!(
            "the body does not fit ({e}); send {{\"agent\": \"a1\", \"password\": \"...\", \"place\": \"p1\"}}"
        ))
    })?;
    let place = req.place.trim();
    if [&req.agent, &req.password, place]
        .iter()
        .any(|f| f.len() > MAX_FIELD)
    {
        return Err(ConsoleError::bad(format!(
            "a field is longer than {MAX_FIELD} bytes"
        )));
    }
    if place.is_empty() {
        return Err(ConsoleError::bad(
            "give the place to work at (a place id of the configuration, such as p1)",
        ));
    }
    if hub.config.place(place).is_none() {
        return Err(ConsoleError::new(
            StatusCode::NOT_FOUND,
            format!("no place {place:?} in the configuration; give a place id such as p1"),
        ));
    }
    let agent = crate::extract::check_credentials(&hub, peer, req.agent.trim(), req.password)
        .await
        .map_err(|e| {
            let mut e = ConsoleError::from(e);
            if e.http == StatusCode::UNAUTHORIZED {
                e.message = "unknown agent or wrong password".into();
            }
            e
        })?;
    let (web, token) = hub.sign_in(agent).await?;
    crate::routes::me::start_session(&hub, &web, place).await?;
    let mut response = Json(profile(&hub, &web)).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}={token}; {}", hub.cookie_attrs)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `GET /console/api/me`: the signed-in agent, its roles and what the page needs to know; or
/// `{"signedIn": false}` (not a failure: the page then shows its sign-in).
pub(super) async fn me(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Json<Value> {
    match crate::extract::cookie_token(&headers).and_then(|t| hub.web_by_token(&t)) {
        Some(web) => {
            web.touch();
            Json(profile(&hub, &web))
        }
        None => Json(json!({"signedIn": false})),
    }
}

fn profile(hub: &Hub, web: &WebSession) -> Value {
    let config = &hub.config;
    let me = &config[web.agent];
    let queues: Vec<&str> = config
        .queues()
        .filter(|(_, q)| q.tenant == me.tenant)
        .map(|(_, q)| q.name.as_str())
        .collect();
    let supervises: Vec<&str> = me.supervises.iter().map(|g| &config[*g]).collect();
    json!({
        "signedIn": true,
        "agent": me.id,
        "userId": me.user_id,
        "place": web.place(),
        "supervises": supervises,
        "supervisor": !me.supervises.is_empty(),
        "operator": config.http.operators.contains(&me.id),
        "queues": queues,
        "notifications": config.http.notifications_path,
        "maxSnapshot": config.limits.max_interactions_per_snapshot,
        "pageSize": super::views::PAGE,
    })
}
