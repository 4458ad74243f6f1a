//! `ixn-load cometd`: how long the first CometD message of a new session takes to arrive after
//! the HTTP reply that caused it, over long-polling and over WebSocket.
//!
//! Against a server with the demo configuration (spawned with `--server-bin`, or running at
//! `--http`): agent `a1` signs in and starts a contact center session; then, per sample, a new
//! CometD session handshakes, subscribes to `/v2/me/workbins` and holds a `/meta/connect`, the
//! agent POSTs a REST `Subscribe` (or `Unsubscribe`, alternately) to its `Drafts`, and the time
//! from that HTTP reply to the arrival of the outcome's CometD message is one sample (zero if
//! the message came first). A delay of about 40 ms on the first message of a session is the
//! signature of Nagle's algorithm meeting delayed ACK.

use crate::error::Error;
use crate::report::{Report, round3};
use crate::run::histogram;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;

/// How long one HTTP exchange or CometD message may take before the run fails.
const STEP: Duration = Duration::from_secs(10);
/// The demo configuration's `Drafts` workbin.
const DRAFTS: &str = "aee812a5-7396-4dd9-b180-230f1c1fb085";

/// Which transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// HTTP long-polling.
    LongPolling,
    /// WebSocket.
    Websocket,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::LongPolling => "long-polling",
            Self::Websocket => "websocket",
        }
    }
}

/// Where the web API is.
#[derive(Debug)]
pub(crate) enum Target {
    /// Spawn this binary with the demo configuration (ephemeral ports).
    Bin(PathBuf),
    /// A server with the demo configuration serving HTTP here.
    Http(SocketAddr),
}

/// A spawned server, killed when dropped.
struct Spawned(tokio::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

async fn spawn(bin: &PathBuf) -> Result<(Spawned, SocketAddr), Error> {
    let mut child = tokio::process::Command::new(bin)
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
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            bin: bin.clone(),
            source,
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Setup("the server's output is not readable".into()))?;
    let spawned = Spawned(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = tokio::time::timeout(STEP, lines.next_line())
            .await
            .map_err(|_| Error::Setup("the server did not say where it listens".into()))?
            .map_err(|e| Error::Setup(e.to_string()))?
            .ok_or_else(|| Error::Setup("the server exited before listening".into()))?;
        if let Some(addr) = line.strip_prefix("web API listening on http://") {
            let addr = addr
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|e| Error::Setup(format!("{line}: {e}")))?;
            return Ok((spawned, addr));
        }
    }
}

/// Signs `a1` in with HTTP Basic; returns the session cookie header to send from then on.
async fn sign_in(addr: SocketAddr) -> Result<String, Error> {
    let (_, head) = exchange(
        addr,
        "GET",
        "/api/v2/me",
        "Authorization: Basic YTE6ZGVtby1hMQ==",
        None,
    )
    .await?;
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| format!("Cookie: {}", v.trim().split(';').next().unwrap_or_default()))
        })
        .ok_or_else(|| Error::Protocol(format!("no session cookie in {head}")))
}

/// One HTTP/1.1 exchange on its own connection: the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<&Value>,
) -> Result<Value, Error> {
    exchange(addr, method, path, auth, body)
        .await
        .map(|(v, _)| v)
}

/// One HTTP/1.1 exchange on its own connection: the JSON body and the head.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<&Value>,
) -> Result<(Value, String), Error> {
    let lost = |source| Error::Lost { addr, source };
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect { addr, source })?;
        let _ = s.set_nodelay(true);
        s.write_all(request.as_bytes()).await.map_err(lost)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(lost)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| Error::Protocol(format!("not an HTTP reply: {text}")))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(Error::Protocol(format!("{method} {path}: {head}\n{body}")));
        }
        let value = serde_json::from_str(body)
            .map_err(|e| Error::Protocol(format!("{path}: {e}: {body}")))?;
        Ok((value, head.to_owned()))
    };
    tokio::time::timeout(STEP, exchange)
        .await
        .map_err(|_| Error::Protocol(format!("{method} {path}: no reply within {STEP:?}")))?
}

/// The data of the first message on `/v2/me/workbins` in a Bayeux reply batch.
fn workbin_message(batch: &Value) -> Option<&Value> {
    batch
        .as_array()?
        .iter()
        .find(|m| m.get("channel").and_then(Value::as_str) == Some("/v2/me/workbins"))
        .and_then(|m| m.get("data"))
}

/// Runs `samples` samples over `transport`.
pub(crate) async fn run(
    target: &Target,
    transport: Transport,
    samples: usize,
) -> Result<Report, Error> {
    let (_server, addr) = match target {
        Target::Bin(bin) => {
            let (s, a) = spawn(bin).await?;
            (Some(s), a)
        }
        Target::Http(a) => (None, *a),
    };
    // a1 ("a1:demo-a1") signs in once; then the session cookie.
    let cookie = sign_in(addr).await?;
    let basic = cookie.as_str();
    let start = json!({"operationName": "StartContactCenterSession", "place": "p1"});
    let started = http(addr, "POST", "/api/v2/me", basic, Some(&start)).await?;
    if started.get("statusCode") != Some(&json!(0)) {
        return Err(Error::Refused {
            request: "StartContactCenterSession".into(),
            description: started.to_string(),
        });
    }
    let mut h = histogram();
    let mut over_2ms = 0usize;
    for i in 0..samples {
        let op = if i % 2 == 0 {
            "Subscribe"
        } else {
            "Unsubscribe"
        };
        let waited = match transport {
            Transport::LongPolling => sample_long_polling(addr, basic, op).await?,
            Transport::Websocket => sample_websocket(addr, basic, op).await?,
        };
        if waited > Duration::from_millis(2) {
            over_2ms += 1;
        }
        let _ = h.record(
            u64::try_from(waited.as_nanos())
                .unwrap_or(u64::MAX)
                .max(100),
        );
    }
    let mut report = Report::new(
        "cometd",
        format!(
            "cometd: first message of a new session after the HTTP reply, over {}",
            transport.name()
        ),
    );
    report.param("transport", transport.name());
    report.param("samples", samples);
    report.latency("first_message", "first message", &h);
    report.figure(
        "over_2ms_share",
        "samples over 2 ms",
        round3(over_2ms as f64 / samples.max(1) as f64),
        "",
    );
    Ok(report)
}

/// One sample over long-polling: a new session, a held connect, then the REST operation.
async fn sample_long_polling(addr: SocketAddr, auth: &str, op: &str) -> Result<Duration, Error> {
    let path = "/api/v2/notifications";
    let hs = json!([{"id": "1", "channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]);
    let reply = http(addr, "POST", path, auth, Some(&hs)).await?;
    let client = reply
        .pointer("/0/clientId")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Protocol(format!("handshake: {reply}")))?
        .to_owned();
    let sub = json!([{"id": "2", "channel": "/meta/subscribe", "subscription": "/v2/me/workbins", "clientId": client}]);
    http(addr, "POST", path, auth, Some(&sub)).await?;
    let connect = json!([{"id": "3", "channel": "/meta/connect", "connectionType": "long-polling", "clientId": client}]);
    let auth_owned = auth.to_owned();
    let held = tokio::spawn(async move {
        let reply = http(addr, "POST", path, &auth_owned, Some(&connect)).await;
        (reply, Instant::now())
    });
    // Give the connect time to be held (it is answered at once if the message came first).
    tokio::task::yield_now().await;
    let body = json!({"operationName": op});
    let r = http(
        addr,
        "POST",
        &format!("/api/v2/me/workbins/{DRAFTS}"),
        auth,
        Some(&body),
    )
    .await?;
    let replied = Instant::now();
    if r.get("statusCode") != Some(&json!(0)) {
        return Err(Error::Protocol(format!("{op}: {r}")));
    }
    let (batch, arrived) = held
        .await
        .map_err(|e| Error::Protocol(format!("the held connect: {e}")))?;
    let batch = batch?;
    if workbin_message(&batch).is_none() {
        return Err(Error::Protocol(format!(
            "the held connect came back without the message: {batch}"
        )));
    }
    let bye = json!([{"channel": "/meta/disconnect", "clientId": client}]);
    http(addr, "POST", path, auth, Some(&bye)).await?;
    Ok(arrived.saturating_duration_since(replied))
}

/// One sample over WebSocket: a new session on a new socket, a held connect, then the REST
/// operation.
async fn sample_websocket(addr: SocketAddr, auth: &str, op: &str) -> Result<Duration, Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/api/v2/notifications")
        .into_client_request()
        .map_err(|e| Error::Protocol(e.to_string()))?;
    let (name, value) = auth.split_once(": ").unwrap_or(("Cookie", auth));
    request.headers_mut().insert(
        tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::Protocol(e.to_string()))?,
        value
            .parse()
            .map_err(|_| Error::Protocol("header".into()))?,
    );
    let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| Error::Protocol("the WebSocket handshake timed out".into()))?
        .map_err(|e| Error::Protocol(format!("WebSocket: {e}")))?;
    let next = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| -> Result<Value, Error> {
        loop {
            let frame = tokio::time::timeout(STEP, ws.next())
                .await
                .map_err(|_| Error::Protocol("no WebSocket frame in time".into()))?
                .ok_or_else(|| Error::Protocol("the WebSocket closed".into()))?
                .map_err(|e| Error::Protocol(e.to_string()))?;
            if let Ws::Text(t) = frame {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| Error::Protocol(e.to_string()));
            }
        }
    };
    let send = |v: Value| Ws::Text(v.to_string().into());
    let protocol = |e: tokio_tungstenite::tungstenite::Error| Error::Protocol(e.to_string());
    ws.send(send(json!([{"id": "1", "channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]}])))
        .await
        .map_err(protocol)?;
    let reply = next(&mut ws).await?;
    let client = reply
        .pointer("/0/clientId")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Protocol(format!("handshake: {reply}")))?
        .to_owned();
    // A first connect answered at once, as clients do after a handshake.
    ws.send(send(json!([{"id": "2", "channel": "/meta/connect", "connectionType": "websocket", "clientId": client, "advice": {"timeout": 0}}])))
        .await
        .map_err(protocol)?;
    next(&mut ws).await?;
    // Then a held connect, then the subscribe, whose reply is the last thing the server
    // writes before the message: the client has nothing to send back, so it delays its ACK,
    // and a server socket with Nagle's algorithm on would hold the message until that ACK
    // (about 40 ms).
    ws.send(send(json!([{"id": "3", "channel": "/meta/connect", "connectionType": "websocket", "clientId": client}])))
        .await
        .map_err(protocol)?;
    ws.send(send(json!([{"id": "4", "channel": "/meta/subscribe", "subscription": "/v2/me/workbins", "clientId": client}])))
        .await
        .map_err(protocol)?;
    next(&mut ws).await?;
    let body = json!({"operationName": op});
    let r = http(
        addr,
        "POST",
        &format!("/api/v2/me/workbins/{DRAFTS}"),
        auth,
        Some(&body),
    )
    .await?;
    let replied = Instant::now();
    if r.get("statusCode") != Some(&json!(0)) {
        return Err(Error::Protocol(format!("{op}: {r}")));
    }
    let arrived = loop {
        let batch = next(&mut ws).await?;
        if workbin_message(&batch).is_some() {
            break Instant::now();
        }
    };
    let _ = ws
        .send(send(
            json!([{"channel": "/meta/disconnect", "clientId": client}]),
        ))
        .await;
    let _ = ws.close(None).await;
    Ok(arrived.saturating_duration_since(replied))
}
