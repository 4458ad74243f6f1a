//! The Workspace API v3 (docs/workspace-api.md), beside the GWS v2 routes and on the same engine
//! link and sessions: the Authentication API's token routes (`oauth`), the workspace session
//! and its CometD endpoint (`workspace`); the shapes are `crate::v3_shapes`.
//!
//! An agent asks `/auth/v3/oauth/token` for an access token, then `initialize-workspace` with it
//! starts (or joins) the agent's web session, the same one GWS v2 sign-ins use, and sets the
//! `WORKSPACE_SESSIONID` cookie; CometD at `/workspace/v3/notifications` then says when the
//! workspace is initialized and carries the asynchronous results.

pub(crate) mod management;
mod media;
mod oauth;
pub(crate) mod workspace;

use crate::hub::Hub;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The CometD endpoint of the Workspace API.
pub(crate) const NOTIFICATIONS: &str = "/workspace/v3/notifications";
/// The token route: form-encoded, not JSON (the request guard lets it through).
pub(crate) const TOKEN_PATH: &str = "/auth/v3/oauth/token";

/// The Workspace API's routes.
pub(crate) fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route(TOKEN_PATH, post(oauth::token))
        .route("/auth/v3/userinfo", get(oauth::userinfo))
        .route(
            "/workspace/v3/initialize-workspace",
            post(workspace::initialize),
        )
        .route(
            "/workspace/v3/activate-channels",
            post(workspace::activate_channels),
        )
        .route("/workspace/v3/logout", post(workspace::logout))
        .route("/workspace/v3/current-session", get(workspace::current))
        .route(
            "/workspace/v3/workbins/get-workbins",
            post(workspace::get_workbins),
        )
        .route(
            "/workspace/v3/workbins/{id}/get-content",
            post(workspace::get_content),
        )
        .route(
            "/workspace/v3/workbins/get-contents",
            post(workspace::get_contents),
        )
        .route(
            "/workspace/v3/workbins/subscribe",
            post(workspace::subscribe_many),
        )
        .route(
            "/workspace/v3/workbins/unsubscribe",
            post(workspace::unsubscribe_many),
        )
        .route(
            "/workspace/v3/workbins/{id}/add-interaction",
            post(workspace::add_interaction),
        )
        .route(
            "/workspace/v3/workbins/interactions/{id}/get-details",
            post(workspace::get_details),
        )
        .route(
            "/workspace/v3/workbins/{id}/subscribe",
            post(workspace::subscribe),
        )
        .route(
            "/workspace/v3/workbins/{id}/unsubscribe",
            post(workspace::unsubscribe),
        )
        .route(
            "/workspace/v3/media/{mediatype}/interactions/{id}/{operation}",
            post(media::operation),
        )
        .route(
            "/workspace/v3/media-management/get-snapshot",
            post(management::get_snapshot),
        )
        .route(
            "/workspace/v3/media-management/interactions/{id}/get-details",
            post(management::get_details),
        )
        .route(
            "/workspace/v3/media-management/{operation}",
            post(management::bulk),
        )
        .route(
            "/workspace/v3/media-management/{snapshot}/{operation}",
            post(management::with_snapshot),
        )
        .route(NOTIFICATIONS, post(workspace::notifications))
        .route(&format!("{NOTIFICATIONS}/"), post(workspace::notifications))
        .route(
            &format!("{NOTIFICATIONS}/{{kind}}"),
            post(workspace::notifications_suffix),
        )
}
