//! TLS and client authentication, end to end with the real binaries: the conformance scenarios
//! through a TLS server that makes every application authenticate (certificate and password
//! given on `ixn`'s command line), refusals of unauthenticated and untrusted clients with the
//! documented error, a certificate reload on SIGHUP that keeps open connections, and the
//! session cookie's `Secure` attribute on the web API under TLS.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_tls::test_pki::Authority;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

mod common;
use common::{IXN, Reaped, line_with, lines_of, server_bin, workspace};

/// A temporary directory with a CA, a server certificate for localhost, and client
/// certificates.
struct Pki {
    dir: PathBuf,
    ca: Authority,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ixn-cli-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Authority::new("ixn test CA").unwrap();
        ca.write(&dir.join("ca.crt")).unwrap();
        ca.server(&["localhost", "127.0.0.1"])
            .unwrap()
            .write(&dir, "server")
            .unwrap();
        Self { dir, ca }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Writes a client certificate with common name `cn` and DNS names `sans`.
    fn client(&self, stem: &str, cn: &str, sans: &[&str]) -> (String, String) {
        self.ca
            .client(cn, sans)
            .unwrap()
            .write(&self.dir, stem)
            .unwrap();
        (
            self.path(&format!("{stem}.crt")),
            self.path(&format!("{stem}.key")),
        )
    }
}

fn ixn(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(IXN)
        .args(args)
        .env_remove("IXN_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn conformance_scenarios_pass_through_tls_with_client_authentication() {
    let pki = Pki::new("conformance");
    let dir = workspace().join("conformance");
    // One client certificate naming every application of every scenario.
    let scenarios = ixn_conformance_names(&dir);
    let names: Vec<&str> = scenarios.iter().map(String::as_str).collect();
    let (cert, key) = pki.client("all", "conformance", &names);
    let (ca, server_cert, server_key) = (
        pki.path("ca.crt"),
        pki.path("server.crt"),
        pki.path("server.key"),
    );
    let bin = server_bin();
    let args = [
        "conformance",
        dir.to_str().unwrap(),
        "--server-bin",
        bin.to_str().unwrap(),
        &format!("--server-arg=--tls-cert={server_cert}"),
        &format!("--server-arg=--tls-key={server_key}"),
        &format!("--server-arg=--tls-client-ca={ca}"),
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let (code, out, err) = ixn(&args, &[("IXN_PASSWORD", "conformance secret")]);
    assert_eq!(code, 0, "{out}\n{err}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(summary.ends_with(" passed, 0 failed"), "{out}");
    let passed: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 20, "{out}");

    // The servers really were TLS servers that checked the client's side: trusting another
    // authority, the same run fails.
    let stranger = Authority::new("stranger").unwrap();
    stranger.write(&pki.dir.join("stranger.crt")).unwrap();
    let stranger_ca = pki.path("stranger.crt");
    let mut wrong = args.to_vec();
    let at = wrong.iter().position(|a| *a == "--ca").unwrap();
    wrong[at + 1] = &stranger_ca;
    let (code, out, _) = ixn(&wrong, &[("IXN_PASSWORD", "conformance secret")]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(" passed, ") && !out.contains(" 0 failed"),
        "{out}"
    );
}

/// Every application name in the scenarios' configurations.
fn ixn_conformance_names(dir: &Path) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let config = match v.get("config") {
            Some(serde_json::Value::String(f)) => {
                serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
            }
            Some(c) => c.clone(),
            None => v.clone(),
        };
        for app in config["application"].as_array().into_iter().flatten() {
            if let Some(n) = app["name"].as_str() {
                names.insert(n.to_owned());
            }
        }
    }
    names.into_iter().collect()
}

/// The demo configuration with `desk` made to authenticate with a certificate and a password.
fn secured_config(pki: &Pki, password: &str) -> PathBuf {
    let hash = ixn_config::password::hash(password).unwrap();
    let toml = ixn_config::DEMO_TOML.replacen(
        "name = \"desk\"\ntype = \"AgentApplication\"\n",
        &format!(
            "name = \"desk\"\ntype = \"AgentApplication\"\npassword_hash = \"{hash}\"\nclient_certificate = true\n"
        ),
        1,
    );
    assert_ne!(toml, ixn_config::DEMO_TOML);
    let toml = format!(
        "{toml}\n[tls]\ncert = \"server.crt\"\nkey = \"server.key\"\nclient_ca = \"ca.crt\"\n"
    );
    let path = pki.dir.join("site.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Starts the server on `config`; returns it, its native address, its web address, and its
/// log lines.
fn start(config: &Path) -> (Reaped, String, String, mpsc::Receiver<String>) {
    let mut child = Command::new(server_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--ephemeral",
        ])
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = lines_of(child.stderr.take().unwrap());
    let out = lines_of(child.stdout.take().unwrap());
    let first = out.recv().unwrap();
    let addr = ixn_testkit::process::native_addr(&first)
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let web = line_with(&out, "web API listening on https://");
    let web = web
        .split("https://")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    (Reaped(child), format!("localhost:{port}"), web, logs)
}

const PING: &str = r#"{"message":"Ping"}"#;

#[test]
fn unauthenticated_and_untrusted_clients_are_refused() {
    let pki = Pki::new("refusals");
    let config = secured_config(&pki, "desk secret");
    let (_server, addr, _web, _logs) = start(&config);
    let ca = pki.path("ca.crt");
    let (desk_cert, desk_key) = pki.client("desk", "desk", &[]);
    let (other_cert, other_key) = pki.client("router", "router", &[]);
    let send = |extra: &[&str], password: Option<&str>| {
        let mut args = vec!["send", "--addr", addr.as_str(), "--ca", ca.as_str()];
        args.extend_from_slice(extra);
        args.push(PING);
        let env: Vec<(&str, &str)> = password.map(|p| ("IXN_PASSWORD", p)).into_iter().collect();
        ixn(&args, &env)
    };

    // Certificate and password: served.
    let (code, out, err) = send(
        &["--cert", &desk_cert, "--key", &desk_key],
        Some("desk secret"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"Ping\""), "{out}");

    // No certificate: AuthenticationFailed (19), naming what is missing.
    let (code, _, err) = send(&[], Some("desk secret"));
    assert_ne!(code, 0);
    assert!(
        err.contains("AuthenticationFailed (19)") && err.contains("client certificate"),
        "{err}"
    );

    // A certificate that names another application.
    let (code, _, err) = send(
        &["--cert", &other_cert, "--key", &other_key],
        Some("desk secret"),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("AuthenticationFailed (19)") && err.contains("does not name"),
        "{err}"
    );

    // The right certificate, a wrong or missing password.
    for password in [Some("guess"), None] {
        let (code, _, err) = send(&["--cert", &desk_cert, "--key", &desk_key], password);
        assert_ne!(code, 0);
        assert!(
            err.contains("AuthenticationFailed (19)") && err.contains("Password"),
            "{err}"
        );
    }

    // A certificate from an authority the server does not trust: the handshake fails, nothing
    // is served.
    let stranger = Authority::new("stranger").unwrap();
    stranger
        .client("desk", &[])
        .unwrap()
        .write(&pki.dir, "stranger")
        .unwrap();
    let (code, out, err) = send(
        &[
            "--cert",
            &pki.path("stranger.crt"),
            "--key",
            &pki.path("stranger.key"),
        ],
        Some("desk secret"),
    );
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("\"Ping\""), "{out}");
    assert!(!err.is_empty());

    // A client that does not trust the server's authority refuses it.
    let (code, _, err) = ixn(
        &[
            "send",
            "--addr",
            &addr,
            "--ca",
            &pki.path("stranger.crt"),
            PING,
        ],
        &[("IXN_PASSWORD", "desk secret")],
    );
    assert_ne!(code, 0);
    assert!(err.contains("TLS") && err.contains("certificate"), "{err}");

    // Plain TCP to the TLS listener: no reply is read as a message.
    let (code, out, _) = ixn(&["send", "--addr", &addr, PING], &[]);
    assert_ne!(code, 0);
    assert!(!out.contains("\"Ping\""), "{out}");
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let pki = Pki::new("reload");
    let config = secured_config(&pki, "desk secret");
    let (server, addr, _web, logs) = start(&config);
    let ca = pki.path("ca.crt");
    let (desk_cert, desk_key) = pki.client("desk", "desk", &[]);
    let tls_args = |ca: &str| {
        vec![
            "--addr".to_owned(),
            addr.clone(),
            "--ca".to_owned(),
            ca.to_owned(),
            "--cert".to_owned(),
            desk_cert.clone(),
            "--key".to_owned(),
            desk_key.clone(),
        ]
    };
    // A watcher connected before the reload.
    let mut watch_args: Vec<String> = vec!["watch".into()];
    watch_args.extend(tls_args(&ca));
    watch_args.extend(
        ["--agent", "a1", "--place", "p1", "--workbin", "Drafts"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    let mut watcher = Command::new(IXN)
        .args(&watch_args)
        .env("IXN_PASSWORD", "desk secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch_out = lines_of(watcher.stdout.take().unwrap());
    let watch_err = lines_of(watcher.stderr.take().unwrap());
    line_with(&watch_err, "watching");
    let watcher = Reaped(watcher);

    // A new authority and server certificate, then SIGHUP.
    let next = Authority::new("next CA").unwrap();
    next.write(&pki.dir.join("next-ca.crt")).unwrap();
    next.server(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(&pki.dir, "server")
        .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    line_with(&logs, "TLS certificate and key reloaded");

    // New connections get the new certificate: trusting the old CA no longer works.
    let send = |ca: &str, msgs: &[&str]| {
        let mut args = vec!["send".to_owned()];
        args.extend(tls_args(ca));
        args.extend(msgs.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ixn(&args, &[("IXN_PASSWORD", "desk secret")])
    };
    let (code, _, err) = send(&ca, &[PING]);
    assert_ne!(code, 0, "{err}");
    let submit = r#"{"message":"RequestSubmit","TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX-RELOAD-1"}"#;
    let place = r#"{"message":"RequestPlaceInWorkbin","InteractionId":"IX-RELOAD-1","Workbin":{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"}}"#;
    let (code, out, err) = send(
        &pki.path("next-ca.crt"),
        &["--as", "emailsrv:MediaServer", submit, place],
    );
    assert_eq!(code, 0, "{out}{err}");

    // The watcher's connection, opened under the old certificate, still works.
    let seen = line_with(&watch_out, "IX-RELOAD-1");
    assert!(seen.contains("EventWorkbinContentChanged"), "{seen}");
    drop(watcher);

    // A broken key: the reload fails, says which file, and the server keeps serving.
    std::fs::write(pki.dir.join("server.key"), "not a key").unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let failed = line_with(&logs, "TLS reload failed");
    assert!(failed.contains("server.key"), "{failed}");
    let (code, out, err) = send(&pki.path("next-ca.crt"), &[PING]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn the_web_api_speaks_https_and_marks_the_session_cookie_secure() {
    let pki = Pki::new("https");
    let config = secured_config(&pki, "desk secret");
    let (_server, _addr, web, _logs) = start(&config);
    // A request that needs no sign-in, then a sign-in (HTTP Basic) that sets the cookie.
    let roots = ixn_tls::ClientFiles {
        ca: Some(pki.dir.join("ca.crt")),
        identity: None,
    };
    let config = ixn_tls::client_config(&roots).unwrap();
    let get = |path: &str, auth: Option<&str>| -> String {
        let tcp = std::net::TcpStream::connect(&web).unwrap();
        let conn = ixn_tls::rustls::ClientConnection::new(
            config.clone(),
            ixn_tls::server_name("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = ixn_tls::rustls::StreamOwned::new(conn, tcp);
        let auth = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        let _ = tls.read_to_string(&mut response);
        response
    };
    let live = get("/health/live", None);
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    // a1:demo-a1 (the demo configuration's password for agent a1).
    let me = get("/api/v2/me", Some("YTE6ZGVtby1hMQ=="));
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    let cookie = me
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in {me}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[test]
fn sighup_without_tls_is_logged_and_does_not_stop_the_server() {
    let mut child = Command::new(server_bin())
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--ephemeral"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = lines_of(child.stderr.take().unwrap());
    let out = lines_of(child.stdout.take().unwrap());
    let first = out.recv().unwrap();
    let addr = ixn_testkit::process::native_addr(&first)
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let server = Reaped(child);
    // A reply means the server is serving, so its SIGHUP handler is in place (a SIGHUP before
    // that would end the process, as for any program).
    let (code, out, err) = ixn(&["send", "--addr", &addr, PING], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    line_with(&logs, "nothing to reload");
    let (code, out, err) = ixn(&["send", "--addr", &addr, PING], &[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_listener_open_to_other_machines_without_authentication_is_warned_about() {
    let mut child = Command::new(server_bin())
        .args(["--listen", "0.0.0.0:0", "--http", "off", "--ephemeral"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = lines_of(child.stderr.take().unwrap());
    let _server = Reaped(child);
    let open = line_with(&logs, "register without authentication");
    assert!(open.contains("desk") && open.contains("emailsrv"), "{open}");
    line_with(&logs, "without TLS");

    // On loopback (the default), neither warning.
    let mut child = Command::new(server_bin())
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--ephemeral"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    out.recv().unwrap();
    let server = Reaped(child);
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut text = String::new();
    BufReader::new(stderr).read_to_string(&mut text).unwrap();
    assert!(!text.contains("without authentication"), "{text}");
    assert!(!text.contains("without TLS"), "{text}");
}

/// A client and a server that disagree about TLS: the client says which side speaks what and
/// what to change, instead of a frame size or a decoding error.
#[test]
fn a_tls_mismatch_is_named_with_what_to_change() {
    let pki = Pki::new("mismatch");
    let config = secured_config(&pki, "desk secret");
    let (_server, addr, _web, _logs) = start(&config);
    // A plain client on the TLS port.
    let (code, out, err) = ixn(&["send", "--addr", &addr, PING], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("the server speaks TLS on this port") && err.contains("--ca FILE"),
        "{err}"
    );
    assert!(!err.contains("exceeds the maximum frame size"), "{err}");
    // A TLS client on a plain port.
    let (_plain, plain_addr) = common::server();
    let ca = pki.path("ca.crt");
    let (code, out, err) = ixn(&["send", "--addr", &plain_addr, "--ca", &ca, PING], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("the server does not speak TLS on this port") && err.contains("drop `--tls`"),
        "{err}"
    );
}

/// docs/operations.md's openssl recipe, run as pasted: its certificates serve TLS and a client
/// certificate (OpenSSL is needed; `.ci/run` installs it).
#[test]
fn the_openssl_recipe_of_the_operations_guide_works_as_pasted() {
    let guide = std::fs::read_to_string(workspace().join("docs/operations.md")).unwrap();
    let section = guide
        .split("### A test authority with openssl")
        .nth(1)
        .expect("docs/operations.md has the openssl recipe");
    let recipe = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ixn-openssl-recipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("bash")
        .args(["-euo", "pipefail", "-c", recipe])
        .current_dir(&dir)
        .output()
        .expect("bash and openssl are needed for this test (.ci/run installs openssl)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let mut child = Command::new(server_bin())
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--ephemeral"])
        .args([
            "--tls-cert",
            &file("server.crt"),
            "--tls-key",
            &file("server.key"),
        ])
        .args(["--tls-client-ca", &file("ca.crt")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let first = out.recv().unwrap();
    let addr = ixn_testkit::process::native_addr(&first).unwrap_or_else(|| panic!("{first}"));
    let _server = Reaped(child);
    let (code, out, err) = ixn(
        &[
            "send",
            "--addr",
            &format!("localhost:{}", addr.port()),
            "--ca",
            &file("ca.crt"),
            "--cert",
            &file("desk.crt"),
            "--key",
            &file("desk.key"),
            PING,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#""message":"Ping""#), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
