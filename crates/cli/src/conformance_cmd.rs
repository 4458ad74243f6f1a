//! `ixn conformance DIR`: runs a folder of scenarios against the bare engine, an in-process
//! server over TCP, or a fresh server binary per scenario (optionally over TLS, with every
//! application made to authenticate).

use crate::args::Creds;
use ixn_conformance::{Embedded, Running, Scenario, Tcp, TransportError, load_dir, run_all};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

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

/// Why `ixn conformance` did not run its scenarios.
enum Refusal {
    /// The command line or the scenarios are wrong (exit 2).
    Usage(String),
    /// Something failed at run time (exit 1).
    Failed(String),
}

pub(crate) fn conformance(
    dir: &Path,
    embedded: bool,
    server_bin: Option<&Path>,
    server_args: &[String],
    creds: &Creds,
) -> ExitCode {
    let ran = prepare(dir, embedded, server_bin, creds).and_then(|(scenarios, credentials)| {
        run(&scenarios, embedded, server_bin, server_args, credentials)
    });
    match ran {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(Refusal::Usage(e)) => {
            eprintln!("ixn conformance: {e}");
            ExitCode::from(2)
        }
        Err(Refusal::Failed(e)) => {
            eprintln!("ixn conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The scenarios (made to authenticate as `creds` ask) and the credentials to connect with.
fn prepare(
    dir: &Path,
    embedded: bool,
    server_bin: Option<&Path>,
    creds: &Creds,
) -> Result<(Vec<Scenario>, ixn_conformance::Credentials), Refusal> {
    let scenarios = load_dir(dir).map_err(|e| Refusal::Usage(e.to_string()))?;
    if embedded && (creds.wants_tls() || creds.password.is_some()) {
        return Err(Refusal::Usage(
            "--embedded has no connections to secure; drop --tls, --ca, --cert and --password, or run over TCP".into(),
        ));
    }
    if creds.wants_tls() && server_bin.is_none() {
        return Err(Refusal::Usage(
            "--tls, --ca and --cert need --server-bin (and --server-arg=--tls-cert=... for the server's side)".into(),
        ));
    }
    let hash = creds
        .password
        .as_deref()
        .map(ixn_config::password::hash)
        .transpose()
        .map_err(|e| Refusal::Failed(format!("cannot hash --password: {e}")))?;
    let scenarios = require_authentication(scenarios, hash.as_deref(), creds.cert.is_some())
        .map_err(Refusal::Usage)?;
    let mut credentials = ixn_conformance::Credentials {
        tls: None,
        password: creds.password.clone(),
    };
    if creds.wants_tls() {
        let config = creds
            .files()
            .and_then(|f| ixn_tls::client_config(&f).map_err(|e| e.to_string()))
            .map_err(Refusal::Usage)?;
        let name = creds
            .server_name
            .clone()
            .unwrap_or_else(|| "localhost".to_owned());
        credentials.tls = Some((config, name));
    }
    Ok((scenarios, credentials))
}

/// Runs every scenario, reporting on stdout: whether all passed.
fn run(
    scenarios: &[Scenario],
    embedded: bool,
    server_bin: Option<&Path>,
    server_args: &[String],
    credentials: ixn_conformance::Credentials,
) -> Result<bool, Refusal> {
    let mut report = std::io::stdout();
    let summary = if embedded {
        run_all(scenarios, &mut Embedded, &mut report)
    } else if let Some(bin) = server_bin {
        if !bin.is_file() {
            return Err(Refusal::Usage(format!(
                "--server-bin {}: no such file (build it with `cargo build --release -p ixn-server`)",
                bin.display()
            )));
        }
        run_all(
            scenarios,
            &mut Tcp::new(|s: &Scenario| spawn_server(bin, server_args, s))
                .with_credentials(credentials),
            &mut report,
        )
    } else {
        let rt = tokio::runtime::Runtime::new()
            .map_err(|e| Refusal::Failed(format!("cannot start the runtime: {e}")))?;
        let handle = rt.handle().clone();
        run_all(
            scenarios,
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
    summary
        .map(|s| s.failed == 0)
        .map_err(|e| Refusal::Failed(e.to_string()))
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

fn spawn_server(bin: &Path, extra: &[String], s: &Scenario) -> Result<Running, TransportError> {
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
            )
            .into())
        }
    }
}

/// A seed for an in-process engine (hash flooding resistance, distinct ids across runs).
fn seed() -> u64 {
    use std::hash::BuildHasher;
    std::hash::RandomState::new().hash_one(std::process::id())
}
