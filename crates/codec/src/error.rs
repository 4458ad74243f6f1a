//! The crate's error types: [`Malformed`] for what a peer sent wrong, [`Unencodable`] for a
//! message this program cannot put on the wire, and [`Error`], which holds either of them or a
//! fault of a typed view, the JSON form or the transport.

use crate::message::MessageId;

/// A fault in a received frame's bytes: the peer misbehaved, and its stream cannot be trusted
/// after it.
///
/// Offsets count from the first byte of the frame's length prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The length prefix announces a frame larger than the configured maximum.
    #[error(
        "frame of {len} bytes exceeds the maximum frame size of {max} bytes (raise `max_frame_len` if this is legitimate)"
    )]
    FrameTooLarge {
        /// Body length announced.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A value (or the message header) needs more bytes than the frame holds.
    #[error("truncated frame: the value at byte {offset} runs past the end of the frame")]
    Truncated {
        /// Where the value that does not fit starts.
        offset: usize,
    },
    /// A value's type tag is not one of 1 (int), 2 (string), 3 (binary), 4 (KVList).
    #[error("bad value type tag {tag:#04x} at byte {offset} (expected 0x01 to 0x04)")]
    BadTypeTag {
        /// Where the tag is.
        offset: usize,
        /// The tag found.
        tag: u8,
    },
    /// A key or string value is not valid UTF-8.
    #[error("invalid UTF-8 in the key or string starting at byte {offset}")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// The message ends before the frame does.
    #[error("{count} trailing bytes after the message, starting at byte {offset}")]
    TrailingBytes {
        /// Where the unread bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// KVLists nest deeper than the configured maximum.
    #[error("KVList nesting deeper than the maximum of {max} at byte {offset}")]
    TooDeep {
        /// Where the list that is one too deep starts.
        offset: usize,
        /// The configured limit.
        max: usize,
    },
    /// The frame holds more key-value pairs than its size allows in memory (see
    /// [`crate::decode_budget`]): a frame may decode to at most 4 times its size plus
    /// 1 MiB, so that small frames cannot expand into large allocations.
    #[error(
        "the KVList at byte {offset} takes the frame past {max_pairs} key-value pairs, the most a frame of this size may decode to"
    )]
    TooExpansive {
        /// Where the KVList whose pairs do not fit starts.
        offset: usize,
        /// The most pairs this frame may hold.
        max_pairs: usize,
    },
}

/// A message this program cannot encode within the limits in force: a fault of the sender,
/// not of any peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unencodable {
    /// The encoded message would be larger than the maximum frame size.
    #[error(
        "a message of {len} bytes exceeds the maximum frame size of {max} bytes (raise `max_frame_len` if this is legitimate)"
    )]
    FrameTooLarge {
        /// Body length required.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A key longer than 65,535 bytes.
    #[error("key of {len} bytes is longer than the 65535 bytes a key may have")]
    KeyTooLong {
        /// The key's length.
        len: usize,
    },
    /// KVLists nested deeper than the configured maximum.
    #[error("KVList nesting deeper than the maximum of {max}")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
    /// Not a frame this codec made (a pre-encoded frame shorter than a message header).
    #[error("not an encoded frame: {len} bytes is shorter than a message header")]
    NotAFrame {
        /// The bytes given.
        len: usize,
    },
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A received frame is malformed (see [`Malformed`]).
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// A message cannot be encoded (see [`Unencodable`]).
    #[error(transparent)]
    Unencodable(#[from] Unencodable),
    /// A typed view needs an attribute the message lacks.
    #[error("{message}: missing required attribute {attr}")]
    MissingAttribute {
        /// The message.
        message: MessageId,
        /// The attribute's name (with its parent for nested keys, e.g. `Workbin.WorkbinTypeId`).
        attr: &'static str,
    },
    /// An attribute has the wrong type or value for the typed view.
    #[error("{message}: attribute {attr} is invalid: {reason}")]
    InvalidAttribute {
        /// The message.
        message: MessageId,
        /// The attribute's name.
        attr: &'static str,
        /// What is wrong, e.g. `expected int, found string`.
        reason: String,
    },
    /// A typed view was asked of a message with another id.
    #[error("expected {expected}, found {found}")]
    WrongMessage {
        /// The typed view's id.
        expected: MessageId,
        /// The message's id.
        found: MessageId,
    },
    /// The JSON form could not be read or written.
    #[error("JSON form: {0}")]
    Json(#[from] serde_json::Error),
    /// The transport failed (only from the `tokio-codec` adapter).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The fault of a received frame's bytes, if this is one (as opposed to encoding, typed
    /// views, JSON or I/O): after one of these the peer's stream cannot be trusted.
    pub fn malformed(&self) -> Option<&Malformed> {
        match self {
            Self::Malformed(m) => Some(m),
            _ => None,
        }
    }

    /// True for [`Error::Malformed`].
    pub fn is_malformed_frame(&self) -> bool {
        self.malformed().is_some()
    }

    /// True when the "frame" was the start of a TLS record: the peer speaks TLS where this
    /// side speaks the plain protocol (a TLS record's first four bytes, a content type from 20
    /// to 23 then version 3.x, read as a length, announce a frame of 320 MiB or more).
    pub fn is_tls_record(&self) -> bool {
        match self.malformed() {
            Some(Malformed::FrameTooLarge { len, .. }) => {
                let [kind, major, minor, _] = u32::try_from(*len).unwrap_or(0).to_be_bytes();
                (20..=23).contains(&kind) && major == 3 && minor <= 4
            }
            _ => false,
        }
    }
}

/// Compares like [`PartialEq`] should, with I/O and JSON errors compared by their text (their
/// own types are not comparable).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Malformed(a), Self::Malformed(b)) => a == b,
            (Self::Unencodable(a), Self::Unencodable(b)) => a == b,
            (Self::Io(a), Self::Io(b)) => a.kind() == b.kind() && a.to_string() == b.to_string(),
            (Self::Json(a), Self::Json(b)) => a.to_string() == b.to_string(),
            (
                Self::MissingAttribute {
                    message: a,
                    attr: b,
                },
                Self::MissingAttribute {
                    message: c,
                    attr: d,
                },
            ) => a == c && b == d,
            (
                Self::InvalidAttribute {
                    message: a,
                    attr: b,
                    reason: r1,
                },
                Self::InvalidAttribute {
                    message: c,
                    attr: d,
                    reason: r2,
                },
            ) => a == c && b == d && r1 == r2,
            (
                Self::WrongMessage {
                    expected: a,
                    found: b,
                },
                Self::WrongMessage {
                    expected: c,
                    found: d,
                },
            ) => a == c && b == d,
            _ => false,
        }
    }
}
