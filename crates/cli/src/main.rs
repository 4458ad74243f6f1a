//! `ixn`: the command line for the ixn workbin server.
//!
//! - `ixn send '<json message>'...`: sends requests, prints each reply as a JSON line; exits 1
//!   if any reply is EventError.
//! - `ixn watch --agent A --place P --workbin NAME[:OWNER]...`: logs in, subscribes, prints
//!   notifications as JSON lines until interrupted.
//! - `ixn conformance DIR`: runs a folder of conformance scenarios against a fresh server each.
//! - `ixn hash-password`: prints an argon2 hash for an agent's `password_hash`.

// A command-line program: speaking to its user on stdout and stderr is its job.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use clap::{Parser, Subcommand};
use ixn_client::Client;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use ixn_conformance::{Embedded, Running, Scenario, Tcp, load_dir, run_all};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

#[derive(Debug, Parser)]
#[command(
    name = "ixn",
    version,
    about = "Talk to an ixn workbin server",
    after_help = "Examples:\n  ixn send --as emailsrv:MediaServer '{\"message\":\"RequestSubmit\",\"TenantId\":101,\"MediaType\":\"email\",\"InteractionType\":\"Inbound\",\"Queue\":\"Inbound\"}'\n  ixn send - < requests.jsonl\n  ixn watch --agent a1 --place p1 --workbin Drafts --workbin Team:Sales\n  ixn conformance conformance/ --server-bin target/release/ixn-server\n  ixn journal verify ixn-data\n  ixn hash-password < password.txt"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Where to connect and who to be.
#[derive(Debug, clap::Args)]
struct Server {
    /// Server address, or several separated by commas (servers sharing a store: the active
    /// one is found, following a standby's answer, and found again after a failover).
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: String,
    /// The client to register as, NAME:TYPE (TYPE: AgentApplication, MediaServer,
    /// RoutingEngine, Proxy).
    #[arg(
        long = "as",
        value_name = "NAME:TYPE",
        default_value = "desk:AgentApplication"
    )]
    client: String,
    #[command(flatten)]
    creds: Creds,
}

/// TLS and the application's credentials.
#[derive(Debug, Clone, clap::Args)]
struct Creds {
    /// Connect with TLS. The server's certificate must chain to --ca.
    #[arg(long)]
    tls: bool,
    /// CA certificates (PEM) the server's certificate must chain to (implies --tls).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM), for applications configured with client_certificate = true
    /// (implies --tls; needs --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of --addr).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// The application's password, sent as `Password` in RequestRegisterClient (applications
    /// configured with a password_hash). Prefer the environment variable to the option:
    /// arguments are visible to other users of the machine.
    #[arg(long, env = "IXN_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

impl Creds {
    fn wants_tls(&self) -> bool {
        self.tls || self.ca.is_some() || self.cert.is_some()
    }

    fn files(&self) -> Result<ixn_tls::ClientFiles, String> {
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
    fn tls(&self) -> Result<Option<ixn_client::Tls>, String> {
        if !self.wants_tls() {
            return Ok(None);
        }
        let mut tls = ixn_client::Tls::from_files(&self.files()?).map_err(|e| e.to_string())?;
        tls.server_name.clone_from(&self.server_name);
        Ok(Some(tls))
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
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
    /// Print an argon2 hash of a password, for an agent's `password_hash` in the configuration
    /// (lets the agent sign in to the web API). Reads the password from the first line of
    /// standard input unless given as an argument.
    HashPassword {
        /// The password (prefer standard input: arguments end up in shell history).
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCmd {
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
enum JournalCmd {
    /// Read the journal of DIR and check every record's checksum and changes (nothing is
    /// written; a running server's directory may be verified). Exit 0 when it is whole, 1 when
    /// it ends with a torn write (never acknowledged; a start cuts it off), 2 when it is
    /// damaged or unreadable.
    Verify {
        /// The data directory.
        dir: PathBuf,
    },
    /// Print every stored change of DIR's journal as a JSON line: {"change":N,"message":{...}}
    /// (the change in the JSON form of docs/protocol.md; 61441 Put, 61442 Delete, 61443 Ids).
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Conformance {
            dir,
            embedded,
            server_bin,
            server_arg,
            creds,
        } => conformance(&dir, embedded, server_bin.as_deref(), &server_arg, &creds),
        Cmd::HashPassword { password } => hash_password(password),
        Cmd::Journal { action } => journal(action),
        Cmd::Store {
            action: StoreCmd::Migrate { from, to, replace },
        } => match migrate(&from, &to, replace) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ixn store migrate: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Send { server, messages } => with_runtime(send(server, messages)),
        Cmd::Watch {
            server,
            tenant,
            agent,
            place,
            workbins,
            no_properties,
            reconnect,
        } => with_runtime(async move {
            watch(
                server,
                tenant,
                agent,
                place,
                workbins,
                !no_properties,
                reconnect,
            )
            .await
            .unwrap_or_else(|e| {
                eprintln!("ixn watch: {e}");
                ExitCode::FAILURE
            })
        }),
    }
}

/// The live journal of `dir` and its bytes, read once (a compaction renaming the file meanwhile
/// does not change what was read), or the message to print.
/// `ixn store migrate`: returns the summary line, or what went wrong.
fn migrate(from: &str, to: &str, replace: bool) -> Result<String, String> {
    use ixn_store::Store as _;
    const LEASE: std::time::Duration = std::time::Duration::from_secs(2);
    let is_put = |m: &Message| m.id == ixn_core::durable::PUT;
    match (ixn_pgstore::is_url(from), ixn_pgstore::is_url(to)) {
        (false, true) => {
            let shown = ixn_pgstore::redact(to);
            if ixn_store::live_journal(Path::new(from))
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!(
                    "{from} holds no journal (journal-NNNNNNNN.log); is it a data directory?"
                ));
            }
            // Locking the directory makes sure no server writes to it meanwhile.
            let mut changes = Vec::new();
            let (journal, opened) = ixn_store::Journal::open_with(from, &mut |m| changes.push(m))
                .map_err(|e| e.to_string())?;
            let target = ixn_pgstore::inspect(to, LEASE).map_err(|e| e.to_string())?;
            if let Some(l) = &target.leader
                && !l.expired
            {
                return Err(format!(
                    "a server is active on {shown} ({}, clients at {}); stop every ixn-server on that database first",
                    l.holder, l.advertised
                ));
            }
            if target.interactions > 0 && !replace {
                return Err(format!(
                    "{shown} already holds {} interactions; give --replace to replace them, or choose an empty database",
                    target.interactions
                ));
            }
            let holder = format!("ixn store migrate (pid {})", std::process::id());
            let (mut store, taken) =
                ixn_pgstore::PgStore::open(to, &holder, "").map_err(|e| e.to_string())?;
            // The journal may hold Moves: fold them into each interaction's Put first.
            let snapshot = ixn_store::Shadow::new(&changes).snapshot();
            store.compact(&snapshot).map_err(|e| e.to_string())?;
            drop(store);
            drop(journal);
            // Give the lease up, so that the first server started on the database takes over
            // at once.
            if let Ok((mut lead, _)) = ixn_pgstore::Leadership::connect(to, &holder, "", LEASE) {
                let _ = lead.release(taken.epoch);
            }
            let moved = ixn_pgstore::inspect(to, LEASE)
                .map_err(|e| e.to_string())?
                .interactions;
            Ok(format!(
                "moved {moved} interactions from {} ({} records) to PostgreSQL {shown}{}",
                opened.path.display(),
                opened.records,
                if replace && target.interactions > 0 {
                    format!(" (replacing the {} it held)", target.interactions)
                } else {
                    String::new()
                }
            ))
        }
        (true, false) => {
            let dir = Path::new(to);
            if ixn_store::live_journal(dir)
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err(format!(
                    "{to} already holds a journal; give a new or empty directory"
                ));
            }
            let mut changes = Vec::new();
            ixn_pgstore::read_all(from, &mut |m| changes.push(m)).map_err(|e| e.to_string())?;
            let moved = changes.iter().filter(|m| is_put(m)).count();
            let (mut journal, opened) = ixn_store::Journal::open(dir).map_err(|e| e.to_string())?;
            journal.compact(&changes).map_err(|e| e.to_string())?;
            Ok(format!(
                "moved {moved} interactions from PostgreSQL {} to {}",
                ixn_pgstore::redact(from),
                opened.path.display()
            ))
        }
        _ => Err(format!(
            "--from {from:?} and --to {to:?}: one must be a data directory and the other a PostgreSQL URL (postgres://...)"
        )),
    }
}

fn read_live(dir: &Path) -> Result<(PathBuf, Vec<u8>), String> {
    match ixn_store::live_journal(dir) {
        Ok(Some(path)) => std::fs::read(&path)
            .map(|b| (path.clone(), b))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Ok(None) => Err(format!(
            "{} holds no journal (journal-NNNNNNNN.log); is it a data directory?",
            dir.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn journal(action: JournalCmd) -> ExitCode {
    match action {
        JournalCmd::Verify { dir } => {
            let (path, bytes) = match read_live(&dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ixn journal verify: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut changes = 0usize;
            match ixn_store::read_journal(&path, &bytes, &mut |_| changes += 1) {
                Ok(o) => {
                    println!(
                        "{}: format version {}, {} records, {changes} changes, {} bytes ({} of them preallocated)",
                        path.display(),
                        o.version,
                        o.records,
                        o.bytes,
                        o.bytes - o.used
                    );
                    match o.torn_tail {
                        None => {
                            println!("ok: every record is whole and its checksum right");
                            ExitCode::SUCCESS
                        }
                        Some((offset, n)) => {
                            println!(
                                "torn tail: {n} bytes at offset {offset} are an unfinished write (never acknowledged); the next start cuts them off"
                            );
                            ExitCode::from(1)
                        }
                    }
                }
                Err(e) => {
                    eprintln!("ixn journal verify: {e}");
                    ExitCode::from(2)
                }
            }
        }
        JournalCmd::Dump { dir } => {
            let (path, bytes) = match read_live(&dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ixn journal dump: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut out = std::io::stdout().lock();
            let mut n = 0usize;
            let mut failed = false;
            let result = ixn_store::read_journal(&path, &bytes, &mut |change| {
                n += 1;
                let line = match change.to_json() {
                    Ok(json) => format!("{{\"change\":{n},\"message\":{json}}}"),
                    Err(e) => format!("{{\"change\":{n},\"error\":{:?}}}", e.to_string()),
                };
                if writeln!(out, "{line}").is_err() {
                    failed = true;
                }
            });
            match result {
                Ok(_) if !failed => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("ixn journal dump: {e}");
                    ExitCode::from(2)
                }
            }
        }
        JournalCmd::Backup { dir, dest } => match backup(&dir, &dest) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ixn journal backup: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Copies the complete records of `dir`'s journal into `dest`, synced.
fn backup(dir: &Path, dest: &Path) -> Result<String, String> {
    let (path, bytes) = read_live(dir)?;
    let opened = ixn_store::read_journal(&path, &bytes, &mut |_| {}).map_err(|e| e.to_string())?;
    // What a start would keep: the records before a torn tail (a write in progress), without
    // the preallocated space after them.
    let keep = usize::try_from(opened.used).unwrap_or(bytes.len());
    if std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} is not empty; give a new or empty directory",
            dest.display()
        ));
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let target = dest.join("journal-00000001.log");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&target)?;
        f.write_all(bytes.get(..keep).unwrap_or_default())?;
        f.sync_all()?;
        std::fs::File::open(dest)?.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    Ok(format!(
        "backed up {} ({} records, {keep} bytes) to {}; start a server from it with --data-dir {}",
        path.display(),
        opened.records,
        target.display(),
        dest.display()
    ))
}

fn hash_password(password: Option<String>) -> ExitCode {
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("ixn hash-password: cannot read standard input: {e}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!(
            "ixn hash-password: the password is empty; give one as an argument or on standard input"
        );
        return ExitCode::from(2);
    }
    match ixn_config::password::hash(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ixn hash-password: {e}");
            ExitCode::FAILURE
        }
    }
}

fn with_runtime(f: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("ixn: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `NAME:TYPE` -> (name, type).
fn parse_client(s: &str) -> Result<(String, ClientType), String> {
    let (name, kind) = s
        .split_once(':')
        .ok_or_else(|| format!("--as {s:?}: expected NAME:TYPE, e.g. emailsrv:MediaServer"))?;
    let kind = ClientType::from_name(kind).ok_or_else(|| {
        format!("--as {s:?}: unknown client type {kind:?} (AgentApplication, MediaServer, RoutingEngine or Proxy)")
    })?;
    Ok((name.to_owned(), kind))
}

/// Connects to (the first of) `server.addr`, over TLS when asked.
async fn open(server: &Server) -> Result<Client, String> {
    let tls = server.creds.tls()?;
    let codec = ixn_codec::Codec::trusting(ixn_codec::Limits::default());
    let addrs = ixn_client::address_list(&server.addr);
    let first = addrs.first().map_or(server.addr.as_str(), String::as_str);
    Client::connect_maybe_tls(first, codec, tls.as_ref())
        .await
        .map_err(|e| e.to_string())
}

/// How long `connect` waits for a server of the list to be active (a takeover in progress).
const ACTIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects to the active server of `server.addr` and registers as `server.client` (with the
/// password, if any).
async fn connect(server: &Server) -> Result<Client, String> {
    let (name, kind) = parse_client(&server.client)?;
    let tls = server.creds.tls()?;
    let codec = ixn_codec::Codec::trusting(ixn_codec::Limits::default());
    let addrs = ixn_client::address_list(&server.addr);
    let who = ixn_client::Registration {
        name: &name,
        kind,
        password: server.creds.password.as_deref(),
    };
    Client::connect_active(&addrs, codec, tls.as_ref(), who, ACTIVE_PATIENCE)
        .await
        .map_err(|e| match e {
            e @ ixn_client::Error::EventError { .. } => {
                format!("cannot register as {name} ({kind}): {e}")
            }
            e => e.to_string(),
        })
}

async fn send(server: Server, messages: Vec<String>) -> ExitCode {
    // `-` reads messages from standard input, one JSON object per non-empty line.
    let messages = if messages == ["-"] {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim().is_empty() => {}
                Ok(l) => lines.push(l),
                Err(e) => {
                    eprintln!("ixn send: cannot read standard input: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        if lines.is_empty() {
            eprintln!("ixn send: no message on standard input (one JSON object per line)");
            return ExitCode::from(2);
        }
        lines
    } else {
        messages
    };
    let mut parsed = Vec::with_capacity(messages.len());
    for (i, text) in messages.iter().enumerate() {
        match Message::from_json(text) {
            Ok(m) => parsed.push(m),
            Err(e) => {
                eprintln!(
                    "ixn send: message {} is not a valid message: {e}\n  {text}",
                    i + 1
                );
                return ExitCode::from(2);
            }
        }
    }
    let register_first = parsed
        .first()
        .is_some_and(|m| m.id == MessageId::REQUEST_REGISTER_CLIENT);
    if register_first
        && let (Some(p), Some(first)) = (&server.creds.password, parsed.first_mut())
        && first.attrs.get(attr::PASSWORD).is_none()
    {
        *first = first.clone().with(attr::PASSWORD, p.clone());
    }
    let conn = if register_first {
        open(&server).await
    } else {
        connect(&server).await
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ixn send: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for msg in parsed {
        match conn.request(msg).await {
            Ok(reply) => {
                failed |= reply.id == MessageId::EVENT_ERROR;
                let _ = writeln!(
                    out,
                    "{}",
                    reply
                        .to_json()
                        .unwrap_or_else(|e| format!("{{\"unprintable\":\"{e}\"}}"))
                );
            }
            Err(e) => {
                eprintln!("ixn send: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = out.flush();
    let _ = conn.close().await;
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Logs in, subscribes, prints notifications until Ctrl-C; `Err` says what went wrong.
/// What `ixn watch` watches, as given on the command line.
struct WatchSpec {
    server: Server,
    tenant: i32,
    agent: String,
    place: String,
    workbins: Vec<String>,
    properties: bool,
}

#[allow(clippy::too_many_arguments)]
async fn watch(
    server: Server,
    tenant: i32,
    agent: String,
    place: String,
    workbins: Vec<String>,
    properties: bool,
    reconnect: bool,
) -> Result<ExitCode, String> {
    let spec = WatchSpec {
        server,
        tenant,
        agent,
        place,
        workbins,
        properties,
    };
    let mut c = watch_session(&spec).await?;
    eprintln!(
        "watching {} as agent {} at {} (Ctrl-C to stop)",
        spec.workbins.join(", "),
        spec.agent,
        spec.place
    );
    loop {
        tokio::select! {
            n = c.next_notification() => match n {
                Some(m) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", m.to_json().unwrap_or_default());
                    let _ = out.flush();
                }
                None => {
                    let why = c.broken_why();
                    if !reconnect {
                        return Err(format!("{why} (--reconnect keeps watching across restarts)"));
                    }
                    eprintln!("ixn watch: {why}; reconnecting");
                    tokio::select! {
                        () = reconnect_session(&mut c) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                    }
                    // Changes made while disconnected were not notified: say so, in the output.
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(
                        out,
                        "{{\"ixn\":\"reconnected\",\"note\":\"notifications may have been missed while disconnected: read the workbins' content again\"}}"
                    );
                    let _ = out.flush();
                    eprintln!("ixn watch: reconnected and subscribed again");
                }
            },
            _ = tokio::signal::ctrl_c() => {
                let _ = c.close().await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Connects again (to the active server of the list), logs in and subscribes again, until it
/// works, waiting longer between tries (up to 2 s).
async fn reconnect_session(c: &mut ixn_client::Resilient) {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        tokio::time::sleep(wait).await;
        match c.reconnect().await {
            Ok(()) => return,
            Err(e) => {
                eprintln!("ixn watch: {e}; trying again in {} ms", wait.as_millis());
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
        }
    }
}

/// Connects, registers, logs the agent in and subscribes to the workbins.
async fn watch_session(spec: &WatchSpec) -> Result<ixn_client::Resilient, String> {
    let WatchSpec {
        server,
        tenant,
        agent,
        place,
        workbins,
        properties,
    } = spec;
    let (tenant, properties) = (*tenant, *properties);
    let (name, kind) = parse_client(&server.client)?;
    let who = ixn_client::Registration {
        name: &name,
        kind,
        password: server.creds.password.as_deref(),
    };
    let mut c = ixn_client::Resilient::connect(
        &ixn_client::address_list(&server.addr),
        ixn_codec::Codec::trusting(ixn_codec::Limits::default()),
        server.creds.tls()?,
        who,
        ACTIVE_PATIENCE,
    )
    .await
    .map_err(|e| match e {
        e @ ixn_client::Error::EventError { .. } => {
            format!("cannot register as {name} ({kind}): {e}")
        }
        e => e.to_string(),
    })?;
    let ok = |what: String| move |e: ixn_client::Error| format!("{what}: {e}");
    c.setup(
        Message::new(MessageId::REQUEST_AGENT_LOGIN)
            .with(attr::TENANT_ID, tenant)
            .with(attr::AGENT_ID, agent.clone())
            .with(attr::PLACE_ID, place.clone()),
    )
    .await
    .map_err(ok(format!("cannot log in agent {agent} at {place}")))?;
    let types = c
        .client()
        .request_ok(
            Message::new(MessageId::REQUEST_WORKBIN_TYPES_INFO).with(attr::TENANT_ID, tenant),
        )
        .await
        .map_err(ok(format!(
            "cannot list the workbin types of tenant {tenant}"
        )))?;
    let types = types
        .attrs
        .get_list(attr::WORKBIN_TYPES)
        .cloned()
        .unwrap_or_default();
    for spec in workbins {
        let (name, owner) = match spec.split_once(':') {
            Some((n, o)) => (n, Some(o)),
            None => (spec.as_str(), None),
        };
        let kind = types
            .get_list(name)
            .and_then(|t| t.get_str(attr::OWNER_TYPE))
            .map(|s| s.to_string())
            .ok_or_else(|| {
                let known: Vec<&str> = types.iter().map(|(k, _)| &**k).collect();
                format!(
                    "no workbin type {name:?} in tenant {tenant} (known: {})",
                    known.join(", ")
                )
            })?;
        let key = match kind.as_str() {
            "Agent" => attr::WORKBIN_AGENT_ID,
            "Place" => attr::WORKBIN_PLACE_ID,
            "AgentGroup" => attr::WORKBIN_GROUP_ID,
            _ => attr::WORKBIN_PLACE_GROUP_ID,
        };
        let mut wb = KvList::new().with(attr::WORKBIN_TYPE_ID, name.to_owned());
        match owner {
            Some(o) => wb.push(key, o.to_owned()),
            None if matches!(kind.as_str(), "Agent" | "Place") => {}
            None => {
                return Err(format!(
                    "workbin {name} is owned by a {kind}: name it, e.g. --workbin {name}:<group>"
                ));
            }
        }
        c.setup(
            Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
                .with(attr::WORKBIN, wb)
                .with(attr::NOTIFY_PROPERTY_CHANGES, i32::from(properties)),
        )
        .await
        .map_err(ok(format!("cannot subscribe to {spec}")))?;
    }
    Ok(c)
}

/// Each scenario's configuration with every application made to authenticate: with
/// `password_hash`, and with a client certificate when `certificates`.
fn require_authentication(
    scenarios: Vec<Scenario>,
    password_hash: Option<&str>,
    certificates: bool,
) -> Result<Vec<Scenario>, String> {
    if password_hash.is_none() && !certificates {
        return Ok(scenarios);
    }
    scenarios
        .into_iter()
        .map(|mut s| {
            if let Some(apps) = s
                .config_json
                .get_mut("application")
                .and_then(serde_json::Value::as_array_mut)
            {
                for app in apps.iter_mut().filter_map(serde_json::Value::as_object_mut) {
                    // A scenario's own password_hash is kept (it tests passwords itself).
                    if let Some(h) = password_hash
                        && !app.contains_key("password_hash")
                    {
                        app.insert("password_hash".into(), h.into());
                    }
                    if certificates {
                        app.insert("client_certificate".into(), true.into());
                    }
                }
            }
            let config = ixn_config::Config::from_json_value(s.config_json.clone(), &s.file)
                .map_err(|e| format!("{}: {e}", s.file))?;
            s.config = std::sync::Arc::new(config);
            Ok(s)
        })
        .collect()
}

fn conformance(
    dir: &Path,
    embedded: bool,
    server_bin: Option<&Path>,
    server_args: &[String],
    creds: &Creds,
) -> ExitCode {
    let scenarios = match load_dir(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ixn conformance: {e}");
            return ExitCode::from(2);
        }
    };
    if embedded && (creds.wants_tls() || creds.password.is_some()) {
        eprintln!(
            "ixn conformance: --embedded has no connections to secure; drop --tls, --ca, --cert and --password, or run over TCP"
        );
        return ExitCode::from(2);
    }
    if creds.wants_tls() && server_bin.is_none() {
        eprintln!(
            "ixn conformance: --tls, --ca and --cert need --server-bin (and --server-arg=--tls-cert=... for the server's side)"
        );
        return ExitCode::from(2);
    }
    let hash = match creds.password.as_deref().map(ixn_config::password::hash) {
        None => None,
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            eprintln!("ixn conformance: cannot hash --password: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scenarios = match require_authentication(scenarios, hash.as_deref(), creds.cert.is_some()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ixn conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let mut credentials = ixn_conformance::Credentials {
        tls: None,
        password: creds.password.clone(),
    };
    if creds.wants_tls() {
        let config = creds
            .files()
            .and_then(|f| ixn_tls::client_config(&f).map_err(|e| e.to_string()));
        match config {
            Ok(c) => {
                let name = creds
                    .server_name
                    .clone()
                    .unwrap_or_else(|| "localhost".to_owned());
                credentials.tls = Some((c, name));
            }
            Err(e) => {
                eprintln!("ixn conformance: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut report = std::io::stdout();
    let summary = if embedded {
        run_all(&scenarios, &mut Embedded, &mut report)
    } else if let Some(bin) = server_bin {
        if !bin.is_file() {
            eprintln!(
                "ixn conformance: --server-bin {}: no such file (build it with `cargo build --release -p ixn-server`)",
                bin.display()
            );
            return ExitCode::from(2);
        }
        run_all(
            &scenarios,
            &mut Tcp::new(|s: &Scenario| spawn_server(bin, server_args, s))
                .with_credentials(credentials),
            &mut report,
        )
    } else {
        let rt = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("ixn conformance: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let handle = rt.handle().clone();
        run_all(
            &scenarios,
            &mut Tcp::new(|s: &Scenario| {
                let engine = ixn_core::Engine::new(s.config.clone(), seed());
                let started = handle
                    .block_on(ixn_tcp::start(
                        SocketAddr::from(([127, 0, 0, 1], 0)),
                        engine,
                        std::time::Duration::from_secs(5),
                    ))
                    .map_err(|e| e.to_string())?;
                Ok(Running {
                    addr: started.addr,
                    guard: Box::new(started),
                })
            })
            .with_credentials(credentials),
            &mut report,
        )
    };
    match summary {
        Ok(s) if s.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ixn conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A server process for one scenario; killed (and its configuration file removed) on drop.
struct ServerProcess {
    child: Child,
    config: PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn spawn_server(bin: &Path, extra: &[String], s: &Scenario) -> Result<Running, String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let config =
        std::env::temp_dir().join(format!("ixn-conformance-{}-{n}.json", std::process::id()));
    std::fs::write(&config, s.config_json.to_string())
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--ephemeral",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let guard = |child| ServerProcess {
        child,
        config: config.clone(),
    };
    let Some(stdout) = child.stdout.take() else {
        return Err("no stdout from the server".into());
    };
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let addr = line
        .trim()
        .strip_prefix("ixn-server listening on ")
        .and_then(|a| a.parse::<SocketAddr>().ok());
    match (read, addr) {
        (Ok(_), Some(addr)) => Ok(Running {
            addr,
            guard: Box::new(guard(child)),
        }),
        _ => {
            drop(guard(child));
            Err(format!(
                "{} did not report its address (first stdout line: {:?})",
                bin.display(),
                line.trim()
            ))
        }
    }
}

/// A seed for an in-process engine (hash flooding resistance, distinct ids across runs).
fn seed() -> u64 {
    use std::hash::BuildHasher;
    std::hash::RandomState::new().hash_one(std::process::id())
}
