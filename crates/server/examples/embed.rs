//! The engine inside a service of your own: a configuration of its own, interactions kept in a
//! journal in a directory, the server started in process on a free port, a client that submits
//! an interaction and reads it back, then a restart from the same directory that finds it again.
//!
//! ```sh
//! cargo run --release -p ixn-server --example embed            # a temporary directory
//! cargo run --release -p ixn-server --example embed -- my-data  # or one you keep
//! ```

// An example program: it talks to its user on stdout and stops at the first failure.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use ixn_client::Client;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use std::sync::Arc;

/// The service's own configuration: one tenant, a media server that takes e-mails in, an
/// agent desktop, one agent at one place with a Drafts workbin, one queue.
const CONFIG: &str = r#"
[[tenant]]
id = 1
name = "Mail desk"

[[application]]
name = "intake"
type = "MediaServer"

[[application]]
name = "desk"
type = "AgentApplication"

[[agent_group]]
name = "Mail"

[[agent]]
id = "alice"
user_id = "0123456789abcdef0123456789abcdef"
tenant = 1
groups = ["Mail"]

[[place]]
id = "desk-1"

[[workbin]]
name = "Drafts"
owner = "Agent"
tenant = 1

[[queue]]
name = "Incoming"
tenant = 1
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Arc::new(ixn_config::Config::from_toml_str(
        CONFIG,
        "embedded config",
    )?);
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("ixn-embed-{}", std::process::id())),
    };

    // First run: recover the directory (empty the first time), serve, submit one e-mail.
    let server = start(&dir, &config).await?;
    let mut intake = Client::connect(server.addr).await?;
    intake.register("intake", ClientType::MediaServer).await?;
    let ack = intake
        .request_ok(
            Message::new(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 1)
                .with(attr::MEDIA_TYPE, "email")
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, "Incoming")
                .with(attr::USER_DATA, KvList::new().with("Subject", "Invoice 42")),
        )
        .await?;
    let id = ack
        .attrs
        .get_str(attr::INTERACTION_ID)
        .ok_or("the submit's EventAck carries the new InteractionId")?
        .to_string();
    println!(
        "submitted {id} (acknowledged only once it is on disk in {})",
        dir.display()
    );
    intake.close().await?;
    server.shutdown().await?;

    // Second run from the same directory: the interaction is still there.
    let server = start(&dir, &config).await?;
    let mut intake = Client::connect(server.addr).await?;
    intake.register("intake", ClientType::MediaServer).await?;
    let read = intake
        .request_ok(
            Message::new(MessageId::REQUEST_GET_INTERACTION_PROPERTIES)
                .with(attr::INTERACTION_ID, id.as_str()),
        )
        .await?;
    let interaction = read
        .attrs
        .get_list(attr::INTERACTION)
        .ok_or("EventInteractionProperties carries the interaction")?;
    let subject = interaction
        .get_list(attr::USER_DATA)
        .and_then(|u| u.get_str("Subject"))
        .map(|s| s.to_string());
    println!(
        "after a restart: {id} is {} in {}, subject {subject:?}",
        interaction
            .get_str(attr::INTERACTION_STATE)
            .map_or("?", |s| s.as_ref()),
        interaction.get_str(attr::QUEUE).map_or("?", |s| s.as_ref()),
    );
    if subject.as_deref() != Some("Invoice 42") {
        return Err("the interaction did not survive the restart".into());
    }
    intake.close().await?;
    server.shutdown().await?;
    if std::env::args().nth(1).is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Rebuilds the engine from the journal in `dir` and serves it on a free loopback port.
async fn start(
    dir: &std::path::Path,
    config: &Arc<ixn_config::Config>,
) -> Result<ixn_server::Started, ixn_server::Error> {
    let recovered = ixn_server::recover(dir, Arc::clone(config), 7)?;
    let store: Box<dyn ixn_server::Store> = Box::new(recovered.store);
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    ixn_server::start_engine(
        loopback,
        recovered.engine,
        Some(store),
        ixn_server::Options::default(),
    )
    .await
}
