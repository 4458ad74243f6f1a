//! Incomplete frames: what a connection may hold of a frame that has not arrived whole.
//!
//! A frame larger than [`TRACKED`] is admitted when its length prefix arrives: its whole length
//! is reserved against a budget shared by every connection (`max_partial_frame_bytes`), its
//! buffer is allocated once at that size, and it must arrive whole within `frame_timeout_secs`.
//! A frame that does not fit the budget gets `LimitExceeded` at once; one that is late gets it
//! from the sweeper. Either way the connection is closed and its memory returned, so that idle
//! peers parking large partial frames cannot hold the server's memory.

use crate::outbox::{Item, Outbox};
use ixn_codec::{BytesMut, Codec, ErrorCode, LEN_PREFIX, Message, MessageId, attr};
use ixn_core::ConnId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

/// The connection's decoder: the codec, plus the accounting of a tracked incomplete frame and
/// of the bytes decoded (for the reader's in-flight bound).
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
        let total = buf
            .first_chunk::<LEN_PREFIX>()
            .map(|p| LEN_PREFIX + u32::from_be_bytes(*p) as usize);
        let decoded = self.codec.decode(buf)?;
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
}
