//! An in-process connection for the web gateway: the same engine task, outbox and ordering as a
//! TCP connection, with channels instead of a socket (no encoding).

use crate::engine_task::Input;
use crate::outbox::{Item, Outbox};
use ixn_codec::Message;
use ixn_core::ConnId;
use ixn_gateway::{Delivered, Link};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Requests the gateway may queue before it waits (back-pressure, like a socket buffer).
const REQUESTS: usize = 1024;
/// Deliveries queued to the gateway before the writer waits (its outbox keeps the bound).
const DELIVERIES: usize = 4096;

/// Opens an in-process connection `conn` on the engine task; returns the gateway's end and the
/// task serving the engine's end (it ends when the gateway drops its request sender, or the
/// engine closes the connection).
pub(crate) fn open(
    conn: ConnId,
    peer: SocketAddr,
    inputs: mpsc::Sender<Input>,
    max_messages: usize,
    max_bytes: usize,
) -> (Link, impl Future<Output = ()>) {
    let (requests_tx, mut requests) = mpsc::channel::<Message>(REQUESTS);
    let (deliveries, deliveries_rx) = mpsc::channel::<Delivered>(DELIVERIES);
    let link = Link {
        requests: requests_tx,
        deliveries: deliveries_rx,
    };
    let task = async move {
        let outbox = Arc::new(Outbox::new(max_messages, max_bytes));
        if inputs
            .send(Input::Open {
                conn,
                peer,
                outbox: Arc::clone(&outbox),
            })
            .await
            .is_err()
        {
            return;
        }
        info!(conn = conn.0, "web gateway connected to the engine");
        let writer = tokio::spawn(forward(Arc::clone(&outbox), deliveries));
        let reason = loop {
            tokio::select! {
                msg = requests.recv() => match msg {
                    Some(msg) => {
                        outbox.sent_to_engine(1);
                        let batch = Input::Batch { conn, msgs: vec![msg] };
                        if inputs.send(batch).await.is_err() {
                            break "server stopping";
                        }
                    }
                    None => break "web gateway stopped",
                },
                () = outbox.closing.cancelled() => break "closed by the server",
            }
        };
        crate::engine_task::close(&inputs, conn).await;
        if outbox.is_overflowed() {
            warn!(
                conn = conn.0,
                "the web gateway fell behind its outbound queue (outbound_queue_messages / outbound_queue_bytes)"
            );
            writer.abort();
        } else {
            outbox.close_after_queued();
            let _ = writer.await;
        }
        info!(conn = conn.0, %reason, "web gateway connection closed");
    };
    (link, task)
}

/// Hands what the engine queued to the gateway, in order.
async fn forward(outbox: Arc<Outbox>, deliveries: mpsc::Sender<Delivered>) {
    loop {
        let (items, close) = outbox.take().await;
        for item in items {
            let Item::Msg {
                msg,
                proxy_client_id,
                ..
            } = item
            else {
                // Only TCP connections queue raw frames (their own Ping replies).
                continue;
            };
            if deliveries
                .send(Delivered {
                    msg,
                    proxy_client_id,
                })
                .await
                .is_err()
            {
                outbox.close_after_queued();
                return;
            }
        }
        if close {
            return;
        }
    }
}
