//! `tokio_util::codec` adapter: lets a [`Codec`] drive a `Framed` transport.
//!
//! All the work is in [`Codec::decode`] and [`Codec::encode`]; this module only plugs them into
//! tokio-util's traits.

use crate::error::Error;
use crate::message::Message;
use crate::wire::Codec;
use bytes::BytesMut;

impl tokio_util::codec::Decoder for Codec {
    type Item = Message;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        Self::decode(self, src)
    }
}

impl tokio_util::codec::Encoder<&Message> for Codec {
    type Error = Error;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        Self::encode(self, item, dst)
    }
}

impl tokio_util::codec::Encoder<Message> for Codec {
    type Error = Error;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), Error> {
        Self::encode(self, &item, dst)
    }
}
