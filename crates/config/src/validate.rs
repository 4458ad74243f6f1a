//! Validation: from a [`ConfigFile`] to an indexed [`Config`], or a [`ConfigError`] naming the
//! offending entry.

use crate::check;
use crate::entries::{
    Agent, AgentGroupIdx, AgentIdx, AppAuth, Place, PlaceGroupIdx, PlaceIdx, Queue, QueueIdx,
    WorkbinType, WorkbinTypeIdx, index,
};
use crate::error::ConfigError;
use crate::limits::Limits;
use crate::schema::{AppType, ConfigFile};
use foldhash::HashMap;
use std::path::Path;

macro_rules! arena {
    ($($name:ident => $field:ident: $item:ty, $iter:ident;)*) => {$(
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
    AgentIdx => agents: Agent, agents;
    PlaceIdx => places: Place, places;
    AgentGroupIdx => agent_groups: str, agent_groups;
    PlaceGroupIdx => place_groups: str, place_groups;
    WorkbinTypeIdx => workbins: WorkbinType, workbins;
    QueueIdx => queues: Queue, queues;
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

    /// Checks every table of `file` (see the `check` module), reporting every problem found.
    fn validate_with(
        file: ConfigFile,
        origin: &str,
        line_of: &dyn Fn(&str, usize) -> Option<usize>,
    ) -> Result<Self, ConfigError> {
        let mut p = check::Problems::new(origin, line_of);
        check::limits(&file, &mut p);
        let http_listen = check::http(&file, &mut p);
        check::store(&file, &mut p);
        let tenants = check::tenants(&file, &mut p);
        let applications = check::applications(&file, &mut p);
        let (agent_group_by_name, place_group_by_name) = check::groups(&file, &mut p);
        let agents = check::agents(&file, &tenants, &agent_group_by_name, &mut p);
        let (places, place_by_id) = check::places(&file, &place_group_by_name, &mut p);
        let workbins = check::workbins(&file, &tenants, &mut p);
        let (queues, queue_by_name) = check::queues(&file, &tenants, &mut p);
        p.finish()?;
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
            agents: agents.list,
            places,
            workbins: workbins.list,
            queues,
            agent_by_id: agents.by_id,
            agent_by_user_id: agents.by_user_id,
            place_by_id,
            agent_group_by_name,
            place_group_by_name,
            workbin_by_name: workbins.by_name,
            workbin_by_uuid: workbins.by_uuid,
            queue_by_name,
        })
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
