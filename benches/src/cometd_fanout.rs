//! `ixn-load cometd`: fan-out over the web API. N agents sign in, each starts a contact center
//! session, subscribes over REST to the agent-group workbin `Team` and holds one CometD session
//! (long-polling on its own kept-alive HTTP/1.1 connection, or WebSocket); the media server of
//! `fanout` moves interactions into and out of `Team` over TCP. Every change is one CometD
//! message to each session.
//!
//! With `--faye SCRIPT` the same shape runs against Faye (the npm Bayeux server, started with
//! `node SCRIPT`): N sessions subscribed to one channel, and a publisher session (WebSocket)
//! keeping W publishes in flight, each message padded to `--size` bytes of JSON, the size the ixn
//! run reports, so that both deliver the same bytes.
//!
//! Latency is from the change (ixn: UserData `t` of the placed interaction; Faye: the message's
//! `t`) to the moment the CometD message is read: microseconds on one clock.

use crate::error::Error;
use crate::fanout::{self, Gate, Heard, micros_since};
use crate::report::{Report, round3};
use crate::run::{self, Window};
use crate::target::{Setup, Target, WEB_PASSWORD};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as Ws;

/// How long one setup step may take before the run fails.
const STEP: Duration = Duration::from_secs(30);
/// Sessions set up at once.
const SETUP_AT_ONCE: usize = 64;
/// The channel the Faye side publishes on.
const FAYE_CHANNEL: &str = "/workbin";
/// The channel of ixn's workbin messages (GWS v2).
const IXN_CHANNEL: &str = "/v2/me/workbins";
/// The channel of ixn's workbin messages (the Workspace API v3).
const V3_CHANNEL: &str = "/workspace/v3/workbins";

/// Which of ixn's web APIs the sessions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Api {
    /// GWS v2: HTTP Basic sign-in, REST Subscribe, `/v2/me/workbins`.
    V2,
    /// The Workspace API v3: an access token, initialize-workspace, activate-channels, a workbin
    /// subscription, `/workspace/v3/workbins`.
    V3,
}

/// Which transport the sessions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// HTTP long-polling, each session on its own kept-alive connection.
    LongPolling,
    /// WebSocket.
    Websocket,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::LongPolling => "long-polling",
            Self::Websocket => "websocket",
        }
    }
}

/// A CometD fan-out run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) sessions: usize,
    pub(crate) transport: Transport,
    pub(crate) in_flight: usize,
    /// Target deliveries per second (paces the changes); `None` = as fast as possible.
    pub(crate) rate: Option<f64>,
    pub(crate) sample_every: u64,
    /// Faye: each message's JSON size in bytes.
    pub(crate) size: usize,
    /// ixn: which web API.
    pub(crate) api: Api,
}

impl Params {
    fn fanout(&self) -> fanout::Params {
        fanout::Params {
            subscribers: self.sessions,
            in_flight: self.in_flight,
            rate: self.rate,
            sample_every: self.sample_every,
        }
    }
}

/// Which server.
#[derive(Debug)]
pub(crate) enum Side {
    /// ixn-server, spawned as `setup` says (it must be `--server-bin`).
    Ixn,
    /// Faye: `node SCRIPT` (the script prints `faye listening on http://ADDR/PATH`).
    Faye(PathBuf),
}

/// Where a session talks and how it subscribes.
#[derive(Clone, Debug)]
struct Endpoint {
    addr: SocketAddr,
    /// The Bayeux path (`/api/v2/notifications`, `/bayeux`).
    path: String,
    /// ixn: each agent signs in and subscribes over REST, then to `/v2/me/workbins` (or, with
    /// the Workspace API, to `/workspace/v3/workbins`).
    ixn: bool,
    api: Api,
}

impl Endpoint {
    fn channel(&self) -> &'static str {
        match (self.ixn, self.api) {
            (false, _) => FAYE_CHANNEL,
            (true, Api::V2) => IXN_CHANNEL,
            (true, Api::V3) => V3_CHANNEL,
        }
    }
}

/// A spawned Faye server, killed when dropped.
struct Faye(tokio::process::Child);

impl Drop for Faye {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

async fn spawn_faye(script: &PathBuf) -> Result<(Faye, SocketAddr, String), Error> {
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Setup(format!(
                "cannot start `node {}`: {e} (is Node.js installed? run `npm ci` in benches/faye first)",
                script.display()
            ))
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Setup("Faye's output is not readable".into()))?;
    let faye = Faye(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = tokio::time::timeout(STEP, lines.next_line())
            .await
            .map_err(|_| Error::Setup("Faye did not say where it listens".into()))?
            .map_err(|e| Error::Setup(e.to_string()))?
            .ok_or_else(|| {
                Error::Setup(format!(
                    "`node {}` exited before listening (see its messages above)",
                    script.display()
                ))
            })?;
        if let Some(url) = line.strip_prefix("faye listening on http://") {
            let (host, path) = url.split_once('/').unwrap_or((url, "bayeux"));
            let addr = host
                .parse()
                .map_err(|e| Error::Setup(format!("{line}: {e}")))?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((faye, addr, format!("/{path}")));
        }
    }
}

/// Runs one CometD fan-out against `side`.
pub(crate) async fn run(setup: &Setup, side: &Side, p: Params) -> Result<Report, Error> {
    let base = Instant::now();
    let window = Window::new();
    let (target, faye, endpoint) = match side {
        Side::Ixn => {
            let (target, web) = Target::start_web(&setup.spawn, p.sessions)?;
            let endpoint = Endpoint {
                addr: web,
                path: match p.api {
                    Api::V2 => "/api/v2/notifications".into(),
                    Api::V3 => "/workspace/v3/notifications".into(),
                },
                ixn: true,
                api: p.api,
            };
            (Some(target), None, endpoint)
        }
        Side::Faye(script) => {
            let (faye, addr, path) = spawn_faye(script).await?;
            let endpoint = Endpoint {
                addr,
                path,
                ixn: false,
                api: Api::V2,
            };
            (None, Some(faye), endpoint)
        }
    };
    let server_pid = match (&target, &faye) {
        (Some(t), _) => t.pid,
        (None, Some(f)) => f.0.id(),
        _ => None,
    };

    let sessions = open_sessions(&endpoint, p).await?;
    let cookies: Vec<String> = sessions.iter().filter_map(|s| s.cookie.clone()).collect();
    let gate = Gate::new(p.sessions, p.in_flight);
    let mut listeners = JoinSet::new();
    for s in sessions {
        listeners.spawn(s.listen(
            endpoint.channel(),
            Arc::clone(&window),
            Arc::clone(&gate),
            base,
            p.sample_every,
        ));
    }

    let publisher = match &target {
        Some(t) => {
            let w = Arc::clone(&window);
            fanout::start_media(t.addr, p.fanout(), w, base, Some(Arc::clone(&gate))).await?
        }
        None => {
            let ws = Ws1::connect(&endpoint, None).await?;
            let w = Arc::clone(&window);
            tokio::spawn(publish_faye(ws, p, w, Arc::clone(&gate), base))
        }
    };

    let elapsed = run::measure(&window, setup.bounds, "cometd", "deliveries").await;
    let changes = publisher
        .await
        .map_err(|e| Error::Setup(format!("the publisher failed: {e}")))??;
    if let Some(t) = &target {
        // A long-running server is left as found.
        let slots = p.fanout().in_flight.max(1);
        crate::wire::remove_all(t.addr, fanout::ids(slots)).await?;
    }
    let mut heard = Heard::new();
    while let Some(r) = listeners.join_next().await {
        heard.merge(r.map_err(|e| Error::Setup(format!("a session failed: {e}")))?);
    }
    sign_out(&endpoint, &cookies).await?;
    let server = if target.is_some() { "ixn" } else { "faye" };
    let mut report = report_of(p, server, &endpoint, elapsed, changes, &heard);
    if let Some(m) = server_pid
        .and_then(crate::target::memory_of)
        .map(|m| m.peak)
    {
        report.figure("server_peak_rss_bytes", "server peak RSS", m, "B");
    }
    drop(faye);
    drop(target);
    Ok(report)
}

/// Ends the web sessions (their agents logged out), [`SETUP_AT_ONCE`] at a time: a
/// long-running server is left as found.
async fn sign_out(endpoint: &Endpoint, cookies: &[String]) -> Result<(), Error> {
    for chunk in cookies.chunks(SETUP_AT_ONCE) {
        let mut set = JoinSet::new();
        for c in chunk {
            let (addr, cookie, api) = (endpoint.addr, c.clone(), endpoint.api);
            set.spawn(async move {
                let mut http = Http1::connect(addr).await?;
                let path = match api {
                    Api::V2 => "/api/v2/signout",
                    Api::V3 => "/workspace/v3/logout",
                };
                http.json(
                    "POST",
                    path,
                    &[("cookie", cookie.as_str())],
                    Some(&json!({})),
                )
                .await
                .map(drop)
            });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| Error::Setup(format!("a sign-out failed: {e}")))??;
        }
    }
    Ok(())
}

/// The sessions, opened [`SETUP_AT_ONCE`] at a time.
async fn open_sessions(endpoint: &Endpoint, p: Params) -> Result<Vec<Session>, Error> {
    let mut sessions = Vec::with_capacity(p.sessions);
    let mut set = JoinSet::new();
    for i in 0..p.sessions {
        if set.len() >= SETUP_AT_ONCE
            && let Some(r) = set.join_next().await
        {
            sessions.push(r.map_err(|e| Error::Setup(format!("a session's setup failed: {e}")))??);
        }
        let endpoint = endpoint.clone();
        set.spawn(async move {
            tokio::time::timeout(STEP, Session::open(&endpoint, i, p.transport))
                .await
                .map_err(|_| Error::Setup(format!("session {i}: no setup within {STEP:?}")))?
        });
    }
    while let Some(r) = set.join_next().await {
        sessions.push(r.map_err(|e| Error::Setup(format!("a session's setup failed: {e}")))??);
    }
    Ok(sessions)
}

/// The report of a run: its parameters and what the sessions heard.
fn report_of(
    p: Params,
    server: &str,
    endpoint: &Endpoint,
    elapsed: Duration,
    changes: u64,
    heard: &Heard,
) -> Report {
    let secs = elapsed.as_secs_f64();
    let paced = p
        .rate
        .map(|r| format!("paced at {} deliveries/s, ", run::thousands(r)))
        .unwrap_or_default();
    let mut report = Report::new(
        "cometd",
        format!(
            "cometd: {} {} session(s){} of one workbin, {} change(s) in flight, {paced}{secs:.1} s, {server} at {}",
            p.sessions,
            p.transport.name(),
            if endpoint.ixn && endpoint.api == Api::V3 {
                " (Workspace API v3)"
            } else {
                ""
            },
            p.in_flight,
            endpoint.addr
        ),
    );
    report.param("server", server);
    if endpoint.ixn {
        report.param("api", if endpoint.api == Api::V3 { "v3" } else { "v2" });
    }
    report.param("sessions", p.sessions);
    report.param("transport", p.transport.name());
    report.param("in_flight", p.in_flight);
    report.param("rate", p.rate);
    report.param("sample_every", p.sample_every);
    report.param("seconds", round3(secs));
    report.figure(
        "deliveries_per_sec",
        "delivered messages/s",
        (heard.deliveries as f64 / secs).round(),
        "",
    );
    report.figure("deliveries", "delivered messages", heard.deliveries, "");
    report.figure(
        "changes_per_sec",
        "changes/s",
        (changes as f64 / secs).round(),
        "",
    );
    if let Some(size) = heard.bytes.checked_div(heard.deliveries) {
        report.figure(
            "message_bytes",
            "bytes per message (JSON, with its reply's share)",
            size,
            "B",
        );
    }
    if heard.batches > 0 {
        report.figure(
            "messages_per_batch",
            "messages per reply or frame",
            round3(heard.deliveries as f64 / heard.batches as f64),
            "",
        );
    }
    report.latency("latency", "change-to-delivery", &heard.latency);
    report.figure("subscribers_lost", "sessions lost", heard.lost, "");
    if let Some(e) = &heard.first_loss {
        report.figure("first_loss", "first loss", e.clone(), "");
    }
    report
}

/// One kept-alive HTTP/1.1 connection.
struct Http1 {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Http1 {
    async fn connect(addr: SocketAddr) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| Error::Protocol(format!("HTTP to {addr}: {e}")))?;
        tokio::spawn(conn);
        Ok(Self { send, addr })
    }

    /// One request; the reply's status, `Set-Cookie` (if any) and body.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Option<String>, Bytes), Error> {
        match body {
            Some(v) => {
                let text = Bytes::from(v.to_string());
                self.request_raw(method, path, headers, text, "application/json")
                    .await
            }
            None => {
                self.request_raw(method, path, headers, Bytes::new(), "")
                    .await
            }
        }
    }

    /// One request with `body` of `content_type` (none when empty).
    async fn request_raw(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        content_type: &str,
    ) -> Result<(u16, Option<String>, Bytes), Error> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if !content_type.is_empty() {
            b = b.header("content-type", content_type);
        }
        let req = b
            .body(Full::new(body))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        self.send
            .ready()
            .await
            .map_err(|e| Error::Protocol(format!("HTTP to {}: {e}", self.addr)))?;
        let res = self
            .send
            .send_request(req)
            .await
            .map_err(|e| Error::Protocol(format!("{method} {path}: {e}")))?;
        let status = res.status().as_u16();
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Protocol(format!("{method} {path}: {e}")))?
            .to_bytes();
        Ok((status, cookie, body))
    }

    /// A JSON request that must answer 200 with JSON.
    async fn json(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let (status, _, bytes) = self.request(method, path, headers, body).await?;
        if status != 200 {
            return Err(Error::Protocol(format!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(format!("{method} {path}: {e}")))
    }
}

/// One WebSocket.
struct Ws1(tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>);

impl Ws1 {
    async fn connect(e: &Endpoint, cookie: Option<&str>) -> Result<Self, Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}{}", e.addr, e.path)
            .into_client_request()
            .map_err(|e| Error::Protocol(e.to_string()))?;
        if let Some(c) = cookie {
            request.headers_mut().insert(
                "cookie",
                c.parse()
                    .map_err(|_| Error::Protocol("cookie header".into()))?,
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|err| Error::Protocol(format!("WebSocket to {}: {err}", e.addr)))?;
        Ok(Self(ws))
    }

    async fn send(&mut self, v: &Value) -> Result<(), Error> {
        self.0
            .send(Ws::Text(v.to_string().into()))
            .await
            .map_err(|e| Error::Protocol(format!("WebSocket: {e}")))
    }

    /// The next text frame's bytes (`None` when the socket closed).
    async fn next_text(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.0.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Protocol(format!("WebSocket: {e}"))),
                Some(Ok(Ws::Text(t))) => return Ok(Some(Bytes::from(t.as_str().to_owned()))),
                Some(Ok(Ws::Close(_))) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next text frame as JSON, within [`STEP`].
    async fn next_json(&mut self) -> Result<Value, Error> {
        let text = tokio::time::timeout(STEP, self.next_text())
            .await
            .map_err(|_| Error::Protocol("no WebSocket frame in time".into()))??
            .ok_or_else(|| Error::Protocol("the WebSocket closed".into()))?;
        serde_json::from_slice(&text).map_err(|e| Error::Protocol(e.to_string()))
    }
}

/// A session's transport once set up.
enum Link {
    Poll { http: Http1, cookie: Option<String> },
    Socket(Box<Ws1>),
}

/// One CometD session, set up and subscribed.
struct Session {
    endpoint: Endpoint,
    /// ixn: the web session's cookie (signed out at the end of the run).
    cookie: Option<String>,
    link: Link,
    client_id: String,
    transport: Transport,
}

/// What a listener needs of each message in a batch.
#[derive(Deserialize)]
struct Lite<'a> {
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(default)]
    successful: Option<bool>,
    #[serde(default)]
    error: Option<String>,
}

/// Workspace API session `i`: agent `i` gets an access token (the `load` OAuth client), starts
/// its workspace, activates its channels at place `i` and subscribes to `Team` of `group0`; the
/// workspace cookie.
async fn open_v3(e: &Endpoint, i: usize) -> Result<String, Error> {
    use base64::Engine as _;
    let mut http = Http1::connect(e.addr).await?;
    let client = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("load:{WEB_PASSWORD}"))
    );
    let form = format!("grant_type=password&username=agent{i}&password={WEB_PASSWORD}");
    let (status, _, body) = http
        .request_raw(
            "POST",
            "/auth/v3/oauth/token",
            &[("authorization", &client)],
            Bytes::from(form),
            "application/x-www-form-urlencoded",
        )
        .await?;
    let token: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = token
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|_| status == 200)
        .ok_or_else(|| {
            Error::Protocol(format!(
                "agent{i}: no access token: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ))
        })?;
    let bearer = format!("Bearer {token}");
    let (status, cookie, body) = http
        .request(
            "POST",
            "/workspace/v3/initialize-workspace",
            &[("authorization", &bearer)],
            Some(&json!({})),
        )
        .await?;
    let cookie = cookie.filter(|_| status == 200).ok_or_else(|| {
        Error::Protocol(format!(
            "agent{i}: initialize-workspace: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        ))
    })?;
    let h = [("cookie", cookie.as_str())];
    let activate =
        json!({"data": {"agentId": format!("agent{i}"), "placeName": format!("place{i}")}});
    http.json(
        "POST",
        "/workspace/v3/activate-channels",
        &h,
        Some(&activate),
    )
    .await?;
    http.json(
        "POST",
        "/workspace/v3/workbins/Team/subscribe",
        &h,
        Some(&json!({"data": {}})),
    )
    .await?;
    Ok(cookie)
}

impl Session {
    /// Sets session `i` up: for ixn, agent `i` signs in, starts a contact center session at
    /// place `i` and subscribes to `Team` of `group0` over REST; then a CometD handshake and a
    /// subscription to the channel, and a first connect.
    async fn open(e: &Endpoint, i: usize, transport: Transport) -> Result<Self, Error> {
        let mut cookie = None;
        if e.ixn && e.api == Api::V3 {
            cookie = Some(open_v3(e, i).await?);
        } else if e.ixn {
            use base64::Engine as _;
            let mut http = Http1::connect(e.addr).await?;
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("agent{i}:{WEB_PASSWORD}"))
            );
            let (status, set_cookie, body) = http
                .request("GET", "/api/v2/me", &[("authorization", &basic)], None)
                .await?;
            let c = set_cookie.filter(|_| status == 200).ok_or_else(|| {
                Error::Protocol(format!(
                    "agent{i} could not sign in: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                ))
            })?;
            let h = [("cookie", c.as_str())];
            let ok = |what: &str, v: Value| {
                if v.get("statusCode") == Some(&json!(0)) {
                    Ok(())
                } else {
                    Err(Error::Refused {
                        request: format!("{what} (agent{i})"),
                        description: v.to_string(),
                    })
                }
            };
            let start =
                json!({"operationName": "StartContactCenterSession", "place": format!("place{i}")});
            ok(
                "StartContactCenterSession",
                http.json("POST", "/api/v2/me", &h, Some(&start)).await?,
            )?;
            let sub = json!({"operationName": "Subscribe"});
            ok(
                "Subscribe to Team",
                http.json(
                    "POST",
                    "/api/v2/me/workbins/Team?agentGroup=group0",
                    &h,
                    Some(&sub),
                )
                .await?,
            )?;
            cookie = Some(c);
        }
        let handshake = json!([{"id": "1", "channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0", "supportedConnectionTypes": [transport.name()]}]);
        let mut link = match transport {
            Transport::LongPolling => Link::Poll {
                http: Http1::connect(e.addr).await?,
                cookie: cookie.clone(),
            },
            Transport::Websocket => {
                Link::Socket(Box::new(Ws1::connect(e, cookie.as_deref()).await?))
            }
        };
        let reply = exchange(&mut link, &e.path, &handshake).await?;
        let client_id = reply
            .pointer("/0/clientId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol(format!("handshake: {reply}")))?
            .to_owned();
        let subscribe = json!([{"id": "2", "channel": "/meta/subscribe", "subscription": e.channel(), "clientId": client_id}]);
        let reply = exchange(&mut link, &e.path, &subscribe).await?;
        let subscribed = reply.as_array().is_some_and(|a| {
            a.iter().any(|m| {
                m.get("channel") == Some(&json!("/meta/subscribe"))
                    && m.get("successful") == Some(&json!(true))
            })
        });
        if !subscribed {
            return Err(Error::Protocol(format!(
                "subscribing to {}: {reply}",
                e.channel()
            )));
        }
        Ok(Self {
            endpoint: e.clone(),
            cookie,
            link,
            client_id,
            transport,
        })
    }

    /// Holds connects until the window stops, counting the channel's messages and sampling
    /// their latency.
    async fn listen(
        mut self,
        channel: &'static str,
        window: Arc<Window>,
        gate: Arc<Gate>,
        base: Instant,
        sample_every: u64,
    ) -> Heard {
        let mut h = Heard::new();
        let mut seen = 0u64;
        let connect = json!([{"channel": "/meta/connect", "connectionType": self.transport.name(), "clientId": self.client_id}]);
        let connect_text = connect.to_string();
        let stop = window.wait_stop();
        tokio::pin!(stop);
        let mut send_connect = true;
        loop {
            let next = async {
                match &mut self.link {
                    Link::Poll { http, cookie } => {
                        let headers: Vec<(&str, &str)> =
                            cookie.iter().map(|c| ("cookie", c.as_str())).collect();
                        let (status, _, body) = http
                            .request("POST", &self.endpoint.path, &headers, Some(&connect))
                            .await?;
                        if status == 200 {
                            Ok(Some(body))
                        } else {
                            Err(Error::Protocol(format!("connect: HTTP {status}")))
                        }
                    }
                    Link::Socket(ws) => {
                        if send_connect {
                            ws.0.send(Ws::Text(connect_text.clone().into()))
                                .await
                                .map_err(|e| Error::Protocol(format!("WebSocket: {e}")))?;
                        }
                        ws.next_text().await
                    }
                }
            };
            let batch = tokio::select! {
                biased;
                () = &mut stop => break,
                r = next => r,
            };
            let batch = match batch {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) if window.stopped() => break,
                Ok(None) => {
                    h.lost += 1;
                    h.first_loss = Some("the connection closed".into());
                    break;
                }
                Err(e) => {
                    h.lost += 1;
                    h.first_loss = Some(e.to_string());
                    break;
                }
            };
            let Ok(messages) = serde_json::from_slice::<Vec<Lite<'_>>>(&batch) else {
                h.lost += 1;
                h.first_loss = Some(format!(
                    "not a Bayeux batch: {}",
                    String::from_utf8_lossy(&batch)
                ));
                break;
            };
            let ours = messages.iter().filter(|m| m.channel == channel).count() as u64;
            let connect_reply = messages.iter().find(|m| m.channel == "/meta/connect");
            if let Some(c) = connect_reply
                && c.successful != Some(true)
            {
                h.lost += 1;
                h.first_loss = Some(format!("connect refused: {:?}", c.error));
                break;
            }
            // Long-polling: every reply ends the connect. WebSocket: a new connect once the
            // held one is answered.
            send_connect = connect_reply.is_some();
            gate.delivered(ours);
            if ours == 0 || !window.recording() {
                continue;
            }
            h.bytes += batch.len() as u64;
            h.batches += 1;
            let before = seen;
            seen += ours;
            h.deliveries += ours;
            window.add(ours);
            // Sample if the every-Nth message falls in this batch.
            let n = sample_every.max(1);
            if seen / n != before / n
                && let Some(t) = sent_at(&batch, channel)
            {
                let lat = (micros_since(base) - t).max(0) as u64 * 1000;
                let _ = h.latency.record(lat.max(100));
            }
        }
        h
    }
}

/// The send time in a batch: the UserData `t` of the first interaction ixn placed (`ItemAdded`,
/// or the Workspace API's `Add`),
/// or the `t` of Faye's first message (the publisher writes it first in `data`). Found by
/// searching the text rather than parsing the batch, which would cost the one-thread load
/// generator more than the server spends sending it.
fn sent_at(batch: &[u8], channel: &str) -> Option<i64> {
    const IXN_T: &[u8] = b"\"userData\":{\"t\":";
    const V3_T: &[u8] = b"{\"key\":\"t\",\"type\":\"int\",\"value\":";
    const FAYE_T: &[u8] = b"\"data\":{\"t\":";
    let after = |mark: &[u8], t: &[u8]| -> Option<usize> {
        let at = memchr::memmem::find(batch, mark)?;
        let rest = batch.get(at..)?;
        Some(at + memchr::memmem::find(rest, t)? + t.len())
    };
    let from = match channel {
        IXN_CHANNEL => after(b"\"ItemAdded\"", IXN_T)?,
        V3_CHANNEL => after(b"\"workbinContentOperation\":\"Add\"", V3_T)?,
        _ => memchr::memmem::find(batch, FAYE_T)? + FAYE_T.len(),
    };
    let digits = batch.get(from..)?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit() && *b != b'-')
        .unwrap_or(digits.len());
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

/// Completes when the gate next opens.
async fn gate_notified(gate: &Gate) {
    gate.opened_once().await;
}

/// One Bayeux exchange during setup: over long-polling a POST, over WebSocket a frame and the
/// next frame back.
async fn exchange(link: &mut Link, path: &str, body: &Value) -> Result<Value, Error> {
    match link {
        Link::Poll { http, cookie } => {
            let headers: Vec<(&str, &str)> =
                cookie.iter().map(|c| ("cookie", c.as_str())).collect();
            http.json("POST", path, &headers, Some(body)).await
        }
        Link::Socket(ws) => {
            ws.send(body).await?;
            ws.next_json().await
        }
    }
}

/// Faye's publisher: one WebSocket session keeping W publishes in flight (paced when a rate is
/// given), each message `{"t": micros, "pad": "..."}` sized to `size` bytes of JSON in all.
async fn publish_faye(
    mut ws: Ws1,
    p: Params,
    window: Arc<Window>,
    gate: Arc<Gate>,
    base: Instant,
) -> Result<u64, Error> {
    ws.send(&json!([{"id": "h", "channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]}]))
        .await?;
    let reply = ws.next_json().await?;
    let client_id = reply
        .pointer("/0/clientId")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Protocol(format!("Faye handshake: {reply}")))?
        .to_owned();
    // What a subscriber receives: {"channel":"/workbin","data":{"t":N,"pad":"..."},"id":"..."}
    // (Faye adds the id); the pad makes it `size` bytes.
    let probe = json!({"channel": FAYE_CHANNEL, "data": {"t": 1_000_000_000i64, "pad": ""}, "id": "123456"});
    let pad = "x".repeat(p.size.saturating_sub(probe.to_string().len()));
    let interval = p.fanout().interval();
    let mut due = tokio::time::Instant::now();
    let mut in_flight = 0usize;
    let mut done = 0u64;
    let mut serial = 0u64;
    let notified = gate_notified(&gate);
    tokio::pin!(notified);
    let stop = window.wait_stop();
    tokio::pin!(stop);
    loop {
        let now = tokio::time::Instant::now();
        let mut batch = Vec::new();
        while in_flight + batch.len() < p.in_flight.max(1)
            && interval.is_none_or(|_| now >= due)
            && gate.allows(serial)
        {
            serial += 1;
            batch.push(json!({"channel": FAYE_CHANNEL, "clientId": client_id, "id": serial.to_string(), "data": {"t": micros_since(base), "pad": pad}}));
            if let Some(i) = interval {
                due += i;
            }
        }
        if !batch.is_empty() {
            in_flight += batch.len();
            ws.send(&Value::Array(batch)).await?;
        }
        let paced_wait = interval.is_some() && in_flight < p.in_flight.max(1);
        let gated = !gate.allows(serial);
        let text = tokio::select! {
            biased;
            () = &mut stop => break,
            t = ws.next_text() => t?.ok_or_else(|| Error::Protocol("Faye closed the publisher's WebSocket".into()))?,
            () = tokio::time::sleep_until(due), if paced_wait => continue,
            () = &mut notified, if gated => {
                notified.set(gate_notified(&gate));
                continue;
            }
        };
        let replies: Vec<Lite<'_>> =
            serde_json::from_slice(&text).map_err(|e| Error::Protocol(format!("Faye: {e}")))?;
        for r in replies.iter().filter(|r| r.channel == FAYE_CHANNEL) {
            if r.successful != Some(true) {
                return Err(Error::Protocol(format!(
                    "Faye refused a publish: {:?}",
                    r.error
                )));
            }
            in_flight = in_flight.saturating_sub(1);
            if window.recording() {
                done += 1;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_found_in_either_shape() {
        let ixn = br#"[{"channel":"/v2/me/workbins","data":{"messageType":"WorkbinStateChangeMessage","action":"ItemRemoved","emailStateResourceV2":{"userData":{"t":5}}}},{"channel":"/v2/me/workbins","data":{"action":"ItemAdded","id":"x","emailStateResourceV2":{"id":"F1","userData":{"t":12345},"mediaType":"email"}}},{"channel":"/meta/connect","successful":true}]"#;
        assert_eq!(sent_at(ixn, IXN_CHANNEL), Some(12345));
        let faye = br#"[{"channel":"/workbin","data":{"t":678,"pad":"xx"},"id":"9"}]"#;
        assert_eq!(sent_at(faye, FAYE_CHANNEL), Some(678));
        assert_eq!(
            sent_at(br#"[{"channel":"/meta/connect"}]"#, FAYE_CHANNEL),
            None
        );
    }
}
