//! Configuration of the ixn workbin server (docs/configuration.md): what is
//! *known* (tenants, applications, agents, places, groups, workbin types, queues) and the
//! limits.
//!
//! - [`ConfigFile`] is the schema, read from TOML or JSON (the same keys) or built in code.
//! - [`Config`] is a validated, indexed configuration. Validation rejects unknown groups,
//!   tenants, duplicate ids and malformed values with a [`ConfigError`] that names the file, the
//!   entry and, for TOML, its line.
//! - [`Limits`] are the `[limits]` table, every limit with a documented default.
//!
//! This crate reads a file when asked to ([`Config::load`]) and does nothing else; [`password`]
//! hashes and checks the agents' `password_hash` values.
//!
//! ```
//! let config = ixn_config::Config::from_toml_str(r#"
//!     [[tenant]]
//!     id = 101
//!     name = "Environment"
//!     [[agent]]
//!     id = "a1"
//!     user_id = "802396ae32494a8b8a617a9103d968bb"
//!     tenant = 101
//! "#, "example.toml")?;
//! let (a1, _) = config.agents().next().unwrap();
//! assert_eq!(config[a1].id, "a1");
//! assert_eq!(config.agent("a1"), Some(a1));
//! # Ok::<(), ixn_config::ConfigError>(())
//! ```

#![warn(missing_docs)]

mod check;
mod entries;
mod error;
mod http;
mod limits;
pub mod password;
mod schema;
mod synthetic;
mod validate;

pub use entries::{
    Agent, AgentGroupIdx, AgentIdx, AppAuth, Place, PlaceGroupIdx, PlaceIdx, Queue, QueueIdx,
    WorkbinType, WorkbinTypeIdx,
};
pub use error::ConfigError;
pub use http::{Http, OAuthClient};
pub use limits::{
    INTERACTION_ENVELOPE, Limits, MAX_INTERACTION_BYTES, MAX_INTERACTIONS_PER_SNAPSHOT,
};
pub use schema::{
    AgentEntry, AppType, ApplicationEntry, ConfigFile, GroupEntry, OwnerKind, PlaceEntry,
    QueueEntry, StoreKind, StoreSection, TenantEntry, Tls, WorkbinEntry,
};
pub use synthetic::SYNTHETIC_AGENT_WORKBINS;
pub use validate::Config;

/// The demo configuration the server starts with when given none (also shipped as
/// `examples/demo.toml`). It is the conformance suite's configuration plus more agents.
pub const DEMO_TOML: &str = include_str!("../demo.toml");
