//! `ixn send` and `ixn watch`: a live connection to a server (over TLS when asked, following
//! a standby's hint to the active server), requests and replies as JSON lines.

use crate::args::{Server, parse_client};
use ixn_client::Client;
use ixn_codec::{KvList, Message, MessageId, attr};
use std::io::{BufRead, Write};
use std::process::ExitCode;

/// Connects to (the first of) `server.addr`, over TLS when asked.
async fn open(server: &Server) -> Result<Client, String> {
    let tls = server.creds.tls()?;
    let codec = ixn_codec::Codec::trusting(ixn_codec::Limits::default());
    let addrs = ixn_client::address_list(&server.addr);
    let first = addrs.first().map_or(server.addr.as_str(), String::as_str);
    Client::connect_maybe_tls(first, codec, tls.as_ref())
        .await
        .map_err(|e| e.to_string())
}

/// The client `send` and `watch` register as without --as.
const DESK: &str = "desk:AgentApplication";

/// How long `connect` waits for a server of the list to be active (a takeover in progress).
const ACTIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects to the active server of `server.addr` and registers as `server.client` (with the
/// password, if any), `default_client` when --as is not given.
pub(crate) async fn connect(server: &Server, default_client: &str) -> Result<Client, String> {
    let (name, kind) = parse_client(server.client_or(default_client))?;
    let tls = server.creds.tls()?;
    let codec = ixn_codec::Codec::trusting(ixn_codec::Limits::default());
    let addrs = ixn_client::address_list(&server.addr);
    let who = ixn_client::Registration {
        name: &name,
        kind,
        password: server.creds.password.as_deref(),
    };
    Client::connect_active(&addrs, codec, tls.as_ref(), who, ACTIVE_PATIENCE)
        .await
        .map_err(|e| match e {
            e @ ixn_client::Error::EventError { .. } => {
                format!("cannot register as {name} ({kind}): {e}")
            }
            e => e.to_string(),
        })
}

pub(crate) async fn send(server: Server, messages: Vec<String>) -> ExitCode {
    // `-` reads messages from standard input, one JSON object per non-empty line.
    let messages = if messages == ["-"] {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim().is_empty() => {}
                Ok(l) => lines.push(l),
                Err(e) => {
                    eprintln!("ixn send: cannot read standard input: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        if lines.is_empty() {
            eprintln!("ixn send: no message on standard input (one JSON object per line)");
            return ExitCode::from(2);
        }
        lines
    } else {
        messages
    };
    let mut parsed = Vec::with_capacity(messages.len());
    for (i, text) in messages.iter().enumerate() {
        match Message::from_json(text) {
            Ok(m) => parsed.push(m),
            Err(e) => {
                eprintln!(
                    "ixn send: message {} is not a valid message: {e}\n  {text}",
                    i + 1
                );
                return ExitCode::from(2);
            }
        }
    }
    let register_first = parsed
        .first()
        .is_some_and(|m| m.id == MessageId::REQUEST_REGISTER_CLIENT);
    if register_first
        && let (Some(p), Some(first)) = (&server.creds.password, parsed.first_mut())
        && first.attrs.get(attr::PASSWORD).is_none()
    {
        *first = first.clone().with(attr::PASSWORD, p.clone());
    }
    let conn = if register_first {
        open(&server).await
    } else {
        connect(&server, DESK).await
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ixn send: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for (i, msg) in parsed.into_iter().enumerate() {
        match conn.request(msg).await {
            Ok(reply) => {
                if reply.id == MessageId::EVENT_ERROR {
                    failed = true;
                    // For people: the error's name beside its code (stdout stays JSON).
                    let code = reply.attrs.get_int(attr::ERROR_CODE).unwrap_or(0);
                    let description = reply
                        .attrs
                        .get_str(attr::ERROR_DESCRIPTION)
                        .map_or("", |d| d.as_ref());
                    eprintln!(
                        "ixn send: message {}: EventError {code} {}: {description}",
                        i + 1,
                        ixn_codec::ErrorCode::from_int(code)
                    );
                }
                let _ = writeln!(
                    out,
                    "{}",
                    reply
                        .to_json()
                        .unwrap_or_else(|e| format!("{{\"unprintable\":\"{e}\"}}"))
                );
            }
            Err(e) => {
                eprintln!("ixn send: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = out.flush();
    let _ = conn.close().await;
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What `ixn watch` watches, as given on the command line.
struct WatchSpec {
    server: Server,
    tenant: i32,
    agent: String,
    place: String,
    workbins: Vec<String>,
    properties: bool,
}

/// Logs in, subscribes, prints notifications until Ctrl-C; `Err` says what went wrong.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn watch(
    server: Server,
    tenant: i32,
    agent: String,
    place: String,
    workbins: Vec<String>,
    properties: bool,
    reconnect: bool,
) -> Result<ExitCode, String> {
    let spec = WatchSpec {
        server,
        tenant,
        agent,
        place,
        workbins,
        properties,
    };
    let mut c = watch_session(&spec).await?;
    eprintln!(
        "watching {} as agent {} at {} (Ctrl-C to stop)",
        spec.workbins.join(", "),
        spec.agent,
        spec.place
    );
    loop {
        tokio::select! {
            n = c.next_notification() => match n {
                Some(m) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", m.to_json().unwrap_or_default());
                    let _ = out.flush();
                }
                None => {
                    let why = c.broken_why();
                    if !reconnect {
                        return Err(format!("{why} (--reconnect keeps watching across restarts)"));
                    }
                    eprintln!("ixn watch: {why}; reconnecting");
                    tokio::select! {
                        () = reconnect_session(&mut c) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                    }
                    // Changes made while disconnected were not notified: say so, in the output.
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(
                        out,
                        "{{\"ixn\":\"reconnected\",\"note\":\"notifications may have been missed while disconnected: read the workbins' content again\"}}"
                    );
                    let _ = out.flush();
                    eprintln!("ixn watch: reconnected and subscribed again");
                }
            },
            _ = tokio::signal::ctrl_c() => {
                let _ = c.close().await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Connects again (to the active server of the list), logs in and subscribes again, until it
/// works, waiting longer between tries (up to 2 s).
async fn reconnect_session(c: &mut ixn_client::Resilient) {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        tokio::time::sleep(wait).await;
        match c.reconnect().await {
            Ok(()) => return,
            Err(e) => {
                eprintln!("ixn watch: {e}; trying again in {} ms", wait.as_millis());
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
        }
    }
}

/// Connects, registers, logs the agent in and subscribes to the workbins.
async fn watch_session(spec: &WatchSpec) -> Result<ixn_client::Resilient, String> {
    let WatchSpec {
        server,
        tenant,
        agent,
        place,
        workbins,
        properties,
    } = spec;
    let (tenant, properties) = (*tenant, *properties);
    let (name, kind) = parse_client(server.client_or(DESK))?;
    let who = ixn_client::Registration {
        name: &name,
        kind,
        password: server.creds.password.as_deref(),
    };
    let mut c = ixn_client::Resilient::connect(
        &ixn_client::address_list(&server.addr),
        ixn_codec::Codec::trusting(ixn_codec::Limits::default()),
        server.creds.tls()?,
        who,
        ACTIVE_PATIENCE,
    )
    .await
    .map_err(|e| match e {
        e @ ixn_client::Error::EventError { .. } => {
            format!("cannot register as {name} ({kind}): {e}")
        }
        e => e.to_string(),
    })?;
    let ok = |what: String| move |e: ixn_client::Error| format!("{what}: {e}");
    c.setup(
        Message::new(MessageId::REQUEST_AGENT_LOGIN)
            .with(attr::TENANT_ID, tenant)
            .with(attr::AGENT_ID, agent.clone())
            .with(attr::PLACE_ID, place.clone()),
    )
    .await
    .map_err(ok(format!("cannot log in agent {agent} at {place}")))?;
    let types = c
        .client()
        .request_ok(
            Message::new(MessageId::REQUEST_WORKBIN_TYPES_INFO).with(attr::TENANT_ID, tenant),
        )
        .await
        .map_err(ok(format!(
            "cannot list the workbin types of tenant {tenant}"
        )))?;
    let types = types
        .attrs
        .get_list(attr::WORKBIN_TYPES)
        .cloned()
        .unwrap_or_default();
    for spec in workbins {
        let (name, owner) = match spec.split_once(':') {
            Some((n, o)) => (n, Some(o)),
            None => (spec.as_str(), None),
        };
        let kind = types
            .get_list(name)
            .and_then(|t| t.get_str(attr::OWNER_TYPE))
            .map(|s| s.to_string())
            .ok_or_else(|| {
                let known: Vec<&str> = types.iter().map(|(k, _)| &**k).collect();
                format!(
                    "no workbin type {name:?} in tenant {tenant} (known: {})",
                    known.join(", ")
                )
            })?;
        let key = match kind.as_str() {
            "Agent" => attr::WORKBIN_AGENT_ID,
            "Place" => attr::WORKBIN_PLACE_ID,
            "AgentGroup" => attr::WORKBIN_GROUP_ID,
            _ => attr::WORKBIN_PLACE_GROUP_ID,
        };
        let mut wb = KvList::new().with(attr::WORKBIN_TYPE_ID, name.to_owned());
        match owner {
            Some(o) => wb.push(key, o.to_owned()),
            None if matches!(kind.as_str(), "Agent" | "Place") => {}
            None => {
                return Err(format!(
                    "workbin {name} is owned by a {kind}: name it, e.g. --workbin {name}:<group>"
                ));
            }
        }
        c.setup(
            Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
                .with(attr::WORKBIN, wb)
                .with(attr::NOTIFY_PROPERTY_CHANGES, i32::from(properties)),
        )
        .await
        .map_err(ok(format!("cannot subscribe to {spec}")))?;
    }
    Ok(c)
}
