//! `/api/v2/me` (the agent and its contact center session) and `/api/v2/signout`.

use super::shared::engine_error;
use crate::extract::{Body, COOKIE, Operation, SignedIn, cookie_token};
use crate::gws::{ApiError, Empty, Status, Success};
use crate::hub::{Hub, WebSession};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ixn_codec::{Message, MessageId, attr};
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct Me {
    user: User,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    employee_id: String,
    user_name: String,
    contact_center_session: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    place: Option<String>,
}

/// `GET /api/v2/me`: the signed-in agent.
pub(super) async fn get(SignedIn(web): SignedIn, State(hub): State<Arc<Hub>>) -> Response {
    let agent = &hub.config[web.agent];
    let place = web.place();
    Success::new(Me {
        user: User {
            id: agent.user_id.clone(),
            employee_id: agent.id.clone(),
            user_name: agent.id.clone(),
            contact_center_session: place.is_some(),
            place,
        },
    })
    .into_response()
}

/// `POST /api/v2/me`: StartContactCenterSession (RequestAgentLogin at a place) and
/// EndContactCenterSession (RequestAgentLogout).
pub(super) async fn post(
    SignedIn(web): SignedIn,
    State(hub): State<Arc<Hub>>,
    Body(op): Body<Operation>,
) -> Result<Success<Empty>, ApiError> {
    match op.name()? {
        "StartContactCenterSession" => {
            let Some(place) = op.place() else {
                return Err(ApiError::new(
                    Status::Missing,
                    "place is required: {\"operationName\":\"StartContactCenterSession\",\"place\":\"<place id>\"}",
                ));
            };
            start_session(&hub, &web, place).await?;
            Ok(Success::new(Empty {}))
        }
        "EndContactCenterSession" => {
            if web.place().is_none() {
                return Err(ApiError::new(
                    Status::BadState,
                    "no contact center session is started",
                ));
            }
            let r = hub
                .request(
                    Some(web.client),
                    Message::new(MessageId::REQUEST_AGENT_LOGOUT),
                )
                .await
                .map_err(engine_error)?;
            if r.id != MessageId::EVENT_ACK {
                return Err(ApiError::from_engine(&r));
            }
            web.set_place(None);
            Ok(Success::new(Empty {}))
        }
        other => Err(ApiError::new(
            Status::Missing,
            format!(
                "unknown operationName {other:?} for /api/v2/me: use StartContactCenterSession or EndContactCenterSession"
            ),
        )),
    }
}

/// StartContactCenterSession: the agent logs in at `place` (acknowledged at once when it is
/// already there; refused when it is at another place).
pub(crate) async fn start_session(
    hub: &Hub,
    web: &WebSession,
    place: &str,
) -> Result<(), ApiError> {
    let agent = &hub.config[web.agent];
    if hub.config.place(place).is_none() {
        return Err(ApiError::new(
            Status::NotFound,
            format!("no place {place:?} in the configuration"),
        ));
    }
    match web.place() {
        Some(p) if p == place => return Ok(()),
        Some(p) => {
            return Err(ApiError::new(
                Status::BadState,
                format!(
                    "a contact center session is already started at place {p:?}; end it first (EndContactCenterSession)"
                ),
            ));
        }
        None => {}
    }
    let msg = Message::new(MessageId::REQUEST_AGENT_LOGIN)
        .with(attr::TENANT_ID, agent.tenant)
        .with(attr::AGENT_ID, agent.id.as_str())
        .with(attr::PLACE_ID, place);
    let r = hub
        .request(Some(web.client), msg)
        .await
        .map_err(engine_error)?;
    if r.id != MessageId::EVENT_ACK {
        return Err(ApiError::from_engine(&r));
    }
    web.set_place(Some(place.to_owned()));
    Ok(())
}

/// `POST /api/v2/signout`: ends the caller's web session (its agent is logged out, its
/// subscriptions and CometD sessions end, every token of it stops working).
pub(super) async fn sign_out(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let Some(web) = cookie_token(&headers).and_then(|t| hub.web_by_token(&t)) else {
        return ApiError::new(
            Status::Unauthenticated,
            "not signed in: there is no web session to end",
        )
        .into_response();
    };
    hub.end_web_session(&web, "signed out").await;
    let mut response = Success::new(Empty {}).into_response();
    if let Ok(expired) =
        HeaderValue::from_str(&format!("{COOKIE}=; {}; Max-Age=0", hub.cookie_attrs))
    {
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    response
}
