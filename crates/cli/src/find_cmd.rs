//! `ixn find` and `ixn queue`: a snapshot taken by a condition, read a page at a time and
//! printed as a table (id, media, state, where, received, subject), then released.
//!
//! The condition is parsed here first with the server's own parser, so that a mistake is shown
//! at once with a caret under its position; the server's answer stays the authority.

use crate::args::{FindArgs, Server};
use crate::live::connect;
use ixn_client::Client;
use ixn_codec::{KvList, Message, MessageId, Value, attr};
use std::io::Write;
use std::process::ExitCode;

/// Whom `find` and `queue` register as without --as: a media server sees every interaction.
const SERVICE: &str = "emailsrv:MediaServer";

/// The condition `ixn queue NAME` uses.
pub(crate) fn queue_condition(name: &str) -> String {
    format!("Queue = '{}'", name.replace('\'', "''"))
}

/// Prints `text` with a caret under `position` (characters from 1) and `what`.
fn show_at(text: &str, position: usize, what: &str) {
    eprintln!("  {text}");
    eprintln!("  {}^ {what}", " ".repeat(position.saturating_sub(1)));
}

pub(crate) async fn find(server: Server, args: FindArgs, condition: String) -> ExitCode {
    if let Err(e) = ixn_core::condition::condition(&condition) {
        eprintln!("ixn find: the condition does not parse (docs/conditions.md):");
        show_at(&condition, e.position, &e.what);
        return ExitCode::from(2);
    }
    if let Some(order) = &args.order
        && let Err(e) = ixn_core::condition::order(order)
    {
        eprintln!("ixn find: the order does not parse (PROPERTY [ASC|DESC], ...):");
        show_at(order, e.position, &e.what);
        return ExitCode::from(2);
    }
    match run(&server, &args, &condition).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ixn find: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A request that must succeed: its reply, or the error in words.
async fn call(conn: &Client, msg: Message) -> Result<Message, String> {
    let what = msg.id;
    let reply = conn.request(msg).await.map_err(|e| e.to_string())?;
    if reply.id == MessageId::EVENT_ERROR {
        let code = reply.attrs.get_int(attr::ERROR_CODE).unwrap_or(0);
        let description = reply
            .attrs
            .get_str(attr::ERROR_DESCRIPTION)
            .map_or("", |d| d.as_ref());
        let mut text = format!(
            "{what}: EventError {code} {}: {description}",
            ixn_codec::ErrorCode::from_int(code)
        );
        if code == ixn_codec::ErrorCode::AgentNotLoggedIn.to_int() {
            text.push_str(
                " (an agent application sees through its agent: give --agent A --place P, or --as emailsrv:MediaServer)",
            );
        }
        return Err(text);
    }
    Ok(reply)
}

async fn run(server: &Server, args: &FindArgs, condition: &str) -> Result<(), String> {
    let conn = connect(server, SERVICE).await?;
    if let (Some(agent), Some(place)) = (&args.agent, &args.place) {
        call(
            &conn,
            Message::new(MessageId::REQUEST_AGENT_LOGIN)
                .with(attr::TENANT_ID, args.tenant)
                .with(attr::AGENT_ID, agent.clone())
                .with(attr::PLACE_ID, place.clone()),
        )
        .await?;
    }
    let mut take =
        Message::new(MessageId::REQUEST_TAKE_SNAPSHOT).with(attr::CONDITION, condition.to_owned());
    if let Some(o) = &args.order {
        take = take.with(attr::ORDER, o.clone());
    }
    if args.lock {
        take = take.with(attr::LOCK, 1);
    }
    if let Some(n) = args.limit {
        take = take.with(attr::SNAPSHOT_MAX_INTERACTIONS, n);
    }
    let taken = call(&conn, take).await?;
    let id = taken
        .attrs
        .get_str(attr::SNAPSHOT_ID)
        .cloned()
        .ok_or("EventSnapshotTaken without a SnapshotId")?;
    let total = taken
        .attrs
        .get_int(attr::NUMBER_OF_INTERACTIONS)
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<18} {:<10} {:<10} {:<24} {:<20} SUBJECT",
        "ID", "MEDIA", "STATE", "WHERE", "RECEIVED"
    );
    let page = args.page_size.max(1);
    let mut start = 0;
    while start < total {
        let reply = call(
            &conn,
            Message::new(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
                .with(attr::SNAPSHOT_ID, id.clone())
                .with(attr::START_FROM, start)
                .with(attr::NUMBER_OF_INTERACTIONS, page),
        )
        .await?;
        let Some(list) = reply.attrs.get(attr::INTERACTIONS).and_then(Value::as_list) else {
            return Err("EventSnapshotInteractions without Interactions".into());
        };
        for (ix, props) in list.iter() {
            let props = props.as_list().cloned().unwrap_or_default();
            let _ = writeln!(out, "{}", row(ix, &props));
        }
        start = start.saturating_add(page);
    }
    let not_locked = taken.attrs.get_int(attr::NOT_LOCKED);
    let _ = writeln!(
        out,
        "{total} interaction{}{}",
        if total == 1 { "" } else { "s" },
        not_locked.map_or(String::new(), |n| format!(
            " locked ({n} left out: another client holds them)"
        ))
    );
    call(
        &conn,
        Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, id),
    )
    .await?;
    Ok(())
}

/// One line of the table: an interaction gone since the snapshot was taken shows `(gone)`.
fn row(id: &str, p: &KvList) -> String {
    let s = |k: &str| p.get_str(k).map_or("", |v| v.as_ref()).to_owned();
    if p.is_empty() {
        return format!("{id:<18} (gone)");
    }
    let state = s(attr::INTERACTION_STATE);
    let place = match state.as_str() {
        "Queued" => format!("queue {}", s(attr::QUEUE)),
        "Handling" => format!("agent {}", s(attr::ASSIGNED_TO)),
        _ => {
            let owner = [
                attr::INTERACTION_AGENT_ID,
                attr::INTERACTION_PLACE_ID,
                attr::INTERACTION_AGENT_GROUP_ID,
                attr::INTERACTION_PLACE_GROUP_ID,
            ]
            .iter()
            .find_map(|k| p.get_str(k))
            .map_or("", |v| v.as_ref());
            format!("{} of {owner}", s(attr::INTERACTION_WORKBIN_TYPE_ID))
        }
    };
    let subject = p
        .get(attr::USER_DATA)
        .and_then(Value::as_list)
        .and_then(|u| u.get_str("Subject").or_else(|| u.get_str("From")))
        .map_or("", |v| v.as_ref())
        .to_owned();
    let locked = if p.get_int(attr::IS_LOCKED) == Some(1) {
        " [locked]"
    } else {
        ""
    };
    format!(
        "{id:<18} {:<10} {:<10} {place:<24} {:<20} {subject}{locked}",
        s(attr::MEDIA_TYPE),
        state,
        s(attr::RECEIVED_AT)
    )
}
