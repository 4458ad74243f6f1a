//! The TCP connector: each scenario gets a fresh server (started by a caller-supplied function)
//! and talks to it over real sockets, with blocking std I/O and timeouts.

use crate::connector::{Connector, Session};
use crate::error::TransportError;
use crate::scenario::Scenario;
use ixn_codec::{BytesMut, Codec, Message, MessageId, attr};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long an expected message may take to arrive.
const EXPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `expect_closed` waits for the server to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server for one scenario: its address, and a guard that stops it when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Dropped when the scenario ends (stops the server).
    pub guard: Box<dyn Any>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// TLS and credentials for every connection of a run.
#[derive(Clone, Default)]
pub struct Credentials {
    /// TLS: the client configuration (trusted authorities, client certificate) and the name
    /// the server's certificate must carry.
    pub tls: Option<(std::sync::Arc<ixn_tls::rustls::ClientConfig>, String)>,
    /// Given as `Password` in each connection's first RequestRegisterClient that has none.
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .field("password", &self.password.as_ref().map(|_| "..."))
            .finish()
    }
}

/// A connection's byte stream: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<ixn_tls::rustls::StreamOwned<ixn_tls::rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }

    /// Ends the sending side (after TLS's close_notify).
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        if let Self::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        self.socket().shutdown(Shutdown::Write)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// Runs scenarios over TCP against servers started by `start`, one per scenario.
pub struct Tcp<F> {
    start: F,
    credentials: Credentials,
}

impl<F> std::fmt::Debug for Tcp<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tcp")
    }
}

impl<F: FnMut(&Scenario) -> Result<Running, TransportError>> Tcp<F> {
    /// A connector that calls `start` for each scenario.
    pub fn new(start: F) -> Self {
        Self {
            start,
            credentials: Credentials::default(),
        }
    }

    /// Connects with TLS and gives a password, as `credentials` say.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }
}

impl<F: FnMut(&Scenario) -> Result<Running, TransportError>> Connector for Tcp<F> {
    fn start(&mut self, scenario: &Scenario) -> Result<Box<dyn Session>, TransportError> {
        let running = (self.start)(scenario)?;
        let limits = scenario.config.limits;
        let codec = Codec::new(ixn_codec::Limits {
            max_frame_len: limits.max_frame_len,
            max_depth: limits.max_kvlist_depth,
        });
        Ok(Box::new(TcpSession {
            running,
            credentials: self.credentials.clone(),
            codec,
            conns: HashMap::new(),
            next_ping: -1_000_000,
        }))
    }
}

struct Conn {
    stream: Stream,
    buf: BytesMut,
    queued: VecDeque<Message>,
    eof: bool,
    /// A RequestRegisterClient was sent (the password goes with the first one only).
    registered: bool,
}

struct TcpSession {
    running: Running,
    credentials: Credentials,
    codec: Codec,
    conns: HashMap<String, Conn>,
    next_ping: i32,
}

impl TcpSession {
    fn conn(&mut self, name: &str) -> Result<&mut Conn, TransportError> {
        if !self.conns.contains_key(name) {
            let stream = TcpStream::connect(self.running.addr)
                .map_err(|e| format!("cannot connect to {}: {e}", self.running.addr))?;
            let _ = stream.set_nodelay(true);
            let stream = match &self.credentials.tls {
                None => Stream::Plain(stream),
                Some((config, server)) => {
                    let name = ixn_tls::server_name(server).map_err(|e| e.to_string())?;
                    let conn =
                        ixn_tls::rustls::ClientConnection::new(std::sync::Arc::clone(config), name)
                            .map_err(|e| format!("TLS: {e}"))?;
                    Stream::Tls(Box::new(ixn_tls::rustls::StreamOwned::new(conn, stream)))
                }
            };
            self.conns.insert(
                name.to_owned(),
                Conn {
                    stream,
                    buf: BytesMut::new(),
                    queued: VecDeque::new(),
                    eof: false,
                    registered: false,
                },
            );
        }
        self.conns
            .get_mut(name)
            .ok_or_else(|| "connection vanished".into())
    }

    /// The next message within `timeout`; `None` on timeout or end of stream.
    fn read(&mut self, name: &str, timeout: Duration) -> Result<Option<Message>, TransportError> {
        let codec = self.codec;
        let c = self.conn(name)?;
        if let Some(m) = c.queued.pop_front() {
            return Ok(Some(m));
        }
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(m) = codec
                .decode(&mut c.buf)
                .map_err(|e| format!("undecodable frame from the server: {e}"))?
            {
                return Ok(Some(m));
            }
            if c.eof {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            c.stream
                .socket()
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match c.stream.read(&mut chunk) {
                Ok(0) => c.eof = true,
                Ok(n) => c.buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => c.eof = true,
                Err(e) => return Err(format!("read failed: {e}").into()),
            }
        }
    }
}

impl Session for TcpSession {
    fn send(&mut self, conn: &str, msg: &Message) -> Result<(), TransportError> {
        let password = self.credentials.password.clone();
        let c = self.conn(conn)?;
        let mut with_password = None;
        if msg.id == MessageId::REQUEST_REGISTER_CLIENT && !c.registered {
            c.registered = true;
            if let Some(p) = password
                && msg.attrs.get(attr::PASSWORD).is_none()
            {
                with_password = Some(msg.clone().with(attr::PASSWORD, p));
            }
        }
        let msg = with_password.as_ref().unwrap_or(msg);
        let mut buf = BytesMut::new();
        self.codec
            .encode(msg, &mut buf)
            .map_err(|e| e.to_string())?;
        let c = self.conn(conn)?;
        match c.stream.write_all(&buf) {
            Ok(()) => Ok(()),
            // The server closed the connection; what it sent before is still to be read.
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                Ok(())
            }
            Err(e) => Err(format!("write failed: {e}").into()),
        }
    }

    fn recv(&mut self, conn: &str) -> Result<Option<Message>, TransportError> {
        self.read(conn, EXPECT_TIMEOUT)
    }

    fn silent(&mut self, conn: &str) -> Result<Option<Message>, TransportError> {
        // Whatever is already here is not silence.
        if let Some(m) = self.read(conn, Duration::ZERO)? {
            return Ok(Some(m));
        }
        if self.conn(conn)?.eof {
            return Ok(None);
        }
        // A Ping round trip: everything the server queued before it arrives first.
        self.next_ping -= 1;
        let reference = self.next_ping;
        self.send(
            conn,
            &Message::new(MessageId::PING).with(attr::REFERENCE_ID, reference),
        )?;
        match self.read(conn, EXPECT_TIMEOUT)? {
            Some(m) if m.id == MessageId::PING && m.reference_id() == Some(reference) => Ok(None),
            Some(m) => Ok(Some(m)),
            // Closed by the server with nothing unread: nothing more can arrive.
            None if self.conn(conn)?.eof => Ok(None),
            None => Err("no reply to the Ping that checks for silence".into()),
        }
    }

    fn disconnect(&mut self, conn: &str) -> Result<(), TransportError> {
        self.conn(conn)?
            .stream
            .shutdown_write()
            .map_err(|e| format!("shutdown failed: {e}"))?;
        // The server closes only after dropping this connection's clients (R13).
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while !self.conn(conn)?.eof {
            if Instant::now() >= deadline {
                return Err("the server did not close the connection after the client did".into());
            }
            let _ = self.read(conn, Duration::from_millis(200))?;
        }
        Ok(())
    }

    fn closed(&mut self, conn: &str) -> Result<bool, TransportError> {
        match self.read(conn, CLOSE_TIMEOUT)? {
            Some(m) => {
                self.conn(conn)?.queued.push_front(m);
                Ok(false)
            }
            None => Ok(self.conn(conn)?.eof),
        }
    }
}
