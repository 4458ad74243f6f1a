//! The binary framing: [`Codec`] decodes frames into [`Message`]s and encodes them back.
//!
//! ```text
//! frame  = body-len:u32be  body                  body-len <= max_frame_len
//! body   = message-id:u16be  kvbody
//! kvbody = pair-count:u32be  pair*
//! pair   = key-len:u16be  key:utf8  value
//! value  = 0x01 i32be | 0x02 len:u32be utf8 | 0x03 len:u32be bytes | 0x04 kvbody
//! ```
//!
//! `docs/protocol.md` is the byte-by-byte description; this module is its implementation.
//! Decoding works on a complete frame with nom's *complete* parsers; strings and binaries are
//! zero-copy slices of the frame's [`Bytes`].

use crate::error::{Error, Malformed, Unencodable};
use crate::message::{Message, MessageId, attr};
use crate::value::{KvList, Value};
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use nom::Parser;
use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_i32, be_u8, be_u16, be_u32};

/// Type tag of an int value.
pub const TAG_INT: u8 = 0x01;
/// Type tag of a string value.
pub const TAG_STRING: u8 = 0x02;
/// Type tag of a binary value.
pub const TAG_BINARY: u8 = 0x03;
/// Type tag of a KVList value.
pub const TAG_LIST: u8 = 0x04;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;
/// Bytes of the smallest body: a message id and a pair count.
pub const MIN_BODY: usize = 6;
/// Bytes of the smallest pair: key length, tag and a 4-byte payload (every payload has one).
const MIN_PAIR: usize = 7;
/// Memory one decoded pair takes besides the bytes it shares with the frame (its key and value
/// handles), as charged against [`decode_budget`].
const PAIR_MEMORY: usize = size_of::<(ByteString, Value)>();
/// A decoded frame may take this many times its own size in pair memory...
pub const MAX_EXPANSION: usize = 4;
/// ...plus this much (so that small frames of tiny pairs still decode).
pub const EXPANSION_ALLOWANCE: usize = 1024 * 1024;

/// The pair memory (bytes) decoding a frame of `frame_len` bytes may use: a hostile frame of
/// millions of empty KVLists is refused ([`Malformed::TooExpansive`]) before it costs more.
pub const fn decode_budget(frame_len: usize) -> usize {
    frame_len
        .saturating_mul(MAX_EXPANSION)
        .saturating_add(EXPANSION_ALLOWANCE)
}

/// Default [`Limits::max_frame_len`]: 16 MiB, room for a 10,000-interaction workbin.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;
/// Default [`Limits::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 16;
/// The largest [`Limits::max_depth`] honoured, whatever is configured: decoding recurses once
/// per level, and this bound keeps the stack safe on hostile input.
pub const MAX_DEPTH_CAP: usize = 64;
/// How much buffer the decoder reserves ahead for a partial frame at most: a peer that
/// announces a large frame and sends nothing does not make the server allocate it.
const RESERVE_CHUNK: usize = 64 * 1024;

/// Limits enforced while decoding (and, so that peers can read what we send, while encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body length (the value of the length prefix), in bytes.
    pub max_frame_len: usize,
    /// Deepest accepted KVList nesting: a KVList attribute is depth 1, a KVList inside it 2.
    /// Values above [`MAX_DEPTH_CAP`] count as the cap.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl Limits {
    fn depth(&self) -> usize {
        self.max_depth.min(MAX_DEPTH_CAP)
    }
}

/// Encoder and decoder of frames. Holds only its [`Limits`]; needs no runtime.
///
/// With the `tokio-codec` feature it is also a `tokio_util::codec::{Decoder, Encoder}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codec {
    limits: Limits,
    /// Decode without the expansion bound ([`Codec::trusting`]).
    trusted: bool,
}

/// Bytes of the `ProxyClientId` pair that [`Codec::encode_for`] appends.
pub const PROXY_PAIR_LEN: usize = 2 + attr::PROXY_CLIENT_ID.len() + 1 + 4;

fn put_proxy_pair(dst: &mut BytesMut, id: i32) {
    dst.put_u16(attr::PROXY_CLIENT_ID.len() as u16);
    dst.put_slice(attr::PROXY_CLIENT_ID.as_bytes());
    dst.put_u8(TAG_INT);
    dst.put_i32(id);
}

impl Codec {
    /// A codec with these limits.
    pub const fn new(limits: Limits) -> Self {
        Self {
            limits,
            trusted: false,
        }
    }

    /// A codec for data this program wrote itself (a journal): like [`Codec::new`], without
    /// the bound on what a frame may decode to ([`decode_budget`]), so that everything once
    /// stored can be read back.
    pub const fn trusting(limits: Limits) -> Self {
        Self {
            limits,
            trusted: true,
        }
    }

    /// The limits in force.
    pub const fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes one frame off the front of `buf` and decodes it.
    ///
    /// `Ok(None)`: `buf` does not yet hold a whole frame (nothing is consumed; some capacity
    /// may be reserved, never more than 64 KiB ahead). An oversize length prefix is
    /// [`Malformed::FrameTooLarge`] as soon as the prefix has arrived, and consumes nothing
    /// (the prefix stays in `buf`). On any other decode error the faulty frame has been
    /// consumed. Either way the stream should be treated as broken.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
            buf.reserve(LEN_PREFIX);
            return Ok(None);
        };
        let body_len = u32::from_be_bytes(*prefix) as usize;
        if body_len > self.limits.max_frame_len {
            return Err(Malformed::FrameTooLarge {
                len: body_len,
                max: self.limits.max_frame_len,
            }
            .into());
        }
        let total = LEN_PREFIX + body_len;
        if buf.len() < total {
            buf.reserve((total - buf.len()).min(RESERVE_CHUNK));
            return Ok(None);
        }
        let frame = buf.split_to(total).freeze();
        self.decode_frame(&frame).map(Some)
    }

    /// Decodes exactly one complete frame (length prefix included). Bytes after the frame
    /// are [`Malformed::TrailingBytes`]; a frame shorter than its prefix says is
    /// [`Malformed::Truncated`].
    pub fn decode_frame(&self, frame: &Bytes) -> Result<Message, Error> {
        let input: &[u8] = frame;
        let (rest, body_len) = be_u32::<_, PErr>(input).map_err(|e| fault(frame.len(), e))?;
        let body_len = body_len as usize;
        if body_len > self.limits.max_frame_len {
            return Err(Malformed::FrameTooLarge {
                len: body_len,
                max: self.limits.max_frame_len,
            }
            .into());
        }
        let Some((body, after)) = rest.split_at_checked(body_len) else {
            return Err(Malformed::Truncated {
                offset: frame.len(),
            }
            .into());
        };
        let end = LEN_PREFIX + body_len;
        let parser = FrameParser {
            frame,
            max_depth: self.limits.depth(),
            pairs_left: std::cell::Cell::new(if self.trusted {
                usize::MAX
            } else {
                decode_budget(frame.len()) / PAIR_MEMORY
            }),
        };
        let (left, msg) = parser.body(body).map_err(|e| fault(end, e))?;
        if !left.is_empty() || !after.is_empty() {
            return Err(Malformed::TrailingBytes {
                offset: end - left.len(),
                count: left.len() + after.len(),
            }
            .into());
        }
        Ok(msg)
    }

    /// Appends `msg` as one frame to `dst`.
    ///
    /// Fails, writing nothing, if the frame would pass [`Limits::max_frame_len`], nest deeper
    /// than [`Limits::max_depth`], or hold a key longer than 65,535 bytes.
    pub fn encode(&self, msg: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        self.encode_for(msg, None, dst)
    }

    /// The size in bytes of `msg`'s frame, length prefix included, or the error
    /// [`Codec::encode`] would give.
    pub fn encoded_len(&self, msg: &Message) -> Result<usize, Error> {
        Ok(LEN_PREFIX + self.body_len(msg, 0)?)
    }

    /// The checked body length of `msg` plus `extra` bytes of appended pairs.
    fn body_len(&self, msg: &Message, extra: usize) -> Result<usize, Error> {
        let body_len = 2 + self.kvbody_len(&msg.attrs, 0)? + extra;
        if body_len > self.limits.max_frame_len || body_len > u32::MAX as usize {
            return Err(Unencodable::FrameTooLarge {
                len: body_len,
                max: self.limits.max_frame_len,
            }
            .into());
        }
        Ok(body_len)
    }

    /// Like [`Codec::encode`], appending `ProxyClientId` = `proxy_client_id` as a last
    /// attribute when one is given: lets one shared message be sent to several logical clients
    /// without copying it.
    pub fn encode_for(
        &self,
        msg: &Message,
        proxy_client_id: Option<i32>,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        let extra = if proxy_client_id.is_some() {
            PROXY_PAIR_LEN
        } else {
            0
        };
        let body_len = self.body_len(msg, extra)?;
        dst.reserve(LEN_PREFIX + body_len);
        // Lengths were checked above: every `as` cast below is lossless.
        dst.put_u32(body_len as u32);
        dst.put_u16(msg.id.0);
        dst.put_u32(msg.attrs.len() as u32 + u32::from(proxy_client_id.is_some()));
        put_pairs(dst, &msg.attrs);
        if let Some(id) = proxy_client_id {
            put_proxy_pair(dst, id);
        }
        Ok(())
    }

    /// Appends `frame`, one frame as [`Codec::encode`] wrote it, to `dst`, with `ProxyClientId`
    /// appended as [`Codec::encode_for`] would have: a message encoded once can be sent to many
    /// recipients, logical clients of a proxy included, at the cost of a copy.
    pub fn reframe_for(
        &self,
        frame: &[u8],
        proxy_client_id: Option<i32>,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        let Some(id) = proxy_client_id else {
            dst.extend_from_slice(frame);
            return Ok(());
        };
        let head: Option<&[u8; LEN_PREFIX + 6]> =
            frame.get(..LEN_PREFIX + 6).and_then(|h| h.try_into().ok());
        let (Some(&[l0, l1, l2, l3, i0, i1, p0, p1, p2, p3]), Some(rest)) =
            (head, frame.get(LEN_PREFIX + 6..))
        else {
            return Err(Unencodable::NotAFrame { len: frame.len() }.into());
        };
        let body = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        let pairs = u32::from_be_bytes([p0, p1, p2, p3]);
        let body_len = body + PROXY_PAIR_LEN;
        if body_len > self.limits.max_frame_len || body_len > u32::MAX as usize {
            return Err(Unencodable::FrameTooLarge {
                len: body_len,
                max: self.limits.max_frame_len,
            }
            .into());
        }
        dst.reserve(LEN_PREFIX + body_len);
        dst.put_u32(body_len as u32);
        dst.put_slice(&[i0, i1]);
        dst.put_u32(pairs.saturating_add(1));
        dst.put_slice(rest);
        put_proxy_pair(dst, id);
        Ok(())
    }

    /// Encodes `msg` into a new buffer holding exactly one frame.
    pub fn encode_to_bytes(&self, msg: &Message) -> Result<Bytes, Error> {
        let mut buf = BytesMut::new();
        self.encode(msg, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Encoded size of a KVList body, checking key lengths and nesting on the way.
    fn kvbody_len(&self, list: &KvList, depth: usize) -> Result<usize, Error> {
        let mut len = 4usize;
        for (key, value) in list {
            if key.len() > u16::MAX as usize {
                return Err(Unencodable::KeyTooLong { len: key.len() }.into());
            }
            len = len.saturating_add(2 + key.len() + 1);
            len = len.saturating_add(match value {
                Value::Int(_) => 4,
                Value::Str(s) => 4usize.saturating_add(s.len()),
                Value::Binary(b) => 4usize.saturating_add(b.len()),
                Value::List(l) => {
                    if depth + 1 > self.limits.depth() {
                        return Err(Unencodable::TooDeep {
                            max: self.limits.depth(),
                        }
                        .into());
                    }
                    self.kvbody_len(l, depth + 1)?
                }
            });
        }
        Ok(len)
    }
}

/// The encoded size in bytes of `list` as a KVList body (its pair count and pairs), without
/// the checks encoding makes (saturating; for sizing stored data).
pub fn list_len(list: &KvList) -> usize {
    list.iter().fold(4usize, |len, (key, value)| {
        len.saturating_add(2 + key.len() + 1)
            .saturating_add(match value {
                Value::Int(_) => 4,
                Value::Str(s) => 4usize.saturating_add(s.len()),
                Value::Binary(b) => 4usize.saturating_add(b.len()),
                Value::List(l) => list_len(l),
            })
    })
}

/// Writes a KVList body whose size [`Codec::kvbody_len`] has checked.
fn put_kvbody(dst: &mut BytesMut, list: &KvList) {
    dst.put_u32(list.len() as u32);
    put_pairs(dst, list);
}

/// Writes the pairs of a KVList body (without the count).
fn put_pairs(dst: &mut BytesMut, list: &KvList) {
    for (key, value) in list {
        dst.put_u16(key.len() as u16);
        dst.put_slice(key.as_bytes());
        match value {
            Value::Int(i) => {
                dst.put_u8(TAG_INT);
                dst.put_i32(*i);
            }
            Value::Str(s) => {
                dst.put_u8(TAG_STRING);
                dst.put_u32(s.len() as u32);
                dst.put_slice(s.as_bytes());
            }
            Value::Binary(b) => {
                dst.put_u8(TAG_BINARY);
                dst.put_u32(b.len() as u32);
                dst.put_slice(b);
            }
            Value::List(l) => {
                dst.put_u8(TAG_LIST);
                put_kvbody(dst, l);
            }
        }
    }
}

/// The parser's error: what went wrong and how many bytes of the frame were left at that point
/// (turned into an offset by [`fault`]).
#[derive(Debug)]
struct PErr {
    remaining: usize,
    kind: PErrKind,
}

#[derive(Debug)]
enum PErrKind {
    Truncated,
    BadTag(u8),
    Utf8,
    TooDeep(usize),
    TooExpansive,
}

impl ParseError<&[u8]> for PErr {
    fn from_error_kind(input: &[u8], _kind: ErrorKind) -> Self {
        // Every complete-mode primitive used here fails only by running out of input.
        Self {
            remaining: input.len(),
            kind: PErrKind::Truncated,
        }
    }

    fn append(_input: &[u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = nom::IResult<&'a [u8], T, PErr>;

fn fail<T>(at: &[u8], kind: PErrKind) -> PResult<'_, T> {
    Err(nom::Err::Failure(PErr {
        remaining: at.len(),
        kind,
    }))
}

/// Maps a parser error to the public error; `end` is the offset just past the parsed input,
/// so that offsets count from the frame's first byte.
fn fault(end: usize, e: nom::Err<PErr>) -> Error {
    Error::Malformed(match e {
        nom::Err::Error(p) | nom::Err::Failure(p) => {
            let offset = end.saturating_sub(p.remaining);
            match p.kind {
                PErrKind::Truncated => Malformed::Truncated { offset },
                PErrKind::BadTag(tag) => Malformed::BadTypeTag { offset, tag },
                PErrKind::Utf8 => Malformed::InvalidUtf8 { offset },
                PErrKind::TooDeep(max) => Malformed::TooDeep { offset, max },
                PErrKind::TooExpansive => Malformed::TooExpansive {
                    offset,
                    max_pairs: decode_budget(end) / PAIR_MEMORY,
                },
            }
        }
        // Complete parsers never ask for more input; treat it as truncation if one ever does.
        nom::Err::Incomplete(_) => Malformed::Truncated { offset: end },
    })
}

struct FrameParser<'f> {
    frame: &'f Bytes,
    max_depth: usize,
    /// Pairs the frame may still decode to (see [`decode_budget`]).
    pairs_left: std::cell::Cell<usize>,
}

impl FrameParser<'_> {
    fn body<'a>(&self, input: &'a [u8]) -> PResult<'a, Message> {
        let (input, id) = be_u16(input)?;
        let (input, attrs) = self.kvbody(input, 0)?;
        Ok((
            input,
            Message {
                id: MessageId(id),
                attrs,
            },
        ))
    }

    fn kvbody<'a>(&self, input: &'a [u8], depth: usize) -> PResult<'a, KvList> {
        let (mut input, count) = be_u32(input)?;
        // What the rest of the frame could hold, never `count` alone (a larger count is a
        // truncated frame, reported as such by the loop below).
        let possible = (count as usize).min(input.len() / MIN_PAIR);
        let left = self.pairs_left.get();
        if possible > left {
            return fail(input, PErrKind::TooExpansive);
        }
        self.pairs_left.set(left - possible);
        let mut pairs = Vec::with_capacity(possible);
        for _ in 0..count {
            let (rest, key) = self.key(input)?;
            let (rest, value) = self.value(rest, depth)?;
            pairs.push((key, value));
            input = rest;
        }
        Ok((input, KvList::from(pairs)))
    }

    fn value<'a>(&self, input: &'a [u8], depth: usize) -> PResult<'a, Value> {
        let (rest, tag) = be_u8(input)?;
        match tag {
            TAG_INT => be_i32.map(Value::Int).parse(rest),
            TAG_STRING => self.string(rest).map(|(r, s)| (r, Value::Str(s))),
            TAG_BINARY => {
                let (r, bytes) = length_data(rest, be_u32_len)?;
                Ok((r, Value::Binary(self.frame.slice_ref(bytes))))
            }
            TAG_LIST => {
                if depth >= self.max_depth {
                    return fail(input, PErrKind::TooDeep(self.max_depth));
                }
                self.kvbody(rest, depth + 1)
                    .map(|(r, l)| (r, Value::List(l)))
            }
            other => fail(input, PErrKind::BadTag(other)),
        }
    }

    /// A key: known attribute names come back as static strings, others as frame slices.
    fn key<'a>(&self, input: &'a [u8]) -> PResult<'a, ByteString> {
        let (rest, bytes) = length_data(input, be_u16_len)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => match attr::intern(text) {
                Some(known) => Ok((rest, ByteString::from_static(known))),
                None => Ok((rest, self.slice_str(bytes, text))),
            },
            Err(_) => Err(nom::Err::Failure(PErr {
                remaining: bytes.len() + rest.len(),
                kind: PErrKind::Utf8,
            })),
        }
    }

    /// `text` is `bytes` checked as UTF-8; share the frame's buffer for it.
    fn slice_str(&self, bytes: &[u8], text: &str) -> ByteString {
        // The same bytes were just validated, so this conversion cannot fail; the fallback
        // copy keeps the code panic-free all the same.
        ByteString::try_from(self.frame.slice_ref(bytes)).unwrap_or_else(|_| ByteString::from(text))
    }

    fn string<'a>(&self, input: &'a [u8]) -> PResult<'a, ByteString> {
        let (rest, bytes) = length_data(input, be_u32_len)?;
        match ByteString::try_from(self.frame.slice_ref(bytes)) {
            Ok(s) => Ok((rest, s)),
            Err(_) => Err(nom::Err::Failure(PErr {
                remaining: bytes.len() + rest.len(),
                kind: PErrKind::Utf8,
            })),
        }
    }
}

fn be_u16_len(input: &[u8]) -> PResult<'_, usize> {
    be_u16.map(usize::from).parse(input)
}

fn be_u32_len(input: &[u8]) -> PResult<'_, usize> {
    be_u32.map(|n| n as usize).parse(input)
}

/// A length followed by that many bytes; a length past the frame's end is `Truncated` at the
/// data's start, and nothing is allocated from the length.
fn length_data<'a>(input: &'a [u8], len: fn(&[u8]) -> PResult<'_, usize>) -> PResult<'a, &'a [u8]> {
    let (rest, n) = len(input)?;
    take(n).parse(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> Codec {
        Codec::default()
    }

    #[test]
    fn empty_message_is_ten_bytes() {
        let bytes = codec()
            .encode_to_bytes(&Message::new(MessageId::PING))
            .unwrap();
        assert_eq!(&bytes[..], &[0, 0, 0, 6, 0, 175, 0, 0, 0, 0]);
        assert_eq!(
            codec().decode_frame(&bytes).unwrap(),
            Message::new(MessageId::PING)
        );
    }

    #[test]
    fn decode_waits_for_a_whole_frame_and_leaves_the_rest() {
        let msg = Message::new(MessageId::EVENT_ACK).with("ReferenceId", 7);
        let one = codec().encode_to_bytes(&msg).unwrap();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&one[..3]);
        assert_eq!(codec().decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&one[3..]);
        buf.extend_from_slice(&one[..5]);
        assert_eq!(codec().decode(&mut buf).unwrap(), Some(msg));
        assert_eq!(buf.len(), 5);
    }

    #[test]
    fn encode_refuses_what_the_peer_would_refuse() {
        let small = Codec::new(Limits {
            max_frame_len: 16,
            max_depth: 1,
        });
        let big = Message::new(MessageId::PING).with("k", "0123456789abcdef");
        assert!(matches!(
            small.encode_to_bytes(&big),
            Err(Error::Unencodable(Unencodable::FrameTooLarge { .. }))
        ));
        let deep = Message::new(MessageId::PING)
            .with("a", KvList::new().with("b", KvList::new().with("c", 1)));
        let roomy = Codec::new(Limits {
            max_frame_len: 1024,
            max_depth: 1,
        });
        assert!(matches!(
            roomy.encode_to_bytes(&deep),
            Err(Error::Unencodable(Unencodable::TooDeep { .. }))
        ));
        let long_key = Message::new(MessageId::PING).with("k".repeat(70_000), 1);
        assert_eq!(
            codec().encode_to_bytes(&long_key),
            Err(Error::Unencodable(Unencodable::KeyTooLong { len: 70_000 }))
        );
        let mut buf = BytesMut::new();
        assert!(small.encode(&big, &mut buf).is_err());
        assert!(buf.is_empty(), "a refused message writes nothing");
    }

    #[test]
    fn encode_for_appends_the_proxy_client_id() {
        let msg = Message::new(MessageId::EVENT_ACK).with("ReferenceId", 7);
        let mut buf = BytesMut::new();
        codec().encode_for(&msg, Some(42), &mut buf).unwrap();
        let back = codec().decode_frame(&buf.freeze()).unwrap();
        assert_eq!(back, msg.clone().with("ProxyClientId", 42));
        assert_eq!(
            codec().encoded_len(&back).unwrap(),
            codec().encode_to_bytes(&back).unwrap().len()
        );
        let mut plain = BytesMut::new();
        codec().encode_for(&msg, None, &mut plain).unwrap();
        assert_eq!(plain.freeze(), codec().encode_to_bytes(&msg).unwrap());
    }

    #[test]
    fn reframe_for_equals_encode_for() {
        let msg = Message::new(MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
            .with("Workbin", KvList::new().with("WorkbinTypeId", "Drafts"))
            .with("WorkbinContentOperation", 1);
        let once = codec().encode_to_bytes(&msg).unwrap();
        for pcid in [None, Some(7), Some(-1)] {
            let (mut direct, mut shared) = (BytesMut::new(), BytesMut::new());
            codec().encode_for(&msg, pcid, &mut direct).unwrap();
            codec().reframe_for(&once, pcid, &mut shared).unwrap();
            assert_eq!(direct, shared, "proxy client id {pcid:?}");
        }
        assert!(
            codec()
                .reframe_for(&once[..5], Some(1), &mut BytesMut::new())
                .is_err()
        );
    }

    #[test]
    fn a_huge_announced_frame_does_not_reserve_its_size() {
        let c = Codec::new(Limits {
            max_frame_len: usize::MAX,
            max_depth: 4,
        });
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xf0, 0, 1][..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() < 2 * RESERVE_CHUNK);
    }
}
