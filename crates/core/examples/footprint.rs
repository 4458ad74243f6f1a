//! Measures the engine's memory per idle subscription and per stored interaction with a
//! counting allocator (live heap bytes, exact; no allocator slack or page rounding).
//!
//! `cargo run --release -p ixn-core --example footprint`
//!
//! 10,000 agents log in on their own connections; then each subscribes to its five agent
//! workbins (50,000 subscriptions); then 100,000 interactions, each with a two-key UserData,
//! are submitted and placed into the agents' Drafts.

// A command-line aid: printing is its output, and a broken setup may panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::print_stdout)]
// A counting `GlobalAlloc` is unsafe by definition; it only forwards to the system allocator.
#![allow(unsafe_code)]

use ixn_codec::{KvList, Message, MessageId, attr};
use ixn_config::{Config, ConfigFile, Limits, SYNTHETIC_AGENT_WORKBINS};
use ixn_core::{ConnId, Engine, Output};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::SystemTime;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    const AGENTS: usize = 10_000;
    const INTERACTIONS: usize = 100_000;
    let limits = Limits {
        max_interactions_per_workbin: 1_000_000,
        ..Limits::default()
    };
    let cfg = Config::validate(ConfigFile::synthetic(AGENTS, 100, limits)).unwrap();
    let mut e = Engine::new(Arc::new(cfg), 1);
    let mut out: Vec<Output> = Vec::with_capacity(16);
    let now = SystemTime::UNIX_EPOCH;
    let mut send = |e: &mut Engine, conn: u64, m: Message| {
        out.clear();
        e.handle(now, ConnId(conn), &m, &mut out);
        let reply = out[0].message().unwrap();
        assert_ne!(reply.id, MessageId::EVENT_ERROR, "{reply:?}");
        reply
    };
    for i in 0..AGENTS {
        send(
            &mut e,
            i as u64,
            Message::new(MessageId::REQUEST_REGISTER_CLIENT)
                .with(attr::CLIENT_NAME, "desk")
                .with(attr::CLIENT_TYPE, 1),
        );
        send(
            &mut e,
            i as u64,
            Message::new(MessageId::REQUEST_AGENT_LOGIN)
                .with(attr::TENANT_ID, 101)
                .with(attr::AGENT_ID, format!("agent{i}"))
                .with(attr::PLACE_ID, format!("place{i}")),
        );
    }
    let base = live();
    for i in 0..AGENTS {
        for ty in SYNTHETIC_AGENT_WORKBINS {
            let wb = KvList::new()
                .with(attr::WORKBIN_TYPE_ID, ty)
                .with(attr::WORKBIN_AGENT_ID, format!("agent{i}"));
            send(
                &mut e,
                i as u64,
                Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, wb),
            );
        }
    }
    let subs = AGENTS * SYNTHETIC_AGENT_WORKBINS.len();
    let after_subs = live();
    send(
        &mut e,
        u64::MAX,
        Message::new(MessageId::REQUEST_REGISTER_CLIENT)
            .with(attr::CLIENT_NAME, "media")
            .with(attr::CLIENT_TYPE, 2),
    );
    let before_ix = live();
    for n in 0..INTERACTIONS {
        let reply = send(
            &mut e,
            u64::MAX,
            Message::new(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, "email")
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, "Inbound")
                .with(
                    attr::USER_DATA,
                    KvList::new()
                        .with("Subject", format!("Invoice {n}"))
                        .with("Priority", 3),
                ),
        );
        let id = reply.attrs.get_str(attr::INTERACTION_ID).unwrap().clone();
        let wb = KvList::new()
            .with(attr::WORKBIN_TYPE_ID, "Drafts")
            .with(attr::WORKBIN_AGENT_ID, format!("agent{}", n % AGENTS));
        send(
            &mut e,
            u64::MAX,
            Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                .with(attr::INTERACTION_ID, id)
                .with(attr::WORKBIN, wb),
        );
    }
    let after_ix = live();
    println!("engine: {:?}", e.stats());
    print_costs(subs, after_subs - base, INTERACTIONS, after_ix - before_ix);
}

/// What each subscription and each interaction costs, and the whole engine.
fn print_costs(subs: usize, subs_bytes: isize, interactions: usize, ix_bytes: isize) {
    println!(
        "per idle subscription: {:.0} bytes ({subs} subscriptions, {subs_bytes} bytes)",
        subs_bytes as f64 / subs as f64,
    );
    println!(
        "per stored interaction (in a workbin, 2-key UserData): {:.0} bytes ({interactions} interactions, {ix_bytes} bytes)",
        ix_bytes as f64 / interactions as f64,
    );
    println!("whole engine: {:.1} MiB", live() as f64 / (1024.0 * 1024.0));
}
