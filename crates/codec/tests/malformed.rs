//! A table of malformed frames, each giving its own specific error (never a panic).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_codec::{Bytes, BytesMut};
use ixn_codec::{Codec, Error, Limits, Malformed};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Body of message 175 with the given pair count and pair bytes.
fn body(count: u32, pairs: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 175];
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(pairs);
    b
}

#[test]
fn each_malformed_frame_gives_its_error() {
    let codec = Codec::new(Limits {
        max_frame_len: 1024,
        max_depth: 2,
    });
    let key_k = [0u8, 1, b'k'];
    let with_key = |rest: &[u8]| [&key_k[..], rest].concat();
    let nested = |levels: usize| {
        // k -> KVList(1 pair: k -> KVList ... ) ending in an empty list.
        let mut v = Vec::new();
        for _ in 0..levels {
            v.extend_from_slice(&key_k);
            v.push(4);
            v.extend_from_slice(&1u32.to_be_bytes());
        }
        // Innermost list: replace its count with 0 by ending with an int pair instead.
        v.extend_from_slice(&with_key(&[1, 0, 0, 0, 1]));
        v
    };
    let cases: Vec<(&str, Vec<u8>, Malformed)> = vec![
        ("empty input", vec![], Malformed::Truncated { offset: 0 }),
        ("prefix cut", vec![0, 0], Malformed::Truncated { offset: 0 }),
        (
            "body shorter than its prefix",
            vec![0, 0, 0, 9, 0, 175],
            Malformed::Truncated { offset: 6 },
        ),
        (
            "no pair count",
            frame(&[0, 175]),
            Malformed::Truncated { offset: 6 },
        ),
        (
            "oversize frame",
            vec![0, 0, 4, 1, 0, 0],
            Malformed::FrameTooLarge {
                len: 1025,
                max: 1024,
            },
        ),
        (
            "count without pairs",
            frame(&body(1, &[])),
            Malformed::Truncated { offset: 10 },
        ),
        (
            "key runs past the end",
            frame(&body(1, &[0, 9, b'k'])),
            Malformed::Truncated { offset: 12 },
        ),
        (
            "missing tag",
            frame(&body(1, &key_k)),
            Malformed::Truncated { offset: 13 },
        ),
        (
            "tag zero",
            frame(&body(1, &with_key(&[0, 0, 0, 0, 0]))),
            Malformed::BadTypeTag { offset: 13, tag: 0 },
        ),
        (
            "tag five",
            frame(&body(1, &with_key(&[5, 0, 0, 0, 0]))),
            Malformed::BadTypeTag { offset: 13, tag: 5 },
        ),
        (
            "int cut",
            frame(&body(1, &with_key(&[1, 0, 0]))),
            Malformed::Truncated { offset: 14 },
        ),
        (
            "string longer than the frame",
            frame(&body(1, &with_key(&[2, 0, 0, 0, 200, b'x']))),
            Malformed::Truncated { offset: 18 },
        ),
        (
            "huge string length",
            frame(&body(1, &with_key(&[3, 0xff, 0xff, 0xff, 0xff]))),
            Malformed::Truncated { offset: 18 },
        ),
        (
            "list count past the end",
            frame(&body(1, &with_key(&[4, 0xff, 0xff, 0xff, 0xff]))),
            Malformed::Truncated { offset: 18 },
        ),
        (
            "bad UTF-8 in a key",
            frame(&body(1, &[0, 1, 0xff, 1, 0, 0, 0, 1])),
            Malformed::InvalidUtf8 { offset: 12 },
        ),
        (
            "bad UTF-8 in a string",
            frame(&body(1, &with_key(&[2, 0, 0, 0, 2, 0xc3, 0x28]))),
            Malformed::InvalidUtf8 { offset: 18 },
        ),
        (
            "trailing bytes inside the frame",
            frame(&body(0, &[7, 7, 7])),
            Malformed::TrailingBytes {
                offset: 10,
                count: 3,
            },
        ),
        (
            "too deep",
            frame(&body(1, &nested(3))),
            Malformed::TooDeep { offset: 29, max: 2 },
        ),
    ];
    for (what, bytes, want) in cases {
        let got = codec.decode_frame(&Bytes::from(bytes.clone()));
        let err = got.as_ref().err();
        assert_eq!(
            err.and_then(Error::malformed),
            Some(&want),
            "{what}: got {got:?}"
        );
        assert!(err.is_some_and(Error::is_malformed_frame), "{what}");
    }
    // The deepest accepted nesting decodes.
    assert!(
        codec
            .decode_frame(&Bytes::from(frame(&body(1, &nested(2)))))
            .is_ok()
    );
}

#[test]
fn trailing_bytes_after_the_frame_are_refused() {
    let codec = Codec::default();
    let mut bytes = frame(&body(0, &[]));
    bytes.push(0);
    assert_eq!(
        codec.decode_frame(&Bytes::from(bytes)),
        Err(Error::Malformed(Malformed::TrailingBytes {
            offset: 10,
            count: 1
        }))
    );
}

#[test]
fn the_stream_decoder_reports_oversize_as_soon_as_the_prefix_arrives() {
    let codec = Codec::new(Limits {
        max_frame_len: 100,
        max_depth: 4,
    });
    let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(Error::Malformed(Malformed::FrameTooLarge {
            len: 256,
            max: 100
        }))
    );
}

/// A frame of `n` pairs, each an empty key holding an empty KVList (7 bytes each: the smallest
/// pair there is).
fn empty_lists(n: usize) -> Vec<u8> {
    let mut pairs = Vec::with_capacity(n * 7);
    for _ in 0..n {
        pairs.extend_from_slice(&[0, 0, 4, 0, 0, 0, 0]);
    }
    frame(&body(n as u32, &pairs))
}

#[test]
fn a_frame_may_not_expand_past_a_small_multiple_of_its_size() {
    let codec = Codec::new(Limits {
        max_frame_len: 16 * 1024 * 1024,
        max_depth: 4,
    });
    // 2.4 million empty KVLists in 16 MiB would take about 170 MB decoded: refused.
    let hostile = empty_lists((16 * 1024 * 1024 - 6) / 7);
    let err = codec
        .decode_frame(&Bytes::from(hostile.clone()))
        .unwrap_err();
    assert!(
        matches!(err, Error::Malformed(Malformed::TooExpansive { .. })),
        "{err}"
    );
    assert!(err.is_malformed_frame());
    // Also through the stream decoder.
    let mut buf = BytesMut::from(&hostile[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(Error::Malformed(Malformed::TooExpansive { .. }))
    ));
    // The same shape, small: within the allowance, decodes.
    let small = empty_lists(10_000);
    let msg = codec.decode_frame(&Bytes::from(small)).unwrap();
    assert_eq!(msg.attrs.len(), 10_000);
    // Ordinary pairs (a 30-byte string each) decode at any size: they stay under 4 times the
    // frame's size.
    let mut pairs = Vec::new();
    let n = 200_000;
    for i in 0..n {
        let key = format!("key{i:06}");
        pairs.extend_from_slice(&(key.len() as u16).to_be_bytes());
        pairs.extend_from_slice(key.as_bytes());
        pairs.push(2);
        pairs.extend_from_slice(&30u32.to_be_bytes());
        pairs.extend_from_slice(&[b'x'; 30]);
    }
    let big = frame(&body(n, &pairs));
    assert!(big.len() > 8 * 1024 * 1024);
    let msg = codec.decode_frame(&Bytes::from(big)).unwrap();
    assert_eq!(msg.attrs.len(), n as usize);
    // The budget itself: 4 times the frame plus 1 MiB.
    assert_eq!(ixn_codec::decode_budget(1000), 4000 + 1024 * 1024);
}

#[test]
fn a_trusting_codec_reads_back_any_frame_it_could_encode() {
    let limits = Limits {
        max_frame_len: 16 * 1024 * 1024,
        max_depth: 4,
    };
    let hostile = Bytes::from(empty_lists(1_000_000));
    assert!(Codec::new(limits).decode_frame(&hostile).is_err());
    let msg = Codec::trusting(limits).decode_frame(&hostile).unwrap();
    assert_eq!(msg.attrs.len(), 1_000_000);
}
