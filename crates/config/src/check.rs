//! The checks that turn a [`ConfigFile`] into the parts of a [`Config`]: each table checked on
//! its own, and every problem found reported (not only the first), each naming its entry and,
//! for TOML, its line. An entry with a problem is left out of what is built, so that the checks
//! after it still run on the rest.

use crate::entries::{
    Agent, AgentGroupIdx, AgentIdx, AppAuth, Place, PlaceGroupIdx, PlaceIdx, Queue, QueueIdx,
    WorkbinType, WorkbinTypeIdx, index,
};
use crate::error::ConfigError;
use crate::schema::{ConfigFile, GroupEntry};
use foldhash::{HashMap, HashMapExt};

/// Namespace for UUIDs derived from workbin names (a fixed, project-specific UUID).
const WORKBIN_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6978_6e2d_776f_726b_6269_6e2d_7479_7065);

/// The problems found so far, and how to name where each is.
pub(crate) struct Problems<'a> {
    origin: &'a str,
    line_of: &'a dyn Fn(&str, usize) -> Option<usize>,
    found: Vec<ConfigError>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(origin: &'a str, line_of: &'a dyn Fn(&str, usize) -> Option<usize>) -> Self {
        Self {
            origin,
            line_of,
            found: Vec::new(),
        }
    }

    /// Entry `index` of `table` (`usize::MAX`: the table itself) is wrong.
    pub(crate) fn add(&mut self, table: &str, index: usize, entry: String, problem: String) {
        self.found.push(ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line: (self.line_of)(table, index),
            entry,
            problem,
        });
    }

    /// Key `key` of the single table `table` is wrong.
    fn key(&mut self, table: &str, key: &str, problem: String) {
        self.add(table, usize::MAX, format!("{table}.{key}"), problem);
    }

    /// `Ok` when nothing was found; the one problem, or all of them.
    pub(crate) fn finish(mut self) -> Result<(), ConfigError> {
        match self.found.len() {
            0 => Ok(()),
            1 => Err(self.found.remove(0)),
            _ => Err(ConfigError::Several(self.found)),
        }
    }

    /// Whether `value` is blank (reported as entry `i` of `table` lacking `key`).
    fn blank(&mut self, table: &str, i: usize, key: &str, value: &str) -> bool {
        let blank = value.trim().is_empty();
        if blank {
            self.add(
                table,
                i,
                format!("{table} #{}", i + 1),
                format!("{key} must not be empty"),
            );
        }
        blank
    }
}

/// `[limits]`: each at least its minimum, and an interaction fits in a frame and a record.
pub(crate) fn limits(file: &ConfigFile, p: &mut Problems<'_>) {
    for (name, value, min) in file.limits.checks() {
        if value < min {
            p.key(
                "limits",
                name,
                format!("{value} is too small: use at least {min} (or remove it for the default)"),
            );
        }
    }
    let envelope = crate::limits::INTERACTION_ENVELOPE as u64;
    let (frame, ix) = (
        file.limits.max_frame_len as u64,
        file.limits.max_interaction_bytes as u64,
    );
    if ix + envelope > frame {
        p.key(
            "limits",
            "max_interaction_bytes",
            format!(
                "{ix} does not fit in a frame of max_frame_len {frame} with the {envelope} bytes a message needs around it: use at most {} (or raise max_frame_len)",
                frame.saturating_sub(envelope)
            ),
        );
    }
    let per_snapshot = file.limits.max_interactions_per_snapshot;
    if per_snapshot > crate::limits::MAX_INTERACTIONS_PER_SNAPSHOT {
        p.key(
            "limits",
            "max_interactions_per_snapshot",
            format!(
                "{per_snapshot} is too large: use at most {}",
                crate::limits::MAX_INTERACTIONS_PER_SNAPSHOT
            ),
        );
    }
    if file.limits.max_interaction_bytes > crate::limits::MAX_INTERACTION_BYTES {
        p.key(
            "limits",
            "max_interaction_bytes",
            format!(
                "{ix} is too large: use at most {} (32 MiB; one request's changes must fit in a journal record)",
                crate::limits::MAX_INTERACTION_BYTES
            ),
        );
    }
}

/// `[http]`: limits, origins, the listening address (returned) and the notifications path.
pub(crate) fn http(file: &ConfigFile, p: &mut Problems<'_>) -> Option<std::net::SocketAddr> {
    for (name, value, min) in file.http.checks() {
        if value < min {
            p.key(
                "http",
                name,
                format!("{value} is too small: use at least {min} (or remove it for the default)"),
            );
        }
    }
    for o in &file.http.allowed_origins {
        let ok = (o.starts_with("http://") || o.starts_with("https://"))
            && !o.trim_end_matches('/').ends_with(':')
            && o.split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains('/'));
        if !ok {
            p.key(
                "http",
                "allowed_origins",
                format!(
                    "{o:?} is not an origin: write scheme://host[:port], such as \"https://desk.example.com\" (no path)"
                ),
            );
        }
    }
    let mut ids = std::collections::HashSet::new();
    for c in &file.http.oauth_clients {
        if c.id.is_empty() || !ids.insert(c.id.as_str()) {
            p.key(
                "http",
                "oauth_clients",
                format!(
                    "client id {:?} is empty or given twice: give each client its own id",
                    c.id
                ),
            );
        }
        if let Err(problem) = check_password_hash(&c.secret_hash) {
            p.key(
                "http",
                "oauth_clients",
                format!("client {:?}: secret_hash: {problem}", c.id),
            );
        }
    }
    for o in &file.http.operators {
        if !file.agent.iter().any(|a| a.id == *o) {
            p.key(
                "http",
                "operators",
                format!("{o:?} is no [[agent]] id: name the agents who may see the console's server page"),
            );
        }
    }
    let path = &file.http.notifications_path;
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || path.contains("//") {
        p.key(
            "http",
            "notifications_path",
            format!(
                "{path:?} must start with '/', name at least one segment and not end with '/' (for example \"/api/v2/notifications\")"
            ),
        );
    }
    let text = file.http.listen.as_ref()?;
    match text.parse::<std::net::SocketAddr>() {
        Ok(a) => Some(a),
        Err(e) => {
            p.key(
                "http",
                "listen",
                format!("{text:?} is not an address such as \"127.0.0.1:8080\": {e}"),
            );
            None
        }
    }
}

/// `[store]`: a PostgreSQL store has a URL; the lease is not too short.
pub(crate) fn store(file: &ConfigFile, p: &mut Problems<'_>) {
    let Some(store) = &file.store else { return };
    if store.kind == crate::schema::StoreKind::Postgres
        && store.url.as_deref().is_none_or(|u| u.trim().is_empty())
    {
        p.key(
            "store",
            "url",
            "kind = \"postgres\" needs the database's url, such as \"postgres://ixn@db.example.com/ixn\"".to_owned(),
        );
    }
    if let Some(ms) = store.lease_ms
        && ms < 200
    {
        p.key(
            "store",
            "lease_ms",
            format!("{ms} is too short: use at least 200 (or remove it for the default, 2000)"),
        );
    }
}

/// `[[tenant]]`: ids unique.
pub(crate) fn tenants(file: &ConfigFile, p: &mut Problems<'_>) -> HashMap<i32, String> {
    let mut tenants = HashMap::new();
    for (i, t) in file.tenant.iter().enumerate() {
        if tenants.insert(t.id, t.name.clone()).is_some() {
            p.add(
                "tenant",
                i,
                format!("tenant {}", t.id),
                "duplicate tenant id".into(),
            );
        }
    }
    tenants
}

/// Whether `tenant` exists (reported against entry `i` of `table` when not).
fn tenant_known(
    tenants: &HashMap<i32, String>,
    p: &mut Problems<'_>,
    (table, i, entry): (&str, usize, &str),
    tenant: i32,
) -> bool {
    let known_here = tenants.contains_key(&tenant);
    if !known_here {
        p.add(
            table,
            i,
            entry.to_owned(),
            format!("unknown tenant {tenant} (known: {})", known(tenants.keys())),
        );
    }
    known_here
}

/// `[[application]]`: names given, password hashes argon2, (name, type) pairs unique.
pub(crate) fn applications(
    file: &ConfigFile,
    p: &mut Problems<'_>,
) -> HashMap<(String, crate::schema::AppType), AppAuth> {
    let mut applications = HashMap::new();
    for (i, a) in file.application.iter().enumerate() {
        if p.blank("application", i, "name", &a.name) {
            continue;
        }
        let entry = format!("application {:?}", a.name);
        if let Some(hash) = &a.password_hash
            && let Err(problem) = check_password_hash(hash)
        {
            p.add("application", i, entry.clone(), problem);
        }
        let auth = AppAuth {
            password_hash: a.password_hash.clone(),
            client_certificate: a.client_certificate,
        };
        if applications
            .insert((a.name.clone(), a.kind), auth)
            .is_some()
        {
            p.add(
                "application",
                i,
                entry,
                format!(
                    "duplicate application (name {:?}, type {:?})",
                    a.name, a.kind
                ),
            );
        }
    }
    applications
}

/// `[[agent_group]]` and `[[place_group]]`: names given and unique across both.
pub(crate) fn groups(
    file: &ConfigFile,
    p: &mut Problems<'_>,
) -> (
    HashMap<String, AgentGroupIdx>,
    HashMap<String, PlaceGroupIdx>,
) {
    let agent_groups = unique_names(&file.agent_group, "agent_group", p);
    let place_groups = unique_names(&file.place_group, "place_group", p);
    for (i, g) in file.place_group.iter().enumerate() {
        if agent_groups.contains_key(&g.name) {
            p.add(
                "place_group",
                i,
                format!("place_group {:?}", g.name),
                "an agent_group has the same name; group names must be unique".into(),
            );
        }
    }
    (
        agent_groups
            .into_iter()
            .map(|(k, v)| (k, AgentGroupIdx(v)))
            .collect(),
        place_groups
            .into_iter()
            .map(|(k, v)| (k, PlaceGroupIdx(v)))
            .collect(),
    )
}

fn unique_names(groups: &[GroupEntry], table: &str, p: &mut Problems<'_>) -> HashMap<String, u32> {
    let mut by_name = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        if p.blank(table, i, "name", &g.name) {
            continue;
        }
        if by_name.insert(g.name.clone(), index(i)).is_some() {
            p.add(
                table,
                i,
                format!("{table} {:?}", g.name),
                format!("duplicate {table} name"),
            );
        }
    }
    by_name
}

/// The agents, indexed by id and by user id.
pub(crate) struct Agents {
    pub(crate) list: Vec<Agent>,
    pub(crate) by_id: HashMap<String, AgentIdx>,
    pub(crate) by_user_id: HashMap<String, AgentIdx>,
}

/// `[[agent]]`: ids given and unique, user ids 32 hex digits and unique, tenants and groups
/// known, password hashes argon2.
pub(crate) fn agents(
    file: &ConfigFile,
    tenants: &HashMap<i32, String>,
    groups: &HashMap<String, AgentGroupIdx>,
    p: &mut Problems<'_>,
) -> Agents {
    let mut agents = Agents {
        list: Vec::with_capacity(file.agent.len()),
        by_id: HashMap::new(),
        by_user_id: HashMap::new(),
    };
    for (i, a) in file.agent.iter().enumerate() {
        let entry = format!("agent {:?}", a.id);
        p.blank("agent", i, "id", &a.id);
        if !(a.user_id.len() == 32 && a.user_id.bytes().all(|b| b.is_ascii_hexdigit())) {
            p.add(
                "agent",
                i,
                entry.clone(),
                format!("user_id {:?} must be 32 hex digits", a.user_id),
            );
        }
        tenant_known(tenants, p, ("agent", i, &entry), a.tenant);
        let mut resolve = |names: &[String], what: &str| -> Vec<AgentGroupIdx> {
            let mut found = Vec::new();
            for n in names {
                match groups.get(n) {
                    Some(g) => found.push(*g),
                    None => p.add(
                        "agent",
                        i,
                        entry.clone(),
                        format!(
                            "{what} names unknown agent_group {n:?} (known: {})",
                            known(groups.keys())
                        ),
                    ),
                }
            }
            found
        };
        let in_groups = resolve(&a.groups, "groups");
        let supervises = resolve(&a.supervises, "supervises");
        if let Some(hash) = &a.password_hash
            && let Err(problem) = check_password_hash(hash)
        {
            p.add("agent", i, entry.clone(), problem);
        }
        let idx = AgentIdx(index(i));
        if agents.by_id.insert(a.id.clone(), idx).is_some() {
            p.add("agent", i, entry.clone(), "duplicate agent id".into());
        }
        let user_id = a.user_id.to_ascii_lowercase();
        if agents.by_user_id.insert(user_id.clone(), idx).is_some() {
            p.add(
                "agent",
                i,
                entry,
                format!("duplicate user_id {:?}", a.user_id),
            );
        }
        agents.list.push(Agent {
            id: a.id.clone(),
            user_id,
            tenant: a.tenant,
            groups: in_groups,
            supervises,
            password_hash: a.password_hash.clone(),
        });
    }
    agents
}

/// `[[place]]`: ids given and unique, groups known.
pub(crate) fn places(
    file: &ConfigFile,
    groups: &HashMap<String, PlaceGroupIdx>,
    p: &mut Problems<'_>,
) -> (Vec<Place>, HashMap<String, PlaceIdx>) {
    let mut places = Vec::with_capacity(file.place.len());
    let mut by_id = HashMap::new();
    for (i, pl) in file.place.iter().enumerate() {
        let entry = format!("place {:?}", pl.id);
        p.blank("place", i, "id", &pl.id);
        let mut in_groups = Vec::new();
        for n in &pl.groups {
            match groups.get(n) {
                Some(g) => in_groups.push(*g),
                None => p.add(
                    "place",
                    i,
                    entry.clone(),
                    format!(
                        "groups names unknown place_group {n:?} (known: {})",
                        known(groups.keys())
                    ),
                ),
            }
        }
        if by_id.insert(pl.id.clone(), PlaceIdx(index(i))).is_some() {
            p.add("place", i, entry, "duplicate place id".into());
        }
        places.push(Place {
            id: pl.id.clone(),
            groups: in_groups,
        });
    }
    (places, by_id)
}

/// The workbin types, indexed by name and by UUID.
pub(crate) struct Workbins {
    pub(crate) list: Vec<WorkbinType>,
    pub(crate) by_name: HashMap<String, WorkbinTypeIdx>,
    pub(crate) by_uuid: HashMap<String, WorkbinTypeIdx>,
}

/// `[[workbin]]`: names given and unique, tenants known, ids UUIDs (derived from the name when
/// absent) and unique.
pub(crate) fn workbins(
    file: &ConfigFile,
    tenants: &HashMap<i32, String>,
    p: &mut Problems<'_>,
) -> Workbins {
    let mut workbins = Workbins {
        list: Vec::with_capacity(file.workbin.len()),
        by_name: HashMap::new(),
        by_uuid: HashMap::new(),
    };
    for (i, w) in file.workbin.iter().enumerate() {
        let entry = format!("workbin {:?}", w.name);
        p.blank("workbin", i, "name", &w.name);
        tenant_known(tenants, p, ("workbin", i, &entry), w.tenant);
        let uuid = match &w.id {
            Some(id) => match uuid::Uuid::parse_str(id) {
                Ok(u) => u,
                Err(e) => {
                    p.add(
                        "workbin",
                        i,
                        entry.clone(),
                        format!("id {id:?} is not a UUID: {e}"),
                    );
                    uuid::Uuid::nil()
                }
            },
            None => uuid::Uuid::new_v5(&WORKBIN_NAMESPACE, w.name.as_bytes()),
        }
        .hyphenated()
        .to_string();
        let idx = WorkbinTypeIdx(index(i));
        let duplicate_name = workbins.by_name.insert(w.name.clone(), idx).is_some();
        if duplicate_name {
            p.add("workbin", i, entry.clone(), "duplicate workbin name".into());
        }
        // A UUID derived from a duplicate name is the same problem, not another.
        if workbins.by_uuid.insert(uuid.clone(), idx).is_some()
            && (w.id.is_some() || !duplicate_name)
        {
            p.add("workbin", i, entry, format!("duplicate workbin id {uuid}"));
        }
        workbins.list.push(WorkbinType {
            name: w.name.clone(),
            owner: w.owner,
            tenant: w.tenant,
            uuid,
        });
    }
    workbins
}

/// `[[queue]]`: names given and unique, tenants known.
pub(crate) fn queues(
    file: &ConfigFile,
    tenants: &HashMap<i32, String>,
    p: &mut Problems<'_>,
) -> (Vec<Queue>, HashMap<String, QueueIdx>) {
    let mut queues = Vec::with_capacity(file.queue.len());
    let mut by_name = HashMap::new();
    for (i, q) in file.queue.iter().enumerate() {
        let entry = format!("queue {:?}", q.name);
        p.blank("queue", i, "name", &q.name);
        tenant_known(tenants, p, ("queue", i, &entry), q.tenant);
        if by_name.insert(q.name.clone(), QueueIdx(index(i))).is_some() {
            p.add("queue", i, entry, "duplicate queue name".into());
        }
        queues.push(Queue {
            name: q.name.clone(),
            tenant: q.tenant,
        });
    }
    (queues, by_name)
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
