//! Helpers shared by the server's integration tests (each test file uses a part of them).

// Each test binary uses some of these helpers, not all.
#![allow(dead_code)]

pub(crate) mod workload;

use ixn_client::Client;
use ixn_codec::{BytesMut, ClientType, Codec, Message, MessageId, attr};
use ixn_config::{Config, DEMO_TOML, Limits};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The demo configuration with `limits` changed.
pub(crate) fn demo(limits: impl FnOnce(&mut Limits)) -> Arc<Config> {
    let mut c = Config::from_toml_str(DEMO_TOML, "demo").unwrap();
    limits(&mut c.limits);
    Arc::new(c)
}

/// An ephemeral server on a loopback port.
pub(crate) async fn start(config: Arc<Config>) -> ixn_server::Started {
    ixn_server::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        ixn_server::Options::default(),
    )
    .await
    .unwrap()
}

/// `msg` as one frame.
pub(crate) fn frame(msg: &Message) -> BytesMut {
    let mut b = BytesMut::new();
    Codec::default().encode(msg, &mut b).unwrap();
    b
}

pub(crate) fn register(name: &str, kind: ClientType) -> Message {
    Message::new(MessageId::REQUEST_REGISTER_CLIENT)
        .with(attr::CLIENT_NAME, name.to_owned())
        .with(attr::CLIENT_TYPE, kind.to_int())
}

/// Reads until the server closes (or resets) the connection, within 30 s; returns the frames
/// read.
pub(crate) async fn read_until_closed(stream: &mut TcpStream) -> Vec<Message> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let read = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the server never closed the connection");
    let mut bytes = BytesMut::from(&buf[..]);
    let mut out = Vec::new();
    while let Ok(Some(m)) = Codec::default().decode(&mut bytes) {
        out.push(m);
    }
    out
}

/// A desktop client with `agent` logged in at `place`.
pub(crate) async fn desk(addr: std::net::SocketAddr, agent: &str, place: &str) -> Client {
    let mut c = Client::connect(addr).await.unwrap();
    c.register("desk", ClientType::AgentApplication)
        .await
        .unwrap();
    c.request_ok(
        Message::new(MessageId::REQUEST_AGENT_LOGIN)
            .with(attr::TENANT_ID, 101)
            .with(attr::AGENT_ID, agent.to_owned())
            .with(attr::PLACE_ID, place.to_owned()),
    )
    .await
    .unwrap();
    c
}

/// A media server client registered as `name`.
pub(crate) async fn media(addr: std::net::SocketAddr, name: &str) -> Client {
    let mut c = Client::connect(addr).await.unwrap();
    c.register(name, ClientType::MediaServer).await.unwrap();
    c
}

/// Waits for `child` to exit and returns its exit code. The wait is on the exit itself; a
/// watchdog kills the process if it is still running after `within` (then this fails: a
/// process killed by a signal has no exit code).
#[allow(dead_code)] // not every test file waits for a process
pub(crate) fn wait_exit(child: &mut std::process::Child, within: Duration) -> Option<i32> {
    let pid = child.id().to_string();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(within).is_err() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
        }
    });
    let status = child.wait().unwrap();
    let _ = done.send(());
    let _ = watchdog.join();
    assert!(
        status.code().is_some(),
        "the process did not exit within {within:?} (killed: {status})"
    );
    status.code()
}
