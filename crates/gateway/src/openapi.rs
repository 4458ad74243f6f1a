//! The web APIs as OpenAPI 3.1 documents, served at `/openapi/v2.json` (GWS v2) and
//! `/openapi/v3.json` (the Workspace API v3): built from the route tables below ([`V2`],
//! [`V3`]) and the schemas of the body types (utoipa). A test (in `routes`) sends every
//! documented route to the real router and fails on one it does not serve.

use crate::v3_shapes::bodies as b;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    RefOr, Required, ResponseBuilder,
};

/// Adds a body type's schema (and those it refers to) to `into`; a reference to it.
type Schema_ = fn(&mut Vec<(String, RefOr<Schema>)>) -> Ref;

fn schema<T: ToSchema>(into: &mut Vec<(String, RefOr<Schema>)>) -> Ref {
    into.push((T::name().into_owned(), T::schema()));
    T::schemas(into);
    Ref::from_schema_name(T::name())
}

/// One documented route.
pub(crate) struct Route {
    pub(crate) method: HttpMethod,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    /// The request body's type (JSON, or a form for the token route).
    pub(crate) body: Option<Schema_>,
    /// What a success answers.
    pub(crate) reply: Schema_,
}

const fn post(
    path: &'static str,
    summary: &'static str,
    body: Option<Schema_>,
    reply: Schema_,
) -> Route {
    Route {
        method: HttpMethod::Post,
        path,
        summary,
        body,
        reply,
    }
}

const fn get(path: &'static str, summary: &'static str, reply: Schema_) -> Route {
    Route {
        method: HttpMethod::Get,
        path,
        summary,
        body: None,
        reply,
    }
}

/// The Workspace API v3 (docs/workspace-api.md).
pub(crate) const V3: &[Route] = &[
    post(
        "/auth/v3/oauth/token",
        "An access token (OAuth 2 password grant; the client in HTTP Basic)",
        Some(schema::<b::TokenForm>),
        schema::<b::Token>,
    ),
    get(
        "/auth/v3/userinfo",
        "Who the Bearer token is for",
        schema::<b::UserInfo>,
    ),
    post(
        "/workspace/v3/initialize-workspace",
        "Starts the workspace session (Bearer token); sets WORKSPACE_SESSIONID",
        None,
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/activate-channels",
        "Logs the agent in at a place",
        Some(schema::<b::ActivateChannels>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/logout",
        "Ends the workspace session",
        None,
        schema::<b::Reply>,
    ),
    get(
        "/workspace/v3/current-session",
        "The user of the session",
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/notifications",
        "CometD (Bayeux over long-polling)",
        None,
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/get-workbins",
        "Accepted; EventWorkbins follows",
        Some(schema::<b::Operation>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/get-contents",
        "Accepted; EventWorkbinsContent follows",
        Some(schema::<b::WorkbinsRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/subscribe",
        "Accepted; an EventAck per workbin follows",
        Some(schema::<b::WorkbinsRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/unsubscribe",
        "Accepted; an EventAck per workbin follows",
        Some(schema::<b::WorkbinsRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/{workbinId}/add-interaction",
        "Places an interaction in the workbin",
        Some(schema::<b::AddInteractionRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/interactions/{interactionId}/get-details",
        "Accepted; EventGetInteractionDetails follows",
        Some(schema::<b::Operation>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/{workbinId}/get-content",
        "Accepted; EventWorkbinContent follows",
        Some(schema::<b::WorkbinRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/{workbinId}/subscribe",
        "Accepted; EventAck follows, then EventWorkbinContentChanged",
        Some(schema::<b::WorkbinRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/workbins/{workbinId}/unsubscribe",
        "Accepted; EventAck follows",
        Some(schema::<b::WorkbinRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media/{mediatype}/interactions/{id}/pull",
        "The agent takes the interaction",
        Some(schema::<b::WorkbinRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media/{mediatype}/interactions/{id}/place-in-queue",
        "Places the interaction in a queue",
        Some(schema::<b::PlaceInQueueRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media/{mediatype}/interactions/{id}/complete",
        "Ends the interaction",
        Some(schema::<b::Operation>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media/{mediatype}/interactions/{id}/attach-user-data",
        "Adds user data",
        Some(schema::<b::UserDataRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media/{mediatype}/interactions/{id}/update-user-data",
        "Changes user data",
        Some(schema::<b::UserDataRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media/{mediatype}/interactions/{id}/delete-user-data",
        "Deletes user data keys",
        Some(schema::<b::DeleteUserDataRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/interactions/{id}/get-details",
        "Accepted; GetDetails follows (supervisors)",
        Some(schema::<b::Operation>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/get-snapshot",
        "Accepted; SnapshotContent follows (supervisors)",
        Some(schema::<b::GetSnapshotRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/{snapshotId}/get-snapshot-content",
        "Accepted; SnapshotContent follows",
        Some(schema::<b::SnapshotPageRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/{snapshotId}/release-snapshot",
        "Accepted; SnapshotReleased follows",
        Some(schema::<b::Operation>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/move-to-workbin",
        "Accepted; MoveToWorkbin follows",
        Some(schema::<b::BulkRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/move-to-queue",
        "Accepted; MoveToQueue follows",
        Some(schema::<b::BulkRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/complete",
        "Accepted; Complete follows",
        Some(schema::<b::BulkRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/cancel",
        "Accepted; Cancel follows",
        Some(schema::<b::BulkRequest>),
        schema::<b::Reply>,
    ),
    post(
        "/workspace/v3/media-management/manage-user-data",
        "Accepted; ManageUserData follows",
        Some(schema::<b::BulkRequest>),
        schema::<b::Reply>,
    ),
];

/// GWS API v2 (docs/web-api.md).
pub(crate) const V2: &[Route] = &[
    get(
        "/api/v2/me",
        "The signed-in agent",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/me",
        "StartContactCenterSession, EndContactCenterSession",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/me/workbins",
        "The agent's workbins (or, with workbinIds, their content)",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/me/workbins",
        "Subscribe, Unsubscribe to several workbins",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/workbins",
        "The workbin types",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/workbins",
        "Operations on several workbins",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/users/{user}/workbins",
        "A user's workbins' content",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/users/{user}/workbins",
        "Operations on a user's workbins",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/me/workbins/{id}",
        "One workbin",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/me/workbins/{id}",
        "Subscribe, Unsubscribe, AddInteraction, PullInteraction",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/workbins/{id}",
        "One workbin",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/workbins/{id}",
        "Operations on one workbin",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/users/{user}/workbins/{id}",
        "One workbin of a user",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/users/{user}/workbins/{id}",
        "Operations on one workbin of a user",
        Some(schema::<crate::extract::Operation>),
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/me/workbins/{id}/{media}",
        "One media array of a workbin",
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/workbins/{id}/{media}",
        "One media array of a workbin",
        schema::<crate::gws::Reply>,
    ),
    get(
        "/api/v2/users/{user}/workbins/{id}/{media}",
        "One media array of a user's workbin",
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/signout",
        "Ends the web session",
        None,
        schema::<crate::gws::Reply>,
    ),
    post(
        "/api/v2/notifications",
        "CometD (Bayeux over long-polling; also a WebSocket upgrade)",
        None,
        schema::<crate::gws::Reply>,
    ),
];

/// The path parameters of `path` (`{name}` segments).
fn parameters(path: &str) -> Vec<utoipa::openapi::path::Parameter> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(<String as utoipa::PartialSchema>::schema()))
                .build()
        })
        .collect()
}

/// The OpenAPI document of `routes`.
pub(crate) fn document(title: &str, routes: &[Route]) -> OpenApi {
    let mut schemas = Vec::new();
    let mut paths = PathsBuilder::new();
    for r in routes {
        let reply = (r.reply)(&mut schemas);
        let mut op = OperationBuilder::new()
            .summary(Some(r.summary))
            .parameters(Some(parameters(r.path)))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("done or accepted")
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(reply)).build(),
                    )
                    .build(),
            );
        if let Some(body) = r.body {
            let kind = if r.path.ends_with("/oauth/token") {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            let body = body(&mut schemas);
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(kind, ContentBuilder::new().schema(Some(body)).build())
                    .build(),
            ));
        }
        paths = paths.path(r.path, PathItem::new(r.method.clone(), op.build()));
    }
    let mut components = ComponentsBuilder::new();
    for (name, s) in schemas {
        components = components.schema(name, s);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

fn json(doc: &'static OnceLock<String>, build: fn() -> OpenApi) -> Response {
    let text = doc.get_or_init(|| build().to_pretty_json().unwrap_or_default());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text.as_str(),
    )
        .into_response()
}

/// `GET /openapi/v2.json`.
pub(crate) async fn v2() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    json(&DOC, || document("ixn web API (GWS v2 shapes)", V2))
}

/// `GET /openapi/v3.json`.
pub(crate) async fn v3() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    json(&DOC, || document("ixn Workspace API v3", V3))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The documents are valid JSON with every route, each body and reply a known schema.
    #[test]
    fn documents_list_every_route_with_its_schemas() {
        for (routes, title) in [(V2, "v2"), (V3, "v3")] {
            let doc: serde_json::Value =
                serde_json::from_str(&document(title, routes).to_json().unwrap()).unwrap();
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            for r in routes {
                assert!(doc["paths"][r.path].is_object(), "{} missing", r.path);
            }
            let text = doc.to_string();
            for (_, name) in text.match_indices("#/components/schemas/").map(|(i, _)| {
                let rest = &text[i + 21..];
                ((), rest[..rest.find('"').unwrap()].to_owned())
            }) {
                assert!(schemas.contains_key(&name), "{title}: no schema {name}");
            }
        }
    }
}
