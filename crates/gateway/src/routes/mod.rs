//! The HTTP routes, by resource: the agent (`me.rs`), workbins (`workbins.rs`) and the CometD
//! endpoint (`notifications.rs`); and what every route shares: the request guard and the
//! not-found answer.

mod health;
pub(crate) mod me;
mod notifications;
mod owner;
mod scrape;
mod shared;
mod workbins;

use crate::extract;
use crate::gws::{ApiError, Status};
use crate::hub::Hub;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    let base = hub.config.http.notifications_path.clone();
    let max_body = hub.config.http.max_body_bytes;
    Router::new()
        .route("/api/v2/me", get(me::get).post(me::post))
        .route(
            "/api/v2/me/workbins",
            get(workbins::list).post(workbins::post),
        )
        .route("/api/v2/workbins", get(workbins::list).post(workbins::post))
        .route(
            "/api/v2/users/{user}/workbins",
            get(workbins::list).post(workbins::post),
        )
        .route("/api/v2/me/workbins/{id}/{media}", get(workbins::get))
        .route("/api/v2/workbins/{id}/{media}", get(workbins::get))
        .route(
            "/api/v2/users/{user}/workbins/{id}/{media}",
            get(workbins::get),
        )
        // GetWorkbinSubresources by User, as the GWS page writes it (no `users/`).
        .route("/api/v2/{user}/workbins/{id}/{media}", get(workbins::get))
        .route(
            "/api/v2/me/workbins/{id}",
            get(workbins::get).post(workbins::post),
        )
        .route(
            "/api/v2/workbins/{id}",
            get(workbins::get).post(workbins::post),
        )
        .route(
            "/api/v2/users/{user}/workbins/{id}",
            get(workbins::get).post(workbins::post),
        )
        .route(
            &base,
            post(notifications::bayeux).get(notifications::upgrade),
        )
        .route(&format!("{base}/"), post(notifications::bayeux))
        .route(
            &format!("{base}/{{kind}}"),
            post(notifications::bayeux_suffix),
        )
        .route("/api/v2/signout", post(me::sign_out))
        .route("/openapi/v2.json", get(crate::openapi::v2))
        .route("/openapi/v3.json", get(crate::openapi::v3))
        .merge(crate::v3::routes())
        .merge(if hub.config.http.console {
            crate::console::routes()
        } else {
            Router::new()
        })
        .route("/metrics", get(scrape::metrics))
        .fallback(shared::not_found)
        .layer(axum::middleware::from_fn(extract::set_cookie))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hub),
            guard,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hub),
            scrape::count,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // Probes are counted but not traced: a standby answers 503 to every probe of its load
        // balancer, which is no error worth a log line.
        .route(
            "/health/live",
            get(health::live).layer(axum::middleware::from_fn_with_state(
                Arc::clone(&hub),
                scrape::count,
            )),
        )
        .route(
            "/health/ready",
            get(health::ready).layer(axum::middleware::from_fn_with_state(
                Arc::clone(&hub),
                scrape::count,
            )),
        )
        .with_state(hub)
}

/// State-changing requests (any method but GET and HEAD) and WebSocket upgrades must come from
/// a page of the server's own origin or of `[http] allowed_origins` when they carry `Origin`,
/// and non-GET requests must be JSON (`Content-Type: application/json`) or carry
/// `X-Requested-With`: a form or `text/plain` post from a foreign page (CSRF) is refused before
/// any handler runs.
async fn guard(
    State(hub): State<Arc<Hub>>,
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
        // The OAuth token route takes the standard form-encoded body (a foreign page cannot
        // use it without the client's secret).
        let form_route = request.uri().path() == crate::v3::TOKEN_PATH;
        if !reading && !json && !form_route && !headers.contains_key("x-requested-with") {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use std::sync::Arc;
    use tower::ServiceExt as _;

    /// Every documented route is served: without credentials it is refused (401, 400), never
    /// unknown (the fallback's 404) or of another method (405).
    #[tokio::test]
    async fn every_documented_route_is_served() {
        let config = Arc::new(
            ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo.toml").unwrap(),
        );
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let hub = crate::hub::Hub::new(config, tx, false, Arc::default()).unwrap();
        let router = crate::routes::router(hub);
        for (api, routes) in [("v2", crate::openapi::V2), ("v3", crate::openapi::V3)] {
            for r in routes {
                let path = r.path.replace(['{', '}'], "");
                let method = if r.method == utoipa::openapi::path::HttpMethod::Get {
                    "GET"
                } else {
                    "POST"
                };
                let request = Request::builder()
                    .method(method)
                    .uri(&path)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let text = String::from_utf8_lossy(&body);
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && !text.contains("lists the routes"),
                    "{api}: {method} {} is documented but not served ({status}: {text})",
                    r.path
                );
            }
        }
    }
}
