//! The browser console at `/console/` (docs/console.md): the page and its modules, compiled
//! into the binary (`assets`), and the small JSON API they call (`/console/api/...`: `session`
//! for signing in and who the agent is, `views` for workbins, queues, snapshots and the
//! server page, `actions` for what an agent or supervisor does to interactions).
//!
//! The console is a client of the web API like any other: it signs in as an agent (the same
//! passwords, sign-in limit and `IXNSESSION` cookie as GWS v2; one web session per agent),
//! every call becomes native requests on that agent's logical client, so the engine decides
//! what the agent may see and do, and live changes come over the GWS CometD endpoint through
//! the official `cometd` client. State-changing calls are JSON POSTs, which the request guard
//! holds to the same-origin and content-type rules as the rest of the API.
//!
//! Every console response carries a Content-Security-Policy allowing only the server's own
//! scripts, styles and connections (no inline script or style), and `nosniff`,
//! `frame-ancestors 'none'` and `no-referrer`.

mod actions;
mod assets;
mod session;
mod shared;
mod views;

use crate::hub::Hub;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;

/// The console's Content-Security-Policy: the server's own scripts, styles, images and
/// connections only; no inline code, no framing, no plugins.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's routes (the page, its files and its API).
pub(crate) fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/console", get(assets::redirect))
        .route("/console/", get(assets::index))
        .route("/console/api/session", post(session::sign_in))
        .route("/console/api/me", get(session::me))
        .route("/console/api/workbins", get(views::workbins))
        .route("/console/api/queues", get(views::queues))
        .route("/console/api/server", get(views::server))
        .route("/console/api/snapshots", post(views::take))
        .route("/console/api/snapshots/{id}", get(views::page))
        .route("/console/api/snapshots/{id}/release", post(views::release))
        .route("/console/api/subscriptions", post(actions::subscribe))
        .route("/console/api/interactions/{id}", get(actions::details))
        .route(
            "/console/api/interactions/{id}/{action}",
            post(actions::one),
        )
        .route("/console/api/bulk/{action}", post(actions::bulk))
        .route(
            "/console/api/{*rest}",
            get(shared::unknown).post(shared::unknown),
        )
        .route("/console/{*file}", get(assets::file))
        .layer(axum::middleware::from_fn(secure))
}

/// Middleware: the security headers of every console response.
async fn secure(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
