//! The generic message ([`Message`]), message ids, attribute names and the enumerated values.

use crate::value::{IntoKey, KvList, Value};

/// A message: a numeric id plus its attributes, in order.
///
/// This generic form holds any message, including ids this crate does not know; the typed
/// views in [`crate::typed`] are built from it and turned into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Which message this is.
    pub id: MessageId,
    /// The attributes, in wire order (duplicates kept).
    pub attrs: KvList,
}

impl Message {
    /// A message with no attributes.
    pub const fn new(id: MessageId) -> Self {
        Self {
            id,
            attrs: KvList::new(),
        }
    }

    /// Builder: appends an attribute.
    #[must_use]
    pub fn with(mut self, key: impl IntoKey, value: impl Into<Value>) -> Self {
        self.attrs.push(key, value);
        self
    }

    /// The `ReferenceId` attribute, when present and an int.
    pub fn reference_id(&self) -> Option<i32> {
        self.attrs.get_int(attr::REFERENCE_ID)
    }

    /// The `ProxyClientId` attribute, when present and an int.
    pub fn proxy_client_id(&self) -> Option<i32> {
        self.attrs.get_int(attr::PROXY_CLIENT_ID)
    }

    /// The message's name (`"EventAck"`), or `None` for an id this crate does not know.
    pub fn name(&self) -> Option<&'static str> {
        self.id.name()
    }
}

/// A message id. Open-ended: any `u16` is a valid id, and the named constants are the ones
/// docs/protocol.md defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u16);

macro_rules! message_ids {
    ($( $(#[$doc:meta])* $konst:ident = $num:literal, $name:literal, $kind:ident; )*) => {
        impl MessageId {
            $( $(#[$doc])* pub const $konst: Self = Self($num); )*

            /// Every id this crate knows, with its name and direction, in spec order.
            pub const ALL: &'static [(Self, &'static str, Direction)] = &[
                $( (Self::$konst, $name, Direction::$kind), )*
            ];
        }
    };
}

/// Which way a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Request,
    /// Server to client.
    Event,
    /// Either way (`Ping`).
    Both,
}

message_ids! {
    /// `RequestRegisterClient`
    REQUEST_REGISTER_CLIENT = 100, "RequestRegisterClient", Request;
    /// `RequestUnregisterClient`
    REQUEST_UNREGISTER_CLIENT = 174, "RequestUnregisterClient", Request;
    /// `RequestAgentLogin`
    REQUEST_AGENT_LOGIN = 135, "RequestAgentLogin", Request;
    /// `RequestAgentLogout`
    REQUEST_AGENT_LOGOUT = 136, "RequestAgentLogout", Request;
    /// `RequestWorkbinTypesInfo`
    REQUEST_WORKBIN_TYPES_INFO = 178, "RequestWorkbinTypesInfo", Request;
    /// `RequestGetWorkbinContent`
    REQUEST_GET_WORKBIN_CONTENT = 113, "RequestGetWorkbinContent", Request;
    /// `RequestWorkbinNotifications`
    REQUEST_WORKBIN_NOTIFICATIONS = 114, "RequestWorkbinNotifications", Request;
    /// `RequestCancelWorkbinNotifications`
    REQUEST_CANCEL_WORKBIN_NOTIFICATIONS = 115, "RequestCancelWorkbinNotifications", Request;
    /// `RequestSubmit`
    REQUEST_SUBMIT = 101, "RequestSubmit", Request;
    /// `RequestPlaceInWorkbin`
    REQUEST_PLACE_IN_WORKBIN = 106, "RequestPlaceInWorkbin", Request;
    /// `RequestPlaceInQueue`
    REQUEST_PLACE_IN_QUEUE = 105, "RequestPlaceInQueue", Request;
    /// `RequestPull`
    REQUEST_PULL = 108, "RequestPull", Request;
    /// `RequestStopProcessing`
    REQUEST_STOP_PROCESSING = 102, "RequestStopProcessing", Request;
    /// `RequestChangeProperties`
    REQUEST_CHANGE_PROPERTIES = 103, "RequestChangeProperties", Request;
    /// `RequestGetInteractionProperties`
    REQUEST_GET_INTERACTION_PROPERTIES = 188, "RequestGetInteractionProperties", Request;
    /// `RequestGetWorkbins`: the workbin instances the logged-in agent may access.
    REQUEST_GET_WORKBINS = 190, "RequestGetWorkbins", Request;
    /// `RequestTakeSnapshot`: selects interactions by a condition (docs/conditions.md).
    REQUEST_TAKE_SNAPSHOT = 150, "RequestTakeSnapshot", Request;
    /// `RequestGetSnapshotInteractions`: a page of a snapshot.
    REQUEST_GET_SNAPSHOT_INTERACTIONS = 152, "RequestGetSnapshotInteractions", Request;
    /// `RequestReleaseSnapshot`: ends a snapshot (and its locks).
    REQUEST_RELEASE_SNAPSHOT = 154, "RequestReleaseSnapshot", Request;
    /// `RequestLockInteraction`
    REQUEST_LOCK_INTERACTION = 155, "RequestLockInteraction", Request;
    /// `RequestUnlockInteraction`
    REQUEST_UNLOCK_INTERACTION = 156, "RequestUnlockInteraction", Request;
    /// `RequestMoveInteractions`: moves a snapshot's interactions to a queue or a workbin.
    REQUEST_MOVE_INTERACTIONS = 157, "RequestMoveInteractions", Request;
    /// `Ping`: a request and its own reply.
    PING = 175, "Ping", Both;
    /// `EventAck`
    EVENT_ACK = 125, "EventAck", Event;
    /// `EventError`
    EVENT_ERROR = 126, "EventError", Event;
    /// `EventWorkbinContent`
    EVENT_WORKBIN_CONTENT = 116, "EventWorkbinContent", Event;
    /// `EventWorkbinContentChanged`
    EVENT_WORKBIN_CONTENT_CHANGED = 117, "EventWorkbinContentChanged", Event;
    /// `EventPulledInteractions`
    EVENT_PULLED_INTERACTIONS = 109, "EventPulledInteractions", Event;
    /// `EventWorkbinTypesInfo`
    EVENT_WORKBIN_TYPES_INFO = 179, "EventWorkbinTypesInfo", Event;
    /// `EventInteractionProperties`
    EVENT_INTERACTION_PROPERTIES = 189, "EventInteractionProperties", Event;
    /// `EventWorkbins`: the reply to RequestGetWorkbins.
    EVENT_WORKBINS = 191, "EventWorkbins", Event;
    /// `EventSnapshotTaken`: the reply to RequestTakeSnapshot.
    EVENT_SNAPSHOT_TAKEN = 151, "EventSnapshotTaken", Event;
    /// `EventSnapshotInteractions`: the reply to RequestGetSnapshotInteractions.
    EVENT_SNAPSHOT_INTERACTIONS = 153, "EventSnapshotInteractions", Event;
    /// `EventInteractionMoved`: the reply to RequestMoveInteractions.
    EVENT_INTERACTION_MOVED = 158, "EventInteractionMoved", Event;
}

impl MessageId {
    /// The spec name of a known id.
    pub fn name(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(id, _, _)| *id == self)
            .map(|(_, name, _)| *name)
    }

    /// The id of a spec name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(id, _, _)| *id)
    }

    /// The direction of a known id.
    pub fn direction(self) -> Option<Direction> {
        Self::ALL
            .iter()
            .find(|(id, _, _)| *id == self)
            .map(|(_, _, d)| *d)
    }

    /// True for ids that a client sends (requests and `Ping`).
    pub fn is_request(self) -> bool {
        matches!(self.direction(), Some(Direction::Request | Direction::Both))
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "message {}", self.0),
        }
    }
}

/// Attribute names used by the messages of docs/protocol.md (the public Platform SDK names).
pub mod attr {
    #![allow(missing_docs)] // each constant is its own value

    macro_rules! names {
        ($($name:ident = $text:literal,)*) => {
            $(pub const $name: &str = $text;)*

            /// The static copy of a known attribute or key name (decoding shares it instead of
            /// slicing the frame: no reference count to touch, nothing to free).
            pub(crate) fn intern(name: &str) -> Option<&'static str> {
                match name {
                    $($text => Some($name),)*
                    _ => None,
                }
            }
        };
    }

    names! {
        REFERENCE_ID = "ReferenceId",
        PROXY_CLIENT_ID = "ProxyClientId",
        CLIENT_NAME = "ClientName",
        CLIENT_TYPE = "ClientType",
        PASSWORD = "Password",
        ACTIVE_SERVER = "ActiveServer",
        TENANT_ID = "TenantId",
        AGENT_ID = "AgentId",
        PLACE_ID = "PlaceId",
        MEDIA_LIST = "MediaList",
        WORKBIN = "Workbin",
        NOTIFY_PROPERTY_CHANGES = "NotifyPropertyChanges",
        MEDIA_TYPE = "MediaType",
        INTERACTION_TYPE = "InteractionType",
        INTERACTION_SUBTYPE = "InteractionSubtype",
        QUEUE = "Queue",
        USER_DATA = "UserData",
        INTERACTION_ID = "InteractionId",
        VIEW_ID = "ViewId",
        PULL_PARAMETERS = "PullParameters",
        REASON = "Reason",
        CHANGED_PROPERTIES = "ChangedProperties",
        ADDED_PROPERTIES = "AddedProperties",
        DELETED_PROPERTIES = "DeletedProperties",
        ERROR_CODE = "ErrorCode",
        ERROR_DESCRIPTION = "ErrorDescription",
        INTERACTIONS = "Interactions",
        INTERACTION = "Interaction",
        WORKBIN_CONTENT_OPERATION = "WorkbinContentOperation",
        WORKBIN_TYPES = "WorkbinTypes",
        WORKBINS = "Workbins",
        WORKBIN_TYPE_ID = "WorkbinTypeId",
        WORKBIN_AGENT_ID = "WorkbinAgentId",
        WORKBIN_PLACE_ID = "WorkbinPlaceId",
        WORKBIN_GROUP_ID = "WorkbinGroupId",
        WORKBIN_PLACE_GROUP_ID = "WorkbinPlaceGroupId",
        ACTIVE = "Active",
        OWNER_TYPE = "OwnerType",
        INTERACTION_STATE = "InteractionState",
        INTERACTION_WORKBIN_TYPE_ID = "InteractionWorkbinTypeId",
        INTERACTION_AGENT_ID = "InteractionAgentId",
        INTERACTION_PLACE_ID = "InteractionPlaceId",
        INTERACTION_AGENT_GROUP_ID = "InteractionAgentGroupId",
        INTERACTION_PLACE_GROUP_ID = "InteractionPlaceGroupId",
        ASSIGNED_TO = "AssignedTo",
        SUBMITTED_BY = "SubmittedBy",
        RECEIVED_AT = "ReceivedAt",
        PULL_ID = "id",
        CONDITION = "Condition",
        ORDER = "Order",
        LOCK = "Lock",
        SNAPSHOT_MAX_INTERACTIONS = "SnapshotMaxInteractions",
        SNAPSHOT_ID = "SnapshotId",
        NUMBER_OF_INTERACTIONS = "NumberOfInteractions",
        NOT_LOCKED = "NotLocked",
        START_FROM = "StartFrom",
        IS_LOCKED = "IsLocked",
        LOCKED_BY = "LockedBy",
        MOVED = "Moved",
        NOT_MOVED = "NotMoved",
    }
}

/// Declares an open-ended enumerated attribute value: named variants with their wire ints,
/// plus `Unknown(i32)` so that any int round-trips.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $ty:ident { $( $(#[$vdoc:meta])* $var:ident = $num:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty {
            $( $(#[$vdoc])* $var, )*
            /// A value this crate has no name for (kept so that it round-trips).
            Unknown(i32),
        }

        impl $ty {
            /// Every named value, with its wire int.
            pub const NAMED: &'static [(Self, i32, &'static str)] =
                &[ $( (Self::$var, $num, stringify!($var)), )* ];

            /// The wire int.
            pub fn to_int(self) -> i32 {
                match self {
                    $( Self::$var => $num, )*
                    Self::Unknown(i) => i,
                }
            }

            /// From the wire int (never fails: unknown ints become `Unknown`).
            pub fn from_int(i: i32) -> Self {
                match i {
                    $( $num => Self::$var, )*
                    other => Self::Unknown(other),
                }
            }

            /// The name, for named values.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( Self::$var => Some(stringify!($var)), )*
                    Self::Unknown(_) => None,
                }
            }

            /// From a name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( stringify!($var) => Some(Self::$var), )*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($ty), self.to_int()),
                }
            }
        }
    };
}

wire_enum! {
    /// `ClientType` of RequestRegisterClient (an int on the wire, a name in JSON).
    ClientType {
        /// An agent desktop.
        AgentApplication = 1,
        /// A media server (submits and places interactions, needs no agent).
        MediaServer = 2,
        /// A routing engine (like a media server).
        RoutingEngine = 3,
        /// A proxy that multiplexes logical clients on one connection.
        Proxy = 4,
    }
}

wire_enum! {
    /// `WorkbinContentOperation` of EventWorkbinContentChanged (an int on the wire, a name in JSON).
    WorkbinContentOperation {
        /// The interaction left the workbin.
        TakenOut = 1,
        /// The interaction entered the workbin.
        PlacedIn = 2,
        /// The interaction's properties changed while in the workbin.
        PropertiesChanged = 3,
    }
}

wire_enum! {
    /// `ErrorCode` of EventError (docs/protocol.md, section 8). An int in both the wire and
    /// the JSON form.
    ErrorCode {
        /// A request before registration, or without a valid ProxyClientId on a proxy connection.
        ClientNotRegistered = 1,
        /// ClientName/ClientType not configured.
        InvalidClient = 2,
        /// A required attribute is absent.
        MissingAttribute = 3,
        /// An attribute has the wrong type or value.
        InvalidAttribute = 4,
        /// The request needs a logged-in agent.
        AgentNotLoggedIn = 5,
        /// No such agent.
        UnknownAgent = 6,
        /// No such place.
        UnknownPlace = 7,
        /// No such tenant.
        UnknownTenant = 8,
        /// No such workbin type, or the owner key does not fit its owner kind.
        UnknownWorkbin = 9,
        /// The owner named in Workbin does not exist.
        UnknownOwner = 10,
        /// Cancel without a subscription.
        NotSubscribed = 11,
        /// No such interaction.
        UnknownInteraction = 12,
        /// Access denied by the rules of docs/behaviour.md, "Access".
        Forbidden = 13,
        /// The request does not fit the current state.
        InvalidState = 14,
        /// The agent is logged in on another client.
        AgentLoggedInElsewhere = 15,
        /// A supplied InteractionId exists.
        DuplicateInteraction = 16,
        /// A configured limit would be passed.
        LimitExceeded = 17,
        /// A well-framed message that is not a request this server handles.
        UnsupportedRequest = 18,
        /// The application must authenticate (a client certificate naming it, or its password
        /// in `Password`) and did not; the connection is then closed.
        AuthenticationFailed = 19,
        /// This server is a standby (it shares its store with an active server, or none is
        /// active yet): it serves nothing. `ActiveServer`, when present, is the active
        /// server's address (HOST:PORT): connect there.
        NotActive = 20,
        /// No snapshot with this SnapshotId is open for this client (never taken, released,
        /// ended with its connection or after its idle time).
        UnknownSnapshot = 21,
        /// Another client holds a lock on the interaction: only the holder may pull, move,
        /// change, place or stop it. The description names the holder.
        InteractionLocked = 22,
        /// A server fault; the request had no effect.
        Internal = 99,
    }
}

/// Attributes whose int values are written as names in the JSON form (docs/protocol.md).
pub(crate) fn enum_attr_name(attr: &str, value: i32) -> Option<&'static str> {
    match attr {
        attr::CLIENT_TYPE => ClientType::from_int(value).name(),
        attr::WORKBIN_CONTENT_OPERATION => WorkbinContentOperation::from_int(value).name(),
        _ => None,
    }
}

/// The int of an enum-valued attribute given by name in the JSON form; `None` when `attr` is
/// not enum-valued or the name is unknown.
pub(crate) fn enum_attr_value(attr: &str, name: &str) -> Option<i32> {
    match attr {
        attr::CLIENT_TYPE => ClientType::from_name(name).map(ClientType::to_int),
        attr::WORKBIN_CONTENT_OPERATION => {
            WorkbinContentOperation::from_name(name).map(WorkbinContentOperation::to_int)
        }
        _ => None,
    }
}

/// True for the attributes that [`enum_attr_value`] converts.
pub(crate) fn is_enum_attr(attr: &str) -> bool {
    matches!(attr, attr::CLIENT_TYPE | attr::WORKBIN_CONTENT_OPERATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_map_both_ways() {
        for (i, (id, name, _)) in MessageId::ALL.iter().enumerate() {
            assert_eq!(MessageId::from_name(name), Some(*id));
            assert_eq!(id.name(), Some(*name));
            for (other, other_name, _) in &MessageId::ALL[i + 1..] {
                assert_ne!(id, other);
                assert_ne!(name, other_name);
            }
        }
        assert_eq!(MessageId(4242).name(), None);
        assert_eq!(MessageId(4242).to_string(), "message 4242");
    }

    #[test]
    fn enums_round_trip_including_unknown() {
        assert_eq!(ClientType::from_int(4), ClientType::Proxy);
        assert_eq!(ClientType::from_int(77), ClientType::Unknown(77));
        assert_eq!(ClientType::Unknown(77).to_int(), 77);
        assert_eq!(
            WorkbinContentOperation::from_name("PlacedIn").map(|o| o.to_int()),
            Some(2)
        );
        assert_eq!(
            ErrorCode::from_name("Internal").map(ErrorCode::to_int),
            Some(99)
        );
        assert_eq!(ErrorCode::NAMED.len(), 23);
    }
}
