//! The ixn workbin engine: a sans-IO, deterministic state machine that implements the workbin
//! rules of docs/protocol.md and docs/behaviour.md. It does no I/O, has no clock and no randomness
//! of its own, and depends on no async runtime.
//!
//! The driver feeds [`Engine`] connection events and decoded [`ixn_codec::Message`]s and
//! carries out the [`Output`]s it returns, in order: see [`Engine`] for the calling contract.
//! Every failure maps to one EventError code through [`Error::code`].
//!
//! ```
//! use ixn_core::{ConnId, Engine, Output};
//! use ixn_codec::Message;
//! use std::{sync::Arc, time::SystemTime};
//!
//! let config = ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo.toml").unwrap();
//! let mut engine = Engine::new(Arc::new(config), 7);
//! let mut out = Vec::new();
//! let register = Message::from_json(
//!     r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#,
//! ).unwrap();
//! engine.handle(SystemTime::UNIX_EPOCH, ConnId(1), &register, &mut out);
//! let reply = out[0].message().unwrap();
//! assert_eq!(reply.name(), Some("EventAck"));
//! assert_eq!(reply.proxy_client_id(), Some(1));
//! ```

#![warn(missing_docs)]

mod access;
mod auth;
pub mod condition;
pub mod durable;
mod engine;
mod error;
mod ids;
mod interactions;
/// The reference model of the property tests and the `core_ops` fuzz target (test builds only).
#[cfg(any(test, fuzzing, feature = "model"))]
#[allow(missing_docs)]
pub mod model;
#[cfg(test)]
mod model_tests;
mod names;
mod output;
mod scans;
mod sessions;
mod snapshots;
mod types;
mod workbins;

pub use auth::{Proof, verify_password};
#[cfg(any(test, fuzzing, feature = "model"))]
pub use engine::inspect;
pub use engine::{Busiest, Census, Engine, Role, Stats, not_active_notice, ping_reply};
pub use error::Error;
pub use ids::ClientId;
pub use output::{CloseReason, ConnId, Output};
pub use scans::{Finished, MAX_HELD_BEHIND_SCAN, SCAN_SLICE};
