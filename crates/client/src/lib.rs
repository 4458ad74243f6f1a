//! An async client for the ixn workbin server.
//!
//! Connect, register (as a plain client or a proxy with logical clients), send typed or JSON
//! requests and await their replies (matched by `ReferenceId`, many in flight at once), read
//! notifications from a stream, close cleanly.
//!
//! ```
//! use ixn_client::Client;
//! use ixn_codec::{ClientType, KvList, Message, WorkbinContentOperation, typed::RequestAgentLogin};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo")?;
//! # let server = ixn_server::start("127.0.0.1:0".parse()?, config.into(), Default::default()).await?;
//! # let addr = server.addr;
//! // An agent desktop: register, log in, subscribe to the agent's Drafts workbin.
//! let mut desk = Client::connect(addr).await?;
//! desk.register("desk", ClientType::AgentApplication).await?;
//! desk.request_ok(RequestAgentLogin {
//!     tenant_id: 101,
//!     agent_id: "a1".into(),
//!     place_id: "p1".into(),
//!     ..Default::default()
//! })
//! .await?;
//! desk.request_json(r#"{"message":"RequestWorkbinNotifications","Workbin":{"WorkbinTypeId":"Drafts"}}"#)
//!     .await?;
//!
//! // A media server: submit an e-mail and place it in that workbin.
//! let mut media = Client::connect(addr).await?;
//! media.register("emailsrv", ClientType::MediaServer).await?;
//! let ack = media
//!     .request_json(r#"{"message":"RequestSubmit","TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound"}"#)
//!     .await?;
//! let id = ack.attrs.get_str("InteractionId").expect("a generated id").clone();
//! media
//!     .request_ok(
//!         Message::from_json(r#"{"message":"RequestPlaceInWorkbin"}"#)?
//!             .with("InteractionId", id.clone())
//!             .with("Workbin", KvList::new().with("WorkbinTypeId", "Drafts").with("WorkbinAgentId", "a1")),
//!     )
//!     .await?;
//!
//! // The desktop hears about it.
//! let event = desk.next_notification().await.expect("a notification");
//! let placed_in = WorkbinContentOperation::PlacedIn.to_int();
//! assert_eq!(event.attrs.get_int("WorkbinContentOperation"), Some(placed_in));
//! println!("{}", event.to_json()?); // {"message":"EventWorkbinContentChanged",...}
//! desk.close().await?;
//! media.close().await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
mod resilient;

pub use client::{Client, Error, NOTIFICATION_BUFFER, Registration, Tls, active_server_of};
pub use resilient::{Event, Resilient, address_list};
