//! Memory of the web API with many CometD sessions, some of which stop polling.
//!
//! Starts the release `ixn-server` with a synthetic configuration (AGENTS agents, all with the
//! same password), signs every agent in, starts its contact center session and subscribes it to
//! its Drafts workbin; then opens PER_AGENT CometD sessions per agent over long-polling. One
//! session per agent never polls after its subscribe; the others keep polling. A media server
//! places interactions so that every session has messages waiting. The server's resident memory
//! (VmRSS, and the peak VmHWM) is printed at each stage: before the sweeper runs, after it has
//! removed the silent sessions, and after every session has gone.
//!
//! ```sh
//! cargo build --release -p ixn-server
//! cargo run --release -p ixn-server --example web_sessions -- target/release/ixn-server
//! ```

// A measuring tool: panics report failures, output is its purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use ixn_client::Client;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use ixn_testkit::Banner;
use serde_json::{Value, json};
use std::io::BufReader;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AGENTS: usize = 100;
const PER_AGENT: usize = 10;
const PLACED_PER_AGENT: usize = 5;
const MAX_INTERVAL_MS: u64 = 3000;
const CONNECT_TIMEOUT_MS: u64 = 2000;

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
) -> (Option<String>, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .map(|c| c.split(';').next().unwrap().to_owned());
    (cookie, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn report(stage: &str, pid: u32, base: u64) {
    let (rss, hwm) = memory(pid);
    println!(
        "{stage:<58} VmRSS {:>7.1} MB ({:>+6.1} MB)  peak {:>7.1} MB",
        rss as f64 / 1024.0,
        (rss as f64 - base as f64) / 1024.0,
        hwm as f64 / 1024.0
    );
}

/// Starts the server on `config`: the process and its native and web addresses (from its
/// banner).
fn start_server(
    bin: &str,
    config: &std::path::Path,
) -> (std::process::Child, SocketAddr, SocketAddr) {
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args([
            "--ephemeral",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin}: {e} (cargo build --release -p ixn-server)")
        });
    let banner = Banner::read(&mut BufReader::new(child.stdout.take().unwrap()), true).unwrap();
    let (tcp, web) = (banner.native, banner.web.unwrap());
    (child, tcp, web)
}

/// Signs every agent in, starts its contact center session and REST-subscribes it to its
/// Drafts: each one's cookie header.
async fn sign_in_all(web: SocketAddr) -> Vec<String> {
    let started = Instant::now();
    let mut cookies = Vec::new();
    for i in 0..AGENTS {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("agent{i}:pw"));
        let (cookie, body) = http(
            web,
            "GET",
            "/api/v2/me",
            &format!("Authorization: Basic {basic}"),
            "",
        )
        .await;
        assert_eq!(body["statusCode"], 0, "{body}");
        let cookie = format!("Cookie: {}", cookie.unwrap());
        let (_, body) = http(
            web,
            "POST",
            "/api/v2/me",
            &cookie,
            &json!({"operationName": "StartContactCenterSession", "place": format!("place{i}")})
                .to_string(),
        )
        .await;
        assert_eq!(body["statusCode"], 0, "{body}");
        let (_, body) = http(
            web,
            "POST",
            "/api/v2/me/workbins/Drafts",
            &cookie,
            r#"{"operationName":"Subscribe"}"#,
        )
        .await;
        assert_eq!(body["statusCode"], 0, "{body}");
        cookies.push(cookie);
    }
    println!(
        "{AGENTS} agents signed in and subscribed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    cookies
}

/// Opens [`PER_AGENT`] CometD sessions per agent: the first of each silent (returned with its
/// cookie), the others polling until `stop`, counting what they receive.
async fn open_cometd(
    web: SocketAddr,
    cookies: &[String],
    stop: &Arc<AtomicBool>,
    received: &Arc<AtomicUsize>,
) -> (Vec<(String, String)>, Vec<tokio::task::JoinHandle<()>>) {
    let mut silent = Vec::new();
    let mut pollers = Vec::new();
    for (i, cookie) in cookies.iter().enumerate() {
        for k in 0..PER_AGENT {
            let (_, hs) = http(web, "POST", "/api/v2/notifications/handshake", cookie, r#"[{"id":"1","channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#).await;
            let id = hs[0]["clientId"]
                .as_str()
                .unwrap_or_else(|| panic!("agent {i}: {hs}"))
                .to_owned();
            let sub = json!([{"id": "2", "channel": "/meta/subscribe", "subscription": "/v2/me/workbins", "clientId": id}]).to_string();
            let (_, r) = http(web, "POST", "/api/v2/notifications/", cookie, &sub).await;
            assert_eq!(r[0]["successful"], true, "{r}");
            if k == 0 {
                silent.push((cookie.clone(), id));
                continue;
            }
            let (cookie, stop, received) = (cookie.clone(), Arc::clone(stop), Arc::clone(received));
            pollers.push(tokio::spawn(async move {
                let connect = json!([{"id": "3", "channel": "/meta/connect", "connectionType": "long-polling", "clientId": id}]).to_string();
                while !stop.load(Ordering::Relaxed) {
                    let (_, r) = http(web, "POST", "/api/v2/notifications/connect", &cookie, &connect).await;
                    let n = r.as_array().map_or(0, |a| a.iter().filter(|m| m["channel"] == "/v2/me/workbins").count());
                    received.fetch_add(n, Ordering::Relaxed);
                    if r.as_array().and_then(|a| a.last()).is_some_and(|m| m["successful"] == false) {
                        panic!("poller lost its session: {r}");
                    }
                }
            }));
        }
    }
    (silent, pollers)
}

/// Places [`PLACED_PER_AGENT`] interactions in every agent's Drafts.
async fn place_for_every_agent(media: &mut Client, round: usize) {
    for i in 0..AGENTS {
        for n in 0..PLACED_PER_AGENT {
            let id = format!("IX-{round}-{i}-{n}");
            media
                .request_ok(
                    Message::new(MessageId::REQUEST_SUBMIT)
                        .with(attr::TENANT_ID, 101)
                        .with(attr::MEDIA_TYPE, "email")
                        .with(attr::INTERACTION_TYPE, "Inbound")
                        .with(attr::QUEUE, "Inbound")
                        .with(attr::INTERACTION_ID, id.clone())
                        .with(
                            attr::USER_DATA,
                            KvList::new().with("Subject", format!("message {n} for agent {i}")),
                        ),
                )
                .await
                .unwrap();
            media
                .request_ok(
                    Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                        .with(attr::INTERACTION_ID, id)
                        .with(
                            attr::WORKBIN,
                            KvList::new()
                                .with(attr::WORKBIN_TYPE_ID, "Drafts")
                                .with(attr::WORKBIN_AGENT_ID, format!("agent{i}")),
                        ),
                )
                .await
                .unwrap();
        }
    }
}

#[tokio::main]
async fn main() {
    let bin = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/ixn-server".into());
    let hash = ixn_config::password::hash("pw").unwrap();
    let mut file = ixn_config::ConfigFile::synthetic(AGENTS, 10, ixn_config::Limits::default());
    for a in &mut file.agent {
        a.password_hash = Some(hash.clone());
    }
    file.http.max_interval_ms = MAX_INTERVAL_MS;
    file.http.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    file.http.max_cometd_sessions_per_agent = PER_AGENT;
    let config = std::env::temp_dir().join(format!("ixn-web-sessions-{}.json", std::process::id()));
    std::fs::write(&config, serde_json::to_string(&file).unwrap()).unwrap();

    let (mut child, tcp, web) = start_server(&bin, &config);
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (base, _) = memory(pid);
    report("server started", pid, base);

    let cookies = sign_in_all(web).await;
    report("web sessions only", pid, base);

    let mut media = Client::connect(tcp).await.unwrap();
    media
        .register("media", ClientType::MediaServer)
        .await
        .unwrap();
    // Two rounds: the second shows whether memory returns to a bound or keeps growing.
    for round in 1..=2 {
        // CometD sessions: handshake + subscribe; all but one per agent keep polling.
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicUsize::new(0));
        let (silent, pollers) = open_cometd(web, &cookies, &stop, &received).await;
        println!(
            "{} CometD sessions open ({} polling, {} silent)",
            AGENTS * PER_AGENT,
            pollers.len(),
            silent.len()
        );

        // Changes for every agent: each session gets messages; the silent ones keep theirs queued.
        place_for_every_agent(&mut media, round).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        println!(
            "messages delivered to polling sessions so far: {}",
            received.load(Ordering::Relaxed)
        );
        report(
            &format!("round {round}: 1,000 CometD sessions (100 silent, 5 queued each)"),
            pid,
            base,
        );

        // The sweeper: silent sessions pass max_interval after their last reply.
        tokio::time::sleep(Duration::from_millis(MAX_INTERVAL_MS + 2500)).await;
        let (cookie, id) = &silent[0];
        let probe = json!([{"id": "9", "channel": "/meta/connect", "connectionType": "long-polling", "advice": {"timeout": 0}, "clientId": id}]).to_string();
        let (_, r) = http(web, "POST", "/api/v2/notifications/connect", cookie, &probe).await;
        println!(
            "a silent session's connect after the sweep: {}",
            r[0]["error"]
        );
        assert_eq!(r[0]["error"], "402::session_unknown");
        report(
            &format!("round {round}: sweeper removed the 100 silent sessions"),
            pid,
            base,
        );

        stop.store(true, Ordering::Relaxed);
        for p in pollers {
            p.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(MAX_INTERVAL_MS + 2500)).await;
        report(
            &format!("round {round}: every CometD session stopped and swept"),
            pid,
            base,
        );
        println!(
            "messages delivered to polling sessions: {}",
            received.load(Ordering::Relaxed)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&config);
}
