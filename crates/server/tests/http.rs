//! The web API's HTTP layer over loopback: authentication, bad bodies, unknown ids, oversize
//! bodies, the contact center session rule, and the CometD endpoint's guarantees (402, sweeper,
//! caps, bounded queues, acknowledged resend, a dropped long-poll losing nothing).
//!
//! The official JavaScript client is exercised by crates/gateway/node-tests (run by `.ci/run`).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_client::Client;
use ixn_codec::{ClientType, KvList, Message, MessageId, attr};
use ixn_config::{Config, DEMO_TOML, Http};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const NOTIFY: &str = "/api/v2/notifications";

struct Server {
    tcp: SocketAddr,
    http: SocketAddr,
    _started: ixn_server::Started,
}

async fn start(tweak: impl FnOnce(&mut Http, &mut ixn_config::ConfigFile)) -> Server {
    let demo = Config::from_toml_str(DEMO_TOML, "demo").unwrap();
    let mut file = demo.file.clone();
    let mut http = file.http.clone();
    // Tests sign in many agents from one address: no rate limit unless a test sets one.
    http.sign_ins_per_second = 1_000_000;
    tweak(&mut http, &mut file);
    file.http = http;
    let config = Arc::new(Config::validate(file).unwrap());
    let listener = ixn_server::bind_http("127.0.0.1:0".parse().unwrap(), &config)
        .await
        .unwrap();
    let http = listener.local_addr().unwrap();
    let started = ixn_server::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        ixn_server::Options {
            http: Some(listener),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Server {
        tcp: started.addr,
        http,
        _started: started,
    }
}

/// One HTTP/1.1 exchange (Connection: close): status, headers (lowercase names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    // JSON unless the caller says otherwise.
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    timeout(Duration::from_secs(40), s.read_to_end(&mut raw))
        .await
        .expect("no HTTP reply")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

fn basic(user: &str, password: &str) -> (&'static str, String) {
    use base64::Engine as _;
    (
        "Authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
    )
}

/// A signed-in agent: its cookie header.
struct Agent {
    http: SocketAddr,
    cookie: (&'static str, String),
}

impl Agent {
    /// Signs in.
    async fn sign_in(http: SocketAddr, id: &str) -> Self {
        let r = send(
            http,
            "GET",
            "/api/v2/me",
            &[basic(id, &format!("demo-{id}"))],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let set = r.header("set-cookie").unwrap();
        let cookie = set.split(';').next().unwrap().to_owned();
        Self {
            http,
            cookie: ("Cookie", cookie),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        send(
            self.http,
            "GET",
            path,
            std::slice::from_ref(&self.cookie),
            b"",
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_raw(path, body.to_string().as_bytes()).await
    }

    async fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        send(
            self.http,
            "POST",
            path,
            std::slice::from_ref(&self.cookie),
            body,
        )
        .await
    }

    async fn start_session(&self, place: &str) {
        let r = self
            .post(
                "/api/v2/me",
                json!({"operationName": "StartContactCenterSession", "place": place}),
            )
            .await;
        assert_eq!(r.body["statusCode"], 0, "{}", r.body);
    }

    /// Handshakes (optionally with the ack extension) and subscribes to /v2/me/workbins.
    async fn cometd(&self, ack: bool) -> String {
        let mut hs = json!({"id": "1", "channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]});
        if ack {
            hs["ext"] = json!({"ack": true});
        }
        let r = self.post(&format!("{NOTIFY}/handshake"), json!([hs])).await;
        assert_eq!(r.body[0]["successful"], true, "{}", r.body);
        let id = r.body[0]["clientId"].as_str().unwrap().to_owned();
        let r = self
            .post(
                &format!("{NOTIFY}/"),
                json!([{"id": "2", "channel": "/meta/subscribe", "subscription": "/v2/me/workbins", "clientId": id}]),
            )
            .await;
        assert_eq!(r.body[0]["successful"], true, "{}", r.body);
        id
    }

    async fn connect(&self, client: &str, extra: Value) -> Value {
        let mut m = json!({"id": "c", "channel": "/meta/connect", "connectionType": "long-polling", "clientId": client});
        if let Value::Object(e) = extra {
            for (k, v) in e {
                m[k] = v;
            }
        }
        self.post(&format!("{NOTIFY}/connect"), json!([m]))
            .await
            .body
    }
}

async fn media(tcp: SocketAddr) -> Client {
    let mut c = Client::connect(tcp).await.unwrap();
    c.register("emailsrv", ClientType::MediaServer)
        .await
        .unwrap();
    c
}

async fn place(c: &Client, id: &str, agent: &str) {
    c.request_ok(
        Message::new(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound")
            .with(attr::INTERACTION_ID, id.to_owned()),
    )
    .await
    .unwrap();
    c.request_ok(
        Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
            .with(attr::INTERACTION_ID, id.to_owned())
            .with(
                attr::WORKBIN,
                KvList::new()
                    .with(attr::WORKBIN_TYPE_ID, "Drafts")
                    .with(attr::WORKBIN_AGENT_ID, agent.to_owned()),
            ),
    )
    .await
    .unwrap();
}

fn data_of(batch: &Value) -> Vec<&Value> {
    batch
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["channel"] == "/v2/me/workbins")
        .map(|m| &m["data"])
        .collect()
}

#[tokio::test]
async fn authentication_is_required_and_checked() {
    let s = start(|_, file| file.agent[1].password_hash = None).await;
    let r = send(s.http, "GET", "/api/v2/me/workbins", &[], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["statusCode"], 20);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let r = send(s.http, "GET", "/api/v2/me", &[basic("a1", "wrong")], b"").await;
    assert_eq!((r.status, &r.body["statusCode"]), (401, &json!(20)));
    let r = send(s.http, "GET", "/api/v2/me", &[basic("nobody", "x")], b"").await;
    assert_eq!(r.body["statusCode"], 20);
    // a2 has no password_hash here: no sign-in over HTTP, and the answer does not tell it
    // apart from an unknown agent (the server's log says why).
    let r = send(s.http, "GET", "/api/v2/me", &[basic("a2", "demo-a2")], b"").await;
    assert_eq!(r.body["statusCode"], 20);
    assert_eq!(
        r.body["statusMessage"], "unknown agent or wrong password",
        "{}",
        r.body
    );
    let r = send(
        s.http,
        "GET",
        "/api/v2/me",
        &[("Authorization", "Bearer x".into())],
        b"",
    )
    .await;
    assert_eq!(r.body["statusCode"], 20);
    let r = send(
        s.http,
        "GET",
        "/api/v2/me",
        &[("Cookie", "IXNSESSION=forged".into())],
        b"",
    )
    .await;
    assert_eq!(r.body["statusCode"], 20);
    // The right password signs in and sets the cookie, which then suffices.
    let a1 = Agent::sign_in(s.http, "a1").await;
    let r = a1.get("/api/v2/me").await;
    assert_eq!(r.body["user"]["employeeId"], "a1");
    assert_eq!(r.body["user"]["id"], "802396ae32494a8b8a617a9103d968bb");
    // The CometD handshake without credentials is refused with reconnect none.
    let r = send(
        s.http,
        "POST",
        &format!("{NOTIFY}/handshake"),
        &[],
        br#"[{"id":"1","channel":"/meta/handshake","supportedConnectionTypes":["long-polling"]}]"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body[0]["successful"], false);
    assert_eq!(r.body[0]["advice"]["reconnect"], "none");
    assert_eq!(r.body[0]["id"], "1");
}

#[tokio::test]
async fn bad_bodies_get_status_1_and_say_why() {
    let s = start(|http, _| http.max_body_bytes = 1024).await;
    let a1 = Agent::sign_in(s.http, "a1").await;
    for (body, needle) in [
        (&b"{not json"[..], "not JSON"),
        (b"[1,2]", "JSON object"),
        (b"{}", "operationName is required"),
        (br#"{"operationName":3}"#, "operationName is required"),
        (br#"{"operationName":"Dance"}"#, "unknown operationName"),
        (
            br#"{"operationName":"StartContactCenterSession"}"#,
            "place is required",
        ),
    ] {
        let r = a1.post_raw("/api/v2/me", body).await;
        assert_eq!(
            (r.status, &r.body["statusCode"]),
            (400, &json!(1)),
            "{}",
            r.body
        );
        assert!(
            r.body["statusMessage"].as_str().unwrap().contains(needle),
            "{}",
            r.body
        );
    }
    // Oversize: 413, statusCode 1, naming the limit.
    let big = json!({"operationName": "Subscribe", "pad": "x".repeat(4096)}).to_string();
    let r = a1
        .post_raw("/api/v2/me/workbins/Drafts", big.as_bytes())
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["statusCode"], 1);
    assert!(
        r.body["statusMessage"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes"),
        "{}",
        r.body
    );
    // Bayeux bodies: arrays (or one object); anything else is a 400 with a JSON array.
    let r = a1.post_raw(NOTIFY, b"42").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body[0]["successful"], false);
    // A plain GET of the CometD endpoint (no WebSocket upgrade) is answered at once.
    let r = a1.get(NOTIFY).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn unknown_ids_and_missing_parameters() {
    let s = start(|_, _| {}).await;
    let a1 = Agent::sign_in(s.http, "a1").await;
    // Workbin operations need a contact center session first.
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "Subscribe"}),
        )
        .await;
    assert_eq!((r.status, &r.body["statusCode"]), (400, &json!(2)));
    assert!(
        r.body["statusMessage"]
            .as_str()
            .unwrap()
            .contains("StartContactCenterSession")
    );
    let r = a1.get("/api/v2/me/workbins/Drafts").await;
    assert_eq!(r.body["statusCode"], 2);
    let r = a1
        .post(
            "/api/v2/me",
            json!({"operationName": "StartContactCenterSession", "place": "nowhere"}),
        )
        .await;
    assert_eq!((r.status, &r.body["statusCode"]), (404, &json!(6)));
    let r = a1
        .post(
            "/api/v2/me",
            json!({"operationName": "EndContactCenterSession"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 2);
    a1.start_session("p1").await;
    let sub = json!({"operationName": "Subscribe"});
    for path in [
        "/api/v2/me/workbins/00000000-0000-0000-0000-000000000000",
        "/api/v2/me/workbins/Nope",
        "/api/v2/users/ffffffffffffffffffffffffffffffff/workbins/Drafts",
        "/api/v2/me/workbins?workbinIds=Drafts,Nope",
        "/api/v2/me/workbins/Team?agentGroup=Nobody",
        "/api/v2/nothing/here",
    ] {
        let r = a1.post(path, sub.clone()).await;
        assert_eq!(
            (r.status, &r.body["statusCode"]),
            (404, &json!(6)),
            "{path}: {}",
            r.body
        );
        assert!(r.body["statusMessage"].is_string());
    }
    for path in [
        "/api/v2/me/workbins/Team",
        "/api/v2/me/workbins/Drafts?agentGroup=Sales",
        "/api/v2/me/workbins",
    ] {
        let r = a1.post(path, sub.clone()).await;
        assert_eq!(
            (r.status, &r.body["statusCode"]),
            (400, &json!(1)),
            "{path}: {}",
            r.body
        );
    }
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "AddInteraction"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 1);
    // The engine's answers map to the GWS table.
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "AddInteraction", "interactionId": "NOPE"}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["statusCode"]),
        (404, &json!(6)),
        "{}",
        r.body
    );
    assert!(
        r.body["statusMessage"]
            .as_str()
            .unwrap()
            .contains("UnknownInteraction")
    );
    let r = a1
        .get("/api/v2/users/e6f2ad1b26ea4e9b8dd907eabe167522/workbins/Drafts")
        .await;
    assert_eq!(
        (r.status, &r.body["statusCode"]),
        (403, &json!(3)),
        "{}",
        r.body
    );
    // Lists.
    let r = a1.get("/api/v2/me/workbins").await;
    let names: Vec<&str> = r.body["workbins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Drafts") && names.contains(&"Team") && names.contains(&"Desk"),
        "{names:?}"
    );
    // GetWorkbins' shape: names, id, displayName, uri and type; ?fields= narrows it.
    let team = r.body["workbins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "Team")
        .unwrap();
    assert_eq!(
        (&team["workbinName"], &team["type"], &team["agentGroup"]),
        (&json!("Team"), &json!("AgentGroup"), &json!("Sales")),
        "{team}"
    );
    assert!(team["uri"].as_str().unwrap().ends_with(&format!(
        "/api/v2/workbins/{}",
        team["id"].as_str().unwrap()
    )));
    assert!(team.get("ownerType").is_none());
    let r = a1.get("/api/v2/workbins?fields=*").await;
    assert_eq!(r.body["workbins"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["workbins"][0]["displayName"], "Drafts");
    let r = a1.get("/api/v2/workbins?fields=id,name").await;
    assert_eq!(
        r.body["workbins"][0],
        json!({"name": "Drafts", "id": "aee812a5-7396-4dd9-b180-230f1c1fb085"})
    );
    let r = a1.get("/api/v2/workbins?fields=").await;
    assert_eq!(r.body["statusCode"], 1, "{}", r.body);
    let r = a1.get("/api/v2/workbins?fields=id,colour").await;
    assert_eq!(r.body["statusCode"], 1, "{}", r.body);
    assert!(
        r.body["statusMessage"]
            .as_str()
            .unwrap()
            .contains("displayName"),
        "{}",
        r.body
    );
    // Content by user and of a group workbin.
    let sup = Agent::sign_in(s.http, "sup1").await;
    sup.start_session("p4").await;
    let r = sup
        .get("/api/v2/users/802396ae32494a8b8a617a9103d968bb/workbins/Drafts?subresources=*")
        .await;
    assert_eq!(
        r.body["workbin"]["workbinUserId"], "802396ae32494a8b8a617a9103d968bb",
        "{}",
        r.body
    );
    assert!(
        r.body["workbin"]["uri"]
            .as_str()
            .unwrap()
            .contains("/api/v2/users/802396ae32494a8b8a617a9103d968bb/workbins/")
    );
    // GetWorkbinSubresources by User, as the GWS page writes the path (no `users/`).
    let r = sup
        .get("/api/v2/802396ae32494a8b8a617a9103d968bb/workbins/Drafts/emails?subresources=*")
        .await;
    assert_eq!(r.body["workbin"]["emails"], json!([]), "{}", r.body);
    let r = sup
        .get("/api/v2/me/workbins/Team?agentGroup=Sales&subresources=*")
        .await;
    assert_eq!(
        (&r.body["workbin"]["type"], &r.body["workbin"]["agentGroup"]),
        (&json!("AgentGroup"), &json!("Sales")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn health_needs_no_sign_in() {
    let s = start(|_, _| {}).await;
    let r = send(s.http, "GET", "/health/live", &[], b"").await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (200, &json!("live")),
        "{}",
        r.body
    );
    let r = send(s.http, "GET", "/health/ready", &[], b"").await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (200, &json!("ready")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn content_add_and_pull_over_http() {
    let s = start(|_, _| {}).await;
    let m = media(s.tcp).await;
    m.request_ok(
        Message::new(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound")
            .with(attr::INTERACTION_ID, "IX-Q")
            .with(attr::USER_DATA, KvList::new().with("Subject", "Hi")),
    )
    .await
    .unwrap();
    let a1 = Agent::sign_in(s.http, "a1").await;
    a1.start_session("p1").await;
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "AddInteraction", "interactionId": "IX-Q"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 0, "{}", r.body);
    // GetWorkbinContent: the workbin resource; the content only with ?subresources=.
    let r = a1.get("/api/v2/me/workbins/Drafts").await;
    let wb = &r.body["workbin"];
    assert_eq!(
        (
            &wb["workbinName"],
            &wb["name"],
            &wb["displayName"],
            &wb["type"]
        ),
        (
            &json!("Drafts"),
            &json!("Drafts"),
            &json!("Drafts"),
            &json!("Agent")
        ),
        "{}",
        r.body
    );
    assert_eq!(wb["id"], "aee812a5-7396-4dd9-b180-230f1c1fb085");
    assert_eq!(
        wb["uri"],
        format!(
            "http://{}/api/v2/workbins/aee812a5-7396-4dd9-b180-230f1c1fb085",
            s.http
        )
    );
    assert!(wb.get("emails").is_none(), "{}", r.body);
    let r = a1.get("/api/v2/me/workbins/Drafts?subresources=*").await;
    let email = &r.body["workbin"]["emails"][0];
    assert_eq!(email["id"], "IX-Q", "{}", r.body);
    assert_eq!(email["subject"], "Hi");
    assert_eq!(email["capabilities"], json!([]));
    assert!(
        email["receivedDate"]
            .as_str()
            .unwrap()
            .ends_with(".000+0000"),
        "{email}"
    );
    assert!(
        r.body["workbin"].get("chats").is_none(),
        "only media with items for *"
    );
    let r = a1
        .get("/api/v2/me/workbins/aee812a5-7396-4dd9-b180-230f1c1fb085?subresources=chat,email")
        .await;
    assert_eq!(r.body["workbin"]["chats"], json!([]), "{}", r.body);
    assert_eq!(r.body["workbin"]["emails"][0]["id"], "IX-Q");
    let r = a1
        .get("/api/v2/me/workbins/Drafts/emails?subresources=*")
        .await;
    assert_eq!(r.body["workbin"]["emails"][0]["id"], "IX-Q", "{}", r.body);
    assert!(r.body["workbin"].get("chats").is_none());
    let r = a1.get("/api/v2/me/workbins/Drafts?subresources=sms").await;
    assert_eq!((r.status, &r.body["statusCode"]), (400, &json!(1)));
    assert!(
        r.body["statusMessage"]
            .as_str()
            .unwrap()
            .contains("chat, email, facebook"),
        "{}",
        r.body
    );
    let r = a1.get("/api/v2/me/workbins/Drafts/faxes").await;
    assert_eq!(r.body["statusCode"], 6, "{}", r.body);
    // Several workbins at once, a repeated id once.
    let r = a1
        .get("/api/v2/me/workbins?workbinIds=Drafts,Review,Drafts&subresources=*")
        .await;
    let names: Vec<&str> = r.body["workbins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workbinName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Drafts", "Review"], "{}", r.body);
    assert_eq!(r.body["workbins"][0]["emails"][0]["id"], "IX-Q");
    let r = a1
        .post(
            "/api/v2/me/workbins/Review",
            json!({"operationName": "PullInteraction", "interactionId": "IX-Q"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 2, "not in that workbin: {}", r.body);
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "PullInteraction", "interactionId": "IX-Q"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 0, "{}", r.body);
    assert_eq!(r.body["interaction"]["interactionState"], "Handling");
    let r = a1
        .get("/api/v2/me/workbins/Drafts?subresources=email")
        .await;
    assert_eq!(r.body["workbin"]["emails"], json!([]));
    // The agent is logged in on the engine: another client cannot log it in elsewhere.
    let r = a1
        .post(
            "/api/v2/me",
            json!({"operationName": "EndContactCenterSession"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 0);
}

#[tokio::test]
async fn cometd_expiry_caps_and_bounded_queues() {
    let s = start(|http, _| {
        http.max_interval_ms = 300;
        http.max_cometd_sessions = 3;
        http.cometd_queue_messages = 2;
    })
    .await;
    let a1 = Agent::sign_in(s.http, "a1").await;
    a1.start_session("p1").await;
    // Unknown clientId: 402 with reconnect handshake, id echoed.
    let r = a1.connect("nope", json!({})).await;
    assert_eq!(r[0]["error"], "402::session_unknown");
    assert_eq!(r[0]["advice"]["reconnect"], "handshake");
    assert_eq!(r[0]["id"], "c");
    let sup = Agent::sign_in(s.http, "sup1").await;
    // From here the clock is tokio's virtual one, which the gateway's sweeper and sessions
    // follow: a sleep completes once every task is idle and the clock has moved on.
    tokio::time::pause();
    // A session that stops connecting is swept (max_interval_ms 300, a sweep about every
    // second).
    let id = a1.cometd(false).await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let r = a1.connect(&id, json!({"advice": {"timeout": 0}})).await;
    assert_eq!(r[0]["error"], "402::session_unknown", "{r}");
    // The global cap.
    let _x = a1.cometd(false).await;
    let _y = a1.cometd(false).await;
    let _z = sup.cometd(false).await;
    let r = sup.post(&format!("{NOTIFY}/handshake"), json!([{"id": "9", "channel": "/meta/handshake", "supportedConnectionTypes": ["long-polling"]}])).await;
    assert_eq!(r.body[0]["successful"], false);
    assert!(
        r.body[0]["error"].as_str().unwrap().starts_with("503::"),
        "{}",
        r.body
    );
    // A full queue closes the session: three outcomes for a queue of two.
    let r = a1
        .post(
            "/api/v2/me/workbins?workbinIds=Drafts,Review,Desk",
            json!({"operationName": "Subscribe"}),
        )
        .await;
    assert_eq!(
        r.body["referenceIds"].as_object().unwrap().len(),
        3,
        "{}",
        r.body
    );
    // Once every task is idle, the three outcomes have been published.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let r = a1.connect(&_x, json!({"advice": {"timeout": 0}})).await;
    assert_eq!(r[0]["error"], "402::session_unknown", "{r}");
}

#[tokio::test]
async fn acknowledged_batches_are_resent_until_acked() {
    let s = start(|_, _| {}).await;
    let a1 = Agent::sign_in(s.http, "a1").await;
    a1.start_session("p1").await;
    let id = a1.cometd(true).await;
    let r = a1
        .connect(&id, json!({"advice": {"timeout": 0}, "ext": {"ack": 0}}))
        .await;
    let first = r.as_array().unwrap().last().unwrap()["ext"]["ack"]
        .as_u64()
        .unwrap();
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "Subscribe"}),
        )
        .await;
    let reference = r.body["referenceId"].clone();
    let got = a1.connect(&id, json!({"ext": {"ack": first}})).await;
    let batch = got.as_array().unwrap().last().unwrap()["ext"]["ack"]
        .as_u64()
        .unwrap();
    assert_eq!(data_of(&got)[0]["referenceId"], reference);
    // The reply was "lost": the client acknowledges only the earlier batch, so it comes again.
    let again = a1.connect(&id, json!({"ext": {"ack": first}})).await;
    assert_eq!(data_of(&again), data_of(&got), "resent");
    let last = again.as_array().unwrap().last().unwrap()["ext"]["ack"]
        .as_u64()
        .unwrap();
    assert!(last > batch);
    // Acknowledged: not sent again (the connect is held to its timeout: ask for 200 ms).
    let after = a1
        .connect(
            &id,
            json!({"ext": {"ack": last}, "advice": {"timeout": 200}}),
        )
        .await;
    assert!(data_of(&after).is_empty(), "{after}");
}

#[tokio::test]
async fn a_long_poll_dropped_while_held_loses_nothing() {
    let s = start(|_, _| {}).await;
    let a1 = Agent::sign_in(s.http, "a1").await;
    a1.start_session("p1").await;
    let id = a1.cometd(false).await;
    let r = a1
        .post(
            "/api/v2/me/workbins/Drafts",
            json!({"operationName": "Subscribe"}),
        )
        .await;
    assert_eq!(r.body["statusCode"], 0);
    let got = a1.connect(&id, json!({})).await;
    assert_eq!(data_of(&got)[0]["stateResource"], "Subscribed");
    // Virtual time from here: a sleep completes once every task is idle (the server has read
    // what was sent, or seen the close).
    tokio::time::pause();
    // Hold a connect, then drop the connection before anything arrives.
    let body = json!([{"id": "h", "channel": "/meta/connect", "connectionType": "long-polling", "clientId": id}]).to_string();
    let mut held = TcpStream::connect(s.http).await.unwrap();
    held.write_all(format!("POST {NOTIFY}/connect HTTP/1.1\r\nHost: x\r\n{}: {}\r\nContent-Length: {}\r\n\r\n{body}", a1.cookie.0, a1.cookie.1, body.len()).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    drop(held);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let m = media(s.tcp).await;
    place(&m, "IX-D", "a1").await;
    let got = a1.connect(&id, json!({})).await;
    let data = data_of(&got);
    assert_eq!(data.len(), 1, "{got}");
    assert_eq!(data[0]["action"], "ItemAdded");
    assert_eq!(data[0]["emailStateResourceV2"]["id"], "IX-D");
}

/// Problem 3: a burst of native moves while an agent is subscribed over the web API passes the
/// web gateway's link way past the outbound queue bound; the link is not cut off (the engine
/// waits for it), the CometD session overflows alone (402), and web requests keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_burst_does_not_cut_the_web_api_off_the_engine() {
    timeout(Duration::from_secs(120), async {
        let server = start(|http, file| {
            http.cometd_queue_messages = 20;
            file.limits.outbound_queue_messages = 200;
        })
        .await;
        let a1 = Agent::sign_in(server.http, "a1").await;
        a1.start_session("p1").await;
        let client = a1.cometd(false).await;
        let r = a1
            .post(
                "/api/v2/me/workbins/Drafts",
                json!({"operationName": "Subscribe"}),
            )
            .await;
        assert_eq!(r.body["statusCode"], 0, "{}", r.body);
        // 8 native connections, 150 interactions each, submitted and moved concurrently: each
        // move is a notification for the web agent.
        let mut tasks = Vec::new();
        for c in 0..8 {
            let tcp = server.tcp;
            tasks.push(tokio::spawn(async move {
                let ms = media(tcp).await;
                let ms = &ms;
                let moves = (0..150).map(|i| async move {
                    place(ms, &format!("IX-{c}-{i}"), "a1").await;
                });
                futures_util::future::join_all(moves).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Web requests still reach the engine.
        let r = a1.get("/api/v2/me/workbins/Drafts?subresources=*").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["workbin"]["emails"].as_array().unwrap().len(), 1200);
        // The CometD session overflowed on its own: its client is told to handshake again.
        let batch = a1.connect(&client, json!({})).await;
        let reply = batch
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["channel"] == "/meta/connect")
            .unwrap();
        assert_eq!(reply["successful"], false, "{batch}");
        assert!(
            reply["error"].as_str().unwrap().starts_with("402"),
            "{batch}"
        );
        // And a new CometD session works.
        let again = a1.cometd(false).await;
        assert_ne!(again, client);
        let r = a1
            .post(
                "/api/v2/me/workbins/Drafts",
                json!({"operationName": "Unsubscribe"}),
            )
            .await;
        assert_eq!(r.body["statusCode"], 0, "{}", r.body);
    })
    .await
    .unwrap();
}

/// Problem 10: cross-site requests, user enumeration by timing, password guessing, session
/// tokens and sign-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_requests_must_be_json_from_an_allowed_origin() {
    timeout(Duration::from_secs(60), async {
        let server = start(|http, _| {
            http.allowed_origins = vec!["https://desk.example.com".to_owned()];
        })
        .await;
        let a1 = Agent::sign_in(server.http, "a1").await;
        a1.start_session("p1").await;
        let start = br#"{"operationName":"StartContactCenterSession","place":"p1"}"#;
        // What a foreign page can post without a preflight: form, text/plain, multipart.
        for ct in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
        ] {
            let r = send(
                server.http,
                "POST",
                "/api/v2/me",
                &[a1.cookie.clone(), ("Content-Type", ct.to_owned())],
                start,
            )
            .await;
            assert_eq!(r.status, 415, "{ct}: {}", r.body);
            assert!(
                r.body["statusMessage"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{}",
                r.body
            );
        }
        // A custom header (which a foreign page cannot send without CORS) also does.
        let r = send(
            server.http,
            "POST",
            "/api/v2/me/workbins/Drafts",
            &[
                a1.cookie.clone(),
                ("Content-Type", "text/plain".to_owned()),
                ("X-Requested-With", "XMLHttpRequest".to_owned()),
            ],
            br#"{"operationName":"Subscribe"}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        // A foreign Origin is refused even with JSON; the server's own and configured ones pass.
        let r = send(
            server.http,
            "POST",
            "/api/v2/me",
            &[
                a1.cookie.clone(),
                ("Origin", "https://evil.example".to_owned()),
            ],
            start,
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        for origin in [
            format!("http://{}", server.http),
            "https://desk.example.com".to_owned(),
        ] {
            let r = send(
                server.http,
                "POST",
                "/api/v2/me/workbins/Drafts",
                &[a1.cookie.clone(), ("Origin", origin.clone())],
                br#"{"operationName":"Subscribe"}"#,
            )
            .await;
            assert_eq!(r.status, 200, "{origin}: {}", r.body);
        }
        // A WebSocket upgrade from a foreign page is refused too.
        let r = send(
            server.http,
            "GET",
            NOTIFY,
            &[
                a1.cookie.clone(),
                ("Origin", "https://evil.example".to_owned()),
                ("Upgrade", "websocket".to_owned()),
                ("Sec-WebSocket-Version", "13".to_owned()),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==".to_owned()),
            ],
            b"",
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_hides_who_exists_limits_guessers_and_rotates_tokens() {
    timeout(Duration::from_secs(60), async {
        // The default sign-in rate: 10 a second from one address.
        let server = start(|http, _| http.sign_ins_per_second = 10).await;
        // Each sign-in with credentials gets a new token; both work; sign-out ends the session.
        let first = Agent::sign_in(server.http, "a3").await;
        let second = Agent::sign_in(server.http, "a3").await;
        assert_ne!(first.cookie.1, second.cookie.1);
        second.start_session("p3").await;
        assert_eq!(first.get("/api/v2/me").await.status, 200);
        let r = second.post("/api/v2/signout", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
        for a in [&first, &second] {
            let r = a.get("/api/v2/me").await;
            assert_eq!(r.status, 401, "{}", r.body);
        }
        // The agent was logged out of the engine: it can log in natively now.
        let mut native = Client::connect(server.tcp).await.unwrap();
        native
            .register("desk", ClientType::AgentApplication)
            .await
            .unwrap();
        native
            .request_ok(
                Message::new(MessageId::REQUEST_AGENT_LOGIN)
                    .with(attr::TENANT_ID, 101)
                    .with(attr::AGENT_ID, "a3")
                    .with(attr::PLACE_ID, "p3"),
            )
            .await
            .unwrap();
        // Unknown and known agents cost the same: one password check each.
        let time = |user: &'static str| async move {
            let mut times = Vec::new();
            for _ in 0..4 {
                let t = std::time::Instant::now();
                let r = send(
                    server.http,
                    "GET",
                    "/api/v2/me",
                    &[basic(user, "wrong")],
                    b"",
                )
                .await;
                assert_eq!(r.status, 401, "{}", r.body);
                assert_eq!(r.body["statusMessage"], "unknown agent or wrong password");
                times.push(t.elapsed());
            }
            times.sort();
            times[1]
        };
        let known = time("a1").await;
        let unknown = time("nobody").await;
        // An argon2 check takes milliseconds; skipping it takes microseconds.
        assert!(unknown * 4 > known, "known {known:?}, unknown {unknown:?}");
        // A guesser gets at most 10 answers a second from one address; the rest get 429 at
        // once.
        let started = std::time::Instant::now();
        let (mut answered, mut limited) = (0u32, 0u32);
        for _ in 0..40 {
            let r = send(
                server.http,
                "GET",
                "/api/v2/me",
                &[basic("a2", "guess")],
                b"",
            )
            .await;
            match r.status {
                401 => answered += 1,
                429 => limited += 1,
                other => panic!("{other}: {}", r.body),
            }
        }
        let secs = started.elapsed().as_secs_f64();
        assert!(limited > 0, "no guess was limited");
        assert!(
            f64::from(answered) <= 10.0 + 10.0 * secs + 1.0,
            "{answered} answers in {secs} s"
        );
    })
    .await
    .unwrap();
}

/// Problem 4: idle and slow-header HTTP connections are closed after the header read timeout,
/// and a kept-alive connection after as long idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_http_connections_are_closed() {
    timeout(Duration::from_secs(60), async {
        let server = start(|http, _| http.header_read_timeout_secs = 1).await;
        let mut idle = TcpStream::connect(server.http).await.unwrap();
        let mut slow = TcpStream::connect(server.http).await.unwrap();
        slow.write_all(b"GET /api/v2/me HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut kept = TcpStream::connect(server.http).await.unwrap();
        kept.write_all(b"GET /api/v2/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Each is closed by the server (the read ends): the event this waits for.
        for s in [&mut idle, &mut slow, &mut kept] {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn readiness_is_503_while_the_engine_does_not_answer() {
    use tokio::sync::mpsc;
    let config = Arc::new(Config::from_toml_str(DEMO_TOML, "demo").unwrap());
    let listener = ixn_gateway::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = listener.local_addr().unwrap();
    let (requests, mut to_engine) = mpsc::channel::<Message>(16);
    let (deliver, deliveries) = mpsc::channel(16);
    // A stalled engine: it acknowledges the web API's own registration, then answers nothing.
    let engine = tokio::spawn(async move {
        let register = to_engine.recv().await.unwrap();
        let ack = Message::new(MessageId::EVENT_ACK)
            .with(attr::REFERENCE_ID, register.reference_id().unwrap())
            .with(attr::PROXY_CLIENT_ID, 1);
        deliver.send(vec![(Arc::new(ack), None)]).await.unwrap();
        let mut unanswered = 0usize;
        while to_engine.recv().await.is_some() {
            unanswered += 1;
        }
        drop(deliver);
        unanswered
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    let web = tokio::spawn(ixn_gateway::serve(
        listener,
        config,
        ixn_gateway::Link {
            requests,
            deliveries,
        },
        64,
        None,
        Arc::new(ixn_gateway::WebMetrics::default()),
        async move { stopping.cancelled().await },
    ));
    let r = send(http, "GET", "/health/live", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(http, "GET", "/health/ready", &[], b"").await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (503, &json!("not ready")),
        "{}",
        r.body
    );
    assert!(
        r.body["reason"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{}",
        r.body
    );
    stop.cancel();
    let _ = web.await;
    assert!(engine.await.unwrap() >= 1, "the probe reached the engine");
}

/// A server sharing a PostgreSQL store that loses it (another takes it over) ends every web
/// session: CometD clients get 402::session_unknown (and handshake again after signing in),
/// and /health/ready turns 503 naming the new active server. Against a real PostgreSQL (a
/// throwaway cluster; skipped, saying so, without PostgreSQL unless IXN_REQUIRE_POSTGRES).
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn a_step_down_ends_web_sessions_and_cometd_answers_402() {
    // The cluster's helpers use the blocking client: off the runtime.
    let Some((pg, url)) = std::thread::spawn(|| {
        ixn_testkit::pg::start_or_skip("web step-down").map(|pg| {
            let url = pg.database("web").unwrap();
            (pg, url)
        })
    })
    .join()
    .unwrap() else {
        return;
    };
    let config = Arc::new(Config::from_toml_str(DEMO_TOML, "demo").unwrap());
    let listener = ixn_server::bind_http("127.0.0.1:0".parse().unwrap(), &config)
        .await
        .unwrap();
    let http = listener.local_addr().unwrap();
    let _started = ixn_server::start_shared(
        "127.0.0.1:0".parse().unwrap(),
        config,
        ixn_server::SharedStore {
            url: url.clone(),
            lease: ixn_server::DEFAULT_LEASE,
            advertised: String::new(),
        },
        ixn_server::Options {
            http: Some(listener),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Ready once it holds the store (and the web API registered with its engine).
    timeout(Duration::from_secs(30), async {
        while send(http, "GET", "/health/ready", &[], b"").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server never became ready");
    let agent = Agent::sign_in(http, "a1").await;
    agent.start_session("p1").await;
    let client = agent.cometd(false).await;
    // Another holder takes the store over (the next epoch).
    let taker = url.clone();
    std::thread::spawn(move || {
        ixn_pgstore::PgStore::open(&taker, "the test", "10.9.9.9:7000").unwrap();
    })
    .join()
    .unwrap();
    // The server notices at its next renewal and stands by, naming the new holder.
    let reason = timeout(Duration::from_secs(30), async {
        loop {
            let r = send(http, "GET", "/health/ready", &[], b"").await;
            if r.status == 503 {
                return r.body["reason"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server never stepped down");
    assert!(reason.contains("NotActive"), "{reason}");
    let r = agent.connect(&client, json!({})).await;
    assert_eq!(r[0]["error"], "402::session_unknown", "{r}");
    let r = agent.get("/api/v2/me").await;
    assert_eq!(r.status, 401, "the web session ended: {}", r.body);
    drop(pg);
}

/// A Workspace API access token expires after `access_token_secs`, and the refusal says so;
/// the token route refuses a wrong client and takes no JSON body's place.
#[tokio::test]
async fn workspace_access_tokens_expire_and_say_so() {
    let server = start(|http, _| http.access_token_secs = 1).await;
    let form = b"grant_type=password&username=a1&password=demo-a1";
    let token = |client: (&'static str, String)| async move {
        let headers = [
            client,
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ];
        send(server.http, "POST", "/auth/v3/oauth/token", &headers, form).await
    };
    let wrong = token(basic("ixn-demo", "not-the-secret")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["error"], "invalid_client");
    let r = token(basic("ixn-demo", "demo-secret")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["expires_in"], 1);
    let bearer = (
        "Authorization",
        format!("Bearer {}", r.body["access_token"].as_str().unwrap()),
    );
    // Good until it expires: then each use says it expired (not that it is unknown).
    let started = std::time::Instant::now();
    loop {
        let r = send(
            server.http,
            "GET",
            "/auth/v3/userinfo",
            std::slice::from_ref(&bearer),
            b"",
        )
        .await;
        if r.status == 200 {
            assert_eq!(r.body["user_name"], "a1");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "still good after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(
            r.body["status"]["message"]
                .as_str()
                .unwrap()
                .contains("expired"),
            "{}",
            r.body
        );
        break;
    }
    let r = send(
        server.http,
        "POST",
        "/workspace/v3/initialize-workspace",
        &[bearer],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["status"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}
