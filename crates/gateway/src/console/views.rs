//! What the console lists: the caller's workbins and (for supervisors) the queues, each with
//! its count; snapshots taken by a condition and read a page at a time (a large workbin or
//! queue never reaches the browser whole); and the server page of the operator role.
//!
//! A count is a snapshot of the workbin instance or queue, taken and released at once: exact up
//! to `max_interactions_per_snapshot`, "at least" beyond (`capped`). Such a condition names one
//! location, so the engine reads only it and stops at the cap.

use super::shared::{Console, ConsoleError, supervisor};
use crate::hub::{Hub, WebSession};
use crate::v3::workspace::ask;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ixn_codec::{KvList, Message, MessageId, attr};
use ixn_config::OwnerKind;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Rows in one page at most.
pub(crate) const PAGE: usize = 200;

type Shared = State<Arc<Hub>>;

/// A condition's string literal.
pub(crate) fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The condition selecting one workbin instance, from its WorkbinInfo.
fn instance_condition(info: &KvList) -> Option<String> {
    let ty = info.get_str(attr::WORKBIN_TYPE_ID)?;
    let owner = [
        (attr::WORKBIN_AGENT_ID, "AgentId"),
        (attr::WORKBIN_PLACE_ID, "PlaceId"),
        (attr::WORKBIN_GROUP_ID, "AgentGroupId"),
        (attr::WORKBIN_PLACE_GROUP_ID, "PlaceGroupId"),
    ]
    .into_iter()
    .find_map(|(key, name)| info.get_str(key).map(|v| format!("{name} = {}", quoted(v))))?;
    Some(format!("WorkbinTypeId = {} AND {owner}", quoted(ty)))
}

/// Takes a snapshot; `(id, count)`.
async fn snapshot(
    hub: &Hub,
    web: &WebSession,
    condition: String,
    order: Option<String>,
    max: usize,
) -> Result<(String, usize), ConsoleError> {
    let mut take = Message::new(MessageId::REQUEST_TAKE_SNAPSHOT)
        .with(attr::CONDITION, condition)
        .with(
            attr::SNAPSHOT_MAX_INTERACTIONS,
            i32::try_from(max).unwrap_or(i32::MAX),
        );
    if let Some(o) = order {
        take.attrs.push(attr::ORDER, o);
    }
    let taken = ask(hub, web, take, MessageId::EVENT_SNAPSHOT_TAKEN).await?;
    let id = taken
        .attrs
        .get_str(attr::SNAPSHOT_ID)
        .map(ToString::to_string)
        .unwrap_or_default();
    let count = taken
        .attrs
        .get_int(attr::NUMBER_OF_INTERACTIONS)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    Ok((id, count))
}

/// How many interactions `condition` selects, up to the snapshot cap: `{count, capped}`.
async fn count(hub: &Hub, web: &WebSession, condition: String) -> Result<Value, ConsoleError> {
    let cap = hub.config.limits.max_interactions_per_snapshot;
    let (id, n) = snapshot(hub, web, condition, None, cap).await?;
    release_snapshot(hub, web, &id).await?;
    Ok(json!({"count": n, "capped": n >= cap}))
}

async fn release_snapshot(hub: &Hub, web: &WebSession, id: &str) -> Result<(), ConsoleError> {
    let release = Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, id);
    ask(hub, web, release, MessageId::EVENT_ACK).await?;
    Ok(())
}

/// `GET /console/api/workbins`: the workbin instances the agent reaches (its own, its place's
/// and groups', and those of the agents it supervises), each with its WorkbinInfo, a label,
/// the condition that selects it and its count.
pub(super) async fn workbins(
    Console(web): Console,
    State(hub): Shared,
) -> Result<Json<Value>, ConsoleError> {
    let config = &hub.config;
    let me = &config[web.agent];
    let msg = Message::new(MessageId::REQUEST_GET_WORKBINS).with(attr::AGENT_ID, me.id.as_str());
    let reply = ask(&hub, &web, msg, MessageId::EVENT_WORKBINS).await?;
    let mut out = Vec::new();
    for info in crate::gws::workbin_instances(&reply) {
        let name = info.get_str(attr::WORKBIN_TYPE_ID).map_or("", |s| s);
        let (Some(ty), Some(condition)) = (config.workbin(name), instance_condition(info)) else {
            continue;
        };
        let wt = &config[ty];
        let text = |key: &str| {
            info.get_str(key)
                .map_or_else(String::new, |s| s.to_string())
        };
        let (owner_kind, owner) = match wt.owner {
            OwnerKind::Agent => ("agent", text(attr::WORKBIN_AGENT_ID)),
            OwnerKind::Place => ("place", text(attr::WORKBIN_PLACE_ID)),
            OwnerKind::AgentGroup => ("agent group", text(attr::WORKBIN_GROUP_ID)),
            OwnerKind::PlaceGroup => ("place group", text(attr::WORKBIN_PLACE_GROUP_ID)),
        };
        let mine = wt.owner != OwnerKind::Agent || owner == me.id;
        let info_json: serde_json::Map<String, Value> = info
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.to_string(), json!(&**s))))
            .collect();
        let mut entry = json!({
            "workbin": info_json,
            "type": wt.name,
            "ownerKind": owner_kind,
            "owner": owner,
            "mine": mine,
            "label": if wt.owner == OwnerKind::Agent && mine { wt.name.clone() } else { format!("{} of {owner}", wt.name) },
            "condition": condition,
        });
        if let (Some(map), Value::Object(c)) = (
            entry.as_object_mut(),
            count(&hub, &web, condition.clone()).await?,
        ) {
            map.extend(c);
        }
        out.push(entry);
    }
    Ok(Json(json!({"workbins": out})))
}

/// `GET /console/api/queues` (supervisors): the tenant's queues with their counts.
pub(super) async fn queues(
    Console(web): Console,
    State(hub): Shared,
) -> Result<Json<Value>, ConsoleError> {
    supervisor(&hub, &web)?;
    let tenant = hub.config[web.agent].tenant;
    let mut out = Vec::new();
    for (_, q) in hub.config.queues().filter(|(_, q)| q.tenant == tenant) {
        let condition = format!("Queue = {}", quoted(&q.name));
        let mut entry = json!({"queue": q.name, "condition": condition});
        if let (Some(map), Value::Object(c)) =
            (entry.as_object_mut(), count(&hub, &web, condition).await?)
        {
            map.extend(c);
        }
        out.push(entry);
    }
    Ok(Json(json!({"queues": out})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Take {
    condition: String,
    #[serde(default)]
    order: Option<String>,
}

/// `POST /console/api/snapshots` `{"condition", "order"?}`: a snapshot of at most
/// `max_interactions_per_snapshot`: `{snapshotId, count, capped}`. A condition or order that
/// does not parse answers `{"invalid": {"message", "position"}}` (the engine's message, and the
/// position in characters from 1): the page shows it under the condition.
pub(super) async fn take(
    Console(web): Console,
    State(hub): Shared,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ConsoleError> {
    let req: Take = serde_json::from_slice(&body).map_err(|e| {
        ConsoleError::bad(format!(
            "the body does not fit ({e}); send {{\"condition\": \"...\", \"order\": \"ReceivedAt DESC\"}}"
        ))
    })?;
    let cap = hub.config.limits.max_interactions_per_snapshot;
    let order = req.order.filter(|o| !o.trim().is_empty());
    match snapshot(&hub, &web, req.condition, order, cap).await {
        Ok((id, n)) => Ok(Json(
            json!({"snapshotId": id, "count": n, "capped": n >= cap}),
        )),
        // What the user wrote does not parse: an answer for the page to show, not a failure.
        Err(e) if e.position.is_some() => Ok(Json(
            json!({"invalid": {"message": e.message, "position": e.position}}),
        )),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    start: usize,
    #[serde(default)]
    size: Option<usize>,
}

/// `GET /console/api/snapshots/{id}?start=0&size=50`: rows `start`.. of the snapshot (at most
/// [`PAGE`]), each interaction as it is now; one gone since keeps its place as `Gone`.
pub(super) async fn page(
    Console(web): Console,
    State(hub): Shared,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ConsoleError> {
    let size = q.size.unwrap_or(50).clamp(1, PAGE);
    let start = i32::try_from(q.start)
        .map_err(|_| ConsoleError::bad(format!("start {} is too large", q.start)))?;
    let size = i32::try_from(size).unwrap_or(1);
    let rows = crate::v3::management::page(&hub, &web, &id, start, size).await?;
    Ok(Json(json!({"start": q.start, "interactions": rows})))
}

/// `POST /console/api/snapshots/{id}/release`.
pub(super) async fn release(
    Console(web): Console,
    State(hub): Shared,
    Path(id): Path<String>,
) -> Result<Json<Value>, ConsoleError> {
    release_snapshot(&hub, &web, &id).await?;
    Ok(Json(json!({})))
}

/// `GET /console/api/server` (the operator role, `[http] operators`): whether this server is
/// active (or a standby, and which server is), how long its web API has run, and the metrics
/// scrape, which the page reads.
pub(super) async fn server(
    Console(web): Console,
    State(hub): Shared,
) -> Result<Json<Value>, ConsoleError> {
    let me = &hub.config[web.agent];
    if !hub.config.http.operators.contains(&me.id) {
        return Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            format!(
                "agent {:?} is not an operator: the server page is for the agents in [http] operators",
                me.id
            ),
        ));
    }
    let ping = hub.request(None, Message::new(MessageId::PING)).await;
    let (role, note) = match ping {
        Ok(r) if r.id == MessageId::PING => ("active", String::new()),
        Ok(r) if r.id == MessageId::EVENT_ERROR => ("standby", crate::gws::engine_reason(&r)),
        Ok(r) => ("unknown", format!("the engine answered {}", r.id)),
        Err(e) => ("unknown", e.to_string()),
    };
    let scrape = match hub.metrics.console_scrape() {
        Some(s) => Some(s().await),
        None => None,
    };
    Ok(Json(json!({
        "role": role,
        "note": note,
        "uptimeSecs": hub.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "metrics": scrape,
    })))
}
