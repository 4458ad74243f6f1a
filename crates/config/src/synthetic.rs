//! Generated configurations for benchmarks and load tests.

use crate::limits::Limits;
use crate::schema::{
    AgentEntry, AppType, ApplicationEntry, ConfigFile, GroupEntry, OwnerKind, PlaceEntry,
    QueueEntry, TenantEntry, WorkbinEntry,
};

/// The agent-owned workbin types of a synthetic configuration.
pub const SYNTHETIC_AGENT_WORKBINS: [&str; 5] =
    ["Drafts", "Review", "Archive", "Outbox", "Pending"];

impl ConfigFile {
    /// A configuration of `agents` agents (`agent0`, `agent1`, ...) each at its own place
    /// (`place0`...), spread over `groups` agent groups (`group0`...; agent *i* is in group
    /// *i mod groups*) and as many place groups, with the five agent-owned workbin types of
    /// [`SYNTHETIC_AGENT_WORKBINS`], a `Team` (agent group) and a `Floor` (place group) type,
    /// one queue `Inbound`, tenant 101, and the applications `desk` (AgentApplication),
    /// `media` (MediaServer) and `gws` (Proxy). `limits` are used as given.
    pub fn synthetic(agents: usize, groups: usize, limits: Limits) -> Self {
        let groups = groups.max(1);
        let app = |name: &str, kind| ApplicationEntry {
            name: name.to_owned(),
            kind,
            password_hash: None,
            client_certificate: false,
        };
        let mut workbin: Vec<WorkbinEntry> = SYNTHETIC_AGENT_WORKBINS
            .iter()
            .map(|n| WorkbinEntry {
                name: (*n).to_owned(),
                owner: OwnerKind::Agent,
                tenant: 101,
                id: None,
            })
            .collect();
        workbin.push(WorkbinEntry {
            name: "Team".into(),
            owner: OwnerKind::AgentGroup,
            tenant: 101,
            id: None,
        });
        workbin.push(WorkbinEntry {
            name: "Floor".into(),
            owner: OwnerKind::PlaceGroup,
            tenant: 101,
            id: None,
        });
        Self {
            tls: None,
            store: None,
            tenant: vec![TenantEntry {
                id: 101,
                name: "Environment".into(),
            }],
            application: vec![
                app("desk", AppType::AgentApplication),
                app("media", AppType::MediaServer),
                app("gws", AppType::Proxy),
            ],
            agent: (0..agents)
                .map(|i| AgentEntry {
                    id: format!("agent{i}"),
                    user_id: format!("{i:032x}"),
                    tenant: 101,
                    groups: vec![format!("group{}", i % groups)],
                    supervises: Vec::new(),
                    password_hash: None,
                })
                .collect(),
            place: (0..agents)
                .map(|i| PlaceEntry {
                    id: format!("place{i}"),
                    groups: vec![format!("floor{}", i % groups)],
                })
                .collect(),
            agent_group: (0..groups)
                .map(|g| GroupEntry {
                    name: format!("group{g}"),
                })
                .collect(),
            place_group: (0..groups)
                .map(|g| GroupEntry {
                    name: format!("floor{g}"),
                })
                .collect(),
            workbin,
            queue: vec![QueueEntry {
                name: "Inbound".into(),
                tenant: 101,
            }],
            limits,
            http: crate::http::Http::default(),
        }
    }
}
