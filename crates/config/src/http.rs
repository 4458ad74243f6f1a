//! The `[http]` table: the web API (HTTP + CometD) and its limits.

use serde::{Deserialize, Serialize};

/// Settings of the web API (`ixn-server --http ADDR` or `listen` here starts it). Every key is
/// optional; the defaults are documented in docs/configuration.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Address the web API listens on; absent: off unless `--http` is given. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Base path of the CometD endpoint. Default `/api/v2/notifications`.
    pub notifications_path: String,
    /// The `Proxy` application the web API registers as. Default `gws`.
    pub proxy_application: String,
    /// The `AgentApplication` each signed-in agent's logical client registers as. Default `desk`.
    pub client_application: String,
    /// Signed-in agents (web sessions) at once; more sign-ins get HTTP 503. Default 10000.
    pub max_web_sessions: usize,
    /// Seconds a web session lives without any request or CometD connection; then its agent is
    /// logged out. Default 1800.
    pub web_session_idle_secs: u64,
    /// CometD sessions at once; more handshakes are refused. Default 10000.
    pub max_cometd_sessions: usize,
    /// CometD sessions of one signed-in agent at once. Default 16.
    pub max_cometd_sessions_per_agent: usize,
    /// Messages queued for one CometD session; one more closes the session (its client gets
    /// `402` and handshakes again). Default 1000.
    pub cometd_queue_messages: usize,
    /// Longest time (ms) a `/meta/connect` is held; clients asking more are clamped. Default 30000.
    pub connect_timeout_ms: u64,
    /// Time (ms) a CometD session may go without a `/meta/connect` before the sweeper removes
    /// it. Default 10000.
    pub max_interval_ms: u64,
    /// Largest request body (bytes); larger bodies get HTTP 413. Default 65536.
    pub max_body_bytes: usize,
    /// HTTP connections at once; more wait in the listen queue. The server lowers it to fit its
    /// open file limit (and says so in the log). Default 1024.
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers, counted from the connection's
    /// start or, on a kept-alive connection, from the previous response: it is also the idle
    /// keep-alive timeout. Default 5.
    pub header_read_timeout_secs: u64,
    /// Origins (`scheme://host[:port]`) besides the server's own from which browsers may send
    /// state-changing requests; any other `Origin` is refused with 403. Default none.
    pub allowed_origins: Vec<String>,
    /// HTTP Basic sign-ins checked per second for one client address; more get HTTP 429 at
    /// once. Default 10. Token requests (`/auth/v3/oauth/token`) count against it too.
    pub sign_ins_per_second: u32,
    /// The OAuth 2 clients that may ask `/auth/v3/oauth/token` for an agent's access token (the
    /// Workspace API v3). Default none: no token is given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub oauth_clients: Vec<OAuthClient>,
    /// Seconds an access token is good for. Default 3600.
    pub access_token_secs: u64,
    /// Serve the browser console at `/console/` (`ixn-server --console off` turns it off).
    /// Default true.
    pub console: bool,
    /// Agents (ids) who see the console's server page (the operator role). Default none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<String>,
}

/// An OAuth 2 client (`[[http.oauth_clients]]`): its id and an argon2 hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// The client id it sends (HTTP Basic user name).
    pub id: String,
    /// An argon2 PHC string of its secret (`ixn hash-password`).
    pub secret_hash: String,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: None,
            notifications_path: "/api/v2/notifications".into(),
            proxy_application: "gws".into(),
            client_application: "desk".into(),
            max_web_sessions: 10_000,
            web_session_idle_secs: 1800,
            max_cometd_sessions: 10_000,
            max_cometd_sessions_per_agent: 16,
            cometd_queue_messages: 1000,
            connect_timeout_ms: 30_000,
            max_interval_ms: 10_000,
            max_body_bytes: 65_536,
            max_connections: 1024,
            header_read_timeout_secs: 5,
            allowed_origins: Vec::new(),
            sign_ins_per_second: 10,
            oauth_clients: Vec::new(),
            access_token_secs: 3600,
            console: true,
            operators: Vec::new(),
        }
    }
}

impl Http {
    /// Each numeric setting's name, value and smallest sensible value, for validation.
    pub(crate) fn checks(&self) -> [(&'static str, u64, u64); 12] {
        [
            ("max_web_sessions", self.max_web_sessions as u64, 1),
            ("web_session_idle_secs", self.web_session_idle_secs, 1),
            ("max_cometd_sessions", self.max_cometd_sessions as u64, 1),
            (
                "max_cometd_sessions_per_agent",
                self.max_cometd_sessions_per_agent as u64,
                1,
            ),
            (
                "cometd_queue_messages",
                self.cometd_queue_messages as u64,
                1,
            ),
            ("connect_timeout_ms", self.connect_timeout_ms, 100),
            ("max_interval_ms", self.max_interval_ms, 100),
            ("max_body_bytes", self.max_body_bytes as u64, 256),
            ("max_connections", self.max_connections as u64, 1),
            ("header_read_timeout_secs", self.header_read_timeout_secs, 1),
            (
                "sign_ins_per_second",
                u64::from(self.sign_ins_per_second),
                1,
            ),
            ("access_token_secs", self.access_token_secs, 1),
        ]
    }
}
