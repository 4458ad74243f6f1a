//! Starting `ixn-server` once its options and configuration are read: the store recovered
//! (so that "listening" means ready), the listeners bound, the banner printed (its first line
//! is for programs: tests and `ixn conformance --server-bin` read the address from it), then
//! serving until SIGINT or SIGTERM.

use super::args::{Args, SyncPoll, parse_addr};
use ixn_config::Config;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where interactions live, decided before the runtime starts.
pub(crate) struct Plan {
    http_addr: Option<SocketAddr>,
    postgres: Option<String>,
    recovered: Option<ixn_server::Recovered>,
}

/// Decides the web API's address and the store, and recovers the journal (before anything
/// listens). `Err` once the refusal is printed.
pub(crate) fn plan(args: &Args, config: &Arc<Config>) -> Result<Plan, ExitCode> {
    let http_addr = match args.http.as_deref() {
        Some("off") => None,
        Some(text) => match parse_addr(text) {
            Ok(a) => Some(a),
            Err(e) => {
                say!("ixn-server: bad --http: {e}, or off");
                return Err(ExitCode::from(2));
            }
        },
        None => config.http_listen,
    };
    let postgres = if args.ephemeral {
        None
    } else {
        args.postgres(config)
    };
    if postgres.is_none() && !args.ephemeral && args.data_dir.exists() && !args.data_dir.is_dir() {
        say!(
            "ixn-server: --data-dir {} is a file, not a directory; give a directory (it is created if missing), or --ephemeral",
            args.data_dir.display()
        );
        return Err(ExitCode::from(2));
    }
    // Sockets and the store share the descriptor limit: take all the system allows, and size
    // the connection caps from it (ixn_server::serve_engine).
    match ixn_server::raise_fd_limit() {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    // Recovery first, so that "listening" means ready.
    let recovered = if args.ephemeral || postgres.is_some() {
        None
    } else {
        let seed =
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id());
        match ixn_server::recover(&args.data_dir, Arc::clone(config), seed) {
            Ok(r) => {
                log_recovery(&r);
                Some(r)
            }
            Err(e) => {
                say!(
                    "ixn-server: cannot open the data directory {}: {e}",
                    args.data_dir.display()
                );
                return Err(ExitCode::from(2));
            }
        }
    };
    Ok(Plan {
        http_addr,
        postgres,
        recovered,
    })
}

/// The listeners a start binds.
struct Bound {
    native: TcpListener,
    http: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

async fn bind_all(args: &Args, config: &Config, plan: &Plan) -> Result<Bound, String> {
    let native = ixn_server::bind(args.listen)
        .await
        .map_err(|e| e.to_string())?;
    let http = match plan.http_addr {
        Some(a) => Some(
            ixn_server::bind_http(a, config)
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let metrics = match args.metrics {
        Some(a) => Some(
            ixn_server::bind(a)
                .await
                .map_err(|e| format!("--metrics: {e}"))?,
        ),
        None => None,
    };
    Ok(Bound {
        native,
        http,
        metrics,
    })
}

/// Binds, prints the banner and serves until a signal; the exit code.
pub(crate) async fn run(
    args: Args,
    config: Arc<Config>,
    tls: Option<ixn_tls::Acceptor>,
    plan: Plan,
) -> ExitCode {
    let bound = match bind_all(&args, &config, &plan).await {
        Ok(b) => b,
        Err(e) => {
            // A port in use or not allowed: a restart does not cure it.
            say!("ixn-server: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = bound.native.local_addr().map_or(args.listen, |a| a);
    let advertised = args
        .advertise
        .clone()
        .or_else(|| config.store.as_ref().and_then(|s| s.advertise.clone()))
        .unwrap_or_else(|| addr.to_string());
    print_banner(
        &args,
        &config,
        tls.is_some(),
        &bound,
        addr,
        &plan,
        &advertised,
    );
    let options = ixn_server::Options {
        drain_timeout: args.drain_timeout,
        http: bound.http,
        tls,
        metrics: bound.metrics,
        fault: fault_from_env(),
        sync_poll: match args.sync_poll {
            SyncPoll::Auto => ixn_tcp::sync_poll_for_this_machine(),
            SyncPoll::Window(d) => d,
        },
        ..Default::default()
    };
    let listener = bound.native;
    let served = match (plan.recovered, plan.postgres) {
        (_, Some(url)) => {
            let shared = ixn_server::SharedStore {
                url,
                lease: args.lease(&config),
                advertised,
            };
            ixn_server::serve_shared(listener, config, shared, options, shutdown_signal()).await
        }
        (Some(r), None) => {
            let store: Box<dyn ixn_server::Store> =
                Box::new(r.store.with_min_bytes(args.compact_at));
            ixn_server::serve_engine(listener, r.engine, Some(store), options, shutdown_signal())
                .await
        }
        (None, None) => {
            tracing::warn!(
                "--ephemeral: interactions are kept in memory only and are lost when the server stops"
            );
            ixn_server::serve(listener, config, options, shutdown_signal()).await
        }
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("ixn-server: {e}");
            if e.needs_a_fix() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The banner on stdout: where it listens, where the web API and the metrics are, the demo
/// configuration's hint, where interactions are kept, and how to stop it.
fn print_banner(
    args: &Args,
    config: &Config,
    tls: bool,
    bound: &Bound,
    addr: SocketAddr,
    plan: &Plan,
    advertised: &str,
) {
    let metrics_addr = bound.metrics.as_ref().and_then(|l| l.local_addr().ok());
    let http_addr = bound.http.as_ref().and_then(|l| l.local_addr().ok());
    let mut out = std::io::stdout().lock();
    let scheme = if tls { "https" } else { "http" };
    let _ = writeln!(out, "ixn-server listening on {addr}");
    if let Some(h) = http_addr {
        let _ = writeln!(
            out,
            "web API listening on {scheme}://{h} (CometD at {scheme}://{h}{})",
            config.http.notifications_path
        );
    }
    if let Some(m) = metrics_addr {
        let _ = writeln!(out, "metrics at http://{m}/metrics");
    } else if let Some(h) = http_addr {
        let _ = writeln!(out, "metrics at {scheme}://{h}/metrics");
    }
    if args.config.is_none() {
        // Over TLS the client needs the authority that signed the server's certificate.
        let ca = if tls {
            " --ca CA_FILE (the certificate of the authority that signed the server's)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "no --config given: running the built-in demo configuration (tenant 101; agents a1 a2 a3 sup1; \
             places p1-p4; workbins Drafts Review Team Desk Floor; applications desk emailsrv router gws)\n\
             try: ./target/release/ixn watch --addr {addr} --agent a1 --place p1 --workbin Drafts{ca}"
        );
    }
    let store = match (&plan.recovered, &plan.postgres) {
        (_, Some(url)) => format!(
            "store: PostgreSQL {} (shared: active while this server holds the lease, else standing by; clients are sent to {advertised} while it is active)",
            ixn_pgstore::redact(url)
        ),
        (Some(r), None) => format!(
            "data directory: {} ({} interactions loaded)",
            args.data_dir.display(),
            r.restored.interactions
        ),
        (None, None) => {
            "--ephemeral: nothing is stored; a restart loses every interaction".to_owned()
        }
    };
    let _ = writeln!(out, "{store}");
    let _ = writeln!(
        out,
        "stop it with Ctrl-C or SIGTERM: connections are drained and closed, then it exits 0"
    );
    let _ = out.flush();
}

/// `IXN_FAULT=engine-panic`: the engine task panics at its first message (tests use it to check
/// that the process exits non-zero rather than living on without an engine).
fn fault_from_env() -> Option<ixn_server::Fault> {
    match std::env::var("IXN_FAULT").ok()?.as_str() {
        "engine-panic" => Some(ixn_server::Fault::EnginePanic),
        other => {
            tracing::warn!(value = other, "unknown IXN_FAULT ignored");
            None
        }
    }
}

fn log_recovery(r: &ixn_server::Recovered) {
    if let Some((offset, bytes)) = r.opened.torn_tail {
        tracing::warn!(
            file = %r.opened.path.display(),
            offset,
            bytes,
            "the journal ended with a torn write (never acknowledged); it was cut off"
        );
    }
    for w in &r.restored.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        file = %r.opened.path.display(),
        created = r.opened.created,
        records = r.opened.records,
        journal_bytes = r.opened.bytes,
        changes = r.restored.changes,
        interactions = r.restored.interactions,
        relocated = r.restored.relocated,
        dropped = r.restored.dropped,
        millis = r.elapsed.as_millis() as u64,
        "store loaded and compacted"
    );
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}
