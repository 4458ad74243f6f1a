//! The Workspace API v3's reply shapes: `{"status": {"code", "message"}, "data"}` (code 0: done,
//! 1: accepted, the result follows over CometD with the `operationId`), and its errors, whose
//! code is the HTTP status (docs/workspace-api.md).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A refused Workspace API request: the HTTP status (also the `status.code`) and why.
#[derive(Debug)]
pub(crate) struct V3Error {
    pub(crate) http: StatusCode,
    pub(crate) message: String,
}

impl V3Error {
    pub(crate) fn new(http: StatusCode, message: impl Into<String>) -> Self {
        Self {
            http,
            message: message.into(),
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A GWS-shaped refusal (the engine's, or a shared check's) in this API's shape.
    pub(crate) fn from_gws(e: &crate::gws::ApiError) -> Self {
        Self::new(e.http_status(), e.message.clone())
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = json!({"status": {"code": self.http.as_u16(), "message": self.message}});
        let mut response = (self.http, axum::Json(body)).into_response();
        if self.http == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"workspace\""),
            );
        }
        response
    }
}

/// Done: `{"status": {"code": 0}}`, with `data` when there is some.
pub(crate) fn done(data: Option<Value>) -> Response {
    let mut body = json!({"status": {"code": 0}});
    if let (Some(d), Some(map)) = (data, body.as_object_mut()) {
        map.insert("data".into(), d);
    }
    axum::Json(body).into_response()
}

/// Accepted: `{"status": {"code": 1}, "operationId": id}`; the result comes over CometD.
pub(crate) fn accepted(operation_id: &str) -> Response {
    axum::Json(json!({"status": {"code": 1}, "operationId": operation_id})).into_response()
}
