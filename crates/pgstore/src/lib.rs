//! Interactions in PostgreSQL, behind the same [`Store`](ixn_store::Store) interface as the journal.
//!
//! - One row per interaction (`ixn_interactions`): its state and location by name, its
//!   properties in the JSON form of docs/protocol.md, the Put change in the codec's binary form
//!   (what recovery reads back), and a version bumped by every commit that changes it. The
//!   InteractionId generator's state is a row of `ixn_meta`.
//! - Group commit: [`Store::append`](ixn_store::Store::append) writes every batch it is given (all the requests that
//!   arrived while the previous commit ran) in one transaction: the last state of each
//!   interaction is upserted with one statement, the removed ones deleted with another. The
//!   server acknowledges only after the commit returned.
//! - Versioned migrations (`migrations/NNNN_*.sql`, recorded in `ixn_schema_version`), applied at
//!   start under an advisory lock; a database newer than this program is refused.
//! - Fencing: opening the store takes the next epoch in `ixn_leader`; every write transaction
//!   first checks that the epoch is still its own, so a server that another one has replaced can
//!   never commit again (it gets [`ixn_store::Error::Fenced`] and stops acknowledging).
//!
//! The store runs on the server's store thread, so it uses the blocking client (`postgres`,
//! tokio-postgres inside) over one connection: commits are sequential by design, and the next
//! batch accumulates while one commits.

#![warn(missing_docs)]

mod connect;
mod error;
mod leadership;
mod schema;
mod store;

pub use connect::{is_url, redact};
pub use error::Error;
pub use leadership::{Inspected, Leader, Leadership, inspect};
pub use schema::SCHEMA_VERSION;
pub use store::{Opened, PgStore, read_all};
