//! `ixn-server --check`: what a start would use, each part checked as the start would read it
//! (the configuration, the web API's needs of it, TLS, client authentication, the store), one
//! line each, without serving. Exits 2 at the first part that would stop a start.

use super::args::Args;
use ixn_config::Config;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs the check; what it prints goes to stdout, refusals to stderr.
pub(crate) fn check(
    args: &Args,
    config: &Arc<Config>,
    tls: Option<&ixn_tls::Acceptor>,
) -> ExitCode {
    let origin = args
        .config
        .as_ref()
        .map_or("the built-in demo configuration".to_owned(), |p| {
            p.display().to_string()
        });
    println!(
        "configuration {origin}: ok (tenants {}, applications {}, agents {}, places {}, agent groups {}, place groups {}, workbin types {}, queues {})",
        config.tenants.len(),
        config.applications.len(),
        config.agents().len(),
        config.places().len(),
        config.agent_groups().len(),
        config.place_groups().len(),
        config.workbins().len(),
        config.queues().len()
    );
    if config.applications.is_empty() {
        say!(
            "ixn-server: {origin} defines no [[application]], so no client could register; add the applications that connect (docs/configuration.md)"
        );
        return ExitCode::from(2);
    }
    if let Err(code) = check_http(args, config, tls) {
        return code;
    }
    print_tls(tls);
    print_authentication(config);
    if args.ephemeral {
        println!("data directory: none (--ephemeral)");
        return ExitCode::SUCCESS;
    }
    match args.postgres(config) {
        Some(url) => check_postgres(&url, args.lease(config)),
        None => check_journal(args, config),
    }
}

/// The web API: whether it would listen, and whether the configuration can run it.
fn check_http(
    args: &Args,
    config: &Config,
    tls: Option<&ixn_tls::Acceptor>,
) -> Result<(), ExitCode> {
    let http = match args.http.as_deref() {
        Some("off") => None,
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                say!(
                    "ixn-server: bad --http {text:?}: {e}; give an address such as 127.0.0.1:8080, or off"
                );
                return Err(ExitCode::from(2));
            }
        },
        None => config.http_listen,
    };
    match http {
        Some(addr) => match ixn_gateway::check_config(config) {
            Ok(()) => println!(
                "web API: would listen on {}://{addr}",
                if tls.is_some() { "https" } else { "http" }
            ),
            Err(e) => {
                say!("ixn-server: {e}");
                return Err(ExitCode::from(2));
            }
        },
        None => println!("web API: off"),
    }
    Ok(())
}

fn print_tls(tls: Option<&ixn_tls::Acceptor>) {
    match tls {
        Some(t) => println!(
            "TLS: certificate {} and key {} ok{}",
            t.files().cert.display(),
            t.files().key.display(),
            t.files()
                .client_ca
                .as_ref()
                .map_or(String::new(), |ca| format!(
                    "; client certificates verified against {}",
                    ca.display()
                ))
        ),
        None => println!("TLS: off"),
    }
}

fn print_authentication(config: &Config) {
    let mut authenticated: Vec<&str> = config
        .applications
        .iter()
        .filter(|(_, a)| a.required())
        .map(|((n, _), _)| n.as_str())
        .collect();
    authenticated.sort_unstable();
    println!(
        "client authentication: {}",
        if authenticated.is_empty() {
            "none (every configured application registers without a password or certificate)"
                .to_owned()
        } else {
            format!("required of {}", authenticated.join(" "))
        }
    );
}

/// The shared store: reachable, its schema, and whether another server is active.
fn check_postgres(url: &str, lease: std::time::Duration) -> ExitCode {
    match ixn_pgstore::inspect(url, lease) {
        Ok(i) => {
            let redacted = ixn_pgstore::redact(url);
            match (i.schema, &i.leader) {
                (0, _) | (_, None) => println!(
                    "store: PostgreSQL {redacted}: reachable, no ixn schema yet (a start creates it; the user may)"
                ),
                (schema, Some(l)) => println!(
                    "store: PostgreSQL {redacted}: schema version {schema}, {} interactions stored; {}",
                    i.interactions,
                    if l.expired {
                        "no server active".to_owned()
                    } else {
                        format!(
                            "active server {} ({}, epoch {}): a start here would stand by",
                            l.advertised, l.holder, l.epoch
                        )
                    }
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("ixn-server: the store would not open: {e}");
            ExitCode::from(2)
        }
    }
}

/// The data directory's journal, read as a start would read it.
fn check_journal(args: &Args, config: &Arc<Config>) -> ExitCode {
    let c = match ixn_server::check(&args.data_dir, Arc::clone(config)) {
        Ok(c) => c,
        Err(e) => {
            say!(
                "ixn-server: the data directory {} would not start: {e}",
                args.data_dir.display()
            );
            return ExitCode::from(2);
        }
    };
    let Some(path) = &c.journal else {
        println!(
            "data directory {}: no journal yet (a start creates one)",
            args.data_dir.display()
        );
        return ExitCode::SUCCESS;
    };
    println!(
        "data directory {}: journal {}, {} records, {} bytes; {} interactions stored ({} would be put in a queue: their location is no longer configured)",
        args.data_dir.display(),
        path.display(),
        c.opened.records,
        c.opened.bytes,
        c.restored.interactions,
        c.restored.relocated
    );
    if let Some((offset, bytes)) = c.opened.torn_tail {
        println!(
            "  a torn write at byte {offset} ({bytes} bytes, never acknowledged) would be cut off"
        );
    }
    for w in &c.restored.warnings {
        println!("  {w}");
    }
    ExitCode::SUCCESS
}
