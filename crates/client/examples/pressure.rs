//! Puts pressure on a running server (demo configuration) to measure its memory:
//!
//! - `pressure idle ADDR N SECS`: N connections register and then sit idle for SECS seconds.
//! - `pressure stall ADDR N`: one subscriber to a1's Drafts never reads, while a media server
//!   moves an interaction in and out of that workbin N times (N notifications for it).
//!
//! Read the server's peak memory from `/proc/<pid>/status` (VmHWM) meanwhile.

// A command-line aid: printing is its output, and a broken setup may panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use ixn_client::Client;
use ixn_codec::{ClientType, Codec, KvList, Message, MessageId, attr};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let n: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1000);
    match args.get(1).map(String::as_str) {
        Some("idle") => {
            let secs: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10);
            let mut clients = Vec::with_capacity(n);
            for _ in 0..n {
                let mut c = Client::connect(addr.as_str()).await.unwrap();
                c.register("desk", ClientType::AgentApplication)
                    .await
                    .unwrap();
                clients.push(c);
            }
            println!("{n} registered connections idle for {secs} s");
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
        Some("stall") => {
            let mut stalled = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
            let mut buf = ixn_codec::BytesMut::new();
            for json in [
                r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#,
                r#"{"message":"RequestAgentLogin","ReferenceId":2,"TenantId":101,"AgentId":"a1","PlaceId":"p1"}"#,
                r#"{"message":"RequestWorkbinNotifications","ReferenceId":3,"Workbin":{"WorkbinTypeId":"Drafts"}}"#,
            ] {
                Codec::default()
                    .encode(&Message::from_json(json).unwrap(), &mut buf)
                    .unwrap();
            }
            stalled.write_all(&buf).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut m = Client::connect(addr.as_str()).await.unwrap();
            m.register("emailsrv", ClientType::MediaServer)
                .await
                .unwrap();
            m.request_ok(
                Message::new(MessageId::REQUEST_SUBMIT)
                    .with(attr::TENANT_ID, 101)
                    .with(attr::MEDIA_TYPE, "email")
                    .with(attr::INTERACTION_TYPE, "Inbound")
                    .with(attr::QUEUE, "Inbound")
                    .with(attr::INTERACTION_ID, "IX-PRESSURE")
                    .with(attr::USER_DATA, KvList::new().with("Body", "x".repeat(500))),
            )
            .await
            .unwrap();
            let wb = |a: &'static str| {
                KvList::new()
                    .with(attr::WORKBIN_TYPE_ID, "Drafts")
                    .with(attr::WORKBIN_AGENT_ID, a)
            };
            let started = Instant::now();
            for i in 0..n {
                let to = if i % 2 == 0 { wb("a1") } else { wb("a2") };
                m.request_ok(
                    Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                        .with(attr::INTERACTION_ID, "IX-PRESSURE")
                        .with(attr::WORKBIN, to),
                )
                .await
                .unwrap();
            }
            println!(
                "{n} notifications sent towards a subscriber that never reads, in {:?}",
                started.elapsed()
            );
            drop(stalled);
        }
        _ => println!("usage: pressure idle ADDR N SECS | pressure stall ADDR N"),
    }
}
