//! Whose workbin a request names: the owner form its path has ([`Addressed`], an extractor:
//! `me`, any, or a user's), and the translation of the path and query (user ids, group
//! names, `?workbinIds=`) into the engine's WorkbinInfo ([`resolve`]). The engine checks
//! access; this only translates and refuses what cannot be translated.

use crate::gws::{ApiError, Status, WorkbinRef};
use crate::hub::{Hub, WebSession};
use axum::extract::{FromRequestParts, MatchedPath, Path};
use axum::http::request::Parts;
use ixn_codec::{KvList, attr};
use ixn_config::{OwnerKind, WorkbinTypeIdx};
use serde::Deserialize;
use std::collections::HashMap;

/// What a workbin route's path addresses: whose workbins ([`Form`], from the route's prefix
/// and its `{user}`), and the workbin id and media where the route has them.
pub(super) struct Addressed {
    pub(super) form: Form,
    pub(super) id: Option<String>,
    pub(super) media: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Addressed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let route = MatchedPath::from_request_parts(parts, state)
            .await
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let mut params = if route.contains('{') {
            Path::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::new(Status::NotFound, e.body_text()))?
                .0
        } else {
            HashMap::new()
        };
        let form = match params.remove("user") {
            Some(user) => Form::User(user),
            None if route.starts_with("/api/v2/me/") => Form::Me,
            None => Form::Any,
        };
        Ok(Self {
            form,
            id: params.remove("id"),
            media: params.remove("media"),
        })
    }
}

/// Which path form addressed the workbin.
#[derive(Clone, Debug)]
pub(super) enum Form {
    /// `/api/v2/me/workbins`
    Me,
    /// `/api/v2/workbins`
    Any,
    /// `/api/v2/users/{userId}/workbins`
    User(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WorkbinQuery {
    pub(super) workbin_ids: Option<String>,
    pub(super) agent_group: Option<String>,
    pub(super) place_group: Option<String>,
    /// Content arrays to include: `*` or a list of media (see [`Media`]).
    pub(super) subresources: Option<String>,
    /// Fields of the listings: `*` or a list of field names.
    pub(super) fields: Option<String>,
}

/// A workbin the request names: its type, its WorkbinInfo and how the web API names it.
pub(super) struct Target {
    pub(super) ty: WorkbinTypeIdx,
    pub(super) info: KvList,
    pub(super) workbin: WorkbinRef,
}

/// The WorkbinInfo a path and query name, with the web API's names for it. The engine checks
/// access; this only translates (user ids to agent ids, `?agentGroup=`, `?placeGroup=`) and
/// refuses what cannot be translated.
pub(super) fn resolve(
    hub: &Hub,
    web: &WebSession,
    id: &str,
    form: &Form,
    query: &WorkbinQuery,
) -> Result<Target, ApiError> {
    let config = &hub.config;
    let me = &config[web.agent];
    let ty = config
        .workbin_by_uuid(id)
        .or_else(|| config.workbin(id))
        .filter(|&t| config[t].tenant == me.tenant)
        .ok_or_else(|| {
            ApiError::new(
                Status::NotFound,
                format!("no workbin {id:?} (GET /api/v2/workbins lists them)"),
            )
        })?;
    let wt = &config[ty];
    let mut info = KvList::new().with(attr::WORKBIN_TYPE_ID, wt.name.as_str());
    let mut workbin = WorkbinRef {
        id: Some(wt.uuid.clone()),
        name: wt.name.clone(),
        ..WorkbinRef::default()
    };
    let wrong = |param: &str| {
        ApiError::new(
            Status::Missing,
            format!(
                "{param} does not apply to workbin {:?}, whose owner is {}",
                wt.name,
                wt.owner.name()
            ),
        )
    };
    if query.agent_group.is_some() && wt.owner != OwnerKind::AgentGroup {
        return Err(wrong("agentGroup"));
    }
    if query.place_group.is_some() && wt.owner != OwnerKind::PlaceGroup {
        return Err(wrong("placeGroup"));
    }
    match wt.owner {
        OwnerKind::Agent => {
            let owner = match form {
                Form::User(user) => {
                    let a = config.agent_by_user_id(user).ok_or_else(|| {
                        ApiError::new(Status::NotFound, format!("no user {user:?}"))
                    })?;
                    workbin.workbin_user_id = Some(user.clone());
                    config[a].id.clone()
                }
                Form::Me | Form::Any => me.id.clone(),
            };
            info.push(attr::WORKBIN_AGENT_ID, owner);
        }
        OwnerKind::Place => {
            if let Form::User(_) = form {
                return Err(ApiError::new(
                    Status::BadState,
                    format!(
                        "workbin {:?} belongs to a place: address it with /api/v2/me/workbins at your own place",
                        wt.name
                    ),
                ));
            }
            // No owner key: the engine uses the agent's own place.
        }
        OwnerKind::AgentGroup => {
            let g = named_group(
                query.agent_group.as_deref(),
                "agentGroup",
                "agent group",
                &wt.name,
                |g| config.agent_group(g).is_some(),
            )?;
            info.push(attr::WORKBIN_GROUP_ID, g);
            workbin.agent_group = Some(g.to_owned());
        }
        OwnerKind::PlaceGroup => {
            let g = named_group(
                query.place_group.as_deref(),
                "placeGroup",
                "place group",
                &wt.name,
                |g| config.place_group(g).is_some(),
            )?;
            info.push(attr::WORKBIN_PLACE_GROUP_ID, g);
            workbin.place_group = Some(g.to_owned());
        }
    }
    Ok(Target { ty, info, workbin })
}

/// The group that `?{param}=` names for a workbin owned by groups of `kind`: missing is
/// `Missing`, unknown is `NotFound`.
fn named_group<'q>(
    value: Option<&'q str>,
    param: &str,
    kind: &str,
    workbin: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<&'q str, ApiError> {
    let g = value.ok_or_else(|| {
        ApiError::new(
            Status::Missing,
            format!("?{param}=NAME is required for workbin {workbin:?} (owned by {kind}s)"),
        )
    })?;
    if !exists(g) {
        return Err(ApiError::new(Status::NotFound, format!("no {kind} {g:?}")));
    }
    Ok(g)
}

/// The workbins a request names: the path's, or `?workbinIds=`'s, each once, in the order
/// given (a repeated id is one workbin: one operation, one reference id, one message).
pub(super) fn workbin_ids(path: Option<&str>, q: &WorkbinQuery) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> = match (path, &q.workbin_ids) {
        (Some(id), None) => vec![id.to_owned()],
        (None, Some(list)) => {
            let mut ids: Vec<String> = Vec::new();
            for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !ids.iter().any(|i| i == id) {
                    ids.push(id.to_owned());
                }
            }
            ids
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Status::Missing,
                "give the workbin in the path or in ?workbinIds=, not both",
            ));
        }
        (None, None) => Vec::new(),
    };
    if ids.is_empty() {
        return Err(ApiError::new(
            Status::Missing,
            "workbinIds is required: ?workbinIds=ID1,ID2 (or name one workbin in the path)",
        ));
    }
    if ids.len() > 64 {
        return Err(ApiError::new(
            Status::Missing,
            "at most 64 workbinIds per request",
        ));
    }
    Ok(ids)
}
