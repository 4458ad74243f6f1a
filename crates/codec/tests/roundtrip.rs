//! Property tests: message -> bytes -> message, message -> JSON -> message, and the stream
//! decoder fed the same bytes split at every position.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_codec::{Bytes, BytesMut, Codec, KvList, Message, MessageId, Value};
use proptest::collection::vec;
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z0-9_]{0,12}",
        1 => "\\PC{0,6}",
        1 => Just(String::new()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::Int),
        "\\PC{0,24}".prop_map(Value::from),
        vec(any::<u8>(), 0..32).prop_map(|b| Value::Binary(Bytes::from(b))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        vec((key(), inner), 0..6).prop_map(|pairs| {
            let mut list: KvList = pairs.into_iter().collect();
            // A lone string under "$binary" has no JSON form; make it two pairs.
            if let [(k, Value::Str(_))] = list.as_slice()
                && k == "$binary"
            {
                list.push("x", 1);
            }
            Value::List(list)
        })
    })
}

fn message() -> impl Strategy<Value = Message> {
    let known = proptest::sample::select(
        MessageId::ALL
            .iter()
            .map(|(id, _, _)| *id)
            .collect::<Vec<_>>(),
    );
    let id = prop_oneof![known, any::<u16>().prop_map(MessageId)];
    let enum_attr = prop_oneof![
        Just(None),
        (0i32..6).prop_map(|i| Some(("ClientType", i))),
        (0i32..5).prop_map(|i| Some(("WorkbinContentOperation", i))),
    ];
    (id, vec((key(), value()), 0..8), enum_attr).prop_map(|(id, attrs, enum_attr)| {
        let mut msg = Message::new(id);
        for (k, v) in attrs {
            // "message" names the message in JSON; enum attributes hold ints (see json.rs).
            if k != "message" && k != "ClientType" && k != "WorkbinContentOperation" {
                msg.attrs.push(k, v);
            }
        }
        if let Some((k, i)) = enum_attr {
            msg.attrs.push(k, i);
        }
        msg
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn bytes_round_trip(msg in message()) {
        let codec = Codec::default();
        let bytes = codec.encode_to_bytes(&msg).unwrap();
        let back = codec.decode_frame(&bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(codec.encode_to_bytes(&back).unwrap(), bytes);
    }

    #[test]
    fn json_round_trip(msg in message()) {
        let text = msg.to_json().unwrap();
        prop_assert_eq!(Message::from_json(&text).unwrap(), msg);
    }

}

proptest! {
    // Quadratic in the stream length: fewer, still varied, cases.
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    #[test]
    fn split_at_every_position_gives_the_same_messages(msgs in vec(message(), 1..4)) {
        let codec = Codec::default();
        let mut stream = BytesMut::new();
        for m in &msgs {
            codec.encode(m, &mut stream).unwrap();
        }
        for split in 0..=stream.len() {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(part);
                while let Some(m) = codec.decode(&mut buf).unwrap() {
                    out.push(m);
                }
            }
            prop_assert_eq!(&out, &msgs, "split at {}", split);
            prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages(msgs in vec(message(), 1..4)) {
        let codec = Codec::default();
        let mut stream = BytesMut::new();
        for m in &msgs {
            codec.encode(m, &mut stream).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in stream.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        prop_assert_eq!(out, msgs);
    }
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
