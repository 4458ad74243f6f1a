//! What the client reports when the connection ends: a plain close is `Closed`; a frame it
//! cannot decode is `Broken` with the codec's error, for every request waiting and afterwards.

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_client::{Client, Error};
use ixn_codec::{Malformed, Message, MessageId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A fake server: accepts one connection, waits for the first request's bytes, then sends
/// `answer` and closes.
async fn fake_server(answer: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(&answer).await.unwrap();
        s.shutdown().await.unwrap();
        // Keep the socket until the client has read everything.
        let _ = s.read(&mut buf).await;
    });
    addr
}

#[tokio::test]
async fn a_frame_that_does_not_decode_is_reported_not_hidden_as_a_close() {
    // A frame announcing one pair whose value has the type tag 9.
    let bad = vec![0, 0, 0, 12, 0, 125, 0, 0, 0, 1, 0, 1, b'k', 9, 0, 0];
    let addr = fake_server(bad).await;
    let client = Client::connect(&addr).await.unwrap();
    let err = client
        .request(Message::new(MessageId::PING))
        .await
        .unwrap_err();
    let Error::Broken(cause) = &err else {
        panic!("expected Broken, got {err:?}");
    };
    assert!(
        matches!(
            cause.malformed(),
            Some(Malformed::BadTypeTag { tag: 9, .. })
        ),
        "{cause:?}"
    );
    assert!(err.to_string().contains("bad value type tag"), "{err}");
    // Kept for later requests and for whoever reads the notifications.
    assert!(client.failure().is_some());
    let again = client.request(Message::new(MessageId::PING)).await;
    assert!(matches!(again, Err(Error::Broken(_))), "{again:?}");
}

#[tokio::test]
async fn a_plain_close_is_closed() {
    let addr = fake_server(Vec::new()).await;
    let client = Client::connect(&addr).await.unwrap();
    let err = client
        .request(Message::new(MessageId::PING))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert!(client.failure().is_none());
}
