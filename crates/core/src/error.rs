//! The engine's one error type, and its one mapping to EventError codes.

use ixn_codec::{ErrorCode, MessageId};

/// Why a request failed. Each variant is one EventError code of docs/protocol.md, section 8 (see
/// [`Error::code`], the only place the mapping is written); the `Display` text is the
/// `ErrorDescription` and names the attribute, agent, workbin or limit concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request before registration, or on a proxy connection without a valid ProxyClientId.
    #[error("{0}")]
    ClientNotRegistered(&'static str),
    /// ClientName/ClientType not configured.
    #[error("application {name:?} of type {kind} is not in the configuration")]
    InvalidClient {
        /// ClientName.
        name: String,
        /// ClientType, as named on the wire.
        kind: String,
    },
    /// The application must authenticate and did not (R15).
    #[error("application {name:?} must authenticate: {reason}; closing the connection")]
    AuthenticationFailed {
        /// ClientName.
        name: String,
        /// What was missing or wrong.
        reason: &'static str,
    },
    /// A required attribute is absent.
    #[error("{message}: missing required attribute {attr}")]
    MissingAttribute {
        /// The request.
        message: MessageId,
        /// The attribute, with its parent for nested keys (`Workbin.WorkbinTypeId`).
        attr: String,
    },
    /// An attribute has the wrong type or value.
    #[error("{message}: attribute {attr} is invalid: {reason}")]
    InvalidAttribute {
        /// The request.
        message: MessageId,
        /// The attribute.
        attr: String,
        /// What is wrong.
        reason: String,
    },
    /// The request needs the client's agent to be logged in.
    #[error("{0}: no agent is logged in on this client (send RequestAgentLogin first)")]
    AgentNotLoggedIn(MessageId),
    /// No such agent.
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    /// No such place.
    #[error("unknown place {0:?}")]
    UnknownPlace(String),
    /// No such tenant.
    #[error("unknown tenant {0}")]
    UnknownTenant(i32),
    /// No such workbin type, or the owner key does not fit its owner kind.
    #[error("{0}")]
    UnknownWorkbin(String),
    /// The owner named in Workbin does not exist.
    #[error("workbin {workbin:?}: unknown owner {owner:?}")]
    UnknownOwner {
        /// WorkbinTypeId.
        workbin: String,
        /// The owner id or name given.
        owner: String,
    },
    /// Cancel without a subscription.
    #[error("this client holds no subscription to workbin {0}")]
    NotSubscribed(String),
    /// No such interaction.
    #[error("unknown interaction {0:?}")]
    UnknownInteraction(String),
    /// Access denied by the rules of docs/behaviour.md, "Access".
    #[error("{0}")]
    Forbidden(String),
    /// The request does not fit the current state.
    #[error("{0}")]
    InvalidState(String),
    /// The agent is logged in on another client.
    #[error("agent {0:?} is already logged in on another client")]
    AgentLoggedInElsewhere(String),
    /// A supplied InteractionId exists.
    #[error("interaction {0:?} already exists")]
    DuplicateInteraction(String),
    /// A configured limit would be passed.
    #[error("limit {limit} ({value}) reached: {what}")]
    LimitExceeded {
        /// The limit's name in `[limits]`.
        limit: &'static str,
        /// Its configured value.
        value: usize,
        /// What could not be done.
        what: String,
    },
    /// A well-framed message that is not a request this server handles.
    #[error("{0} is not a request this server handles")]
    UnsupportedRequest(MessageId),
    /// This server is a standby: another server (or none, for a moment) is active on the
    /// shared store.
    #[error("{}", match active {
        Some(a) => format!("this server is a standby: the active server is at {a}; connect there"),
        None => "this server is a standby and no server is active at the moment (one takes over within seconds); try again shortly".to_owned(),
    })]
    NotActive {
        /// The active server's advertised address, when one is active.
        active: Option<String>,
    },
    /// No snapshot with this id is open for this client.
    #[error(
        "no snapshot {0:?} is open for this client (never taken, released, or ended after its idle time or with its client)"
    )]
    UnknownSnapshot(String),
    /// Another client holds a lock on the interaction.
    #[error(
        "interaction {id:?} is locked by {holder}: only that client may pull, move, change, place or stop it until it unlocks it or ends"
    )]
    InteractionLocked {
        /// The interaction.
        id: String,
        /// The holding client (its application name and ProxyClientId).
        holder: String,
    },
}

impl Error {
    /// The EventError code for this error: the one mapping from engine errors to the wire.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ClientNotRegistered(_) => ErrorCode::ClientNotRegistered,
            Self::InvalidClient { .. } => ErrorCode::InvalidClient,
            Self::AuthenticationFailed { .. } => ErrorCode::AuthenticationFailed,
            Self::MissingAttribute { .. } => ErrorCode::MissingAttribute,
            Self::InvalidAttribute { .. } => ErrorCode::InvalidAttribute,
            Self::AgentNotLoggedIn(_) => ErrorCode::AgentNotLoggedIn,
            Self::UnknownAgent(_) => ErrorCode::UnknownAgent,
            Self::UnknownPlace(_) => ErrorCode::UnknownPlace,
            Self::UnknownTenant(_) => ErrorCode::UnknownTenant,
            Self::UnknownWorkbin(_) => ErrorCode::UnknownWorkbin,
            Self::UnknownOwner { .. } => ErrorCode::UnknownOwner,
            Self::NotSubscribed(_) => ErrorCode::NotSubscribed,
            Self::UnknownInteraction(_) => ErrorCode::UnknownInteraction,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::InvalidState(_) => ErrorCode::InvalidState,
            Self::AgentLoggedInElsewhere(_) => ErrorCode::AgentLoggedInElsewhere,
            Self::DuplicateInteraction(_) => ErrorCode::DuplicateInteraction,
            Self::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            Self::UnsupportedRequest(_) => ErrorCode::UnsupportedRequest,
            Self::NotActive { .. } => ErrorCode::NotActive,
            Self::UnknownSnapshot(_) => ErrorCode::UnknownSnapshot,
            Self::InteractionLocked { .. } => ErrorCode::InteractionLocked,
        }
    }

    pub(crate) fn missing(message: MessageId, attr: &str) -> Self {
        Self::MissingAttribute {
            message,
            attr: attr.to_owned(),
        }
    }

    pub(crate) fn invalid(message: MessageId, attr: &str, reason: impl Into<String>) -> Self {
        Self::InvalidAttribute {
            message,
            attr: attr.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A typed view that cannot be read from a request is a missing or invalid attribute.
impl From<ixn_codec::Error> for Error {
    fn from(e: ixn_codec::Error) -> Self {
        match e {
            ixn_codec::Error::MissingAttribute { message, attr } => Self::missing(message, attr),
            ixn_codec::Error::InvalidAttribute {
                message,
                attr,
                reason,
            } => Self::invalid(message, attr, reason),
            // Views are only read after the id was matched; anything else is a shape problem of
            // the message as a whole.
            other => Self::InvalidAttribute {
                message: MessageId(0),
                attr: "message".to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_but_internal_has_a_variant() {
        // Internal (99) is reserved for the server's own faults; the engine never produces it.
        let samples = [
            Error::ClientNotRegistered("x"),
            Error::InvalidClient {
                name: "n".into(),
                kind: "k".into(),
            },
            Error::missing(MessageId::PING, "A"),
            Error::invalid(MessageId::PING, "A", "r"),
            Error::AgentNotLoggedIn(MessageId::PING),
            Error::UnknownAgent("a".into()),
            Error::UnknownPlace("p".into()),
            Error::UnknownTenant(1),
            Error::UnknownWorkbin("w".into()),
            Error::UnknownOwner {
                workbin: "w".into(),
                owner: "o".into(),
            },
            Error::NotSubscribed("w".into()),
            Error::UnknownInteraction("i".into()),
            Error::Forbidden("f".into()),
            Error::InvalidState("s".into()),
            Error::AgentLoggedInElsewhere("a".into()),
            Error::DuplicateInteraction("i".into()),
            Error::LimitExceeded {
                limit: "l",
                value: 1,
                what: "w".into(),
            },
            Error::UnsupportedRequest(MessageId(1)),
            Error::AuthenticationFailed {
                name: "n".into(),
                reason: "r",
            },
        ];
        let mut codes: Vec<i32> = samples.iter().map(|e| e.code().to_int()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, (1..=19).collect::<Vec<_>>());
    }
}
