//! What the engine asks its driver to do.

use ixn_codec::{Message, attr};
use std::sync::Arc;

/// An opaque connection identity chosen by the driver (the server numbers its sockets). The
/// engine never interprets it beyond equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// One thing to do, in order. Outputs of one input must be carried out in the order given.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub enum Output {
    /// Send `msg` on `conn`. When `proxy_client_id` is set, the message is for that logical
    /// client of a proxy connection and must carry it as its `ProxyClientId` attribute (appended
    /// when sending; see [`Output::message`]). This lets one notification be built once, held in
    /// an [`Arc`], and shared by all its recipients.
    Send {
        /// The connection.
        conn: ConnId,
        /// The logical client on a proxy connection, if any.
        proxy_client_id: Option<crate::ClientId>,
        /// The message (without the recipient's ProxyClientId).
        msg: Arc<Message>,
    },
    /// Close `conn` after sending everything queued before this output.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why (for logs).
        reason: CloseReason,
    },
}

/// Why the engine asks for a connection to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The first request was not RequestRegisterClient (R3).
    NotRegistered,
    /// The application is not configured (R2).
    InvalidClient,
    /// The application did not authenticate (R15).
    AuthenticationFailed,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotRegistered => "first request was not RequestRegisterClient",
            Self::InvalidClient => "application not configured",
            Self::AuthenticationFailed => "application did not authenticate",
        })
    }
}

impl Output {
    /// The connection this output concerns.
    pub fn conn(&self) -> ConnId {
        match self {
            Self::Send { conn, .. } | Self::Close { conn, .. } => *conn,
        }
    }

    /// The message exactly as the recipient must receive it (with its ProxyClientId), or
    /// `None` for [`Output::Close`]. Copies the message; drivers that share encodings use the
    /// fields instead.
    pub fn message(&self) -> Option<Message> {
        match self {
            Self::Send {
                proxy_client_id,
                msg,
                ..
            } => {
                let mut m = Message::clone(msg);
                if let Some(id) = proxy_client_id {
                    m.attrs.push(attr::PROXY_CLIENT_ID, id.get());
                }
                Some(m)
            }
            Self::Close { .. } => None,
        }
    }
}
