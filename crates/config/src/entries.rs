//! The entries of a validated configuration and their indexes: what a [`Config`](crate::Config)
//! holds and how it is addressed (`config[idx]`).

use crate::schema::OwnerKind;

macro_rules! index_types {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// Only a [`Config`](crate::Config) makes one, and only for an entry it holds: indexing
        /// the configuration with it (`config[idx]`) cannot fail (an index of one configuration
        /// must not be used with another).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u32);

        impl $name {
            /// The position in its list (file order).
            pub fn get(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

index_types! {
    /// An agent of the configuration (`config[idx]` is its [`Agent`]).
    AgentIdx;
    /// A place of the configuration (`config[idx]` is its [`Place`]).
    PlaceIdx;
    /// An agent group (`config[idx]` is its name).
    AgentGroupIdx;
    /// A place group (`config[idx]` is its name).
    PlaceGroupIdx;
    /// A workbin type (`config[idx]` is its [`WorkbinType`]).
    WorkbinTypeIdx;
    /// A queue (`config[idx]` is its [`Queue`]).
    QueueIdx;
}

/// A list index as the u32 the index types hold. Configurations are far smaller than 2^32
/// entries; a larger one saturates (and then fails on duplicate ids) rather than wrapping.
pub(crate) fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A validated agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Employee id (AgentId).
    pub id: String,
    /// 32 lowercase hex digits.
    pub user_id: String,
    /// Tenant id.
    pub tenant: i32,
    /// Groups the agent belongs to.
    pub groups: Vec<AgentGroupIdx>,
    /// Groups the agent supervises.
    pub supervises: Vec<AgentGroupIdx>,
    /// argon2 PHC string, if the agent may sign in over HTTP.
    pub password_hash: Option<String>,
}

/// A validated place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// PlaceId.
    pub id: String,
    /// Place groups containing it.
    pub groups: Vec<PlaceGroupIdx>,
}

/// A validated workbin type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkbinType {
    /// WorkbinTypeId.
    pub name: String,
    /// Owner kind of its instances.
    pub owner: OwnerKind,
    /// Tenant id.
    pub tenant: i32,
    /// UUID for the web API (configured, or derived from the name).
    pub uuid: String,
}

/// What an application must prove when it registers (its first RequestRegisterClient on a
/// connection; a proxy's logical clients are covered by the proxy's own registration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppAuth {
    /// argon2 PHC string the `Password` attribute must match.
    pub password_hash: Option<String>,
    /// A verified TLS client certificate must name the application.
    pub client_certificate: bool,
}

impl AppAuth {
    /// True when the application must prove something.
    pub fn required(&self) -> bool {
        self.password_hash.is_some() || self.client_certificate
    }
}

/// A validated queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    /// Queue name.
    pub name: String,
    /// Tenant id.
    pub tenant: i32,
}
