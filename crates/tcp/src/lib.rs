//! The TCP side of the ixn workbin server: accepts connections, runs each as a framed
//! transport, and drives the sans-IO engine (`ixn-core`) from one owner task. It knows nothing
//! of the web API: an in-process client (the gateway) connects through a [`LocalLink`], which
//! carries codec types only.
//!
//! ```text
//!  socket --> Handler reader (decode) --\                                  /--> outbox --> Handler writer (encode) --> socket
//!  socket --> Handler reader (decode) ----> mpsc --> EngineTask (Engine) ---+--> outbox --> Handler writer (encode) --> socket
//!  LocalLink (in-process) ---------------/      (bounded)                    \--> outbox --> LocalLink deliveries
//! ```
//!
//! - [`Listener`] accepts (a place per connection, `max_connections`, a refusal past it) and
//!   runs a `Handler` per connection; [`EngineTask`] owns the engine; [`EngineHandle`] is how
//!   connections and local links reach it.
//! - Every connection has a bounded outbound queue (`outbound_queue_messages` and
//!   `outbound_queue_bytes`); a client that does not read and passes it is disconnected and
//!   logged, without delaying anyone else (the engine task never waits on a socket).
//! - The engine task queues every notification of a request on its other recipients before it
//!   queues the reply, so the ordering rule of the protocol holds across connections.
//! - Limits: `registration_timeout_secs` (until registration), `max_frame_len` and
//!   `max_kvlist_depth` (a malformed frame gets an EventError and a close),
//!   `max_partial_frame_bytes` and `frame_timeout_secs` (incomplete frames).
//! - Pacing: a connection whose replies pile up has its requests deferred and is not read; a
//!   local link is never cut off (the engine task waits for it instead).
//! - With [`Durability`], no output leaves before the changes that precede it are synced (group
//!   commit on the store thread).

#![warn(missing_docs)]

mod connection;
mod durability;
mod engine_task;
mod handle;
mod input;
mod lease;
mod listener;
mod local;
mod metrics;
mod outbox;
mod partial;
mod security;
mod standalone;

pub use connection::codec;
pub use durability::{
    DEFAULT_SYNC_POLL, Durability, MAX_SYNC_POLL, SyncMode, sync_poll_for_this_machine,
};
pub use engine_task::{EngineTask, Fault};
pub use handle::{EngineHandle, Flusher, Roles};
pub use input::Inputs;
pub use ixn_codec::link::{Delivery, Link as LocalLink};
pub use lease::Lease;
pub use listener::{LISTEN_BACKLOG, Listener, bind};
pub use local::LinkEnded;
pub use metrics::Metrics;
pub use security::Security;
pub use standalone::{Started, start};
