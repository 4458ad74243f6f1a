//! `ixn`: the command line for the ixn workbin server.
//!
//! - `ixn send '<json message>'...`: sends requests, prints each reply as a JSON line; exits 1
//!   if any reply is EventError.
//! - `ixn watch --agent A --place P --workbin NAME[:OWNER]...`: logs in, subscribes, prints
//!   notifications as JSON lines until interrupted.
//! - `ixn find CONDITION` and `ixn queue NAME`: what sits where, through a snapshot, as a table.
//! - `ixn conformance DIR`: runs a folder of conformance scenarios against a fresh server each.
//! - `ixn hash-password`: prints an argon2 hash for an agent's `password_hash`.

// A command-line program: speaking to its user on stdout and stderr is its job.
#![allow(clippy::print_stderr, clippy::print_stdout)]

mod args;
mod conformance_cmd;
mod find_cmd;
mod live;
mod store_cmd;

use args::{Cli, Cmd, StoreCmd};
use clap::Parser;
use conformance_cmd::conformance;
use live::{send, watch};
use std::process::ExitCode;
use store_cmd::{journal, migrate};

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
        Cmd::Find {
            server,
            find,
            condition,
        } => with_runtime(find_cmd::find(server, find, condition)),
        Cmd::Queue { server, find, name } => with_runtime(find_cmd::find(
            server,
            find,
            find_cmd::queue_condition(&name),
        )),
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
