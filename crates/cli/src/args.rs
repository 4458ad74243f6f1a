//! The command line's options and subcommands (clap), and the credentials a connection uses.

use clap::{Parser, Subcommand};
use ixn_codec::ClientType;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ixn",
    version,
    about = "Talk to an ixn workbin server",
    after_help = "Examples:\n  ixn send --as emailsrv:MediaServer '{\"message\":\"RequestSubmit\",\"TenantId\":101,\"MediaType\":\"email\",\"InteractionType\":\"Inbound\",\"Queue\":\"Inbound\"}'\n  ixn send - < requests.jsonl\n  ixn watch --agent a1 --place p1 --workbin Drafts --workbin Team:Sales\n  ixn queue Inbound\n  ixn find \"MediaType = 'email' AND _age() > 3600\" --order 'ReceivedAt DESC'\n  ixn conformance conformance/ --server-bin target/release/ixn-server\n  ixn journal verify ixn-data\n  ixn hash-password < password.txt"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

/// Where to connect and who to be.
#[derive(Debug, clap::Args)]
pub(crate) struct Server {
    /// Server address, or several separated by commas (servers sharing a store: the active
    /// one is found, following a standby's answer, and found again after a failover).
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub(crate) addr: String,
    /// The client to register as, NAME:TYPE (TYPE: AgentApplication, MediaServer,
    /// RoutingEngine, Proxy). Default: desk:AgentApplication (find and queue:
    /// emailsrv:MediaServer, which sees every interaction).
    #[arg(long = "as", value_name = "NAME:TYPE")]
    pub(crate) client: Option<String>,
    #[command(flatten)]
    pub(crate) creds: Creds,
}

/// TLS and the application's credentials.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Creds {
    /// Connect with TLS. The server's certificate must chain to --ca.
    #[arg(long)]
    pub(crate) tls: bool,
    /// CA certificates (PEM) the server's certificate must chain to (implies --tls).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// A client certificate (PEM), for applications configured with client_certificate = true
    /// (implies --tls; needs --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of --addr).
    #[arg(long, value_name = "NAME")]
    pub(crate) server_name: Option<String>,
    /// The application's password, sent as `Password` in RequestRegisterClient (applications
    /// configured with a password_hash). Prefer the environment variable to the option:
    /// arguments are visible to other users of the machine.
    #[arg(long, env = "IXN_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
}

/// How `find` and `queue` select and page.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FindArgs {
    /// Order: PROPERTY [ASC|DESC], ... (default: oldest first).
    #[arg(long)]
    pub(crate) order: Option<String>,
    /// Lock what is found for as long as the command runs (Lock = 1).
    #[arg(long)]
    pub(crate) lock: bool,
    /// Find at most this many (capped by the server's max_interactions_per_snapshot).
    #[arg(long)]
    pub(crate) limit: Option<i32>,
    /// Interactions per page read.
    #[arg(long, default_value_t = 100)]
    pub(crate) page_size: i32,
    /// Log this agent in first and see through its eyes (with --place; --as an
    /// AgentApplication).
    #[arg(long, requires = "place")]
    pub(crate) agent: Option<String>,
    /// The place to log the agent in at.
    #[arg(long, requires = "agent")]
    pub(crate) place: Option<String>,
    /// Tenant of the agent.
    #[arg(long, default_value_t = 101)]
    pub(crate) tenant: i32,
}

impl Server {
    /// The client to register as: --as, or `default`.
    pub(crate) fn client_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.client.as_deref().unwrap_or(default)
    }
}

impl Creds {
    pub(crate) fn wants_tls(&self) -> bool {
        self.tls || self.ca.is_some() || self.cert.is_some()
    }

    pub(crate) fn files(&self) -> Result<ixn_tls::ClientFiles, String> {
        if self.ca.is_none() {
            return Err(
                "--tls needs --ca FILE: the authority (PEM) that signed the server's certificate"
                    .to_owned(),
            );
        }
        Ok(ixn_tls::ClientFiles {
            ca: self.ca.clone(),
            identity: self.cert.clone().zip(self.key.clone()),
        })
    }

    /// The client library's TLS settings, when TLS is asked for.
    pub(crate) fn tls(&self) -> Result<Option<ixn_client::Tls>, String> {
        if !self.wants_tls() {
            return Ok(None);
        }
        let mut tls = ixn_client::Tls::from_files(&self.files()?).map_err(|e| e.to_string())?;
        tls.server_name.clone_from(&self.server_name);
        Ok(Some(tls))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Send requests (JSON form) and print each reply as a JSON line. Registers first as
    /// --as unless the first message is a RequestRegisterClient. Exits 1 if a reply is
    /// EventError.
    Send {
        #[command(flatten)]
        server: Server,
        /// The messages, each a JSON object such as '{"message":"Ping"}'; `-` reads them from
        /// standard input, one per line.
        #[arg(required = true, value_name = "JSON")]
        messages: Vec<String>,
    },
    /// Log an agent in, subscribe to workbins and print their notifications as JSON lines until
    /// interrupted (Ctrl-C).
    Watch {
        #[command(flatten)]
        server: Server,
        /// Tenant id.
        #[arg(long, default_value_t = 101)]
        tenant: i32,
        /// Agent id to log in.
        #[arg(long)]
        agent: String,
        /// Place id to log in at.
        #[arg(long)]
        place: String,
        /// Workbin to watch: its type name, and for group workbins (or another agent's or
        /// place's) the owner after a colon: Drafts, Drafts:a2, Team:Sales. Repeatable.
        #[arg(long = "workbin", value_name = "NAME[:OWNER]", required = true)]
        workbins: Vec<String>,
        /// Do not ask for PropertiesChanged notifications.
        #[arg(long)]
        no_properties: bool,
        /// When the connection ends (a server restart), connect again, log in and subscribe
        /// again, and print {"ixn":"reconnected",...}: changes meanwhile were not notified.
        #[arg(long)]
        reconnect: bool,
    },
    /// Find interactions by a condition (docs/conditions.md) and print them as a table, a page
    /// at a time through a snapshot: id, media, state, where, received, subject.
    Find {
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        find: FindArgs,
        /// The condition, such as "MediaType = 'email' AND _age() > 3600".
        condition: String,
    },
    /// Show what a queue holds (the interactions queued there, oldest first).
    Queue {
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        find: FindArgs,
        /// The queue's name.
        name: String,
    },
    /// Run a folder of conformance scenarios, each against a fresh server holding that
    /// scenario's configuration. Prints a line per scenario and `N passed, N failed`.
    Conformance {
        /// The folder of scenario files.
        dir: PathBuf,
        /// Run against the bare engine (no sockets).
        #[arg(long, conflicts_with = "server_bin")]
        embedded: bool,
        /// Start this server binary per scenario (configuration in a temporary file, ephemeral
        /// port) instead of an in-process server.
        #[arg(long, value_name = "PATH")]
        server_bin: Option<PathBuf>,
        /// An argument for each server started with --server-bin (repeatable), such as
        /// --server-arg=--tls-cert=server.crt.
        #[arg(
            long,
            value_name = "ARG",
            allow_hyphen_values = true,
            requires = "server_bin"
        )]
        server_arg: Vec<String>,
        /// Connect with TLS and credentials. With --password, every application of each
        /// scenario's configuration gets that password's hash, and each connection's first
        /// registration carries it; with --cert, every application must present a client
        /// certificate (the certificate must name them all).
        #[command(flatten)]
        creds: Creds,
    },
    /// Look after a data directory's journal: verify it, dump it, back it up.
    Journal {
        #[command(subcommand)]
        action: JournalCmd,
    },
    /// Move interactions between stores: a data directory's journal and a PostgreSQL database.
    Store {
        #[command(subcommand)]
        action: StoreCmd,
    },
    /// Print an argon2 hash of a password, for a `password_hash` in the configuration: an
    /// agent's (lets the agent sign in to the web API) or an application's (its registrations
    /// on the native port must then carry the `Password`). Reads the password from the first
    /// line of standard input unless given as an argument.
    HashPassword {
        /// The password (prefer standard input: arguments end up in shell history).
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCmd {
    /// Copy every interaction (and the id generator's state) from one store to the other: a data
    /// directory to a PostgreSQL database (postgres://...), or back. Stop the servers on the
    /// source first (a data directory is locked while a server runs on it; a database is read in
    /// one consistent snapshot). The destination must be empty (a new database or one without
    /// interactions, with no server active on it; a directory without a journal) unless
    /// --replace is given for a database.
    #[command(
        after_help = "Examples:\n  ixn store migrate --from ixn-data --to postgres://ixn:secret@db/ixn\n  ixn store migrate --from postgres://ixn:secret@db/ixn --to ixn-data-copy"
    )]
    Migrate {
        /// The source: a data directory or a PostgreSQL URL.
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// The destination: a PostgreSQL URL or a data directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,
        /// Replace the interactions a destination database already holds.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JournalCmd {
    /// Read the journal of DIR and check every record's checksum and changes (nothing is
    /// written; a running server's directory may be verified). Exit 0 when it is whole, 1 when
    /// it ends with a torn write (never acknowledged; a start cuts it off), 2 when it is
    /// damaged or unreadable.
    Verify {
        /// The data directory.
        dir: PathBuf,
    },
    /// Print every stored change of DIR's journal as a JSON line:
    /// {"change":N,"kind":K,"interaction":ID,"message":{...}} (the change in the JSON form of
    /// docs/protocol.md). Kinds: Put (an interaction's whole state: where it is, its
    /// properties and user data), Delete (an interaction stopped), Move (an interaction's new
    /// location only), Ids (the InteractionId generator's state, shown as id_prefix and
    /// id_counter, so that a restart never hands out an id twice).
    Dump {
        /// The data directory.
        dir: PathBuf,
    },
    /// Copy DIR's journal to DEST (a new or empty directory) as a data directory a server can
    /// start from: a consistent copy, taken while the server runs (everything acknowledged
    /// before the copy began is in it; a record being written is left out).
    Backup {
        /// The data directory.
        dir: PathBuf,
        /// Where to write the copy.
        dest: PathBuf,
    },
}

/// `NAME:TYPE` -> (name, type).
pub(crate) fn parse_client(s: &str) -> Result<(String, ClientType), String> {
    let (name, kind) = s
        .split_once(':')
        .ok_or_else(|| format!("--as {s:?}: expected NAME:TYPE, e.g. emailsrv:MediaServer"))?;
    let kind = ClientType::from_name(kind).ok_or_else(|| {
        format!("--as {s:?}: unknown client type {kind:?} (AgentApplication, MediaServer, RoutingEngine or Proxy)")
    })?;
    Ok((name.to_owned(), kind))
}
