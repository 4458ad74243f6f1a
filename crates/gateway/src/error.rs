//! The gateway's error type.

use std::net::SocketAddr;

/// The gateway's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP listening socket could not be set up.
    #[error(
        "cannot listen for HTTP on {addr}: {source} (is another server using it? choose another address with --http ADDR, or --http off)"
    )]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration cannot run the web API.
    #[error("the web API cannot start: {0}")]
    Config(String),
    /// The engine refused or never answered the gateway's registration.
    #[error("the web API could not register with the engine: {0}")]
    Register(Refused),
    /// Another I/O failure.
    #[error("HTTP server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine side of the link ended while the web API was serving: it cannot answer
    /// anything any more.
    #[error("the engine closed the web API's connection")]
    LinkLost,
}

/// Why the engine did not take the web API's registration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The request got no reply.
    #[error(transparent)]
    Link(#[from] crate::engine_link::LinkError),
    /// The engine answered with an error (its description).
    #[error("{0}")]
    Engine(String),
}
