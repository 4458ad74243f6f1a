//! An in-process connection for the web gateway: the same engine task and ordering as a TCP
//! connection, with channels instead of a socket (no encoding).
//!
//! Its outbox never overflows ([`Outbox::for_link`]): the gateway multiplexes every web user,
//! so cutting it off as a slow consumer would fail them all. When its queue is full, the engine
//! task waits for the gateway's pump, which never waits on a web client (each CometD session has
//! its own bounded queue and overflows alone).

use crate::input::Input;
use crate::outbox::{Item, Outbox};
use ixn_codec::Message;
use ixn_codec::link::{Delivery, Link};
use ixn_core::ConnId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::info;

/// Requests the gateway may queue before it waits (back-pressure, like a socket buffer).
const REQUESTS: usize = 1024;
/// Batches of deliveries queued to the gateway before the forwarder waits. A batch is what the
/// engine queued for the link at once, so it is bounded by the link's outbox
/// (`outbound_queue_messages`, `outbound_queue_bytes`): what waits for the gateway is at most a
/// few outboxes' worth.
const DELIVERIES: usize = 4;

/// Why an in-process connection ended before its client closed it (the server must then stop,
/// as the web API can no longer work).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkEnded {
    /// The engine task is gone.
    #[error("the engine task is gone")]
    EngineGone,
    /// The engine task closed the connection.
    #[error("the engine closed the connection")]
    Closed,
}

/// Opens an in-process connection `conn` on the engine task; returns the gateway's end and the
/// task serving the engine's end. The task ends when the gateway drops its request sender
/// (`Ok`), or when the engine side ends first (`Err` with why: the server must then stop, as the
/// web API can no longer work).
pub(crate) fn open(
    conn: ConnId,
    peer: SocketAddr,
    inputs: mpsc::Sender<Input>,
    max_messages: usize,
    max_bytes: usize,
) -> (Link, impl Future<Output = Result<(), LinkEnded>>) {
    let (requests_tx, mut requests) = mpsc::channel::<Message>(REQUESTS);
    let (deliveries, deliveries_rx) = mpsc::channel::<Vec<Delivery>>(DELIVERIES);
    let link = Link {
        requests: requests_tx,
        deliveries: deliveries_rx,
    };
    let task = async move {
        let outbox = Arc::new(Outbox::for_link(max_messages, max_bytes));
        if inputs
            .send(Input::Open {
                proof: None,
                conn,
                peer,
                outbox: Arc::clone(&outbox),
                link: true,
            })
            .await
            .is_err()
        {
            return Err(LinkEnded::EngineGone);
        }
        info!(conn = conn.0, "web gateway connected to the engine");
        let writer = tokio::spawn(forward(
            Arc::clone(&outbox),
            deliveries,
            conn,
            inputs.clone(),
        ));
        let ended = loop {
            tokio::select! {
                msg = requests.recv() => match msg {
                    Some(msg) => {
                        outbox.sent_to_engine(1);
                        let batch = Input::Batch { conn, msgs: vec![msg], bytes: 0 };
                        if inputs.send(batch).await.is_err() {
                            break Err(LinkEnded::EngineGone);
                        }
                    }
                    None => break Ok(()),
                },
                () = outbox.closing.cancelled() => break Err(LinkEnded::Closed),
            }
        };
        crate::input::close(&inputs, conn).await;
        outbox.close_after_queued();
        let _ = writer.await;
        match &ended {
            Ok(()) => info!(conn = conn.0, "web gateway connection closed"),
            Err(why) => info!(conn = conn.0, %why, "web gateway connection lost"),
        }
        ended
    };
    (link, task)
}

/// Hands what the engine queued to the gateway, in order.
async fn forward(
    outbox: Arc<Outbox>,
    deliveries: mpsc::Sender<Vec<Delivery>>,
    conn: ConnId,
    inputs: mpsc::Sender<Input>,
) {
    loop {
        let (items, taken) = outbox.take().await;
        if taken.resume {
            let _ = inputs.send(Input::Resume { conn }).await;
        }
        let batch: Vec<Delivery> = items
            .into_iter()
            .filter_map(|item| match item {
                Item::Msg {
                    msg,
                    proxy_client_id,
                } => Some((msg, proxy_client_id)),
                // Only TCP connections queue raw frames (their own Ping replies) and shared
                // frames: the engine task queues messages for the link (`Outbox::is_link`).
                Item::Shared { .. } | Item::Raw(_) => None,
            })
            .collect();
        if !batch.is_empty() && deliveries.send(batch).await.is_err() {
            outbox.close_after_queued();
            return;
        }
        if taken.close {
            return;
        }
    }
}
