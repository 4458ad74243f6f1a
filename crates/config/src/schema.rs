//! The configuration file's schema: the same keys in TOML and JSON.

use crate::http::Http;
use crate::limits::Limits;
use serde::{Deserialize, Serialize};

/// A configuration as written in the file (docs/configuration.md). Every list is an array of
/// tables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[[tenant]]`
    #[serde(default)]
    pub tenant: Vec<TenantEntry>,
    /// `[[application]]`: the only ClientName/ClientType pairs that may register.
    #[serde(default)]
    pub application: Vec<ApplicationEntry>,
    /// `[[agent]]`
    #[serde(default)]
    pub agent: Vec<AgentEntry>,
    /// `[[place]]`
    #[serde(default)]
    pub place: Vec<PlaceEntry>,
    /// `[[agent_group]]`
    #[serde(default)]
    pub agent_group: Vec<GroupEntry>,
    /// `[[place_group]]`
    #[serde(default)]
    pub place_group: Vec<GroupEntry>,
    /// `[[workbin]]`: workbin types.
    #[serde(default)]
    pub workbin: Vec<WorkbinEntry>,
    /// `[[queue]]`
    #[serde(default)]
    pub queue: Vec<QueueEntry>,
    /// `[limits]`
    #[serde(default)]
    pub limits: Limits,
    /// `[http]`: the web API.
    #[serde(default)]
    pub http: Http,
    /// `[tls]`: TLS on both listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// `[store]`: where interactions are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSection>,
}

/// `[store]`: where interactions are kept. Without it (or with `kind = "journal"`), in the
/// journal of the data directory; with `kind = "postgres"`, in a PostgreSQL database that
/// several servers may share (one active, the others standing by).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `kind`: `"journal"` (the default) or `"postgres"`.
    #[serde(default)]
    pub kind: StoreKind,
    /// `url`: the database, a libpq URL (`postgres://user:password@host:5432/db`) or
    /// key-value string. Required with `kind = "postgres"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `lease_ms`: how long the active server may go without renewing its lease before a
    /// standby takes over (default 2000; at least 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// `advertise`: the address (HOST:PORT) that a standby gives clients for this server while
    /// it is active. Default: the native listener's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
}

/// `[store] kind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The journal in the data directory.
    #[default]
    Journal,
    /// A PostgreSQL database.
    Postgres,
}

/// `[tls]`: the server's certificate for both listeners (native and HTTP), and the authority
/// that client certificates must chain to. Relative paths are relative to the configuration
/// file's directory. The files are read again on SIGHUP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// `cert`: the certificate chain (PEM), leaf first.
    pub cert: std::path::PathBuf,
    /// `key`: the private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
    /// `client_ca`: CA certificates (PEM) that client certificates must chain to. When set,
    /// clients may present a certificate (applications with `client_certificate = true` must);
    /// when absent, no client certificate is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<std::path::PathBuf>,
}

impl Tls {
    /// Makes relative paths relative to `dir` (the configuration file's directory).
    pub fn resolve_in(&mut self, dir: &std::path::Path) {
        for p in [&mut self.cert, &mut self.key]
            .into_iter()
            .chain(self.client_ca.as_mut())
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    /// `id`: the TenantId of requests.
    pub id: i32,
    /// `name`
    pub name: String,
}

/// A client application allowed to register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationEntry {
    /// `name`: the ClientName.
    pub name: String,
    /// `type`: the ClientType.
    #[serde(rename = "type")]
    pub kind: AppType,
    /// `password_hash`: an argon2 PHC string (`ixn hash-password`). When set, the application's
    /// RequestRegisterClient must carry the password in its `Password` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// `client_certificate`: when true, the application must connect over TLS with a client
    /// certificate, trusted by `[tls] client_ca`, whose subject common name or a DNS
    /// subject-alternative name is the application's name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_certificate: bool,
}

/// An application's ClientType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppType {
    /// An agent desktop.
    AgentApplication,
    /// A media server.
    MediaServer,
    /// A routing engine.
    RoutingEngine,
    /// A proxy multiplexing logical clients.
    Proxy,
}

/// An agent (staff member).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// `id`: the employee id, the AgentId of requests.
    pub id: String,
    /// `user_id`: 32 hex digits, used by the web API.
    pub user_id: String,
    /// `tenant`
    pub tenant: i32,
    /// `groups`: agent group names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `supervises`: agent group names this agent supervises.
    #[serde(default)]
    pub supervises: Vec<String>,
    /// `password_hash`: an argon2 PHC string; agents without one cannot sign in over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// A place (desk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceEntry {
    /// `id`: the PlaceId of requests.
    pub id: String,
    /// `groups`: place group names.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An agent group or a place group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// `name`
    pub name: String,
}

/// A workbin type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkbinEntry {
    /// `name`: the WorkbinTypeId.
    pub name: String,
    /// `owner`: what kind of owner each instance has.
    pub owner: OwnerKind,
    /// `tenant`
    pub tenant: i32,
    /// `id`: the UUID the web API uses; derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The owner kind of a workbin type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OwnerKind {
    /// One instance per agent (`WorkbinAgentId`).
    Agent,
    /// One instance per place (`WorkbinPlaceId`).
    Place,
    /// One instance per agent group (`WorkbinGroupId`).
    AgentGroup,
    /// One instance per place group (`WorkbinPlaceGroupId`).
    PlaceGroup,
}

impl OwnerKind {
    /// The name used in the configuration and in `EventWorkbinTypesInfo`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Agent => "Agent",
            Self::Place => "Place",
            Self::AgentGroup => "AgentGroup",
            Self::PlaceGroup => "PlaceGroup",
        }
    }
}

/// A queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueEntry {
    /// `name`
    pub name: String,
    /// `tenant`
    pub tenant: i32,
}
