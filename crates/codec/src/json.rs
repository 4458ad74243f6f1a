//! The JSON form of docs/protocol.md, with serde, both directions.
//!
//! ```text
//! {"message": "RequestRegisterClient", "ReferenceId": 1, "ClientName": "desk",
//!  "ClientType": "AgentApplication"}
//! ```
//!
//! - `message` is the message's name, or the numeric id for an id this crate does not know.
//! - Ints are JSON numbers (within the 32-bit range), strings are strings, KVLists are objects
//!   (in order, duplicate keys kept in both directions), binary is `{"$binary": "<base64>"}`
//!   (standard alphabet, padded).
//! - The enum-valued attributes `ClientType` and `WorkbinContentOperation` are written by name
//!   when the value has one, and read from a name or a number.
//!
//! Three shapes cannot be expressed and are refused when writing JSON: a top-level attribute
//! named `message`; a string value of `ClientType` or `WorkbinContentOperation` (a string there
//! is read as a name); and a KVList whose only pair is a string under the key `$binary` (it
//! would read back as a binary).

use crate::error::Error;
use crate::message::{Message, MessageId, enum_attr_name, enum_attr_value, is_enum_attr};
use crate::value::{KvList, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytestring::ByteString;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::{self, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The key that marks a binary value.
pub const BINARY_KEY: &str = "$binary";
/// The key that names the message.
pub const MESSAGE_KEY: &str = "message";

impl Message {
    /// The JSON form as a compact string.
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(serde_json::to_string(self)?)
    }

    /// The JSON form as a [`serde_json::Value`].
    pub fn to_json_value(&self) -> Result<serde_json::Value, Error> {
        Ok(serde_json::to_value(self)?)
    }

    /// Reads the JSON form. Errors say what is wrong and, for text, at which line and column.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        Ok(serde_json::from_str(text)?)
    }

    /// Reads the JSON form from a [`serde_json::Value`].
    pub fn from_json_value(value: serde_json::Value) -> Result<Self, Error> {
        Ok(serde_json::from_value(value)?)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(i) => s.serialize_i32(*i),
            Self::Str(v) => s.serialize_str(v),
            Self::Binary(b) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(BINARY_KEY, &BASE64.encode(b))?;
                map.end()
            }
            Self::List(l) => l.serialize(s),
        }
    }
}

impl Serialize for KvList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let [(key, Value::Str(_))] = self.as_slice()
            && key == BINARY_KEY
        {
            return Err(ser::Error::custom(
                "a KVList whose only pair is a string under \"$binary\" has no JSON form",
            ));
        }
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.attrs.len() + 1))?;
        match self.id.name() {
            Some(name) => map.serialize_entry(MESSAGE_KEY, name)?,
            None => map.serialize_entry(MESSAGE_KEY, &self.id.0)?,
        }
        for (k, v) in &self.attrs {
            if k == MESSAGE_KEY {
                return Err(ser::Error::custom(
                    "an attribute named \"message\" has no JSON form (the key names the message)",
                ));
            }
            if is_enum_attr(k) && matches!(v, Value::Str(_)) {
                return Err(ser::Error::custom(format!(
                    "a string value of {} has no JSON form (strings there are read as names)",
                    &**k
                )));
            }
            match v.as_int().and_then(|i| enum_attr_name(k, i)) {
                Some(name) => map.serialize_entry(&**k, name)?,
                None => map.serialize_entry(&**k, v)?,
            }
        }
        map.end()
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 32-bit integer, a string, an object (KVList) or {\"$binary\": \"<base64>\"}")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        i32::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("{v} is outside the 32-bit integer range")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i32::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("{v} is outside the 32-bit integer range")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(ByteString::from(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(ByteString::from(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let list = KvListVisitor.visit_map(map)?;
        if let [(key, Value::Str(text))] = list.as_slice()
            && key == BINARY_KEY
        {
            return BASE64
                .decode(text.as_bytes())
                .map(|b| Value::Binary(b.into()))
                .map_err(|e| de::Error::custom(format!("\"$binary\" is not valid base64: {e}")));
        }
        Ok(Value::List(list))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct KvListVisitor;

impl<'de> Visitor<'de> for KvListVisitor {
    type Value = KvList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object (KVList)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KvList, A::Error> {
        let mut list = KvList::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            list.push(key, value);
        }
        Ok(list)
    }
}

impl<'de> Deserialize<'de> for KvList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(KvListVisitor)
    }
}

/// The `message` key's value: a spec name or a numeric id.
struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = MessageId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message name such as \"RequestRegisterClient\", or a numeric id 0-65535")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageId, E> {
        MessageId::from_name(v).ok_or_else(|| {
            // The closest known name, if it is close: a typo.
            let closest = MessageId::ALL
                .iter()
                .map(|(_, name, _)| (strsim::damerau_levenshtein(v, name), *name))
                .min_by_key(|(d, _)| *d)
                .filter(|(d, name)| *d <= 3.max(name.len() / 5));
            match closest {
                Some((_, name)) => E::custom(format!(
                    "unknown message name {v:?} (did you mean {name:?}?)"
                )),
                None => E::custom(format!("unknown message name {v:?}")),
            }
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MessageId, E> {
        u16::try_from(v)
            .map(MessageId)
            .map_err(|_| E::custom(format!("message id {v} is outside 0-65535")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MessageId, E> {
        u16::try_from(v)
            .map(MessageId)
            .map_err(|_| E::custom(format!("message id {v} is outside 0-65535")))
    }
}

struct IdSeed;

impl<'de> de::DeserializeSeed<'de> for IdSeed {
    type Value = MessageId;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<MessageId, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a \"message\" key and the message's attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut id = None;
        let mut attrs = KvList::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<String>()? {
            if key == MESSAGE_KEY {
                if id.is_some() {
                    return Err(de::Error::duplicate_field(MESSAGE_KEY));
                }
                id = Some(map.next_value_seed(IdSeed)?);
                continue;
            }
            let mut value: Value = map.next_value()?;
            if is_enum_attr(&key)
                && let Value::Str(name) = &value
            {
                let int = enum_attr_value(&key, name).ok_or_else(|| {
                    de::Error::custom(format!("{key}: unknown value name {:?}", &**name))
                })?;
                value = Value::Int(int);
            }
            attrs.push(key, value);
        }
        let id = id.ok_or_else(|| de::Error::missing_field(MESSAGE_KEY))?;
        Ok(Message { id, attrs })
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MessageVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn register_reads_and_writes_with_enum_names() {
        let text = r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#;
        let msg = Message::from_json(text).unwrap();
        assert_eq!(msg.id, MessageId::REQUEST_REGISTER_CLIENT);
        assert_eq!(msg.attrs.get_int("ClientType"), Some(1));
        assert_eq!(msg.to_json().unwrap(), text);
    }

    #[test]
    fn binary_unknown_ids_order_and_duplicates_round_trip() {
        let msg = Message::new(MessageId(4242))
            .with("z", Bytes::from_static(b"\x00\xff"))
            .with("a", KvList::new().with("k", 1).with("k", "two"))
            .with("ClientType", 99);
        let text = msg.to_json().unwrap();
        assert_eq!(
            text,
            r#"{"message":4242,"z":{"$binary":"AP8="},"a":{"k":1,"k":"two"},"ClientType":99}"#
        );
        assert_eq!(Message::from_json(&text).unwrap(), msg);
    }

    #[test]
    fn bad_json_says_what_and_where() {
        let cases = [
            (r#"{"ReferenceId":1}"#, "missing field `message`"),
            (r#"{"message":"Nope"}"#, "unknown message name \"Nope\""),
            (
                r#"{"message":"RequestSubmitt"}"#,
                "unknown message name \"RequestSubmitt\" (did you mean \"RequestSubmit\"?)",
            ),
            (
                r#"{"message":"Ping","ReferenceId":1.5}"#,
                "a 32-bit integer",
            ),
            (
                r#"{"message":"Ping","ReferenceId":4294967296}"#,
                "outside the 32-bit",
            ),
            (
                r#"{"message":"Ping","X":{"$binary":"!!"}}"#,
                "not valid base64",
            ),
            (
                r#"{"message":"RequestRegisterClient","ClientType":"Bogus"}"#,
                "unknown value name",
            ),
            (r#"{"message":"Ping","X":[1]}"#, "a 32-bit integer"),
        ];
        for (text, want) in cases {
            let err = Message::from_json(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("line 1 column"), "{text}: {err}");
        }
    }

    #[test]
    fn unrepresentable_shapes_are_refused_when_writing() {
        let clash = Message::new(MessageId::PING).with("message", 1);
        assert!(clash.to_json().is_err());
        let named = Message::new(MessageId::PING).with("ClientType", "Proxy");
        assert!(named.to_json().is_err());
        let fake = Message::new(MessageId::PING).with("X", KvList::new().with("$binary", "AA=="));
        assert!(fake.to_json().is_err());
    }
}
