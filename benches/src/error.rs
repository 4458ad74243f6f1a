//! What can stop a run.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot connect to {addr}: {source} (is the server running there?)")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connection to {addr} failed: {source}")]
    Lost {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server at {0} closed the connection")]
    Closed(SocketAddr),
    #[error(
        "{request} was refused: {description} (is the server running the configuration `ixn-load config` prints?)"
    )]
    Refused {
        request: String,
        description: String,
    },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error(
        "cannot start {bin}: {source} (give the path of a built ixn-server, e.g. target/release/ixn-server)"
    )]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}
