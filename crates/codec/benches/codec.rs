//! Encode and decode throughput of (a) a small request, (b) EventAck and (c) an
//! EventWorkbinContent holding 1,000 interactions with user data. Criterion prints both
//! messages/s and bytes/s for each.
//!
//! `cargo bench -p ixn-codec` (add `-- --quick` for a short run).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ixn_codec::{BytesMut, Codec, KvList, Message, MessageId};
use std::hint::black_box;

fn small_request() -> Message {
    Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
        .with("ReferenceId", 3)
        .with(
            "Workbin",
            KvList::new()
                .with("WorkbinTypeId", "Drafts")
                .with("WorkbinAgentId", "a1"),
        )
        .with("NotifyPropertyChanges", 1)
}

fn event_ack() -> Message {
    Message::new(MessageId::EVENT_ACK)
        .with("ReferenceId", 3)
        .with("ProxyClientId", 17)
}

/// One interaction as the engine describes it: its properties (docs/protocol.md) plus e-mail
/// user data.
fn interaction(i: usize) -> KvList {
    let id = format!("{i:016}");
    let user_data = KvList::new()
        .with(
            "Subject",
            format!("Invoice {i} overdue: please check the attached statement"),
        )
        .with("FromAddress", format!("customer{i}@example.com"))
        .with("To", "billing@example.com")
        .with("Priority", (i % 5) as i32)
        .with("CustomerSegment", "Gold")
        .with("CaseId", format!("CASE-{i:08}"))
        .with(
            "Body",
            "Hello, I was charged twice for the same order last month. ".repeat(3),
        );
    KvList::new()
        .with("InteractionId", id)
        .with("TenantId", 101)
        .with("MediaType", "email")
        .with("InteractionType", "Inbound")
        .with("InteractionSubtype", "InboundNew")
        .with("InteractionState", "InWorkbin")
        .with("InteractionWorkbinTypeId", "Drafts")
        .with("InteractionAgentId", "a1")
        .with("SubmittedBy", "emailsrv")
        .with("ReceivedAt", "2026-11-21T06:00:00Z")
        .with("UserData", user_data)
}

fn content_1000() -> Message {
    let interactions: KvList = (0..1000)
        .map(|i| (format!("{i:016}"), interaction(i)))
        .collect();
    Message::new(MessageId::EVENT_WORKBIN_CONTENT)
        .with("ReferenceId", 50)
        .with(
            "Workbin",
            KvList::new()
                .with("WorkbinTypeId", "Drafts")
                .with("WorkbinAgentId", "a1"),
        )
        .with("Interactions", interactions)
}

fn bench(c: &mut Criterion) {
    let codec = Codec::default();
    let cases = [
        ("small_request", small_request()),
        ("event_ack", event_ack()),
        ("content_1000", content_1000()),
    ];
    for (name, msg) in cases {
        let frame = codec.encode_to_bytes(&msg).unwrap();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: frame.len() as u64,
        });
        group.bench_function(BenchmarkId::new("encode", frame.len()), |b| {
            let mut buf = BytesMut::with_capacity(frame.len());
            b.iter(|| {
                buf.clear();
                codec.encode(black_box(&msg), &mut buf).unwrap();
                black_box(&buf);
            })
        });
        group.bench_function(BenchmarkId::new("decode", frame.len()), |b| {
            b.iter(|| codec.decode_frame(black_box(&frame)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
