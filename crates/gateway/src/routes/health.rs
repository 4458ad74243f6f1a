//! Health for load balancers and supervisors, without authentication: `GET /health/live`
//! (the process serves HTTP) and `GET /health/ready` (it can serve requests: the engine
//! answers through the web API's link).

use crate::hub::Hub;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ixn_codec::{Message, MessageId};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long the engine may take to answer a readiness probe.
const PROBE: Duration = Duration::from_secs(2);

/// `GET /health/live`: 200 while the process serves HTTP.
pub(super) async fn live() -> Response {
    Json(json!({"status": "live"})).into_response()
}

/// `GET /health/ready`: 200 when the engine answers a Ping through the link within 2 s; 503
/// with the reason while stopping, when the link is down, when the engine does not answer, or
/// on a standby (its engine answers NotActive, naming the active server).
pub(super) async fn ready(State(hub): State<Arc<Hub>>) -> Response {
    let not_ready = |why: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": why})),
        )
            .into_response()
    };
    if hub.shutdown.is_cancelled() || hub.link_lost.is_cancelled() {
        return not_ready("the server is stopping".into());
    }
    match tokio::time::timeout(PROBE, hub.request(None, Message::new(MessageId::PING))).await {
        Ok(Ok(reply)) if reply.id == MessageId::PING => {
            Json(json!({"status": "ready"})).into_response()
        }
        Ok(Ok(reply)) if reply.id == MessageId::EVENT_ERROR => {
            // A standby says so, and names the active server.
            not_ready(crate::gws::engine_reason(&reply))
        }
        Ok(Ok(reply)) => not_ready(format!("the engine answered {}", reply.id)),
        Ok(Err(e)) => not_ready(e.to_string()),
        Err(_) => not_ready(format!("the engine did not answer within {PROBE:?}")),
    }
}
