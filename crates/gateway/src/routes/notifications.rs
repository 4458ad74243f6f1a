//! The CometD endpoint (`[http] notifications_path`): Bayeux batches over long-polling, and
//! the WebSocket upgrade.

use super::shared::not_found;
use crate::bayeux::protocol::parse_batch;
use crate::cometd;
use crate::extract::{MaybeSignedIn, SignedIn};
use crate::gws::{ApiError, Status};
use crate::hub::Hub;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `POST {base}`, `{base}/`: a long-polling batch.
pub(super) async fn bayeux(
    State(hub): State<Arc<Hub>>,
    web: MaybeSignedIn,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    batch(hub, web, body).await
}

/// `POST {base}/handshake|connect|disconnect` (the JS client's URL suffixes).
pub(super) async fn bayeux_suffix(
    State(hub): State<Arc<Hub>>,
    Path(kind): Path<String>,
    web: MaybeSignedIn,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !matches!(kind.as_str(), "handshake" | "connect" | "disconnect") {
        return not_found().await.into_response();
    }
    batch(hub, web, body).await
}

/// Unauthenticated callers still get Bayeux replies (the handshake says why it failed).
async fn batch(
    hub: Arc<Hub>,
    MaybeSignedIn(web): MaybeSignedIn,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bad = |status: StatusCode, e: String| {
        (
            status,
            axum::Json(json!([{"channel": "/meta/unknown", "successful": false, "error": format!("400::{e}")}])),
        )
            .into_response()
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return bad(e.status(), e.body_text()),
    };
    let batch = match parse_batch(&body) {
        Ok(b) => b,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let replies = cometd::long_poll(&hub, web.as_ref(), batch).await;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::bayeux::reply::batch_text(&replies),
    )
        .into_response()
}

/// `GET {base}` with a WebSocket upgrade: CometD over WebSocket.
pub(super) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    signed: Result<SignedIn, ApiError>,
) -> Response {
    let Ok(ws) = ws else {
        return ApiError::new(
            Status::Missing,
            "this is the CometD endpoint: POST Bayeux messages (long-polling) or open a WebSocket here",
        )
        .into_response();
    };
    let web = match signed {
        Ok(SignedIn(web)) => web,
        Err(e) => return e.into_response(),
    };
    let max = hub.config.http.max_body_bytes;
    // Small buffers: a thousand idle sessions must not hold tungstenite's 128 KiB defaults
    // each. A frame is written when sent (one reply each), and a read buffer grows for a
    // larger frame (up to max_body_bytes).
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| cometd::websocket(hub, web, socket))
}
