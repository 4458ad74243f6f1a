//! Typed identities the engine hands out.

/// A registered client: its `ProxyClientId` on the wire (always positive). Only the engine
/// makes one, when a client registers; it is unique among the clients alive at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(i32);

impl ClientId {
    /// The first id handed out.
    pub(crate) const FIRST: Self = Self(1);

    /// The wire value (`ProxyClientId`).
    pub fn get(self) -> i32 {
        self.0
    }

    /// The id after this one, wrapping to 1 after `i32::MAX`.
    pub(crate) fn next(self) -> Self {
        Self(if self.0 == i32::MAX { 1 } else { self.0 + 1 })
    }

    /// The client a wire value names, if it is a possible id (positive). Whether such a client
    /// exists is the engine's to say.
    pub(crate) fn from_wire(v: i32) -> Option<Self> {
        (v > 0).then_some(Self(v))
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client#{}", self.0)
    }
}
