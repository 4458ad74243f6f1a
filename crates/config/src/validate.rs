//! Validation: from a [`ConfigFile`] to an indexed [`Config`], or a [`ConfigError`] naming the
//! offending entry.

use crate::error::ConfigError;
use crate::limits::Limits;
use crate::schema::{AppType, ConfigFile, OwnerKind};
use foldhash::{HashMap, HashMapExt};
use std::path::Path;

macro_rules! arena {
    ($($(#[$doc:meta])* $name:ident => $field:ident: $item:ty, $iter:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// Only a [`Config`] makes one, and only for an entry it holds: indexing the
        /// configuration with it (`config[idx]`) cannot fail (an index of one configuration
        /// must not be used with another).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// The position in its list (file order).
            pub fn get(self) -> usize {
                self.0 as usize
            }
        }

        impl std::ops::Index<$name> for Config {
            type Output = $item;
            fn index(&self, idx: $name) -> &$item {
                // Every index was made by this configuration for an entry it holds.
                #[allow(clippy::indexing_slicing)]
                std::borrow::Borrow::<$item>::borrow(&self.$field[idx.get()])
            }
        }

        impl Config {
            /// Every entry with its index, in file order.
            pub fn $iter(&self) -> impl ExactSizeIterator<Item = ($name, &$item)> + Clone + '_ {
                self.$field.iter().enumerate().map(|(i, e)| ($name(index(i)), std::borrow::Borrow::<$item>::borrow(e)))
            }
        }
    )*};
}

arena! {
    /// An agent of the configuration (`config[idx]` is its [`Agent`]).
    AgentIdx => agents: Agent, agents;
    /// A place of the configuration (`config[idx]` is its [`Place`]).
    PlaceIdx => places: Place, places;
    /// An agent group (`config[idx]` is its name).
    AgentGroupIdx => agent_groups: str, agent_groups;
    /// A place group (`config[idx]` is its name).
    PlaceGroupIdx => place_groups: str, place_groups;
    /// A workbin type (`config[idx]` is its [`WorkbinType`]).
    WorkbinTypeIdx => workbins: WorkbinType, workbins;
    /// A queue (`config[idx]` is its [`Queue`]).
    QueueIdx => queues: Queue, queues;
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

/// A validated configuration with indexes by id and name. Built only by validation, so every
/// reference in it resolves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was built from.
    pub file: ConfigFile,
    /// Tenant ids with their names.
    pub tenants: HashMap<i32, String>,
    /// Allowed (ClientName, ClientType) pairs, with what each must prove to register.
    pub applications: HashMap<(String, AppType), AppAuth>,
    agents: Vec<Agent>,
    places: Vec<Place>,
    agent_groups: Vec<Box<str>>,
    place_groups: Vec<Box<str>>,
    workbins: Vec<WorkbinType>,
    queues: Vec<Queue>,
    /// Limits.
    pub limits: Limits,
    /// The web API's settings (`[http]`).
    pub http: crate::http::Http,
    /// `[http] listen`, parsed.
    pub http_listen: Option<std::net::SocketAddr>,
    /// `[tls]`, its paths relative to the configuration file's directory made whole (by
    /// [`Config::load`]).
    pub tls: Option<crate::schema::Tls>,
    /// `[store]`, as written.
    pub store: Option<crate::schema::StoreSection>,
    agent_by_id: HashMap<String, AgentIdx>,
    agent_by_user_id: HashMap<String, AgentIdx>,
    place_by_id: HashMap<String, PlaceIdx>,
    agent_group_by_name: HashMap<String, AgentGroupIdx>,
    place_group_by_name: HashMap<String, PlaceGroupIdx>,
    workbin_by_name: HashMap<String, WorkbinTypeIdx>,
    workbin_by_uuid: HashMap<String, WorkbinTypeIdx>,
    queue_by_name: HashMap<String, QueueIdx>,
}

/// Namespace for UUIDs derived from workbin names (a fixed, project-specific UUID).
const WORKBIN_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6978_6e2d_776f_726b_6269_6e2d_7479_7065);

impl Config {
    /// Reads a configuration file: JSON if the name ends in `.json`, TOML otherwise.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: origin.clone(),
            source,
        })?;
        let mut cfg = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json_str(&text, &origin)
        } else {
            Self::from_toml_str(&text, &origin)
        }?;
        if let (Some(tls), Some(dir)) = (&mut cfg.tls, path.parent()) {
            tls.resolve_in(dir);
        }
        Ok(cfg)
    }

    /// Reads TOML text; `origin` names it in errors (a file name).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Self::validate_with(file, origin, &|table, index| toml_line(text, table, index))
    }

    /// Reads JSON text with the same schema.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::validate_with(file, origin, &|_, _| None)
    }

    /// Reads an already parsed JSON value with the same schema.
    pub fn from_json_value(value: serde_json::Value, origin: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = serde_json::from_value(value).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::validate_with(file, origin, &|_, _| None)
    }

    /// Validates a configuration built in code.
    pub fn validate(file: ConfigFile) -> Result<Self, ConfigError> {
        Self::validate_with(file, "<configuration>", &|_, _| None)
    }

    /// The agent with this employee id.
    pub fn agent(&self, id: &str) -> Option<AgentIdx> {
        self.agent_by_id.get(id).copied()
    }

    /// The agent with this web API user id.
    pub fn agent_by_user_id(&self, user_id: &str) -> Option<AgentIdx> {
        self.agent_by_user_id
            .get(&user_id.to_ascii_lowercase())
            .copied()
    }

    /// The place with this id.
    pub fn place(&self, id: &str) -> Option<PlaceIdx> {
        self.place_by_id.get(id).copied()
    }

    /// The agent group with this name.
    pub fn agent_group(&self, name: &str) -> Option<AgentGroupIdx> {
        self.agent_group_by_name.get(name).copied()
    }

    /// The place group with this name.
    pub fn place_group(&self, name: &str) -> Option<PlaceGroupIdx> {
        self.place_group_by_name.get(name).copied()
    }

    /// The workbin type with this name (WorkbinTypeId).
    pub fn workbin(&self, name: &str) -> Option<WorkbinTypeIdx> {
        self.workbin_by_name.get(name).copied()
    }

    /// The workbin type with this web API UUID.
    pub fn workbin_by_uuid(&self, uuid: &str) -> Option<WorkbinTypeIdx> {
        self.workbin_by_uuid
            .get(&uuid.to_ascii_lowercase())
            .copied()
    }

    /// The queue with this name.
    pub fn queue(&self, name: &str) -> Option<QueueIdx> {
        self.queue_by_name.get(name).copied()
    }

    /// True when (name, type) may register.
    pub fn application_allowed(&self, name: &str, kind: AppType) -> bool {
        self.application(name, kind).is_some()
    }

    /// What (name, type) must prove to register, or `None` when it may not register at all.
    pub fn application(&self, name: &str, kind: AppType) -> Option<&AppAuth> {
        self.applications.get(&(name.to_owned(), kind))
    }

    /// True when some application must authenticate (a password or a client certificate).
    pub fn any_authentication(&self) -> bool {
        self.applications.values().any(AppAuth::required)
    }

    fn validate_with(
        file: ConfigFile,
        origin: &str,
        line_of: &dyn Fn(&str, usize) -> Option<usize>,
    ) -> Result<Self, ConfigError> {
        let fail =
            |table: &str, index: usize, entry: String, problem: String| ConfigError::Invalid {
                origin: origin.to_owned(),
                line: line_of(table, index),
                entry,
                problem,
            };

        for (name, value, min) in file.limits.checks() {
            if value < min {
                return Err(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    line: line_of("limits", usize::MAX),
                    entry: format!("limits.{name}"),
                    problem: format!(
                        "{value} is too small: use at least {min} (or remove it for the default)"
                    ),
                });
            }
        }

        let envelope = crate::limits::INTERACTION_ENVELOPE as u64;
        let (frame, ix) = (
            file.limits.max_frame_len as u64,
            file.limits.max_interaction_bytes as u64,
        );
        if ix + envelope > frame {
            return Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                line: line_of("limits", usize::MAX),
                entry: "limits.max_interaction_bytes".to_owned(),
                problem: format!(
                    "{ix} does not fit in a frame of max_frame_len {frame} with the {envelope} bytes a message needs around it: use at most {} (or raise max_frame_len)",
                    frame.saturating_sub(envelope)
                ),
            });
        }

        if file.limits.max_interaction_bytes > crate::limits::MAX_INTERACTION_BYTES {
            return Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                line: line_of("limits", usize::MAX),
                entry: "limits.max_interaction_bytes".to_owned(),
                problem: format!(
                    "{ix} is too large: use at most {} (32 MiB; one request's changes must fit in a journal record)",
                    crate::limits::MAX_INTERACTION_BYTES
                ),
            });
        }

        let http_fail = |key: &str, problem: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            line: line_of("http", usize::MAX),
            entry: format!("http.{key}"),
            problem,
        };
        for (name, value, min) in file.http.checks() {
            if value < min {
                return Err(http_fail(
                    name,
                    format!(
                        "{value} is too small: use at least {min} (or remove it for the default)"
                    ),
                ));
            }
        }
        for o in &file.http.allowed_origins {
            let ok = (o.starts_with("http://") || o.starts_with("https://"))
                && !o.trim_end_matches('/').ends_with(':')
                && o.split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return Err(http_fail(
                    "allowed_origins",
                    format!(
                        "{o:?} is not an origin: write scheme://host[:port], such as \"https://desk.example.com\" (no path)"
                    ),
                ));
            }
        }
        if let Some(store) = &file.store {
            let store_fail = |key: &str, problem: String| ConfigError::Invalid {
                origin: origin.to_owned(),
                line: line_of("store", usize::MAX),
                entry: format!("store.{key}"),
                problem,
            };
            if store.kind == crate::schema::StoreKind::Postgres
                && store.url.as_deref().is_none_or(|u| u.trim().is_empty())
            {
                return Err(store_fail(
                    "url",
                    "kind = \"postgres\" needs the database's url, such as \"postgres://ixn@db.example.com/ixn\"".to_owned(),
                ));
            }
            if let Some(ms) = store.lease_ms
                && ms < 200
            {
                return Err(store_fail(
                    "lease_ms",
                    format!(
                        "{ms} is too short: use at least 200 (or remove it for the default, 2000)"
                    ),
                ));
            }
        }
        let http_listen = match &file.http.listen {
            None => None,
            Some(text) => Some(text.parse::<std::net::SocketAddr>().map_err(|e| {
                http_fail(
                    "listen",
                    format!("{text:?} is not an address such as \"127.0.0.1:8080\": {e}"),
                )
            })?),
        };
        let path = &file.http.notifications_path;
        if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || path.contains("//") {
            return Err(http_fail(
                "notifications_path",
                format!(
                    "{path:?} must start with '/', name at least one segment and not end with '/' (for example \"/api/v2/notifications\")"
                ),
            ));
        }

        let mut tenants = HashMap::new();
        for (i, t) in file.tenant.iter().enumerate() {
            if tenants.insert(t.id, t.name.clone()).is_some() {
                return Err(fail(
                    "tenant",
                    i,
                    format!("tenant {}", t.id),
                    "duplicate tenant id".into(),
                ));
            }
        }
        let tenant_exists = |table: &str, i: usize, entry: &str, tenant: i32| {
            if tenants.contains_key(&tenant) {
                Ok(())
            } else {
                Err(fail(
                    table,
                    i,
                    entry.to_owned(),
                    format!("unknown tenant {tenant} (known: {})", known(tenants.keys())),
                ))
            }
        };

        let mut applications = HashMap::new();
        for (i, a) in file.application.iter().enumerate() {
            non_empty("application", i, "name", &a.name, &fail)?;
            if let Some(hash) = &a.password_hash {
                check_password_hash(hash).map_err(|problem| {
                    fail(
                        "application",
                        i,
                        format!("application {:?}", a.name),
                        problem,
                    )
                })?;
            }
            let auth = AppAuth {
                password_hash: a.password_hash.clone(),
                client_certificate: a.client_certificate,
            };
            if applications
                .insert((a.name.clone(), a.kind), auth)
                .is_some()
            {
                return Err(fail(
                    "application",
                    i,
                    format!("application {:?}", a.name),
                    format!(
                        "duplicate application (name {:?}, type {:?})",
                        a.name, a.kind
                    ),
                ));
            }
        }

        let agent_group_by_name = unique_names(&file.agent_group, "agent_group", &fail)?;
        let place_group_by_name = unique_names(&file.place_group, "place_group", &fail)?;
        for (i, g) in file.place_group.iter().enumerate() {
            if agent_group_by_name.contains_key(&g.name) {
                return Err(fail(
                    "place_group",
                    i,
                    format!("place_group {:?}", g.name),
                    "an agent_group has the same name; group names must be unique".into(),
                ));
            }
        }
        let agent_group_by_name: HashMap<String, AgentGroupIdx> = agent_group_by_name
            .into_iter()
            .map(|(k, v)| (k, AgentGroupIdx(v)))
            .collect();
        let place_group_by_name: HashMap<String, PlaceGroupIdx> = place_group_by_name
            .into_iter()
            .map(|(k, v)| (k, PlaceGroupIdx(v)))
            .collect();

        let mut agents = Vec::with_capacity(file.agent.len());
        let mut agent_by_id = HashMap::new();
        let mut agent_by_user_id = HashMap::new();
        for (i, a) in file.agent.iter().enumerate() {
            let entry = format!("agent {:?}", a.id);
            non_empty("agent", i, "id", &a.id, &fail)?;
            if !(a.user_id.len() == 32 && a.user_id.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(fail(
                    "agent",
                    i,
                    entry,
                    format!("user_id {:?} must be 32 hex digits", a.user_id),
                ));
            }
            tenant_exists("agent", i, &entry, a.tenant)?;
            let resolve = |names: &[String], what: &str| {
                names
                    .iter()
                    .map(|n| {
                        agent_group_by_name.get(n).copied().ok_or_else(|| {
                            fail(
                                "agent",
                                i,
                                entry.clone(),
                                format!(
                                    "{what} names unknown agent_group {n:?} (known: {})",
                                    known(agent_group_by_name.keys())
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let groups = resolve(&a.groups, "groups")?;
            let supervises = resolve(&a.supervises, "supervises")?;
            if let Some(hash) = &a.password_hash {
                check_password_hash(hash)
                    .map_err(|problem| fail("agent", i, entry.clone(), problem))?;
            }
            let idx = AgentIdx(index(i));
            if agent_by_id.insert(a.id.clone(), idx).is_some() {
                return Err(fail("agent", i, entry, "duplicate agent id".into()));
            }
            let user_id = a.user_id.to_ascii_lowercase();
            if agent_by_user_id.insert(user_id.clone(), idx).is_some() {
                return Err(fail(
                    "agent",
                    i,
                    entry,
                    format!("duplicate user_id {:?}", a.user_id),
                ));
            }
            agents.push(Agent {
                id: a.id.clone(),
                user_id,
                tenant: a.tenant,
                groups,
                supervises,
                password_hash: a.password_hash.clone(),
            });
        }

        let mut places = Vec::with_capacity(file.place.len());
        let mut place_by_id = HashMap::new();
        for (i, p) in file.place.iter().enumerate() {
            let entry = format!("place {:?}", p.id);
            non_empty("place", i, "id", &p.id, &fail)?;
            let groups = p
                .groups
                .iter()
                .map(|n| {
                    place_group_by_name.get(n).copied().ok_or_else(|| {
                        fail(
                            "place",
                            i,
                            entry.clone(),
                            format!(
                                "groups names unknown place_group {n:?} (known: {})",
                                known(place_group_by_name.keys())
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if place_by_id
                .insert(p.id.clone(), PlaceIdx(index(i)))
                .is_some()
            {
                return Err(fail("place", i, entry, "duplicate place id".into()));
            }
            places.push(Place {
                id: p.id.clone(),
                groups,
            });
        }

        let mut workbins = Vec::with_capacity(file.workbin.len());
        let mut workbin_by_name = HashMap::new();
        let mut workbin_by_uuid = HashMap::new();
        for (i, w) in file.workbin.iter().enumerate() {
            let entry = format!("workbin {:?}", w.name);
            non_empty("workbin", i, "name", &w.name, &fail)?;
            tenant_exists("workbin", i, &entry, w.tenant)?;
            let uuid = match &w.id {
                Some(id) => uuid::Uuid::parse_str(id).map_err(|e| {
                    fail(
                        "workbin",
                        i,
                        entry.clone(),
                        format!("id {id:?} is not a UUID: {e}"),
                    )
                })?,
                None => uuid::Uuid::new_v5(&WORKBIN_NAMESPACE, w.name.as_bytes()),
            }
            .hyphenated()
            .to_string();
            let idx = WorkbinTypeIdx(index(i));
            if workbin_by_name.insert(w.name.clone(), idx).is_some() {
                return Err(fail("workbin", i, entry, "duplicate workbin name".into()));
            }
            if workbin_by_uuid.insert(uuid.clone(), idx).is_some() {
                return Err(fail(
                    "workbin",
                    i,
                    entry,
                    format!("duplicate workbin id {uuid}"),
                ));
            }
            workbins.push(WorkbinType {
                name: w.name.clone(),
                owner: w.owner,
                tenant: w.tenant,
                uuid,
            });
        }

        let mut queues = Vec::with_capacity(file.queue.len());
        let mut queue_by_name = HashMap::new();
        for (i, q) in file.queue.iter().enumerate() {
            let entry = format!("queue {:?}", q.name);
            non_empty("queue", i, "name", &q.name, &fail)?;
            tenant_exists("queue", i, &entry, q.tenant)?;
            if queue_by_name
                .insert(q.name.clone(), QueueIdx(index(i)))
                .is_some()
            {
                return Err(fail("queue", i, entry, "duplicate queue name".into()));
            }
            queues.push(Queue {
                name: q.name.clone(),
                tenant: q.tenant,
            });
        }

        Ok(Self {
            agent_groups: file
                .agent_group
                .iter()
                .map(|g| g.name.as_str().into())
                .collect(),
            place_groups: file
                .place_group
                .iter()
                .map(|g| g.name.as_str().into())
                .collect(),
            limits: file.limits,
            http: file.http.clone(),
            http_listen,
            tls: file.tls.clone(),
            store: file.store.clone(),
            file,
            tenants,
            applications,
            agents,
            places,
            workbins,
            queues,
            agent_by_id,
            agent_by_user_id,
            place_by_id,
            agent_group_by_name,
            place_group_by_name,
            workbin_by_name,
            workbin_by_uuid,
            queue_by_name,
        })
    }
}

/// A list index as the u32 the index types hold. Configurations are far smaller than 2^32
/// entries; a larger one saturates (and then fails on duplicate ids) rather than wrapping.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// An agent's `password_hash` must be an argon2 PHC string (`$argon2id$v=19$m=...`).
fn check_password_hash(hash: &str) -> Result<(), String> {
    let parsed = password_hash::PasswordHash::new(hash).map_err(|e| {
        format!("password_hash is not a PHC string ({e}); make one with `ixn hash-password`")
    })?;
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Ok(()),
        other => Err(format!(
            "password_hash uses {other:?}; only argon2 hashes are accepted (make one with `ixn hash-password`)"
        )),
    }
}

fn non_empty(
    table: &str,
    i: usize,
    key: &str,
    value: &str,
    fail: &dyn Fn(&str, usize, String, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(fail(
            table,
            i,
            format!("{table} #{}", i + 1),
            format!("{key} must not be empty"),
        ))
    } else {
        Ok(())
    }
}

fn unique_names(
    groups: &[crate::schema::GroupEntry],
    table: &str,
    fail: &dyn Fn(&str, usize, String, String) -> ConfigError,
) -> Result<HashMap<String, u32>, ConfigError> {
    let mut by_name = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        non_empty(table, i, "name", &g.name, fail)?;
        if by_name.insert(g.name.clone(), index(i)).is_some() {
            return Err(fail(
                table,
                i,
                format!("{table} {:?}", g.name),
                format!("duplicate {table} name"),
            ));
        }
    }
    Ok(by_name)
}

/// "a, b, c" (sorted), or "none" for an empty list.
fn known<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let mut names: Vec<String> = items.map(|t| t.to_string()).collect();
    names.sort();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The 1-based line where entry `index` of the array of tables `table` starts (for `limits`,
/// the table itself), from the TOML parser's spans.
fn toml_line(text: &str, table: &str, index: usize) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let (_, value) = doc
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == table)?;
    let span = match value.get_ref() {
        toml::de::DeValue::Array(items) => items.as_ref().get(index)?.span(),
        _ => value.span(),
    };
    let before = text.get(..span.start)?;
    Some(before.bytes().filter(|b| *b == b'\n').count() + 1)
}
