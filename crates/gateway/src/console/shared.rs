//! What the console's API modules share: the caller's session from its cookie ([`Console`]),
//! the one refusal type ([`ConsoleError`]) and the supervisor check.

use crate::gws::ApiError;
use crate::hub::{Hub, WebSession};
use crate::v3_shapes::V3Error;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub(super) async fn unknown() -> ConsoleError {
    ConsoleError::new(
        StatusCode::NOT_FOUND,
        "no such console call (docs/console.md lists them)",
    )
}

/// A refusal of the console API: `{"message": ..., "position": N?}` with its HTTP status.
/// `position` (characters from 1) is where a condition or order stopped parsing. Never
/// `WWW-Authenticate`: the page shows its own sign-in, not the browser's.
#[derive(Debug)]
pub(crate) struct ConsoleError {
    pub(super) http: StatusCode,
    pub(super) message: String,
    pub(super) position: Option<u32>,
}

impl ConsoleError {
    pub(crate) fn new(http: StatusCode, message: impl Into<String>) -> Self {
        Self {
            http,
            message: message.into(),
            position: None,
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self::new(e.http_status(), e.message)
    }
}

impl From<V3Error> for ConsoleError {
    fn from(e: V3Error) -> Self {
        let position = position_in(&e.message);
        Self {
            http: e.http,
            message: e.message,
            position,
        }
    }
}

/// The position an engine's condition error names ("... at position 13: ...").
fn position_in(message: &str) -> Option<u32> {
    let (_, rest) = message.split_once("at position ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let body = match self.position {
            Some(p) => json!({"message": self.message, "position": p}),
            None => json!({"message": self.message}),
        };
        (self.http, axum::Json(body)).into_response()
    }
}

/// The console caller's web session, from the `IXNSESSION` cookie only (never HTTP Basic:
/// signing in is `POST /console/api/session`); else 401.
pub(crate) struct Console(pub(crate) Arc<WebSession>);

impl FromRequestParts<Arc<Hub>> for Console {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ConsoleError> {
        let web = crate::extract::cookie_token(&parts.headers)
            .and_then(|t| hub.web_by_token(&t))
            .ok_or_else(|| {
                ConsoleError::new(
                    StatusCode::UNAUTHORIZED,
                    "not signed in (or the session ended): sign in again",
                )
            })?;
        web.touch();
        Ok(Self(web))
    }
}

/// The caller, if it supervises a group; else 403.
pub(super) fn supervisor(hub: &Hub, web: &WebSession) -> Result<(), ConsoleError> {
    if hub.config[web.agent].supervises.is_empty() {
        return Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "queues and other agents' workbins are for supervisors; this agent supervises no group",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions_are_read_from_engine_messages() {
        assert_eq!(
            super::position_in(
                "RequestTakeSnapshot: attribute Condition is invalid: at position 13: expected a name"
            ),
            Some(13)
        );
        assert_eq!(super::position_in("no such snapshot"), None);
    }
}
