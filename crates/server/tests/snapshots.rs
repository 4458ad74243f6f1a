//! Snapshots over real sockets: one that takes several slices is answered in order with the
//! requests its client sent behind it, while other clients are served.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ixn_codec::{ClientType, Codec, Message, MessageId, attr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;

use common::{demo, frame, media, register, start};

/// Reads `n` messages from `s`.
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<Message> {
    let mut buf = ixn_codec::BytesMut::new();
    let mut out = Vec::new();
    while out.len() < n {
        while let Some(m) = Codec::default().decode(&mut buf).unwrap() {
            out.push(m);
        }
        if out.len() < n {
            let mut chunk = [0u8; 8192];
            let got = s.read(&mut chunk).await.unwrap();
            assert!(got > 0, "closed after {} messages: {out:?}", out.len());
            buf.extend_from_slice(&chunk[..got]);
        }
    }
    out
}

#[tokio::test]
async fn a_sliced_snapshot_answers_in_order_and_others_are_served_meanwhile() {
    timeout(Duration::from_secs(120), async {
        let server = start(demo(|_| {})).await;
        let loader = media(server.addr, "emailsrv").await;
        let n = 3 * ixn_core::SCAN_SLICE + 11;
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let submits = chunk.iter().map(|i| {
                loader.request_ok(
                    Message::new(MessageId::REQUEST_SUBMIT)
                        .with(attr::TENANT_ID, 101)
                        .with(attr::MEDIA_TYPE, if i % 2 == 0 { "chat" } else { "email" })
                        .with(attr::INTERACTION_TYPE, "Inbound")
                        .with(attr::QUEUE, "Inbound"),
                )
            });
            for r in futures_util::future::join_all(submits).await {
                r.unwrap();
            }
        }
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(&frame(&register("emailsrv", ClientType::MediaServer)))
            .await
            .unwrap();
        read_n(&mut s, 1).await;
        // A scan of every slot (no queue named), then two requests behind it, in one write.
        let mut bytes = frame(
            &Message::new(MessageId::REQUEST_TAKE_SNAPSHOT)
                .with(attr::REFERENCE_ID, 1)
                .with(attr::CONDITION, "MediaType = 'chat'")
                .with(attr::ORDER, "InteractionId DESC"),
        );
        bytes.extend_from_slice(&frame(
            &Message::new(MessageId::PING).with(attr::REFERENCE_ID, 2),
        ));
        bytes.extend_from_slice(&frame(
            &Message::new(MessageId::REQUEST_TAKE_SNAPSHOT)
                .with(attr::REFERENCE_ID, 3)
                .with(attr::CONDITION, "MediaType = 'email'")
                .with(attr::SNAPSHOT_MAX_INTERACTIONS, 7),
        ));
        s.write_all(&bytes).await.unwrap();
        // Another client is answered meanwhile (and its answer does not wait for the scans').
        loader.request(Message::new(MessageId::PING)).await.unwrap();
        let replies = read_n(&mut s, 3).await;
        let refs: Vec<_> = replies.iter().map(Message::reference_id).collect();
        assert_eq!(refs, [Some(1), Some(2), Some(3)], "{replies:?}");
        assert_eq!(
            replies[0].id,
            MessageId::EVENT_SNAPSHOT_TAKEN,
            "{replies:?}"
        );
        assert_eq!(
            replies[0].attrs.get_int(attr::NUMBER_OF_INTERACTIONS),
            Some(500)
        );
        assert_eq!(
            replies[2].attrs.get_int(attr::NUMBER_OF_INTERACTIONS),
            Some(7)
        );
    })
    .await
    .unwrap();
}
