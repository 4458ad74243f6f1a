//! A lean client connection for load: pre-encoded frames out, frames split by their length
//! prefix in, decoded only when a figure needs their content. The load generator shares the
//! machine with the server, so every byte it does not parse is a byte the server gets.

use crate::error::Error;
use bytes::{Buf, BytesMut};
use ixn_codec::{ClientType, Codec, KvList, Message, MessageId, attr};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Bytes before the message id in a frame: the u32 body length.
const LEN_PREFIX: usize = 4;
/// Read buffer reserved before each read.
const READ_CHUNK: usize = 64 * 1024;

/// One frame taken off the connection.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) id: MessageId,
    /// The whole frame, length prefix included.
    pub(crate) bytes: BytesMut,
}

/// TLS for every load connection (`--tls`), set once at start.
static TLS: std::sync::OnceLock<(
    ixn_tls::TlsConnector,
    ixn_tls::rustls::pki_types::ServerName<'static>,
)> = std::sync::OnceLock::new();

/// Makes every later [`Conn::connect`] speak TLS, trusting `ca` and checking `server_name`.
pub(crate) fn use_tls(ca: &std::path::Path, server_name: &str) -> Result<(), Error> {
    let connector = ixn_tls::connector(&ixn_tls::ClientFiles {
        ca: Some(ca.to_owned()),
        identity: None,
    })
    .map_err(|e| Error::Setup(format!("TLS: {e}")))?;
    let name = ixn_tls::server_name(server_name).map_err(|e| Error::Setup(e.to_string()))?;
    let _ = TLS.set((connector, name));
    Ok(())
}

/// The connection's byte stream.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<ixn_tls::client::TlsStream<TcpStream>>),
}

/// A framed TCP connection to the server.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    codec: Codec,
    peer: SocketAddr,
}

impl Conn {
    /// Connects to `addr`, from `source` (port chosen by the system) when given: spreading many
    /// short connections over several loopback addresses keeps TIME_WAIT from using up ports.
    pub(crate) async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<Self, Error> {
        let connect = |source| Error::Connect { addr, source };
        let stream = match source {
            None => TcpStream::connect(addr).await.map_err(connect)?,
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .map_err(connect)?;
                socket.bind(SocketAddr::new(ip, 0)).map_err(connect)?;
                socket.connect(addr).await.map_err(connect)?
            }
        };
        stream.set_nodelay(true).map_err(connect)?;
        let stream = match TLS.get() {
            None => Stream::Plain(stream),
            Some((connector, name)) => Stream::Tls(Box::new(
                connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(connect)?,
            )),
        };
        Ok(Self {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            codec: Codec::default(),
            peer: addr,
        })
    }

    /// Appends a pre-encoded frame to the write buffer.
    pub(crate) fn queue_frame(&mut self, frame: &[u8]) {
        self.wbuf.extend_from_slice(frame);
    }

    /// Encodes `msg` into the write buffer.
    pub(crate) fn queue(&mut self, msg: &Message) -> Result<(), Error> {
        self.codec
            .encode(msg, &mut self.wbuf)
            .map_err(|e| Error::Protocol(format!("cannot encode {}: {e}", msg.id)))
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let written = match &mut self.stream {
            Stream::Plain(s) => s.write_all(&self.wbuf).await,
            Stream::Tls(s) => match s.write_all(&self.wbuf).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
        };
        written.map_err(|e| self.lost(e))?;
        self.wbuf.clear();
        Ok(())
    }

    /// Reads what the socket has (waits for at least one byte).
    pub(crate) async fn fill(&mut self) -> Result<(), Error> {
        self.rbuf.reserve(READ_CHUNK);
        let read = match &mut self.stream {
            Stream::Plain(s) => s.read_buf(&mut self.rbuf).await,
            Stream::Tls(s) => s.read_buf(&mut self.rbuf).await,
        };
        match read {
            Ok(0) => Err(Error::Closed(self.peer)),
            Ok(_) => Ok(()),
            Err(e) => Err(self.lost(e)),
        }
    }

    fn lost(&self, e: std::io::Error) -> Error {
        Error::Lost {
            addr: self.peer,
            source: e,
        }
    }

    /// The id of the next complete frame, without taking it.
    pub(crate) fn peek_id(&self) -> Option<MessageId> {
        let len = self.complete_len()?;
        let &[a, b] = self.rbuf.get(LEN_PREFIX..LEN_PREFIX + 2)? else {
            return None;
        };
        (len >= LEN_PREFIX + 2).then_some(MessageId(u16::from_be_bytes([a, b])))
    }

    /// Drops the next complete frame (after [`Conn::peek_id`]); its length (0: none).
    pub(crate) fn skip(&mut self) -> usize {
        let len = self.complete_len().unwrap_or(0);
        self.rbuf.advance(len);
        len
    }

    /// Takes the next complete frame.
    pub(crate) fn next_frame(&mut self) -> Option<Frame> {
        let id = self.peek_id()?;
        let len = self.complete_len()?;
        Some(Frame {
            id,
            bytes: self.rbuf.split_to(len),
        })
    }

    /// Length of the next frame if all of it has arrived.
    fn complete_len(&self) -> Option<usize> {
        let &[a, b, c, d] = self.rbuf.get(..LEN_PREFIX)? else {
            return None;
        };
        let body = u32::from_be_bytes([a, b, c, d]) as usize;
        let len = LEN_PREFIX + body;
        (self.rbuf.len() >= len).then_some(len)
    }

    /// Decodes a frame taken with [`Conn::next_frame`].
    pub(crate) fn decode(&self, frame: Frame) -> Result<Message, Error> {
        self.codec
            .decode_frame(&frame.bytes.freeze())
            .map_err(|e| Error::Protocol(format!("undecodable {} from the server: {e}", frame.id)))
    }

    /// Sends `msg` and returns its reply (notifications that arrive first are dropped); an
    /// EventError is returned as [`Error::Refused`].
    pub(crate) async fn call(&mut self, msg: &Message) -> Result<Message, Error> {
        self.queue(msg)?;
        self.flush().await?;
        let reply = self.next_reply().await?;
        refused(msg, reply)
    }

    /// Sends every message of `msgs` at once, then takes their replies in order.
    pub(crate) async fn call_all(&mut self, msgs: &[Message]) -> Result<(), Error> {
        for m in msgs {
            self.queue(m)?;
        }
        self.flush().await?;
        for m in msgs {
            let reply = self.next_reply().await?;
            refused(m, reply)?;
        }
        Ok(())
    }

    /// The next message that is not a notification, decoded.
    async fn next_reply(&mut self) -> Result<Message, Error> {
        loop {
            match self.next_frame() {
                Some(f) if f.id == MessageId::EVENT_WORKBIN_CONTENT_CHANGED => continue,
                Some(f) => return self.decode(f),
                None => self.fill().await?,
            }
        }
    }

    /// Registers as `app` of `kind`.
    pub(crate) async fn register(&mut self, app: &str, kind: ClientType) -> Result<(), Error> {
        self.call(&register(app, kind)).await.map(drop)
    }
}

fn refused(request: &Message, reply: Message) -> Result<Message, Error> {
    if reply.id == MessageId::EVENT_ERROR {
        return Err(Error::Refused {
            request: request.id.to_string(),
            description: reply
                .attrs
                .get_str(attr::ERROR_DESCRIPTION)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        });
    }
    Ok(reply)
}

/// Encodes one frame.
pub(crate) fn encode(msg: &Message) -> Result<Vec<u8>, Error> {
    let mut buf = BytesMut::new();
    Codec::default()
        .encode(msg, &mut buf)
        .map_err(|e| Error::Protocol(format!("cannot encode {}: {e}", msg.id)))?;
    Ok(buf.to_vec())
}

// Request builders, shaped as the synthetic configuration expects (tenant 101, applications
// `desk` and `media`, queue `Inbound`, agent `agentN` at place `placeN`).

pub(crate) const TENANT: i32 = 101;

pub(crate) fn register(app: &str, kind: ClientType) -> Message {
    Message::new(MessageId::REQUEST_REGISTER_CLIENT)
        .with(attr::REFERENCE_ID, 1)
        .with(attr::CLIENT_NAME, app)
        .with(attr::CLIENT_TYPE, kind.to_int())
}

pub(crate) fn login(agent: usize) -> Message {
    Message::new(MessageId::REQUEST_AGENT_LOGIN)
        .with(attr::REFERENCE_ID, 2)
        .with(attr::TENANT_ID, TENANT)
        .with(attr::AGENT_ID, format!("agent{agent}"))
        .with(attr::PLACE_ID, format!("place{agent}"))
        .with(
            attr::MEDIA_LIST,
            KvList::new().with("email", 1).with("workitem", 1),
        )
}

/// The agent's own `Drafts` workbin.
pub(crate) fn drafts(agent: usize) -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, "Drafts")
        .with(attr::WORKBIN_AGENT_ID, format!("agent{agent}"))
}

/// The agent-group workbin `Team` of `group0`.
pub(crate) fn team() -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, "Team")
        .with(attr::WORKBIN_GROUP_ID, "group0")
}

pub(crate) fn subscribe(workbin: KvList) -> Message {
    Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
        .with(attr::REFERENCE_ID, 3)
        .with(attr::WORKBIN, workbin)
}

pub(crate) fn cancel(workbin: KvList) -> Message {
    Message::new(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS)
        .with(attr::REFERENCE_ID, 4)
        .with(attr::WORKBIN, workbin)
}

/// A tag unique to this run of `ixn-load` (its process id and start time), put in every
/// InteractionId it makes: runs one after another against one long-running server never
/// collide (each also removes what it created, [`remove_all`]).
pub(crate) fn run_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!("{:x}", nanos ^ (u64::from(std::process::id()) << 40))
    })
}

/// RequestStopProcessing of `id`.
pub(crate) fn stop(id: &str) -> Message {
    Message::new(MessageId::REQUEST_STOP_PROCESSING)
        .with(attr::REFERENCE_ID, 9)
        .with(attr::INTERACTION_ID, id)
}

/// Removes the interactions a run created (RequestStopProcessing of each, through one
/// media-server connection, many in flight), so that a long-running server is left as found.
pub(crate) async fn remove_all(
    addr: SocketAddr,
    ids: impl IntoIterator<Item = String>,
) -> Result<(), Error> {
    let mut media = Conn::connect(addr, None).await?;
    media.register("media", ClientType::MediaServer).await?;
    let mut batch = Vec::with_capacity(512);
    for id in ids {
        batch.push(stop(&id));
        if batch.len() >= 512 {
            media.call_all(&batch).await?;
            batch.clear();
        }
    }
    media.call_all(&batch).await
}

pub(crate) fn submit(id: &str, user_data: KvList) -> Message {
    Message::new(MessageId::REQUEST_SUBMIT)
        .with(attr::REFERENCE_ID, 5)
        .with(attr::TENANT_ID, TENANT)
        .with(attr::MEDIA_TYPE, "email")
        .with(attr::INTERACTION_TYPE, "Inbound")
        .with(attr::QUEUE, "Inbound")
        .with(attr::INTERACTION_ID, id)
        .with(attr::USER_DATA, user_data)
}

pub(crate) fn place(id: &str, workbin: KvList) -> Message {
    Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
        .with(attr::REFERENCE_ID, 6)
        .with(attr::INTERACTION_ID, id)
        .with(attr::WORKBIN, workbin)
}

pub(crate) fn place_in_queue(id: &str) -> Message {
    Message::new(MessageId::REQUEST_PLACE_IN_QUEUE)
        .with(attr::REFERENCE_ID, 7)
        .with(attr::INTERACTION_ID, id)
        .with(attr::QUEUE, "Inbound")
}

pub(crate) fn pull(id: &str) -> Message {
    Message::new(MessageId::REQUEST_PULL)
        .with(attr::REFERENCE_ID, 8)
        .with(attr::VIEW_ID, "_system_")
        .with(attr::PULL_PARAMETERS, KvList::new().with(attr::PULL_ID, id))
}

pub(crate) fn content(workbin: KvList) -> Message {
    Message::new(MessageId::REQUEST_GET_WORKBIN_CONTENT)
        .with(attr::REFERENCE_ID, 9)
        .with(attr::WORKBIN, workbin)
}

pub(crate) fn ping() -> Message {
    Message::new(MessageId::PING).with(attr::REFERENCE_ID, 10)
}

pub(crate) fn change_properties(id: &str, changed: KvList) -> Message {
    Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
        .with(attr::REFERENCE_ID, 11)
        .with(attr::INTERACTION_ID, id)
        .with(attr::CHANGED_PROPERTIES, changed)
}
