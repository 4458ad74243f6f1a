//! A connection's bounded outbound queue, and the counts that pace its reader.
//!
//! The engine task pushes and never waits: a push that passes the bound marks the connection as
//! a slow consumer, drops the message, and asks the connection to close. The connection's writer
//! takes everything queued at once and writes it as one buffer.
//!
//! Pacing (fairness): past a soft bound (a sixteenth of the hard one, at most 1 MiB or a quarter
//! of the messages), the engine task stops handling the connection's own requests and defers
//! them until the writer has taken and written the queue ([`Outbox::defer_if_over`];
//! [`Outbox::take_into`] reports it to the writer). The reader keeps at most [`MAX_IN_FLIGHT`] requests and about
//! [`MAX_IN_FLIGHT_BYTES`] at the engine task, so a client whose replies pile up stops being
//! read instead of making the engine build more for it.
//!
//! The web gateway's link never overflows ([`Outbox::for_link`]): past its bound the engine
//! task stops taking inputs until the link's consumer (which never waits on a web client) has
//! taken the queue.

use ixn_codec::{Bytes, BytesMut, Message};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One thing for the writer to do.
#[derive(Debug)]
pub(crate) enum Item {
    /// Send this message (with the recipient's ProxyClientId appended, if any).
    Msg {
        msg: Arc<Message>,
        proxy_client_id: Option<i32>,
    },
    /// A notification encoded once and shared by all its TCP recipients (without
    /// ProxyClientId: the writer appends the recipient's). Only the frame is shared: a
    /// recipient holding the message as well would touch a second reference count shared by
    /// every recipient, on every delivery.
    Shared {
        frame: Bytes,
        proxy_client_id: Option<i32>,
    },
    /// Frames encoded by the connection itself (its Ping replies), written as they are.
    Raw(Bytes),
}

/// What [`Outbox::take_into`] found besides the items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Close once these are written.
    pub(crate) close: bool,
    /// The engine task deferred this connection's requests: send it `Input::Resume`.
    pub(crate) resume: bool,
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the caller wakes the writer (see [`Outbox::wake`]).
    Queued,
    /// Queued by [`Outbox::push_batched`] behind an earlier push whose wake-up is due and comes
    /// before the writer's next take: no need to wake the writer again.
    Joined,
    /// This push passed the bound: the connection is now closing as a slow consumer.
    Overflowed { messages: usize, bytes: usize },
    /// The connection is closing; the message was dropped.
    Dropped,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Item>,
    bytes: usize,
    /// Close once the queue is written (engine request or slow consumer).
    close: bool,
    /// Slow consumer: nothing more is queued.
    overflowed: bool,
    /// The engine task deferred this connection's requests: tell it when the queue is taken.
    resume: bool,
    /// A batched push since the writer's last take has asked its caller to wake the writer
    /// (see [`Outbox::push_batched`]); the take clears it.
    wake_due: bool,
}

/// Requests one connection may have at the engine task (sent, outputs not yet queued).
pub(crate) const MAX_IN_FLIGHT: usize = 256;
/// Bytes of decoded requests one connection may have at the engine task before its reader
/// waits (one batch may pass it: a batch is at least one frame).
pub(crate) const MAX_IN_FLIGHT_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer (a permit is stored when it is not waiting: no lost wake-ups).
    wake: Notify,
    /// Cancelled when the connection must stop reading and close.
    pub(crate) closing: CancellationToken,
    /// Set by the engine task once the connection has a registered client.
    pub(crate) registered: AtomicBool,
    /// Requests sent to the engine task whose outputs are not queued yet. While it is zero,
    /// the connection may queue a reply of its own (Ping) without passing any.
    pending: AtomicUsize,
    /// Frame bytes of the batches at the engine task not yet handled.
    in_flight_bytes: AtomicUsize,
    /// Wakes the reader when the engine task has made room (fewer requests or bytes in flight).
    pub(crate) room: Notify,
    /// Wakes the engine task when a link's consumer has taken its queue.
    pub(crate) taken: Notify,
    max_messages: usize,
    max_bytes: usize,
    soft_messages: usize,
    soft_bytes: usize,
    /// The web gateway's link: it is never closed as a slow consumer, and it takes messages
    /// ([`Item::Msg`]), never frames.
    link: bool,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            closing: CancellationToken::new(),
            registered: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            in_flight_bytes: AtomicUsize::new(0),
            room: Notify::new(),
            taken: Notify::new(),
            max_messages,
            max_bytes,
            soft_messages: (max_messages / 4).max(1),
            soft_bytes: (max_bytes / 16).clamp(16 * 1024, 1024 * 1024),
            link: false,
        }
    }

    /// The web gateway's link: never overflows; [`Outbox::is_full`] tells the engine task to
    /// stop taking inputs until the link's consumer has taken the queue.
    pub(crate) fn for_link(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            link: true,
            ..Self::new(max_messages, max_bytes)
        }
    }

    /// True for the web gateway's link, which hands messages to the gateway: queue
    /// [`Item::Msg`] for it, never [`Item::Shared`].
    pub(crate) fn is_link(&self) -> bool {
        self.link
    }

    /// At or past the hard bound (only a link's queue can be: others overflow first).
    /// Messages and bytes queued now (for metrics).
    pub(crate) fn depth(&self) -> (usize, usize) {
        let s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (s.items.len(), s.bytes)
    }

    pub(crate) fn is_full(&self) -> bool {
        let s = self.lock();
        s.items.len() >= self.max_messages || s.bytes >= self.max_bytes
    }

    /// If the queue is past its soft bound, asks to be told when the writer takes it (the
    /// engine task then defers this connection's requests) and returns true.
    pub(crate) fn defer_if_over(&self) -> bool {
        let mut s = self.lock();
        if s.items.len() >= self.soft_messages || s.bytes >= self.soft_bytes {
            s.resume = true;
            true
        } else {
            false
        }
    }

    /// True once the connection is closing: nothing more is built for it.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every critical
        // section is a few field updates), so a poisoned lock is used as it is.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` of `size` encoded bytes without waking the writer (see [`Outbox::wake`]).
    pub(crate) fn push(&self, item: Item, size: usize) -> Pushed {
        self.push_inner(item, size, false)
    }

    /// Like [`Outbox::push`], for a caller that wakes the writers it pushed to once it has pushed
    /// a whole batch: returns [`Pushed::Joined`] when a batched push since the writer's last take
    /// already returned [`Pushed::Queued`], whose wake-up then also covers this item. A
    /// notification to many subscribers, queued behind another one not taken yet, costs no
    /// second wake-up.
    pub(crate) fn push_batched(&self, item: Item, size: usize) -> Pushed {
        self.push_inner(item, size, true)
    }

    fn push_inner(&self, item: Item, size: usize, batched: bool) -> Pushed {
        let mut s = self.lock();
        if s.overflowed || s.close {
            return Pushed::Dropped;
        }
        if !self.link && (s.items.len() + 1 > self.max_messages || s.bytes + size > self.max_bytes)
        {
            s.overflowed = true;
            s.close = true;
            let (messages, bytes) = (s.items.len(), s.bytes);
            drop(s);
            self.closing.cancel();
            self.wake.notify_one();
            return Pushed::Overflowed { messages, bytes };
        }
        s.bytes += size;
        s.items.push_back(item);
        if batched && std::mem::replace(&mut s.wake_due, true) {
            Pushed::Joined
        } else {
            Pushed::Queued
        }
    }

    /// Queues the frames `frames` holds, as they are, and wakes the writer. They are split off
    /// `frames`, which reuses its memory once the writer has written them.
    pub(crate) fn push_frames(&self, frames: &mut BytesMut) {
        let len = frames.len();
        let _ = self.push(Item::Raw(frames.split().freeze()), len);
        self.wake();
    }

    /// Wakes the writer.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks for the connection to close once what is queued is written.
    pub(crate) fn close_after_queued(&self) {
        self.lock().close = true;
        self.closing.cancel();
        self.wake.notify_one();
    }

    /// Waits until there is something to write or a close is due; swaps everything queued into
    /// `into` (which must be empty; both queues keep their capacity). Returns whether to close
    /// after writing it, and whether the engine task deferred requests until now (the caller
    /// then sends it `Input::Resume`).
    pub(crate) async fn take_into(&self, into: &mut VecDeque<Item>) -> Taken {
        loop {
            {
                let mut s = self.lock();
                if !s.items.is_empty() || s.close {
                    s.bytes = 0;
                    s.wake_due = false;
                    std::mem::swap(&mut s.items, into);
                    let taken = Taken {
                        close: s.close,
                        resume: std::mem::take(&mut s.resume),
                    };
                    drop(s);
                    if self.link {
                        // Only the engine task waits for this, and only on the link.
                        self.taken.notify_one();
                    }
                    return taken;
                }
            }
            self.wake.notified().await;
        }
    }

    /// Like [`Outbox::take_into`], into a new queue.
    pub(crate) async fn take(&self) -> (VecDeque<Item>, Taken) {
        let mut items = VecDeque::new();
        let taken = self.take_into(&mut items).await;
        (items, taken)
    }

    /// True once a push passed the bound: what is queued will not be drained.
    pub(crate) fn is_overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Counts `n` requests sent to the engine task.
    pub(crate) fn sent_to_engine(&self, n: usize) {
        self.pending.fetch_add(n, Ordering::AcqRel);
    }

    /// The engine task queued one request's outputs (called after queuing them).
    pub(crate) fn answered(&self) {
        if let Ok(before) = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            && before == MAX_IN_FLIGHT
        {
            self.room.notify_one();
        }
    }

    /// Counts `bytes` of frames sent to the engine task.
    pub(crate) fn sent_bytes(&self, bytes: usize) {
        self.in_flight_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The engine task has handled (or dropped) a batch of `bytes`.
    pub(crate) fn handled_bytes(&self, bytes: usize) {
        if let Ok(before) =
            self.in_flight_bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(bytes))
                })
            && before >= MAX_IN_FLIGHT_BYTES
        {
            self.room.notify_one();
        }
    }

    /// How many more requests the reader may send now (0: wait for [`Outbox::room`]).
    pub(crate) fn allowance(&self) -> usize {
        if self.in_flight_bytes.load(Ordering::Acquire) >= MAX_IN_FLIGHT_BYTES {
            return 0;
        }
        MAX_IN_FLIGHT.saturating_sub(self.pending())
    }

    /// Requests at the engine task whose outputs are not queued yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    pub(crate) fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ixn_codec::MessageId;

    fn item() -> Item {
        Item::Msg {
            msg: Arc::new(Message::new(MessageId::PING)),
            proxy_client_id: None,
        }
    }

    #[tokio::test]
    async fn passing_the_message_bound_closes_and_drops() {
        let o = Outbox::new(2, 1000);
        assert_eq!(o.push(item(), 10), Pushed::Queued);
        assert_eq!(o.push(item(), 10), Pushed::Queued);
        assert_eq!(
            o.push(item(), 10),
            Pushed::Overflowed {
                messages: 2,
                bytes: 20
            }
        );
        assert_eq!(o.push(item(), 10), Pushed::Dropped);
        assert!(o.closing.is_cancelled());
        let (items, taken) = o.take().await;
        assert_eq!((items.len(), taken.close), (2, true));
    }

    #[tokio::test]
    async fn a_link_never_overflows_and_says_when_full() {
        let o = Outbox::for_link(2, 1000);
        for _ in 0..5 {
            assert_eq!(o.push(item(), 10), Pushed::Queued);
        }
        assert!(o.is_full());
        assert!(!o.is_closing());
        let (items, _) = o.take().await;
        assert_eq!(items.len(), 5);
        assert!(!o.is_full());
    }

    #[tokio::test]
    async fn deferral_is_reported_by_the_next_take() {
        let o = Outbox::new(8, 1 << 20);
        assert!(!o.defer_if_over(), "under the soft bound (2 messages)");
        assert_eq!(o.push(item(), 10), Pushed::Queued);
        assert_eq!(o.push(item(), 10), Pushed::Queued);
        assert!(o.defer_if_over());
        let (_, taken) = o.take().await;
        assert!(taken.resume);
        assert!(!o.defer_if_over());
    }

    #[test]
    fn allowance_counts_requests_and_bytes_in_flight() {
        let o = Outbox::new(8, 1 << 20);
        assert_eq!(o.allowance(), MAX_IN_FLIGHT);
        o.sent_to_engine(MAX_IN_FLIGHT - 1);
        assert_eq!(o.allowance(), 1);
        o.sent_to_engine(1);
        assert_eq!(o.allowance(), 0);
        o.answered();
        assert_eq!(o.allowance(), 1);
        o.sent_bytes(MAX_IN_FLIGHT_BYTES);
        assert_eq!(o.allowance(), 0);
        o.handled_bytes(MAX_IN_FLIGHT_BYTES);
        assert_eq!(o.allowance(), 1);
    }

    #[tokio::test]
    async fn passing_the_byte_bound_closes() {
        let o = Outbox::new(100, 25);
        assert_eq!(o.push(item(), 20), Pushed::Queued);
        assert!(matches!(o.push(item(), 20), Pushed::Overflowed { .. }));
    }

    #[tokio::test]
    async fn a_batched_push_asks_for_one_wake_up_per_take() {
        let o = Outbox::new(8, 1 << 20);
        assert_eq!(o.push_batched(item(), 10), Pushed::Queued, "the first asks");
        assert_eq!(o.push_batched(item(), 10), Pushed::Joined);
        assert_eq!(
            o.push(item(), 10),
            Pushed::Queued,
            "an unbatched push is its caller's to wake"
        );
        assert_eq!(o.push_batched(item(), 10), Pushed::Joined);
        let (items, _) = o.take().await;
        assert_eq!(items.len(), 4, "joined items are taken with the first");
        assert_eq!(
            o.push_batched(item(), 10),
            Pushed::Queued,
            "after a take, the next push asks for a wake-up again"
        );
        // A push that leaves the due wake-up in place never stops a later one from asking.
        let o = Outbox::new(8, 1 << 20);
        assert_eq!(o.push(item(), 10), Pushed::Queued);
        assert_eq!(o.push_batched(item(), 10), Pushed::Queued);
    }

    #[tokio::test]
    async fn a_closing_outbox_takes_no_batched_push() {
        let o = Outbox::new(2, 1 << 20);
        o.close_after_queued();
        assert_eq!(o.push_batched(item(), 10), Pushed::Dropped);
        let o = Outbox::new(1, 1 << 20);
        assert_eq!(o.push_batched(item(), 10), Pushed::Queued);
        assert!(matches!(
            o.push_batched(item(), 10),
            Pushed::Overflowed { .. }
        ));
    }

    #[tokio::test]
    async fn take_returns_what_was_queued_and_resets_the_byte_count() {
        let o = Outbox::new(2, 25);
        assert_eq!(o.push(item(), 20), Pushed::Queued);
        o.wake();
        let (items, taken) = o.take().await;
        assert_eq!((items.len(), taken.close), (1, false));
        assert_eq!(
            o.push(item(), 20),
            Pushed::Queued,
            "the bytes written no longer count"
        );
    }
}
