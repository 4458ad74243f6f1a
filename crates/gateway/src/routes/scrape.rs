//! `GET /metrics` and the middleware that counts HTTP requests (the metrics themselves are in
//! `metrics.rs`).

use crate::hub::Hub;
use axum::extract::{MatchedPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Middleware: counts each request by route pattern, method and status.
pub(super) async fn count(
    State(hub): State<Arc<Hub>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Standard methods only: a client cannot make series without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let response = next.run(request).await;
    hub.metrics
        .http_requests
        .get_or_create(&crate::metrics::HttpLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`: the server's scrape, or 404 when metrics are served elsewhere (`--metrics`)
/// or not at all.
pub(super) async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let scrape = hub.metrics.scrape();
    match scrape {
        Some(scrape) => (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            scrape().await,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not served on this listener (see --metrics)\n",
        )
            .into_response(),
    }
}
