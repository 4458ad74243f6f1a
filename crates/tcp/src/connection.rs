//! One TCP connection: a reader that decodes frames and hands them to the engine task (all the
//! frames of one read as one batch; Pings it may answer itself), and a writer that encodes what
//! the engine queued (a notification arrives already encoded and is only copied). Decoding never
//! happens on the engine task.

use crate::input::{Input, Serving};
use crate::metrics::Disconnect;
use crate::outbox::{Item, MAX_IN_FLIGHT_BYTES, Outbox};
use crate::partial::{Metered, Partials, ReadError};
use crate::security::{Security, carries_password, check_passwords};
use bytes::BytesMut;
use futures_util::StreamExt;
use ixn_codec::{Codec, ErrorCode, Message, MessageId, Value, attr};
use ixn_core::ConnId;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Read buffer a connection starts with (bytes).
const INITIAL_READ_BUFFER: usize = crate::partial::READ_AHEAD;

/// Per-connection settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnSettings {
    pub(crate) codec: Codec,
    pub(crate) registration_timeout: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
}

/// The codec for `limits` (frame size and nesting depth).
pub fn codec(limits: &ixn_config::Limits) -> Codec {
    Codec::new(ixn_codec::Limits {
        max_frame_len: limits.max_frame_len,
        max_depth: limits.max_kvlist_depth,
    })
}

/// One accepted connection and what serving it needs (the listener makes one per accept).
pub(crate) struct Handler {
    pub(crate) stream: TcpStream,
    pub(crate) parts: Parts,
}

/// What serving a connection needs besides its socket.
pub(crate) struct Parts {
    pub(crate) conn: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) inputs: mpsc::Sender<Input>,
    /// Whether the engine task serves: a standby's connections answer no Ping themselves.
    pub(crate) serving: Serving,
    pub(crate) settings: ConnSettings,
    pub(crate) partials: Arc<Partials>,
    /// Cancelled when the server stops: the connection drains and closes.
    pub(crate) shutdown: CancellationToken,
    pub(crate) security: Arc<Security>,
    pub(crate) metrics: Arc<crate::Metrics>,
}

/// Why a connection ended (the log says it; the counted ones are also a
/// [`Disconnect`] label).
#[derive(Debug)]
enum Ended {
    PeerClosed,
    /// The engine task is gone: the server is stopping.
    EngineGone,
    ShuttingDown,
    ClosedByServer,
    ReadFailed(ixn_codec::Error),
    RegistrationTimeout(Duration),
    MalformedFrame(ixn_codec::Error),
    IncompleteFrames(String),
    /// Too many password checks from the peer's address.
    PasswordChecks,
}

impl Ended {
    /// The disconnect this is counted as, if the server caused it.
    fn counted(&self) -> Option<Disconnect> {
        match self {
            Self::RegistrationTimeout(_) => Some(Disconnect::RegistrationTimeout),
            Self::MalformedFrame(_) => Some(Disconnect::MalformedFrame),
            Self::IncompleteFrames(_) => Some(Disconnect::IncompleteFrames),
            Self::PasswordChecks => Some(Disconnect::PasswordChecks),
            Self::PeerClosed
            | Self::EngineGone
            | Self::ShuttingDown
            | Self::ClosedByServer
            | Self::ReadFailed(_) => None,
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("peer closed the connection"),
            Self::EngineGone => f.write_str("server stopping"),
            Self::ShuttingDown => f.write_str("server shutting down"),
            Self::ClosedByServer => f.write_str("closed by the server"),
            Self::ReadFailed(e) => write!(f, "read error: {e}"),
            Self::RegistrationTimeout(t) => write!(
                f,
                "not registered within {} s (registration_timeout_secs)",
                t.as_secs()
            ),
            Self::MalformedFrame(e) => write!(f, "malformed frame: {e}"),
            Self::IncompleteFrames(e) => f.write_str(e),
            Self::PasswordChecks => f.write_str("too many password checks from its address"),
        }
    }
}

impl Handler {
    /// Serves the connection until it ends; returns when its socket is closed.
    pub(crate) async fn run(self) {
        let Self { stream, parts } = self;
        let _ = stream.set_nodelay(true);
        let acceptor = parts.security.tls.as_ref().map(ixn_tls::Acceptor::current);
        let Some(acceptor) = acceptor else {
            let (rd, wr) = stream.into_split();
            return serve_io(rd, wr, None, parts).await;
        };
        // Boxed: the TLS states (the handshake, the TLS stream) are several kilobytes; inline,
        // they would size every plain connection's task as well.
        Box::pin(serve_tls(stream, acceptor, parts)).await;
    }
}

/// The TLS handshake, then the connection over TLS.
async fn serve_tls(stream: TcpStream, acceptor: ixn_tls::TlsAcceptor, parts: Parts) {
    // The handshake is bounded like registration: a peer that never finishes it is dropped.
    let handshake = tokio::select! {
        r = tokio::time::timeout(parts.settings.registration_timeout, acceptor.accept(stream)) => r,
        () = parts.shutdown.cancelled() => return,
    };
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            parts.metrics.disconnect(Disconnect::TlsHandshake);
            if let Some(skipped) = parts
                .security
                .handshake_logs
                .allow(std::time::Instant::now())
            {
                let why = ixn_tls::explain(&e.to_string(), ixn_tls::Peer::Client);
                info!(conn = parts.conn.0, peer = %parts.peer, error = %why, skipped, "TLS handshake failed; closing the connection");
            }
            return;
        }
        Err(_) => {
            parts.metrics.disconnect(Disconnect::TlsHandshake);
            if let Some(skipped) = parts
                .security
                .handshake_logs
                .allow(std::time::Instant::now())
            {
                info!(conn = parts.conn.0, peer = %parts.peer, skipped, "TLS handshake not finished within the registration timeout; closing the connection");
            }
            return;
        }
    };
    let names = ixn_tls::peer_names(stream.get_ref().1);
    let proof = (!names.is_empty()).then(|| {
        debug!(conn = parts.conn.0, ?names, "client certificate verified");
        ixn_core::Proof::Certificate(names)
    });
    let (rd, wr) = tokio::io::split(stream);
    serve_io(rd, wr, proof, parts).await;
}

/// Opens the connection at the engine task, serves it, and closes it: the engine drops its
/// clients before the socket closes (R13), and what was queued is written (or, for a slow
/// consumer, dropped).
async fn serve_io<R, W>(rd: R, wr: W, proof: Option<ixn_core::Proof>, parts: Parts)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (conn, peer) = (parts.conn, parts.peer);
    let outbox = Arc::new(Outbox::new(
        parts.settings.max_messages,
        parts.settings.max_bytes,
    ));
    let open = Input::Open {
        conn,
        peer,
        outbox: Arc::clone(&outbox),
        link: false,
        proof,
    };
    if parts.inputs.send(open).await.is_err() {
        return; // the engine task is gone: the server is stopping
    }
    info!(conn = conn.0, %peer, "connection opened");
    parts.metrics.connections_open.inc();
    let writer = tokio::spawn(write_loop(
        wr,
        Arc::clone(&outbox),
        parts.settings.codec,
        conn,
        parts.inputs.clone(),
    ));
    // Idle connections keep a small read buffer; it grows with the frames that arrive.
    let decoder = Metered::new(
        parts.settings.codec,
        conn,
        Arc::clone(&outbox),
        Arc::clone(&parts.partials),
    );
    let mut reader = Reader {
        frames: FramedRead::with_capacity(rd, decoder, INITIAL_READ_BUFFER),
        outbox,
        parts,
        password_checked: false,
    };
    let ended = reader.run().await;
    let Reader { outbox, parts, .. } = reader;
    if let Some(d) = ended.counted() {
        parts.metrics.disconnect(d);
    }
    // R13: the engine drops this connection's clients before the socket closes, so a peer that
    // sees the close can rely on it.
    crate::input::close(&parts.inputs, conn).await;
    parts.metrics.connections_open.dec();
    if outbox.is_overflowed() {
        parts.metrics.disconnect(Disconnect::SlowConsumer);
        // A slow consumer is cut off at once: draining to a peer that does not read would only
        // hold its queue longer.
        writer.abort();
    } else {
        outbox.close_after_queued();
        if tokio::time::timeout(parts.settings.drain_timeout, writer)
            .await
            .is_err()
        {
            warn!(conn = conn.0, %peer, "outbound queue not drained within the drain timeout");
        }
    }
    info!(conn = conn.0, %peer, reason = %ended, "connection closed");
}

/// A connection's reading side: it decodes what arrives and hands it to the engine task.
struct Reader<R> {
    frames: FramedRead<R, Metered>,
    outbox: Arc<Outbox>,
    parts: Parts,
    /// Only the connection's first registration needs a proof (R15): one password check per
    /// connection, so that pipelined registrations cannot keep the check threads busy.
    password_checked: bool,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads until the connection ends, and says why.
    async fn run(&mut self) -> Ended {
        let deadline = tokio::time::sleep(self.parts.settings.registration_timeout);
        tokio::pin!(deadline);
        // Made once, not per read: each `cancelled()` future registers with its token when
        // first polled and unregisters when dropped (two locks per read per token otherwise).
        let closing = self.outbox.closing.clone().cancelled_owned();
        tokio::pin!(closing);
        let stopping = self.parts.shutdown.clone().cancelled_owned();
        tokio::pin!(stopping);
        loop {
            // Backpressure: while this connection has its fill of requests at the engine task
            // (or its replies pile up, which defers them there), it is not read.
            let allowance = self.outbox.allowance();
            // Nothing of this connection's is at the engine task now (and only this loop sends
            // more), and the engine serves: the plain Pings read next may be answered on the
            // spot. A standby's engine answers every Ping itself (NotActive).
            let local = self.outbox.pending() == 0 && self.parts.serving.get();
            self.frames.decoder_mut().answer_plain_pings(local);
            tokio::select! {
                frame = self.frames.next(), if allowance > 0 => {
                    if let Some(ended) = self.on_frame(frame, allowance).await {
                        return ended;
                    }
                }
                () = self.outbox.room.notified(), if allowance == 0 => {}
                // Disabled (not polled) once registered; checked again when it fires, since the
                // registration may have been acknowledged while this select was waiting.
                () = &mut deadline, if !self.outbox.is_registered() => {
                    if !self.outbox.is_registered() {
                        return Ended::RegistrationTimeout(self.parts.settings.registration_timeout);
                    }
                }
                () = &mut closing => return Ended::ClosedByServer,
                () = &mut stopping => return Ended::ShuttingDown,
            }
        }
    }

    /// A frame was read (or the read failed, or the peer closed): hands it and every further
    /// frame already read to the engine task as one batch (one channel send and one wake-up per
    /// read instead of per message). `Some` when the connection ends.
    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, ReadError>>,
        allowance: usize,
    ) -> Option<Ended> {
        let msg = match frame {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Some(self.read_failed(e)),
            None => return Some(Ended::PeerClosed),
        };
        let mut batch = Vec::with_capacity(1);
        batch.push(msg);
        let mut failed = None;
        let most = MAX_BATCH.min(allowance);
        // The buffer is taken out (and put back) to decode from it directly.
        let mut buf = std::mem::take(self.frames.read_buffer_mut());
        while batch.len() < most && self.frames.decoder().decoded() < MAX_IN_FLIGHT_BYTES {
            match self.frames.decoder_mut().decode_one(&mut buf) {
                Ok(Some(m)) => batch.push(m),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        *self.frames.read_buffer_mut() = buf;
        let bytes = self.frames.decoder_mut().take_decoded();
        let (conn, inputs) = (self.parts.conn, &self.parts.inputs);
        if batch.iter().any(carries_password) {
            let security = &self.parts.security;
            let who = (conn, self.parts.peer.ip());
            let checked = check_passwords(
                &mut batch,
                security,
                who,
                inputs,
                &mut self.password_checked,
            );
            if let Err(e) = checked.await {
                info!(conn = conn.0, peer = %self.parts.peer, "{e}");
                let mut reply = Message::new(MessageId::EVENT_ERROR)
                    .with(attr::ERROR_CODE, ErrorCode::LimitExceeded.to_int())
                    .with(attr::ERROR_DESCRIPTION, e.to_string());
                if let Some(r) = e.reference {
                    reply = reply.with(attr::REFERENCE_ID, r);
                }
                let item = Item::Msg {
                    msg: Arc::new(reply),
                    proxy_client_id: None,
                };
                let _ = self.outbox.push(item, 256);
                self.outbox.close_after_queued();
                return Some(Ended::PasswordChecks);
            }
        }
        let codec = &self.parts.settings.codec;
        let pongs = self.frames.decoder_mut().pongs();
        let batch = if self.parts.serving.get() {
            answer_pings(batch, &self.outbox, codec, pongs)
        } else {
            batch
        };
        if !batch.is_empty() {
            self.outbox.sent_to_engine(batch.len());
            self.outbox.sent_bytes(bytes);
            let input = Input::Batch {
                conn,
                msgs: batch,
                bytes,
            };
            if inputs.send(input).await.is_err() {
                return Some(Ended::EngineGone);
            }
        }
        failed.map(|e| self.read_failed(e))
    }

    /// Queues the EventError for a frame that could not be read (malformed, or refused by the
    /// budget of incomplete frames); says why the connection ends.
    fn read_failed(&self, e: ReadError) -> Ended {
        let (outbox, conn, peer) = (&self.outbox, self.parts.conn, self.parts.peer);
        match e {
            ReadError::Codec(e) if e.is_tls_record() => {
                // The reply cannot help a TLS client (it cannot read it); the log names the
                // mistake for the operator.
                info!(conn = conn.0, %peer, "a TLS client on a plain port: it must connect without TLS, or the server be given --tls-cert and --tls-key; closing the connection");
                malformed_frame(outbox, conn, peer, &e);
                Ended::MalformedFrame(e)
            }
            ReadError::Codec(e) if e.is_malformed_frame() => {
                malformed_frame(outbox, conn, peer, &e);
                Ended::MalformedFrame(e)
            }
            ReadError::Codec(e) => Ended::ReadFailed(e),
            e @ ReadError::Budget { .. } => {
                warn!(conn = conn.0, %peer, error = %e, "incomplete frames over budget; closing the connection");
                crate::partial::refuse(
                    outbox,
                    format!("{e}; send smaller frames or try again later; closing the connection"),
                );
                Ended::IncompleteFrames(e.to_string())
            }
        }
    }
}

/// Most messages of one read handed to the engine task together.
const MAX_BATCH: usize = 256;

/// Answers the Pings at the head of `batch` on the spot when no earlier request of this
/// connection is still at the engine task (so the reply keeps its place: messages to one client
/// are never reordered); returns the rest, in order, for the engine task.
fn answer_pings(
    mut batch: Vec<Message>,
    outbox: &Outbox,
    codec: &Codec,
    frames: &mut BytesMut,
) -> Vec<Message> {
    if outbox.pending() > 0 {
        return batch;
    }
    let local = batch.iter().take_while(|m| m.id == MessageId::PING).count();
    if local == 0 {
        return batch;
    }
    // The replies are encoded here, together, and queued as one item.
    frames.reserve(local * 32);
    for ping in batch.drain(..local) {
        // A Ping reply holds at most two int attributes (under 64 bytes, the smallest
        // max_frame_len allowed), so it always encodes. The usual Ping (a ReferenceId only) is
        // its own reply.
        let own = ping.attrs.len() == 1
            && matches!(ping.attrs.iter().next(), Some((k, Value::Int(_))) if &**k == attr::REFERENCE_ID);
        if own {
            let _ = codec.encode(&ping, frames);
        } else {
            let _ = codec.encode(&ixn_core::ping_reply(&ping), frames);
        }
    }
    outbox.push_frames(frames);
    batch
}

/// Queues the EventError for a malformed frame.
fn malformed_frame(outbox: &Outbox, conn: ConnId, peer: SocketAddr, e: &ixn_codec::Error) {
    warn!(conn = conn.0, %peer, error = %e, "malformed frame; closing the connection");
    let reply = Message::new(MessageId::EVENT_ERROR)
        .with(attr::ERROR_CODE, ErrorCode::InvalidAttribute.to_int())
        .with(
            attr::ERROR_DESCRIPTION,
            format!("malformed frame: {e}; closing the connection"),
        );
    let item = Item::Msg {
        msg: Arc::new(reply),
        proxy_client_id: None,
    };
    let _ = outbox.push(item, 256);
}

/// Writes everything queued, as one buffer per wake-up, until a close is due. When the engine
/// task deferred this connection's requests (its queue was past the soft bound), tells it to
/// resume once what was queued is written: the engine builds no faster than the peer reads.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    outbox: Arc<Outbox>,
    codec: Codec,
    conn: ConnId,
    inputs: mpsc::Sender<Input>,
) {
    let mut buf = BytesMut::new();
    let mut items = VecDeque::new();
    loop {
        let taken = outbox.take_into(&mut items).await;
        let close = taken.close;
        buf.clear();
        for item in items.drain(..) {
            let (msg, proxy_client_id) = match item {
                Item::Msg {
                    msg,
                    proxy_client_id,
                } => (msg, proxy_client_id),
                Item::Shared {
                    frame,
                    proxy_client_id,
                } => {
                    if let Err(e) = codec.reframe_for(&frame, proxy_client_id, &mut buf) {
                        // Only notifications are shared; see below.
                        error!(conn = conn.0, error = %e, frame_bytes = frame.len(), "cannot encode a notification; closing the connection");
                        outbox.close_after_queued();
                    }
                    continue;
                }
                Item::Raw(frames) => {
                    buf.extend_from_slice(&frames);
                    continue;
                }
            };
            if let Err(e) = codec.encode_for(&msg, proxy_client_id, &mut buf) {
                let Some(reference) = msg.reference_id() else {
                    // A notification that cannot be sent (size limits keep this from
                    // happening): the client's view would silently go stale, so it is told by
                    // a close instead, and the log says why.
                    error!(conn = conn.0, error = %e, message = %msg.id, "cannot encode a notification; closing the connection");
                    outbox.close_after_queued();
                    continue;
                };
                // Keep R14: a reply that cannot be sent becomes an error reply to the same request.
                warn!(error = %e, message = %msg.id, "cannot encode an outgoing message");
                let err = Message::new(MessageId::EVENT_ERROR)
                    .with(attr::REFERENCE_ID, reference)
                    .with(attr::ERROR_CODE, ErrorCode::LimitExceeded.to_int())
                    .with(
                        attr::ERROR_DESCRIPTION,
                        format!("the reply cannot be sent: {e}"),
                    );
                let _ = codec.encode_for(&err, proxy_client_id, &mut buf);
            }
        }
        if !buf.is_empty()
            && let Err(e) = wr.write_all(&buf).await
        {
            debug!(error = %e, "write failed");
            outbox.close_after_queued();
            return;
        }
        if taken.resume {
            // Boxed: the send future is large and rarely needed, and every idle writer would
            // otherwise carry its space.
            let _ = Box::pin(inputs.send(Input::Resume { conn })).await;
        }
        // Idle connections keep no large buffer.
        if buf.capacity() > 64 * 1024 {
            buf = BytesMut::new();
        }
        if items.capacity() > 1024 {
            items = VecDeque::new();
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ixn_codec::KvList;

    fn notification() -> Message {
        Message::new(MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
            .with("Workbin", KvList::new().with("WorkbinTypeId", "Drafts"))
            .with("WorkbinContentOperation", 1)
    }

    /// Runs the writer until it returns (it does once a close is due and what was queued is
    /// written); a writer that never returns fails at the guard.
    async fn written(outbox: Arc<Outbox>) -> Vec<u8> {
        let mut out = Vec::new();
        let (inputs, _rx) = mpsc::channel(1);
        tokio::time::timeout(
            Duration::from_secs(60),
            write_loop(&mut out, outbox, Codec::default(), ConnId(1), inputs),
        )
        .await
        .expect("the writer returned");
        out
    }

    #[tokio::test]
    async fn a_shared_frame_is_written_with_each_recipients_proxy_client_id() {
        let codec = Codec::default();
        let msg = notification();
        let frame = codec.encode_to_bytes(&msg).expect("encodes");
        let outbox = Arc::new(Outbox::new(8, 1 << 20));
        for proxy_client_id in [Some(7), None] {
            let item = Item::Shared {
                frame: frame.clone(),
                proxy_client_id,
            };
            let _ = outbox.push_batched(item, frame.len());
        }
        outbox.close_after_queued();
        let mut expected = BytesMut::new();
        codec
            .encode_for(&msg, Some(7), &mut expected)
            .expect("encodes");
        codec
            .encode_for(&msg, None, &mut expected)
            .expect("encodes");
        assert_eq!(written(outbox).await, expected.to_vec());
    }

    #[tokio::test]
    async fn a_shared_frame_that_cannot_be_written_closes_the_connection() {
        let codec = Codec::default();
        let ping = |n: i32| Message::new(MessageId::PING).with(attr::REFERENCE_ID, n);
        let outbox = Arc::new(Outbox::new(8, 1 << 20));
        let msg = |n| Item::Msg {
            msg: Arc::new(ping(n)),
            proxy_client_id: None,
        };
        let _ = outbox.push(msg(1), 64);
        // Too short to be a frame: the ProxyClientId cannot be appended to it.
        let bad = Item::Shared {
            frame: bytes::Bytes::from_static(b"xx"),
            proxy_client_id: Some(3),
        };
        let _ = outbox.push(bad, 2);
        let _ = outbox.push(msg(2), 64);
        outbox.wake();
        // No close was asked for: the writer returns because of the bad frame.
        let out = written(Arc::clone(&outbox)).await;
        assert!(outbox.is_closing());
        let mut expected = BytesMut::new();
        codec
            .encode_for(&ping(1), None, &mut expected)
            .expect("encodes");
        codec
            .encode_for(&ping(2), None, &mut expected)
            .expect("encodes");
        assert_eq!(out, expected.to_vec(), "the items around it are written");
    }
}
