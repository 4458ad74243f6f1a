//! Typed attribute values and the ordered key/value list ([`KvList`]).

use bytes::Bytes;
use bytestring::ByteString;

/// One attribute value: the four types of the wire format.
///
/// Strings and binaries share the decoded frame's buffer ([`Bytes`]), so decoding does not copy
/// them and cloning a value is cheap.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A 32-bit signed integer.
    Int(i32),
    /// A UTF-8 string.
    Str(ByteString),
    /// Opaque bytes.
    Binary(Bytes),
    /// A nested ordered list of key/value pairs.
    List(KvList),
}

impl Value {
    /// The integer, if this is an [`Value::Int`].
    pub fn as_int(&self) -> Option<i32> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&ByteString> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Binary`].
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Self::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The list, if this is a [`Value::List`].
    pub fn as_list(&self) -> Option<&KvList> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The name of this value's type, as used in error descriptions.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "int",
            Self::Str(_) => "string",
            Self::Binary(_) => "binary",
            Self::List(_) => "KVList",
        }
    }

    /// A deep copy that shares no buffer with anything else: decoded strings and binaries are
    /// slices of their frame, and keeping one alive keeps the whole frame alive. Anything stored
    /// long-term should be detached.
    #[must_use]
    pub fn detached(&self) -> Self {
        match self {
            Self::Int(i) => Self::Int(*i),
            Self::Str(s) => Self::Str(detach_str(s)),
            Self::Binary(b) => Self::Binary(Bytes::copy_from_slice(b)),
            Self::List(l) => Self::List(l.detached()),
        }
    }

    /// How many KVLists deep this value nests (0 for a scalar, 1 for a flat list).
    pub fn depth(&self) -> usize {
        match self {
            Self::List(l) => l.depth(),
            _ => 0,
        }
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Self::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(ByteString::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(ByteString::from(s))
    }
}

impl From<ByteString> for Value {
    fn from(s: ByteString) -> Self {
        Self::Str(s)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

impl From<KvList> for Value {
    fn from(l: KvList) -> Self {
        Self::List(l)
    }
}

/// A copy of `s` in its own allocation (see [`Value::detached`]).
pub fn detach_str(s: &ByteString) -> ByteString {
    ByteString::from(&**s)
}

/// What a [`KvList`] key can be made from. A `&'static str` (attribute names, literals) is
/// shared rather than copied, so building messages from constant keys allocates nothing for
/// the keys.
pub trait IntoKey {
    /// The key.
    fn into_key(self) -> ByteString;
}

impl IntoKey for &'static str {
    fn into_key(self) -> ByteString {
        ByteString::from_static(self)
    }
}

impl IntoKey for String {
    fn into_key(self) -> ByteString {
        ByteString::from(self)
    }
}

impl IntoKey for ByteString {
    fn into_key(self) -> ByteString {
        self
    }
}

impl IntoKey for &ByteString {
    fn into_key(self) -> ByteString {
        self.clone()
    }
}

/// An ordered list of (string key, [`Value`]) pairs.
///
/// Order is kept and duplicate keys are kept: what is decoded is what is encoded again.
/// Look-ups by key return the first match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvList(Vec<(ByteString, Value)>);

impl KvList {
    /// An empty list.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// An empty list with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Appends a pair (a duplicate key is kept as a second pair).
    pub fn push(&mut self, key: impl IntoKey, value: impl Into<Value>) {
        self.0.push((key.into_key(), value.into()));
    }

    /// Builder form of [`KvList::push`].
    #[must_use]
    pub fn with(mut self, key: impl IntoKey, value: impl Into<Value>) -> Self {
        self.push(key, value);
        self
    }

    /// The first value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The first value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`: replaces the first pair with that key, or appends one.
    pub fn set(&mut self, key: impl IntoKey, value: impl Into<Value>) {
        let key = key.into_key();
        let value = value.into();
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes every pair with `key`; returns how many were removed.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|(k, _)| k != key);
        before - self.0.len()
    }

    /// The integer under `key`, if present and an int.
    pub fn get_int(&self, key: &str) -> Option<i32> {
        self.get(key).and_then(Value::as_int)
    }

    /// The string under `key`, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&ByteString> {
        self.get(key).and_then(Value::as_str)
    }

    /// The list under `key`, if present and a KVList.
    pub fn get_list(&self, key: &str) -> Option<&Self> {
        self.get(key).and_then(Value::as_list)
    }

    /// The pairs in order.
    pub fn iter(&self) -> std::slice::Iter<'_, (ByteString, Value)> {
        self.0.iter()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs as a slice.
    pub fn as_slice(&self) -> &[(ByteString, Value)] {
        &self.0
    }

    /// The pairs as a vector.
    pub fn into_vec(self) -> Vec<(ByteString, Value)> {
        self.0
    }

    /// A deep copy sharing no buffer (see [`Value::detached`]).
    #[must_use]
    pub fn detached(&self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(k, v)| (detach_str(k), v.detached()))
                .collect(),
        )
    }

    /// How many KVLists deep this list nests: 1 for a list of scalars.
    pub fn depth(&self) -> usize {
        1 + self.0.iter().map(|(_, v)| v.depth()).max().unwrap_or(0)
    }
}

impl From<Vec<(ByteString, Value)>> for KvList {
    fn from(v: Vec<(ByteString, Value)>) -> Self {
        Self(v)
    }
}

impl<K: Into<ByteString>, V: Into<Value>> FromIterator<(K, V)> for KvList {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a KvList {
    type Item = &'a (ByteString, Value);
    type IntoIter = std::slice::Iter<'a, (ByteString, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for KvList {
    type Item = (ByteString, Value);
    type IntoIter = std::vec::IntoIter<(ByteString, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_kept_and_get_returns_the_first() {
        let l = KvList::new().with("a", 1).with("a", 2).with("b", "x");
        assert_eq!(l.len(), 3);
        assert_eq!(l.get_int("a"), Some(1));
        assert_eq!(l.get_str("b").map(|s| &**s), Some("x"));
    }

    #[test]
    fn set_replaces_the_first_and_remove_drops_all() {
        let mut l = KvList::new().with("a", 1).with("a", 2);
        l.set("a", 9);
        assert_eq!(l.get_int("a"), Some(9));
        l.set("c", 3);
        assert_eq!(l.len(), 3);
        assert_eq!(l.remove("a"), 2);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn detached_values_share_no_buffer() {
        let frame = Bytes::from(b"hello world".to_vec());
        let slice = ByteString::try_from(frame.slice(0..5)).unwrap();
        let v = Value::List(KvList::new().with(slice.clone(), Value::Str(slice)));
        let d = v.detached();
        assert_eq!(d, v);
        let Value::List(l) = &d else { panic!() };
        let (k, _) = &l.as_slice()[0];
        assert!(!frame.as_ptr_range().contains(&k.as_bytes().as_ptr()));
    }

    #[test]
    fn depth_counts_nesting() {
        let inner = KvList::new().with("x", 1);
        let l = KvList::new().with("n", inner).with("s", "t");
        assert_eq!(l.depth(), 2);
        assert_eq!(KvList::new().depth(), 1);
    }
}
