//! Entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and by the test
//! that replays the committed corpus on stable (`tests/fuzz_corpus.rs`). Each function panics
//! only when an oracle fails, which is a bug.

use crate::message::Message;
use crate::typed::Typed;
use crate::wire::{Codec, Limits};
use bytes::{Bytes, BytesMut};

/// Small limits, so that the fuzzer reaches the limit checks quickly.
fn codec() -> Codec {
    Codec::new(Limits {
        max_frame_len: 64 * 1024,
        max_depth: 8,
    })
}

/// Target `decode_frame`: any bytes decode to a message or an error, never a panic; a message
/// that decodes encodes back to exactly the same bytes (the encoding is canonical).
pub fn decode_frame(data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(msg) = codec().decode_frame(&frame) {
        let again = codec().encode_to_bytes(&msg);
        assert_eq!(again.as_deref().ok(), Some(data), "re-encoding differs");
    }
}

/// Target `roundtrip`: a decoded message survives bytes, JSON and the typed views unchanged.
pub fn roundtrip(data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let Ok(msg) = codec().decode_frame(&frame) else {
        return;
    };
    let bytes = codec().encode_to_bytes(&msg);
    assert_eq!(bytes.as_deref().ok(), Some(data));
    // Some shapes have no JSON form (documented in `json`); the others must round-trip.
    if let Ok(text) = msg.to_json() {
        let back = Message::from_json(&text);
        assert_eq!(back.as_ref().ok(), Some(&msg), "JSON round trip of {text}");
    }
    if let Ok(typed) = Typed::try_from(&msg) {
        let generic = Message::from(&typed);
        assert_eq!(
            Typed::try_from(&generic).ok(),
            Some(typed),
            "typed round trip"
        );
    }
}

/// Target `decoder_chunked`: the first byte seeds the chunk sizes; the rest is a stream fed to
/// the incremental decoder in those chunks. It must yield exactly what one whole feed yields.
pub fn decoder_chunked(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = decode_stream(stream, &[stream.len().max(1)]);
    let sizes: Vec<usize> = (0..8)
        .map(|i| usize::from(seed.rotate_left(i) % 7) + 1)
        .collect();
    let chunked = decode_stream(stream, &sizes);
    assert_eq!(whole, chunked);
}

/// Feeds `stream` in chunks of the given sizes (cycled); returns the messages and the error
/// (as text) that ended the stream, if any.
pub fn decode_stream(stream: &[u8], sizes: &[usize]) -> (Vec<Message>, Option<String>) {
    let codec = codec();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(msg)) => {
                out.push(msg);
                continue;
            }
            Ok(None) => {}
            Err(e) => return (out, Some(e.to_string())),
        }
        if rest.is_empty() {
            return (out, None);
        }
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        buf.extend_from_slice(chunk);
        rest = tail;
        i += 1;
    }
}
