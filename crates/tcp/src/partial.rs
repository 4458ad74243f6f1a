//! Incomplete frames: what a connection may hold of a frame that has not arrived whole.
//!
//! A frame larger than [`TRACKED`] is admitted when its length prefix arrives: its whole length
//! is reserved against a budget shared by every connection (`max_partial_frame_bytes`), its
//! buffer is allocated once at that size, and it must arrive whole within `frame_timeout_secs`.
//! A frame that does not fit the budget gets `LimitExceeded` at once; one that is late gets it
//! from the sweeper. Either way the connection is closed and its memory returned, so that idle
//! peers parking large partial frames cannot hold the server's memory.

use crate::outbox::{Item, Outbox};
use bytes::Buf;
use ixn_codec::{BytesMut, Codec, ErrorCode, LEN_PREFIX, Message, MessageId, attr};
use ixn_core::ConnId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
// tokio's clock, so that tests that pause it move frame deadlines too.
use tokio::time::Instant;
use tracing::warn;

/// Frames up to this size (bytes, length prefix included) are not tracked: they cost little
/// and arrive in one read or two.
pub(crate) const TRACKED: usize = 4096;

/// Room a connection's read buffer keeps for the next read (bytes). The codec reserves only
/// what the frame at hand still lacks, and a buffer that owns its memory then takes exactly
/// that capacity: every frame would cost two reads (its length prefix, then its body) and a
/// third that finds nothing. With this room a read takes what has arrived, several frames at
/// once. No more memory is held: a buffer that must allocate takes at least its first
/// capacity, which is this size.
pub(crate) const READ_AHEAD: usize = 512;

/// The budget and the deadlines of incomplete frames, shared by all connections.
#[derive(Debug)]
pub(crate) struct Partials {
    budget: usize,
    held: AtomicUsize,
    timeout: Duration,
    started: Mutex<HashMap<ConnId, Started>>,
}

#[derive(Debug)]
struct Started {
    at: Instant,
    outbox: Arc<Outbox>,
    expired: bool,
}

impl Partials {
    pub(crate) fn new(budget: usize, timeout: Duration) -> Self {
        Self {
            budget,
            held: AtomicUsize::new(0),
            timeout,
            started: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Started>> {
        // Each critical section is one map operation: a poisoned map is still consistent.
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes reserved by incomplete frames now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn admit(&self, conn: ConnId, outbox: &Arc<Outbox>, len: usize) -> bool {
        let admitted = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let total = held.checked_add(len)?;
                (total <= self.budget).then_some(total)
            })
            .is_ok();
        if admitted {
            self.lock().insert(
                conn,
                Started {
                    at: Instant::now(),
                    outbox: Arc::clone(outbox),
                    expired: false,
                },
            );
        }
        admitted
    }

    fn release(&self, conn: ConnId, len: usize) {
        self.held.fetch_sub(len, Ordering::AcqRel);
        self.lock().remove(&conn);
    }

    /// Closes, with `LimitExceeded`, every connection whose tracked frame is older than the
    /// timeout. Returns how many it closed.
    pub(crate) fn expire(&self, now: Instant) -> usize {
        let mut late = Vec::new();
        for (conn, s) in self.lock().iter_mut() {
            if !s.expired && now.saturating_duration_since(s.at) >= self.timeout {
                s.expired = true;
                late.push((*conn, Arc::clone(&s.outbox)));
            }
        }
        for (conn, outbox) in &late {
            warn!(
                conn = conn.0,
                timeout_secs = self.timeout.as_secs(),
                "frame not complete within frame_timeout_secs; closing the connection"
            );
            refuse(
                outbox,
                format!(
                    "a frame did not arrive whole within {} s (frame_timeout_secs); closing the connection",
                    self.timeout.as_secs()
                ),
            );
        }
        late.len()
    }

    /// Runs [`Partials::expire`] every second until `stop`.
    pub(crate) async fn sweep(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.expire(Instant::now());
                }
                () = stop.cancelled() => return,
            }
        }
    }
}

/// Queues `EventError LimitExceeded` with `why` and closes the connection after it.
pub(crate) fn refuse(outbox: &Outbox, why: String) {
    let reply = Message::new(MessageId::EVENT_ERROR)
        .with(attr::ERROR_CODE, ErrorCode::LimitExceeded.to_int())
        .with(attr::ERROR_DESCRIPTION, why);
    let item = Item::Msg {
        msg: Arc::new(reply),
        proxy_client_id: None,
    };
    let _ = outbox.push(item, 256);
    outbox.close_after_queued();
}

/// Why reading a connection stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// A malformed frame (or a read error).
    #[error(transparent)]
    Codec(#[from] ixn_codec::Error),
    /// The frame would pass the budget of incomplete frames.
    #[error(
        "a frame of {len} bytes does not fit: the server already holds {held} bytes of incomplete frames (max_partial_frame_bytes {budget})"
    )]
    Budget {
        len: usize,
        held: usize,
        budget: usize,
    },
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        Self::Codec(e.into())
    }
}

/// Most plain Pings answered in one [`Metered::decode_one`] call (bounds one copy; the
/// rest are decoded and answered as any Ping).
const PLAIN_PINGS_AT_ONCE: usize = 256;

/// The frame of a Ping that carries only an int ReferenceId (what clients send to keep a
/// connection alive or to measure it), less the value's four bytes at its end, in this
/// codec's encoding. Such a Ping is its own reply. `None` if the encoding does not end with
/// the value (then every Ping is decoded).
fn plain_ping_prefix() -> Option<&'static [u8]> {
    static PREFIX: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let codec = Codec::default();
            let frame = |n: i32| {
                let mut b = BytesMut::new();
                let ping = Message::new(MessageId::PING).with(attr::REFERENCE_ID, n);
                codec.encode(&ping, &mut b).ok().map(|()| b)
            };
            let (zero, minus_one) = (frame(0)?, frame(-1)?);
            let cut = zero.len().checked_sub(4)?;
            let shape = zero.len() == minus_one.len()
                && zero.get(..cut) == minus_one.get(..cut)
                && zero.get(cut..) == Some(&[0; 4][..])
                && minus_one.get(cut..) == Some(&[0xff; 4][..]);
            shape.then(|| zero.get(..cut).map(<[u8]>::to_vec)).flatten()
        })
        .as_deref()
}

/// The connection's decoder: the codec, plus the accounting of a tracked incomplete frame and
/// of the bytes decoded (for the reader's in-flight bound), and the plain Pings it answers
/// without decoding them (see [`Metered::answer_plain_pings`]).
#[derive(Debug)]
pub(crate) struct Metered {
    codec: Codec,
    conn: ConnId,
    outbox: Arc<Outbox>,
    partials: Arc<Partials>,
    /// Bytes reserved for the frame at the front of the buffer (0: none tracked).
    reserved: usize,
    /// Bytes of frames decoded since [`Metered::take_decoded`].
    decoded: usize,
    /// Plain Pings at the front of the buffer are answered here, until a frame is decoded.
    plain_pings: bool,
    /// Where the connection's Ping replies are put before they are queued (see
    /// [`Outbox::push_frames`]): the plain ones copied here, the others encoded by the reader.
    pongs: BytesMut,
}

impl Metered {
    pub(crate) fn new(
        codec: Codec,
        conn: ConnId,
        outbox: Arc<Outbox>,
        partials: Arc<Partials>,
    ) -> Self {
        Self {
            codec,
            conn,
            outbox,
            partials,
            reserved: 0,
            decoded: 0,
            plain_pings: false,
            pongs: BytesMut::new(),
        }
    }

    /// Whether the plain Pings at the front of what is read next may be answered on the spot:
    /// only when no earlier request of this connection is at the engine task (their replies
    /// would be overtaken). A plain Ping (a ReferenceId only, as this codec encodes it) is its
    /// own reply: it is copied to the outbox as it came, without being decoded. The first
    /// frame decoded as a message ends it until the reader allows it again, so a Ping is
    /// never answered ahead of a request before it.
    pub(crate) fn answer_plain_pings(&mut self, allowed: bool) {
        self.plain_pings = allowed;
    }

    /// The buffer the reader encodes the Ping replies it makes itself into (the plain ones are
    /// copied into it here).
    pub(crate) fn pongs(&mut self) -> &mut BytesMut {
        &mut self.pongs
    }

    /// Copies the plain Pings at the front of `buf` (at most [`PLAIN_PINGS_AT_ONCE`]) to the
    /// outbox, as their replies.
    fn take_plain_pings(&mut self, buf: &mut BytesMut) {
        let Some(prefix) = plain_ping_prefix() else {
            return;
        };
        let len = prefix.len() + 4;
        let mut n = 0;
        while n < PLAIN_PINGS_AT_ONCE
            && let Some(frame) = buf.get(..len)
            && frame.starts_with(prefix)
        {
            self.pongs.extend_from_slice(frame);
            buf.advance(len);
            n += 1;
        }
        if n > 0 {
            self.outbox.push_frames(&mut self.pongs);
        }
    }

    /// Bytes of frames decoded since [`Metered::take_decoded`].
    pub(crate) fn decoded(&self) -> usize {
        self.decoded
    }

    /// Bytes of frames decoded since the last call.
    pub(crate) fn take_decoded(&mut self) -> usize {
        std::mem::take(&mut self.decoded)
    }

    /// Decodes one frame off `buf` (the same contract as [`Codec::decode`]).
    pub(crate) fn decode_one(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ReadError> {
        if self.plain_pings && self.reserved == 0 {
            self.take_plain_pings(buf);
        }
        let total = buf
            .first_chunk::<LEN_PREFIX>()
            .map(|p| LEN_PREFIX + u32::from_be_bytes(*p) as usize);
        let decoded = self.codec.decode(buf)?;
        if decoded.is_some() {
            self.plain_pings = false;
        }
        match (&decoded, total) {
            (Some(_), Some(total)) => {
                self.decoded += total;
                if self.reserved > 0 {
                    self.partials.release(self.conn, self.reserved);
                    self.reserved = 0;
                }
            }
            (None, Some(total)) if total > TRACKED && self.reserved == 0 => {
                if !self.partials.admit(self.conn, &self.outbox, total) {
                    return Err(ReadError::Budget {
                        len: total,
                        held: self.partials.held(),
                        budget: self.partials.budget,
                    });
                }
                self.reserved = total;
                // One allocation of the frame's size, now that it is admitted.
                buf.reserve(total.saturating_sub(buf.len()));
            }
            (None, _) if self.reserved == 0 && buf.capacity() - buf.len() < READ_AHEAD => {
                buf.reserve(READ_AHEAD);
            }
            _ => {}
        }
        Ok(decoded)
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if self.reserved > 0 {
            self.partials.release(self.conn, self.reserved);
        }
    }
}

impl tokio_util::codec::Decoder for Metered {
    type Item = Message;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ReadError> {
        self.decode_one(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_header(total: usize) -> BytesMut {
        let mut b = BytesMut::new();
        b.extend_from_slice(&((total - LEN_PREFIX) as u32).to_be_bytes());
        b.extend_from_slice(&[0, 175]);
        b
    }

    #[test]
    fn large_frames_are_admitted_within_the_budget_and_released() {
        let partials = Arc::new(Partials::new(100_000, Duration::from_secs(10)));
        let outbox = Arc::new(Outbox::new(10, 1 << 20));
        let mut a = Metered::new(
            Codec::default(),
            ConnId(1),
            Arc::clone(&outbox),
            Arc::clone(&partials),
        );
        let mut b = Metered::new(
            Codec::default(),
            ConnId(2),
            Arc::clone(&outbox),
            Arc::clone(&partials),
        );
        let mut small = frame_header(TRACKED);
        assert!(a.decode_one(&mut small).unwrap().is_none());
        assert_eq!(partials.held(), 0, "small frames are not tracked");
        let mut big = frame_header(60_000);
        assert!(a.decode_one(&mut big).unwrap().is_none());
        assert_eq!(partials.held(), 60_000);
        assert!(big.capacity() >= 60_000);
        let mut other = frame_header(50_000);
        assert!(matches!(
            b.decode_one(&mut other),
            Err(ReadError::Budget {
                len: 50_000,
                held: 60_000,
                ..
            })
        ));
        drop(a);
        assert_eq!(
            partials.held(),
            0,
            "a closed connection returns its frame's bytes"
        );
        assert!(b.decode_one(&mut other).unwrap().is_none());
        assert_eq!(partials.held(), 50_000);
    }

    /// After a frame, the buffer keeps room for the next read: whole frames arrive in one read,
    /// not a length prefix and then a body.
    #[test]
    fn the_read_buffer_keeps_room_for_the_next_read() {
        let partials = Arc::new(Partials::new(100_000, Duration::from_secs(10)));
        let outbox = Arc::new(Outbox::new(10, 1 << 20));
        let codec = Codec::default();
        let mut m = Metered::new(codec, ConnId(1), outbox, partials);
        let mut buf = BytesMut::with_capacity(READ_AHEAD);
        let ping = Message::new(MessageId::PING).with(attr::REFERENCE_ID, 1);
        for round in 0..3 {
            codec.encode(&ping, &mut buf).unwrap();
            let decoded = m.decode_one(&mut buf).unwrap();
            assert!(decoded.is_some(), "round {round}");
            drop(decoded);
            assert!(m.decode_one(&mut buf).unwrap().is_none());
            assert!(
                buf.capacity() - buf.len() >= READ_AHEAD,
                "round {round}: room for {} bytes",
                buf.capacity() - buf.len()
            );
            // Half a length prefix: still room for the rest and what follows.
            buf.extend_from_slice(&[0, 0]);
            assert!(m.decode_one(&mut buf).unwrap().is_none());
            assert!(buf.capacity() - buf.len() >= READ_AHEAD);
            buf.clear();
        }
    }

    #[test]
    fn late_frames_are_refused_once() {
        let partials = Arc::new(Partials::new(1 << 20, Duration::from_secs(10)));
        let outbox = Arc::new(Outbox::new(10, 1 << 20));
        let mut a = Metered::new(
            Codec::default(),
            ConnId(1),
            Arc::clone(&outbox),
            Arc::clone(&partials),
        );
        let mut big = frame_header(60_000);
        assert!(a.decode_one(&mut big).unwrap().is_none());
        let now = Instant::now();
        assert_eq!(partials.expire(now), 0);
        assert_eq!(partials.expire(now + Duration::from_secs(10)), 1);
        assert!(outbox.is_closing());
        assert_eq!(partials.expire(now + Duration::from_secs(20)), 0, "once");
    }

    fn metered(outbox: &Arc<Outbox>) -> Metered {
        let partials = Arc::new(Partials::new(100_000, Duration::from_secs(10)));
        Metered::new(Codec::default(), ConnId(1), Arc::clone(outbox), partials)
    }

    fn ping(n: i32) -> Message {
        Message::new(MessageId::PING).with(attr::REFERENCE_ID, n)
    }

    fn frames(msgs: &[Message]) -> BytesMut {
        let mut b = BytesMut::new();
        for m in msgs {
            Codec::default().encode(m, &mut b).unwrap();
        }
        b
    }

    /// What the writer would write: every item taken, as bytes.
    async fn queued(outbox: &Outbox) -> Vec<u8> {
        outbox.close_after_queued();
        let (items, _) = outbox.take().await;
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Raw(b) => out.extend_from_slice(&b),
                other => panic!("only raw frames are queued here: {other:?}"),
            }
        }
        out
    }

    #[test]
    fn a_plain_ping_is_its_prefix_and_its_reference_id() {
        let prefix = plain_ping_prefix().expect("the codec encodes a Ping's value last");
        let frame = frames(&[ping(0x0102_0304)]);
        assert_eq!(&frame[..prefix.len()], prefix);
        assert_eq!(&frame[prefix.len()..], &[1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn plain_pings_at_the_front_are_answered_as_they_came() {
        let outbox = Arc::new(Outbox::new(10, 1 << 20));
        let mut m = metered(&outbox);
        m.answer_plain_pings(true);
        let register = Message::new(MessageId::REQUEST_REGISTER_CLIENT).with(attr::REFERENCE_ID, 3);
        let mut buf = frames(&[ping(1), ping(-2), register.clone(), ping(4)]);
        let decoded = m.decode_one(&mut buf).unwrap();
        assert_eq!(
            m.decoded(),
            frames(std::slice::from_ref(&register)).len(),
            "only decoded frames count toward the bytes in flight"
        );
        assert_eq!(decoded, Some(register), "the pings before it are answered");
        assert_eq!(
            m.decode_one(&mut buf).unwrap(),
            Some(ping(4)),
            "a Ping behind a request is not answered ahead of it"
        );
        assert_eq!(queued(&outbox).await, frames(&[ping(1), ping(-2)]).to_vec());
    }

    #[tokio::test]
    async fn pings_are_decoded_when_not_allowed_or_not_plain() {
        let outbox = Arc::new(Outbox::new(10, 1 << 20));
        let mut m = metered(&outbox);
        let mut buf = frames(&[ping(1)]);
        assert_eq!(
            m.decode_one(&mut buf).unwrap(),
            Some(ping(1)),
            "not allowed"
        );
        m.answer_plain_pings(true);
        let extra = ping(2).with(attr::REFERENCE_ID, 5);
        let mut buf = frames(std::slice::from_ref(&extra));
        assert_eq!(
            m.decode_one(&mut buf).unwrap(),
            Some(extra),
            "two attributes"
        );
        m.answer_plain_pings(true);
        // A plain Ping cut short waits for the rest of it.
        let whole = frames(&[ping(7)]);
        let mut buf = BytesMut::from(&whole[..whole.len() - 1]);
        assert_eq!(m.decode_one(&mut buf).unwrap(), None);
        buf.extend_from_slice(&whole[whole.len() - 1..]);
        assert_eq!(m.decode_one(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
        assert_eq!(queued(&outbox).await, whole.to_vec());
    }

    #[tokio::test]
    async fn plain_pings_are_answered_a_bounded_number_at_a_time() {
        let outbox = Arc::new(Outbox::new(10, 1 << 20));
        let mut m = metered(&outbox);
        m.answer_plain_pings(true);
        let n = i32::try_from(PLAIN_PINGS_AT_ONCE).unwrap();
        let pings: Vec<Message> = (0..=n).map(ping).collect();
        let mut buf = frames(&pings);
        assert_eq!(
            m.decode_one(&mut buf).unwrap(),
            Some(ping(n)),
            "the one past the bound is decoded"
        );
        assert_eq!(
            queued(&outbox).await,
            frames(&pings[..PLAIN_PINGS_AT_ONCE]).to_vec()
        );
    }

    proptest::proptest! {
        /// Whatever the frames and however the reads cut them: the Pings answered on the spot
        /// are plain ones at the very front of the stream, and every other frame is decoded,
        /// in order, once (nothing lost, nothing answered ahead of a frame before it).
        #[test]
        fn answered_pings_are_the_streams_front_and_the_rest_is_decoded_in_order(
            kinds in proptest::collection::vec((0u8..3, proptest::num::i32::ANY), 0..700),
            cuts in proptest::collection::vec(1usize..80, 1..40),
        ) {
            let msgs: Vec<Message> = kinds
                .iter()
                .map(|&(kind, n)| match kind {
                    0 => ping(n),
                    1 => ping(n).with(attr::REFERENCE_ID, 1),
                    _ => Message::new(MessageId::REQUEST_REGISTER_CLIENT).with(attr::REFERENCE_ID, n),
                })
                .collect();
            let stream = frames(&msgs);
            let outbox = Arc::new(Outbox::new(1 << 20, 1 << 26));
            let mut m = metered(&outbox);
            m.answer_plain_pings(true);
            let (mut buf, mut decoded, mut at) = (BytesMut::new(), Vec::new(), 0);
            for cut in cuts.iter().cycle() {
                if at >= stream.len() {
                    break;
                }
                let end = (at + cut).min(stream.len());
                buf.extend_from_slice(&stream[at..end]);
                at = end;
                while let Some(msg) = m.decode_one(&mut buf).unwrap() {
                    decoded.push(msg);
                }
            }
            proptest::prop_assert!(buf.is_empty());
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let pongs = rt.block_on(queued(&outbox));
            let len = frames(&[ping(0)]).len();
            proptest::prop_assert_eq!(pongs.len() % len, 0);
            let answered = pongs.len() / len;
            proptest::prop_assert!(kinds[..answered].iter().all(|&(k, _)| k == 0));
            proptest::prop_assert_eq!(&pongs[..], &frames(&msgs[..answered])[..]);
            proptest::prop_assert_eq!(&decoded[..], &msgs[answered..]);
        }
    }
}
