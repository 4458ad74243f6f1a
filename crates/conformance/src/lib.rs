//! Runs conformance scenario files (the format of `conformance/README.md`) against a
//! fresh engine or server per scenario.
//!
//! - [`load_dir`] reads every `*.json` scenario of a folder (any folder of such files).
//! - [`run_all`] runs them through a [`Connector`] and prints one line per scenario, then
//!   `N passed, N failed`.
//! - [`Embedded`] is the connector for the bare engine (no sockets); [`Tcp`] talks to a fresh
//!   server per scenario over real sockets (the caller says how to start one).
//!
//! ```no_run
//! let scenarios = ixn_conformance::load_dir("conformance".as_ref())?;
//! let summary = ixn_conformance::run_all(&scenarios, &mut ixn_conformance::Embedded, &mut std::io::stderr())?;
//! assert_eq!(summary.failed, 0);
//! # Ok::<(), ixn_conformance::Error>(())
//! ```

#![warn(missing_docs)]

mod connector;
mod embedded;
mod error;
mod matching;
mod scenario;
mod tcp;

pub use connector::{Connector, Session};
pub use embedded::Embedded;
pub use error::{Error, Failure, Mismatch, TransportError};
pub use matching::{matches, substitute};
pub use scenario::{Action, Scenario, Step, load_dir, load_file};
pub use tcp::{Credentials, Running, Tcp};

use ixn_codec::Message;
use std::collections::HashMap;
use std::io::Write;

/// Totals of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios that passed.
    pub passed: usize,
    /// Scenarios that failed.
    pub failed: usize,
}

/// Runs every scenario, writes `ok <file>: <name>` or `FAIL <file>: <why>` per scenario and the
/// closing `N passed, N failed` line to `report`.
pub fn run_all(
    scenarios: &[Scenario],
    connector: &mut dyn Connector,
    report: &mut dyn Write,
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    for s in scenarios {
        match run_one(s, connector) {
            Ok(()) => {
                summary.passed += 1;
                writeln!(report, "ok   {}: {}", s.file, s.name).map_err(Error::Report)?;
            }
            Err(why) => {
                summary.failed += 1;
                writeln!(report, "FAIL {}: {why}", s.file).map_err(Error::Report)?;
            }
        }
    }
    writeln!(
        report,
        "{} passed, {} failed",
        summary.passed, summary.failed
    )
    .map_err(Error::Report)?;
    Ok(summary)
}

/// Runs one scenario: `Err` names the first step that did not hold and what arrived instead.
pub fn run_one(s: &Scenario, connector: &mut dyn Connector) -> Result<(), Failure> {
    let fail = |at: String| {
        move |why: &dyn std::fmt::Display| Failure {
            at: at.clone(),
            why: why.to_string(),
        }
    };
    let mut session = connector
        .start(s)
        .map_err(|e| fail("start".into())(&format!("cannot start: {e}")))?;
    let mut binds: HashMap<String, serde_json::Value> = HashMap::new();
    let mut open: Vec<String> = Vec::new();
    for (i, step) in s.steps.iter().enumerate() {
        let conn = step.via.as_deref().unwrap_or(&step.client).to_owned();
        let at = |what: &str| fail(format!("step {} ({} {what})", i + 1, step.client));
        if !open.contains(&conn) && !matches!(step.action, Action::ExpectClosed) {
            open.push(conn.clone());
        }
        match &step.action {
            Action::Send(value) => {
                let value = substitute(value, &binds).map_err(|e| at("send")(&e))?;
                let msg = Message::from_json_value(value)
                    .map_err(|e| at("send")(&format!("the message is not valid: {e}")))?;
                session.send(&conn, &msg).map_err(|e| at("send")(&e))?;
            }
            Action::Expect(want) => {
                let got = session.recv(&conn).map_err(|e| at("expect")(&e))?;
                let Some(got) = got else {
                    return Err(at("expect")(&"nothing arrived"));
                };
                let got = got.to_json_value().map_err(|e| at("expect")(&e))?;
                let want = substitute(want, &binds).map_err(|e| at("expect")(&e))?;
                matches(&want, &got, &mut binds)
                    .map_err(|why| at("expect")(&format!("{why}; arrived {got}")))?;
            }
            Action::ExpectSilence => {
                if let Some(m) = session
                    .silent(&conn)
                    .map_err(|e| at("expect_silence")(&e))?
                {
                    return Err(at("expect_silence")(&format!(
                        "expected silence, arrived {}",
                        show(&m)
                    )));
                }
            }
            Action::Disconnect => {
                session
                    .disconnect(&conn)
                    .map_err(|e| at("disconnect")(&e))?;
                open.retain(|c| c != &conn);
            }
            Action::ExpectClosed => {
                if !session.closed(&conn).map_err(|e| at("expect_closed")(&e))? {
                    let left = session.recv(&conn).ok().flatten();
                    return Err(at("expect_closed")(&format!(
                        "the connection is still open{}",
                        left.map(|m| format!(" and holds {}", show(&m)))
                            .unwrap_or_default()
                    )));
                }
                open.retain(|c| c != &conn);
            }
        }
    }
    for conn in &open {
        let at = fail(format!("end ({conn})"));
        if let Some(m) = session.silent(conn).map_err(|e| at(&e))? {
            return Err(fail("end".into())(&format!(
                "client {conn} has an unexpected message {}",
                show(&m)
            )));
        }
    }
    Ok(())
}

fn show(m: &Message) -> String {
    m.to_json().unwrap_or_else(|_| format!("{m:?}"))
}
