//! The connection: [`Client`], its TLS settings ([`Tls`]) and its [`Error`].

use futures_util::{SinkExt, StreamExt};
use ixn_codec::{
    ClientType, Codec, ErrorCode, Message, MessageId, attr, typed::RequestRegisterClient,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

/// How many unread notifications the client buffers before it stops reading from the server
/// (the server then disconnects it as a slow consumer once its own queue is full).
pub const NOTIFICATION_BUFFER: usize = 65_536;

/// The read side of a connection (plain TCP or TLS).
type ReadSide = Box<dyn AsyncRead + Send + Unpin>;
/// The write side of a connection (plain TCP or TLS).
type WriteSide = Box<dyn AsyncWrite + Send + Unpin>;

/// TLS to the server: the connector (trusted authorities, and a client certificate when the
/// application must present one) and the name the server's certificate must carry.
#[derive(Clone)]
pub struct Tls {
    /// From [`ixn_tls::connector`].
    pub connector: ixn_tls::TlsConnector,
    /// The server's name as its certificate states it; `None`: the host part of the address.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS from PEM files: the authority the server's certificate chains to and, optionally, a
    /// client certificate and key.
    pub fn from_files(files: &ixn_tls::ClientFiles) -> Result<Self, ixn_tls::Error> {
        Ok(Self {
            connector: ixn_tls::connector(files)?,
            server_name: None,
        })
    }
}

/// The host part of `HOST:PORT` (`[::1]:7000` gives `::1`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached.
    #[error(
        "cannot connect to {addr}: {source} (is ixn-server running there? start one with `cargo run --release -p ixn-server`)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed (an untrusted or misnamed server certificate, or the server
    /// refused the client's certificate).
    #[error("TLS with {addr} failed: {reason}")]
    Tls {
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Encoding, decoding or the transport failed.
    #[error(transparent)]
    Codec(#[from] ixn_codec::Error),
    /// The connection closed before the reply arrived.
    #[error("the server closed the connection before replying")]
    Closed,
    /// The connection broke before the reply arrived: what the server sent could not be read
    /// (a malformed or oversize frame) or the transport failed. The same error is given to
    /// every request that was waiting, and kept for [`Client::failure`].
    #[error("the connection broke before the reply: {}", broken(.0))]
    Broken(Arc<ixn_codec::Error>),
    /// The server answered EventError.
    #[error("EventError {code} ({}): {description}", code.to_int())]
    EventError {
        /// ErrorCode.
        code: ErrorCode,
        /// ErrorDescription.
        description: String,
        /// The whole reply.
        reply: Box<Message>,
    },
    /// The request's ReferenceId is already awaiting a reply.
    #[error("ReferenceId {0} is already in flight")]
    ReferenceInUse(i32),
    /// No server of the list was active within the time allowed ([`Client::connect_active`]).
    #[error(
        "no active server among {addrs} within {waited:?} (last: {last}); are the servers running, and does one hold the store?"
    )]
    NoActiveServer {
        /// The addresses tried, comma-separated.
        addrs: String,
        /// How long it tried.
        waited: std::time::Duration,
        /// The last answer or failure.
        last: String,
    },
}

/// Why a connection broke, in words: a TLS record where a frame was expected is named as such.
fn broken(e: &ixn_codec::Error) -> String {
    if e.is_tls_record() {
        "the server speaks TLS on this port (it answered with a TLS record): connect with TLS (`--tls`, and `--ca FILE` with the certificate of the authority that signed the server's)".to_owned()
    } else {
        e.to_string()
    }
}

/// How long [`Client::connect_active`] gives one server to connect and answer the registration.
const ATTEMPT: std::time::Duration = std::time::Duration::from_secs(3);

/// Who to register as, for [`Client::connect_active`].
#[derive(Clone, Copy, Debug)]
pub struct Registration<'a> {
    /// ClientName.
    pub name: &'a str,
    /// ClientType.
    pub kind: ClientType,
    /// The application's password, if it has one.
    pub password: Option<&'a str>,
}

/// The active server named by an EventError NotActive (a standby's answer), if any.
pub fn active_server_of(e: &Error) -> Option<String> {
    match e {
        Error::EventError {
            code: ErrorCode::NotActive,
            reply,
            ..
        } => reply
            .attrs
            .get_str(attr::ACTIVE_SERVER)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<i32, oneshot::Sender<Result<Message, Error>>>,
    next: i32,
    closed: bool,
    /// Why the connection broke, if it did not simply close.
    failure: Option<Arc<ixn_codec::Error>>,
}

impl Pending {
    /// The error for a request that cannot get its reply.
    fn gone(&self) -> Error {
        match &self.failure {
            Some(e) => Error::Broken(Arc::clone(e)),
            None => Error::Closed,
        }
    }
}

/// A connection to the server. Requests may be sent from several tasks at once through `&self`.
pub struct Client {
    writer: tokio::sync::Mutex<FramedWrite<WriteSide, Codec>>,
    pending: Arc<Mutex<Pending>>,
    notifications: mpsc::Receiver<Message>,
    reader: JoinHandle<()>,
    proxy_client_id: Option<i32>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("proxy_client_id", &self.proxy_client_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects with the default codec limits. The server is trusted: its replies are decoded
    /// without the bound on what a frame may decode to (a content reply of many interactions
    /// with many small UserData keys is legitimate).
    pub async fn connect(addr: impl ToSocketAddrs + std::fmt::Display) -> Result<Self, Error> {
        Self::connect_with(addr, Codec::trusting(ixn_codec::Limits::default())).await
    }

    /// Connects with the given codec (limits).
    pub async fn connect_with(
        addr: impl ToSocketAddrs + std::fmt::Display,
        codec: Codec,
    ) -> Result<Self, Error> {
        let shown = addr.to_string();
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect {
                addr: shown,
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        Ok(Self::over(Box::new(rd), Box::new(wr), codec))
    }

    /// Connects over TLS with the given codec.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs + std::fmt::Display,
        codec: Codec,
        tls: &Tls,
    ) -> Result<Self, Error> {
        let shown = addr.to_string();
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect {
                addr: shown.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let name = tls
            .server_name
            .as_deref()
            .unwrap_or_else(|| host_of(&shown));
        let name = ixn_tls::server_name(name).map_err(|e| Error::Tls {
            addr: shown.clone(),
            reason: e.to_string(),
        })?;
        let stream = tls
            .connector
            .connect(name, stream)
            .await
            .map_err(|e| Error::Tls {
                addr: shown,
                reason: ixn_tls::explain(&e.to_string(), ixn_tls::Peer::Server),
            })?;
        let (rd, wr) = tokio::io::split(stream);
        Ok(Self::over(Box::new(rd), Box::new(wr), codec))
    }

    /// Connects over TLS when `tls` is given, plain TCP otherwise.
    pub async fn connect_maybe_tls(
        addr: impl ToSocketAddrs + std::fmt::Display,
        codec: Codec,
        tls: Option<&Tls>,
    ) -> Result<Self, Error> {
        match tls {
            Some(t) => Self::connect_tls(addr, codec, t).await,
            None => Self::connect_with(addr, codec).await,
        }
    }

    /// Connects to whichever server of `addrs` is active and registers there, for servers
    /// sharing a store (one active, the others standing by). A standby's answer (EventError
    /// NotActive) names the active server: it is tried next, then the rest of the list; a
    /// server that cannot be reached is skipped (a list of one address fails at once when it
    /// cannot be reached, with what went wrong there). While none is active (a takeover in
    /// progress), tries again every 100 ms for up to `patience`. Any other refusal (an unknown
    /// application, a wrong password) is returned at once.
    pub async fn connect_active(
        addrs: &[String],
        codec: Codec,
        tls: Option<&Tls>,
        who: Registration<'_>,
        patience: std::time::Duration,
    ) -> Result<Self, Error> {
        let started = std::time::Instant::now();
        let mut last = String::from("nothing tried");
        let mut followed: Option<String> = None;
        loop {
            let first = followed.take();
            let order: Vec<String> = first
                .iter()
                .cloned()
                .chain(addrs.iter().filter(|a| first.as_ref() != Some(*a)).cloned())
                .collect();
            for addr in &order {
                // A frozen or unreachable server must not hold the search up.
                let attempt = tokio::time::timeout(ATTEMPT, async {
                    let mut c = Self::connect_maybe_tls(addr.as_str(), codec, tls).await?;
                    let registered = c
                        .register_with_password(who.name, who.kind, who.password)
                        .await;
                    Ok::<_, Error>((c, registered))
                })
                .await;
                let (c, registered) = match attempt {
                    Ok(Ok(r)) => r,
                    // One address that cannot be reached (refused, TLS on one side only) fails
                    // at once, with what went wrong there; a list looks for another server.
                    Ok(Err(e)) if addrs.len() == 1 => return Err(e),
                    Ok(Err(e)) => {
                        last = e.to_string();
                        continue;
                    }
                    Err(_) => {
                        last = format!("{addr}: no answer within {ATTEMPT:?}");
                        continue;
                    }
                };
                match registered {
                    Ok(_) => return Ok(c),
                    Err(
                        e @ Error::EventError {
                            code: ErrorCode::NotActive,
                            ..
                        },
                    ) => {
                        last = format!("{addr}: {e}");
                        let _ = c.close().await;
                        if let Some(active) = active_server_of(&e)
                            && &active != addr
                        {
                            followed = Some(active);
                            break;
                        }
                    }
                    Err(e @ Error::EventError { .. }) => return Err(e),
                    Err(e) if addrs.len() == 1 => return Err(e),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            if started.elapsed() >= patience {
                return Err(Error::NoActiveServer {
                    addrs: addrs.join(","),
                    waited: started.elapsed(),
                    last,
                });
            }
            if followed.is_some() {
                continue; // try the named active server at once
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn over(rd: ReadSide, wr: WriteSide, codec: Codec) -> Self {
        let pending = Arc::new(Mutex::new(Pending {
            next: 1,
            ..Pending::default()
        }));
        let (tx, notifications) = mpsc::channel(NOTIFICATION_BUFFER);
        let reader = tokio::spawn(read_loop(
            FramedRead::new(rd, codec),
            Arc::clone(&pending),
            tx,
        ));
        Self {
            writer: tokio::sync::Mutex::new(FramedWrite::new(wr, codec)),
            pending,
            notifications,
            reader,
            proxy_client_id: None,
        }
    }

    /// Registers this connection's client; returns its ProxyClientId. On a connection
    /// registered as `Proxy`, a further call registers a logical client (see
    /// [`Client::request_as`]).
    pub async fn register(&mut self, name: &str, kind: ClientType) -> Result<i32, Error> {
        self.register_with_password(name, kind, None).await
    }

    /// [`Client::register`] with the application's password (its `Password` attribute), for
    /// applications configured with a `password_hash`.
    pub async fn register_with_password(
        &mut self,
        name: &str,
        kind: ClientType,
        password: Option<&str>,
    ) -> Result<i32, Error> {
        let mut msg = Message::from(RequestRegisterClient {
            client_name: name.into(),
            client_type: kind,
            ..Default::default()
        });
        if let Some(p) = password {
            msg = msg.with(attr::PASSWORD, p);
        }
        let reply = self.request_ok(msg).await?;
        let id = reply.proxy_client_id().unwrap_or(0);
        if self.proxy_client_id.is_none() {
            self.proxy_client_id = Some(id);
        }
        Ok(id)
    }

    /// The ProxyClientId of this connection's own client, once registered.
    pub fn proxy_client_id(&self) -> Option<i32> {
        self.proxy_client_id
    }

    /// Sends a request and waits for its reply (any reply, EventError included). A ReferenceId
    /// is assigned unless the message has one.
    pub async fn request(&self, msg: impl Into<Message>) -> Result<Message, Error> {
        let mut msg = msg.into();
        let (tx, rx) = oneshot::channel();
        let reference = {
            let mut p = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if p.closed {
                return Err(p.gone());
            }
            let reference = match msg.reference_id() {
                Some(r) => r,
                None => {
                    let r = p.next;
                    p.next = if r == i32::MAX { 1 } else { r + 1 };
                    msg.attrs.set(attr::REFERENCE_ID, r);
                    r
                }
            };
            if p.waiting.contains_key(&reference) {
                return Err(Error::ReferenceInUse(reference));
            }
            p.waiting.insert(reference, tx);
            reference
        };
        if let Err(e) = self.writer.lock().await.send(&msg).await {
            self.pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .waiting
                .remove(&reference);
            return Err(e.into());
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(self.lock_pending().gone()),
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why the connection broke, once it has: a frame from the server that could not be
    /// decoded, or a transport failure. `None` while it works, and after a plain close.
    pub fn failure(&self) -> Option<Arc<ixn_codec::Error>> {
        self.lock_pending().failure.clone()
    }

    /// Like [`Client::request`], but an EventError reply is an [`Error::EventError`].
    pub async fn request_ok(&self, msg: impl Into<Message>) -> Result<Message, Error> {
        let reply = self.request(msg).await?;
        if reply.id == MessageId::EVENT_ERROR {
            return Err(Error::EventError {
                code: ErrorCode::from_int(reply.attrs.get_int(attr::ERROR_CODE).unwrap_or(0)),
                description: reply
                    .attrs
                    .get_str(attr::ERROR_DESCRIPTION)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                reply: Box::new(reply),
            });
        }
        Ok(reply)
    }

    /// Sends a request given in the JSON form and waits for its reply.
    pub async fn request_json(&self, json: &str) -> Result<Message, Error> {
        self.request(Message::from_json(json)?).await
    }

    /// Sends a request on behalf of a logical client of this proxy connection.
    pub async fn request_as(
        &self,
        proxy_client_id: i32,
        msg: impl Into<Message>,
    ) -> Result<Message, Error> {
        let mut msg = msg.into();
        msg.attrs.set(attr::PROXY_CLIENT_ID, proxy_client_id);
        self.request(msg).await
    }

    /// Sends a message without waiting for anything (for tests of odd traffic).
    pub async fn send_raw(&self, msg: &Message) -> Result<(), Error> {
        Ok(self.writer.lock().await.send(msg).await?)
    }

    /// The next notification (a message that is not the reply to a request in flight), or
    /// `None` once the connection is closed and everything was read.
    pub async fn next_notification(&mut self) -> Option<Message> {
        self.notifications.recv().await
    }

    /// The notifications, as a receiver.
    pub fn notifications(&mut self) -> &mut mpsc::Receiver<Message> {
        &mut self.notifications
    }

    /// Closes the sending side and waits until the server has closed the connection (by then
    /// it has dropped this connection's clients).
    pub async fn close(self) -> Result<(), Error> {
        {
            let mut w = self.writer.lock().await;
            let _ = SinkExt::<&Message>::flush(&mut *w).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(w.get_mut()).await;
        }
        drop(self.notifications);
        let _ = self.reader.await;
        Ok(())
    }
}

async fn read_loop(
    mut frames: FramedRead<ReadSide, Codec>,
    pending: Arc<Mutex<Pending>>,
    notifications: mpsc::Sender<Message>,
) {
    let mut failure = None;
    while let Some(frame) = frames.next().await {
        let msg = match frame {
            Ok(msg) => msg,
            Err(e) => {
                failure = Some(Arc::new(e));
                break;
            }
        };
        let waiter = msg.reference_id().and_then(|r| {
            (msg.id != MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
                .then(|| {
                    pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .waiting
                        .remove(&r)
                })
                .flatten()
        });
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(msg));
            }
            None => {
                // A dropped receiver (the client was closed) just discards notifications.
                let _ = notifications.send(msg).await;
            }
        }
    }
    let mut p = pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    p.closed = true;
    p.failure = failure;
    let error = p.gone();
    for (_, tx) in p.waiting.drain() {
        let _ = tx.send(Err(match &error {
            Error::Broken(e) => Error::Broken(Arc::clone(e)),
            _ => Error::Closed,
        }));
    }
}
