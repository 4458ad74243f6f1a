//! The `ixn` command line, run as a user would: the README's walkthrough (server, watch, send),
//! the error cases, and `ixn conformance` in its three modes.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;
use common::*;

/// The README's watch and send arguments (the test checks the README shows exactly these).
const WATCH: &[&str] = &[
    "watch",
    "--agent",
    "a1",
    "--place",
    "p1",
    "--workbin",
    "Drafts",
];
const SUBMIT: &str = r#"{"message":"RequestSubmit","TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX-HELLO-1","UserData":{"Subject":"Hello"}}"#;
const PLACE: &str = r#"{"message":"RequestPlaceInWorkbin","InteractionId":"IX-HELLO-1","Workbin":{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"}}"#;

#[test]
fn readme_walkthrough_watch_shows_what_send_places() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("ixn {}", WATCH.join(" "))),
        "README shows the watch command"
    );
    assert!(
        readme.contains(&format!("'{SUBMIT}'")) && readme.contains(&format!("'{PLACE}'")),
        "README shows the send command"
    );
    assert!(
        readme.contains("cargo run --release -p ixn-server"),
        "README shows the run command"
    );

    let (_server, addr) = server();
    let mut watch = Command::new(IXN)
        .args(WATCH)
        .args(["--addr", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("watching Drafts"), "{line}");
    let mut watch_out = BufReader::new(watch.stdout.take().unwrap());
    let watch = Reaped(watch);

    let (code, out, err) = ixn(&[
        "send",
        "--addr",
        &addr,
        "--as",
        "emailsrv:MediaServer",
        SUBMIT,
        PLACE,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let replies: Vec<&str> = out.lines().collect();
    assert_eq!(replies.len(), 2, "{out}");
    assert!(replies[0].contains(r#""message":"EventAck""#) && replies[0].contains("IX-HELLO-1"));

    let mut notification = String::new();
    watch_out.read_line(&mut notification).unwrap();
    let n: serde_json::Value = serde_json::from_str(&notification).unwrap();
    assert_eq!(n["message"], "EventWorkbinContentChanged");
    assert_eq!(n["WorkbinContentOperation"], "PlacedIn");
    assert_eq!(n["Interaction"]["InteractionId"], "IX-HELLO-1");
    drop(watch);
}

#[test]
fn send_reports_errors_clearly() {
    let (_server, addr) = server();
    let (code, out, err) = ixn(&[
        "send",
        "--addr",
        &addr,
        r#"{"message":"RequestGetWorkbinContent","Workbin":{"WorkbinTypeId":"Drafts"}}"#,
    ]);
    assert_eq!(code, 1, "an EventError reply exits 1");
    assert!(out.contains(r#""ErrorCode":5"#), "{out}");
    assert!(
        err.contains("message 1: EventError 5 AgentNotLoggedIn: "),
        "the error's name beside its code, for people: {err}"
    );

    let (code, _, err) = ixn(&[
        "send",
        "--addr",
        &addr,
        r#"{"message":"Ping","ReferenceId":}"#,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("message 1 is not a valid message") && err.contains("line 1 column"),
        "{err}"
    );

    let (code, _, err) = ixn(&[
        "send",
        "--addr",
        &addr,
        "--as",
        "desk:Desktop",
        r#"{"message":"Ping"}"#,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown client type \"Desktop\""), "{err}");

    // Nothing listens on this port (bound, then released).
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, _, err) = ixn(&["send", "--addr", &free, r#"{"message":"Ping"}"#]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("cannot connect to {free}"))
            && err.contains("is ixn-server running")
            && err.contains("cargo run --release -p ixn-server"),
        "{err}"
    );
    // One address fails at once, about that address (not after a search for an active server
    // of a shared store).
    assert!(!err.contains("no active server"), "{err}");

    let (code, _, err) = ixn(&[
        "watch",
        "--addr",
        &addr,
        "--agent",
        "a1",
        "--place",
        "p1",
        "--workbin",
        "Team",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--workbin Team:<group>"), "{err}");
}

#[test]
fn conformance_passes_in_every_mode() {
    let dir = workspace().join("conformance");
    let scenarios = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_str().unwrap();
            name.ends_with(".json") && name != "config.json"
        })
        .count();
    assert!(scenarios >= 20, "{scenarios} scenarios");
    let dir = dir.to_str().unwrap();
    let bin = server_bin();
    for mode in [
        vec!["--embedded"],
        vec![],
        vec!["--server-bin", bin.to_str().unwrap()],
    ] {
        let mut args = vec!["conformance", dir];
        args.extend(mode.iter().copied());
        let (code, out, err) = ixn(&args);
        assert_eq!(code, 0, "{mode:?}: {out}{err}");
        assert!(
            out.ends_with(&format!("{scenarios} passed, 0 failed\n")),
            "{mode:?}: {out}"
        );
    }
    let (code, _, err) = ixn(&["conformance", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent"), "{err}");
}

/// Starts `ixn-server` (demo configuration) with the web API on ephemeral ports; returns it,
/// the native address and the HTTP address.
fn server_with_http() -> (Reaped, String, String) {
    let mut child = Command::new(server_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--ephemeral",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = Banner::read(&mut BufReader::new(child.stdout.take().unwrap()), true).unwrap();
    let (tcp, http) = (banner.native.to_string(), banner.web.unwrap().to_string());
    (Reaped(child), tcp, http)
}

#[test]
fn readme_web_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = readme
        .split("### The web API: curl and CometD")
        .nth(1)
        .expect("README has the web walkthrough");
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    assert!(script.contains("H=http://127.0.0.1:8080"), "{script}");
    let (_server, tcp, http) = server_with_http();
    let script = script
        .replace("H=http://127.0.0.1:8080", &format!("H=http://{http}"))
        .replace(
            "./target/release/ixn send",
            &format!("{IXN} send --addr {tcp}"),
        );
    let dir = std::env::temp_dir().join(format!("ixn-readme-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&dir)
        .output()
        .expect("bash and curl are needed for this test (.ci/run installs curl)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let subscribed = stdout
        .find(r#""stateResource":"Subscribed""#)
        .unwrap_or_else(|| panic!("no Subscribed in {stdout}"));
    let added = stdout
        .find(r#""action":"ItemAdded""#)
        .unwrap_or_else(|| panic!("no ItemAdded in {stdout}"));
    assert!(subscribed < added, "{stdout}");
    assert!(
        stdout.contains(r#""emailStateResourceV2":{"id":"IX-WEB-1""#),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ixn journal verify`, `dump` and `backup` on a running server's data directory; the backup
/// starts a server holding what was acknowledged.
#[test]
fn journal_tools_verify_dump_and_back_up_a_live_directory() {
    let base = std::env::temp_dir().join(format!("ixn-cli-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (data, copy) = (base.join("data"), base.join("copy"));
    let (server, addr) = server_with(&["--data-dir", data.to_str().unwrap()]);
    let (code, out, err) = ixn(&[
        "send",
        "--addr",
        &addr,
        "--as",
        "emailsrv:MediaServer",
        SUBMIT,
        PLACE,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let d = data.to_str().unwrap();
    let (code, out, err) = ixn(&["journal", "verify", d]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("format version {}", ixn_store::VERSION)) && out.contains("ok:"),
        "{out}"
    );
    let (code, out, err) = ixn(&["journal", "dump", d]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["kind"] == "Put"
            && l["interaction"] == "IX-HELLO-1"
            && l["message"]["InteractionState"] == "Queued")
            && lines.iter().any(|l| l["kind"] == "Move"
                && l["interaction"] == "IX-HELLO-1"
                && l["message"]["InteractionState"] == "InWorkbin"),
        "each change's kind by name and its interaction: {out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "Ids" && l["id_prefix"].is_u64() && l["id_counter"].is_u64()),
        "the id generator's state in numbers: {out}"
    );
    assert!(out.ends_with('\n'));
    // A backup while the server runs, then a server started from it.
    let (code, out, err) = ixn(&["journal", "backup", d, copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = ixn(&["journal", "backup", d, copy.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not empty"), "{err}");
    drop(server);
    let (_restored, addr) = server_with(&["--data-dir", copy.to_str().unwrap()]);
    let (code, out, err) = ixn(&[
        "send",
        "--addr",
        &addr,
        "--as",
        "emailsrv:MediaServer",
        r#"{"message":"RequestGetInteractionProperties","InteractionId":"IX-HELLO-1"}"#,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\"InteractionWorkbinTypeId\":\"Drafts\""),
        "{out}"
    );
    // A torn write at the end is exit 1; a damaged record in the middle exit 2.
    let journal = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    let whole = std::fs::read(&journal).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(b"IXNR\0\0\0\x09");
    std::fs::write(&journal, &torn).unwrap();
    let (code, out, _) = ixn(&["journal", "verify", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("torn tail"), "{out}");
    let mut bad = whole;
    bad[20] ^= 0x40;
    std::fs::write(&journal, &bad).unwrap();
    let (code, _, err) = ixn(&["journal", "verify", d]);
    assert_eq!(code, 2);
    assert!(err.contains("corrupt record at byte offset 8"), "{err}");
    let (code, _, err) = ixn(&["journal", "verify", base.join("none").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("holds no journal"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}

/// `ixn send -` takes its messages from standard input; a mistyped message name gets a
/// suggestion.
#[test]
fn send_reads_standard_input_and_suggests_names() {
    use std::io::Write as _;
    let (_server, addr) = server();
    let mut child = Command::new(IXN)
        .args(["send", "--addr", &addr, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"message\":\"Ping\"}\n\n{\"message\":\"RequestWorkbinTypesInfo\",\"TenantId\":101}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[1].contains("EventWorkbinTypesInfo"), "{stdout}");
    assert!(stdout.ends_with('\n'));
    let (code, _, err) = ixn(&["send", "--addr", &addr, r#"{"message":"RequestSubmitt"}"#]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean \"RequestSubmit\"?"), "{err}");
}

/// The lines of `stream`, as they come (a thread reads them).
/// `ixn watch --reconnect` keeps watching across a server restart, and says that it
/// reconnected (notifications may have been missed meanwhile).
#[test]
fn watch_reconnect_survives_a_server_restart() {
    let base = std::env::temp_dir().join(format!("ixn-cli-reconnect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.to_str().unwrap().to_owned();
    // A port that was free a moment ago, for both servers.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (first, _) = server_with(&["--listen", &addr, "--data-dir", &data]);
    let mut args: Vec<&str> = vec!["watch", "--addr", &addr, "--reconnect"];
    args.extend_from_slice(&WATCH[1..]);
    let mut child = Command::new(IXN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let _watch = Reaped(child);
    line_with(&err, "watching Drafts");
    drop(first);
    line_with(&err, "reconnecting");
    let (_second, _) = server_with(&["--listen", &addr, "--data-dir", &data]);
    line_with(&err, "reconnected and subscribed again");
    let marker = line_with(&out, "reconnected");
    assert!(marker.contains("may have been missed"), "{marker}");
    let (code, o, e) = ixn(&[
        "send",
        "--addr",
        &addr,
        "--as",
        "emailsrv:MediaServer",
        SUBMIT,
        PLACE,
    ]);
    assert_eq!(code, 0, "{o}{e}");
    let placed = line_with(&out, "IX-HELLO-1");
    assert!(placed.contains("PlacedIn"), "{placed}");
    let _ = std::fs::remove_dir_all(&base);
}

/// The newest release in CHANGELOG.md is the version the binaries print.
#[test]
fn the_changelog_names_the_version_the_binaries_print() {
    let changelog = std::fs::read_to_string(workspace().join("CHANGELOG.md")).unwrap();
    let newest = changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .find(|h| !h.starts_with("Unreleased"))
        .expect("CHANGELOG.md has a release");
    let version = newest.split_whitespace().next().unwrap();
    for bin in [server_bin(), std::path::PathBuf::from(IXN)] {
        let out = Command::new(&bin).arg("--version").output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            printed.split_whitespace().nth(1) == Some(version),
            "{} --version prints {printed:?}; CHANGELOG.md's newest release is {version}",
            bin.display()
        );
    }
}
