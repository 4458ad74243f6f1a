//! `ixn-server`: runs the workbin server.

// A command-line program: speaking to its user on stdout and stderr is its job.
#![allow(clippy::print_stderr, clippy::print_stdout)]

/// Writes a line to stderr, ignoring a failure (a full or closed stderr must not panic the
/// server, as `eprintln!` would).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;

use clap::Parser;
use cli::args::{Args, LogFormat, log_filter};
use ixn_config::{Config, DEMO_TOML};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = init_logs(&args) {
        say!("ixn-server: {e}");
        return ExitCode::from(2);
    }
    let (config, tls) = match load(&args) {
        Ok(loaded) => loaded,
        Err(e) => {
            say!("ixn-server: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return cli::check::check(&args, &config, tls.as_ref());
    }
    let plan = match cli::start::plan(&args, &config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say!("ixn-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        workers = runtime.metrics().num_workers(),
        "threads serving connections"
    );
    runtime.block_on(cli::start::run(args, config, tls, plan))
}

/// Logs to stderr, filtered by RUST_LOG or `--log-level`, in `--log-format`.
fn init_logs(args: &Args) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => {
            log_filter(&env).map_err(|e| format!("bad RUST_LOG {env:?}: {e}"))
        }
        _ => log_filter(&args.log_level)
            .map_err(|e| format!("bad --log-level {:?}: {e}", args.log_level)),
    }?;
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A failed log write is dropped: never reported on stderr (which may be the failing
    // writer) and never a panic.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_ansi(colour);
    match args.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    Ok(())
}

/// The configuration (`--config`, or the built-in demo) and TLS, checked as a start needs
/// them.
fn load(args: &Args) -> Result<(Arc<Config>, Option<ixn_tls::Acceptor>), String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path),
        None => Config::from_toml_str(DEMO_TOML, "built-in demo configuration"),
    }
    .map_err(|e| e.to_string())?;
    if let Some(on) = args.console {
        config.http.console = on;
    }
    if let Some(store) = args.store.as_deref()
        && store != "journal"
        && !ixn_pgstore::is_url(store)
    {
        return Err(format!(
            "--store {store:?} is neither `journal` nor a PostgreSQL URL; give e.g. --store postgres://ixn:secret@localhost/ixn"
        ));
    }
    let tls = args
        .tls_files(&config)
        .and_then(|f| ixn_server::tls(f, &config).map_err(|e| e.to_string()))?;
    Ok((Arc::new(config), tls))
}
