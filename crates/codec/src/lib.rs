//! Wire format of the ixn workbin server: the message model, the length-prefixed binary
//! framing and the JSON form (docs/protocol.md).
//!
//! - [`Value`] and [`KvList`]: typed attribute values (int, string, binary, nested ordered
//!   lists that keep duplicate keys).
//! - [`Message`]: a numeric [`MessageId`] plus attributes, for any id, known or not.
//! - [`typed`]: a struct per request and event of docs/protocol.md, read from and turned into
//!   [`Message`].
//! - [`Codec`]: frame decoding (nom, zero-copy over [`bytes::Bytes`]) and encoding, with
//!   [`Limits`] on frame size and nesting depth. With the default `tokio-codec` feature it is
//!   also a `tokio_util::codec::{Decoder, Encoder}`.
//! - The JSON form: `serde` implementations on [`Message`], [`Value`] and [`KvList`].
//! - With the `link` feature, `link::Link`: an in-process connection carrying [`Message`]s.
//!
//! This crate knows nothing of agents, workbins or connections, does no I/O and never panics
//! on input: every malformed frame is a distinct [`Error`]. `docs/protocol.md` describes the
//! bytes completely.
//!
//! ```
//! use ixn_codec::{Codec, Message, MessageId};
//! let codec = Codec::default();
//! let ping = Message::new(MessageId::PING).with("ReferenceId", 7);
//! let bytes = codec.encode_to_bytes(&ping)?;
//! assert_eq!(codec.decode_frame(&bytes)?, ping);
//! assert_eq!(ping.to_json()?, r#"{"message":"Ping","ReferenceId":7}"#);
//! # Ok::<(), ixn_codec::Error>(())
//! ```

#![warn(missing_docs)]

mod error;
#[cfg(feature = "tokio-codec")]
mod framed;
#[doc(hidden)]
pub mod fuzzing;
mod json;
#[cfg(feature = "link")]
pub mod link;
mod message;
pub mod typed;
mod value;
mod wire;

pub use bytes::{Bytes, BytesMut};
pub use bytestring::ByteString;
pub use error::{Error, Malformed, Unencodable};
pub use json::{BINARY_KEY, MESSAGE_KEY};
pub use message::{
    ClientType, Direction, ErrorCode, Message, MessageId, WorkbinContentOperation, attr,
};
pub use value::{IntoKey, KvList, Value, detach_str};
pub use wire::{
    Codec, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME_LEN, EXPANSION_ALLOWANCE, LEN_PREFIX, Limits,
    MAX_DEPTH_CAP, MAX_EXPANSION, MIN_BODY, PROXY_PAIR_LEN, TAG_BINARY, TAG_INT, TAG_LIST,
    TAG_STRING, decode_budget, list_len,
};
