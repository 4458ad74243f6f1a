//! A connection's bounded outbound queue.
//!
//! The engine task pushes and never waits: a push that passes the bound marks the connection as
//! a slow consumer, drops the message, and asks the connection to close. The connection's writer
//! takes everything queued at once and writes it as one buffer.

use ixn_codec::{Bytes, Message};
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
        /// `msg` already encoded (without ProxyClientId), shared by all its recipients.
        frame: Option<Bytes>,
    },
    /// Frames encoded by the connection itself (its Ping replies), written as they are.
    Raw(Bytes),
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
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
}

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
    max_messages: usize,
    max_bytes: usize,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            closing: CancellationToken::new(),
            registered: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            max_messages,
            max_bytes,
        }
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
        let mut s = self.lock();
        if s.overflowed || s.close {
            return Pushed::Dropped;
        }
        if s.items.len() + 1 > self.max_messages || s.bytes + size > self.max_bytes {
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
        Pushed::Queued
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
    /// `into` (which must be empty; both queues keep their capacity) and returns whether to
    /// close after writing it.
    pub(crate) async fn take_into(&self, into: &mut VecDeque<Item>) -> bool {
        loop {
            {
                let mut s = self.lock();
                if !s.items.is_empty() || s.close {
                    s.bytes = 0;
                    std::mem::swap(&mut s.items, into);
                    return s.close;
                }
            }
            self.wake.notified().await;
        }
    }

    /// Like [`Outbox::take_into`], into a new queue.
    pub(crate) async fn take(&self) -> (VecDeque<Item>, bool) {
        let mut items = VecDeque::new();
        let close = self.take_into(&mut items).await;
        (items, close)
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
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
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
            frame: None,
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
        let (items, close) = o.take().await;
        assert_eq!((items.len(), close), (2, true));
    }

    #[tokio::test]
    async fn passing_the_byte_bound_closes() {
        let o = Outbox::new(100, 25);
        assert_eq!(o.push(item(), 20), Pushed::Queued);
        assert!(matches!(o.push(item(), 20), Pushed::Overflowed { .. }));
    }

    #[tokio::test]
    async fn take_returns_what_was_queued_and_resets_the_byte_count() {
        let o = Outbox::new(2, 25);
        assert_eq!(o.push(item(), 20), Pushed::Queued);
        o.wake();
        let (items, close) = o.take().await;
        assert_eq!((items.len(), close), (1, false));
        assert_eq!(
            o.push(item(), 20),
            Pushed::Queued,
            "the bytes written no longer count"
        );
    }
}
