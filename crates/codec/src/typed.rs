//! Typed views of every request and event of docs/protocol.md.
//!
//! Each view is a struct named as in docs/protocol.md, with its attributes as fields (snake
//! case) plus the `ReferenceId` and `ProxyClientId` every message may carry. A view is read
//! from a generic [`Message`] with [`TryFrom`] (failing with [`Error::MissingAttribute`] or
//! [`Error::InvalidAttribute`] naming the first attribute at fault, in the order
//! docs/protocol.md lists them) and turned back into one with [`From`]. [`Typed`] dispatches on
//! the message id.
//!
//! Attributes a view does not know are not kept by the view: use the generic [`Message`] when
//! every attribute matters (a proxy relaying messages, for instance).

use crate::error::Error;
use crate::message::{ClientType, ErrorCode, Message, MessageId, WorkbinContentOperation, attr};
use crate::value::{KvList, Value};
use bytes::Bytes;
use bytestring::ByteString;

/// Why a value cannot be read as an attribute type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueFault {
    /// A required key inside the value (a KVList) is absent: its full name, such as
    /// `Workbin.WorkbinTypeId` (reported as [`Error::MissingAttribute`]).
    MissingKey(&'static str),
    /// The value has the wrong type or content (reported as [`Error::InvalidAttribute`]).
    Invalid(String),
}

impl From<String> for ValueFault {
    fn from(reason: String) -> Self {
        Self::Invalid(reason)
    }
}

/// A type an attribute can have in a typed view.
pub trait AttrType: Sized {
    /// Reads the value.
    fn from_value(value: &Value) -> Result<Self, ValueFault>;
    /// The value to write.
    fn to_value(&self) -> Value;
}

fn wrong_type(expected: &str, found: &Value) -> ValueFault {
    ValueFault::Invalid(format!("expected {expected}, found {}", found.type_name()))
}

impl AttrType for i32 {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        value.as_int().ok_or_else(|| wrong_type("int", value))
    }
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

/// A flag: the int 0 or 1.
impl AttrType for bool {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        match value.as_int() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(other) => Err(format!("expected 0 or 1, found {other}").into()),
            None => Err(wrong_type("int 0 or 1", value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Int(i32::from(*self))
    }
}

impl AttrType for ByteString {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        value
            .as_str()
            .cloned()
            .ok_or_else(|| wrong_type("string", value))
    }
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
}

impl AttrType for Bytes {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        value
            .as_binary()
            .cloned()
            .ok_or_else(|| wrong_type("binary", value))
    }
    fn to_value(&self) -> Value {
        Value::Binary(self.clone())
    }
}

impl AttrType for KvList {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        value
            .as_list()
            .cloned()
            .ok_or_else(|| wrong_type("KVList", value))
    }
    fn to_value(&self) -> Value {
        Value::List(self.clone())
    }
}

/// Any type (for attributes the protocol leaves open, such as `Reason`).
impl AttrType for Value {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        Ok(value.clone())
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
}

macro_rules! int_enum_attr {
    ($($ty:ty),*) => {$(
        impl AttrType for $ty {
            fn from_value(value: &Value) -> Result<Self, ValueFault> {
                value.as_int().map(Self::from_int).ok_or_else(|| wrong_type("int", value))
            }
            fn to_value(&self) -> Value {
                Value::Int(self.to_int())
            }
        }
    )*};
}
int_enum_attr!(ClientType, WorkbinContentOperation, ErrorCode);

/// The owner part of a [`WorkbinInfo`]: which owner key was given, with its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WorkbinOwner {
    /// `WorkbinAgentId`
    Agent(ByteString),
    /// `WorkbinPlaceId`
    Place(ByteString),
    /// `WorkbinGroupId` (an agent group)
    AgentGroup(ByteString),
    /// `WorkbinPlaceGroupId`
    PlaceGroup(ByteString),
}

impl WorkbinOwner {
    /// The WorkbinInfo key of this owner kind.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Agent(_) => attr::WORKBIN_AGENT_ID,
            Self::Place(_) => attr::WORKBIN_PLACE_ID,
            Self::AgentGroup(_) => attr::WORKBIN_GROUP_ID,
            Self::PlaceGroup(_) => attr::WORKBIN_PLACE_GROUP_ID,
        }
    }

    /// The owner's id or name.
    pub fn id(&self) -> &ByteString {
        match self {
            Self::Agent(s) | Self::Place(s) | Self::AgentGroup(s) | Self::PlaceGroup(s) => s,
        }
    }
}

/// The `Workbin` attribute: a workbin type and at most one owner key.
///
/// Whether the owner key fits the type's owner kind is the server's business (docs/behaviour.md,
/// "Access"); the view only checks shape: `WorkbinTypeId` present and a string, at most one owner
/// key, owner values strings. Other keys are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkbinInfo {
    /// `WorkbinTypeId`
    pub type_id: ByteString,
    /// The owner key, if one was given.
    pub owner: Option<WorkbinOwner>,
}

impl WorkbinInfo {
    /// Reads a WorkbinInfo KVList.
    fn read(list: &KvList) -> Result<Self, ValueFault> {
        let type_id = match list.get(attr::WORKBIN_TYPE_ID) {
            None => return Err(ValueFault::MissingKey("Workbin.WorkbinTypeId")),
            Some(v) => v.as_str().cloned().ok_or_else(|| {
                ValueFault::Invalid(format!(
                    "WorkbinTypeId: expected string, found {}",
                    v.type_name()
                ))
            })?,
        };
        let mut owner = None;
        for (key, value) in list {
            let make: fn(ByteString) -> WorkbinOwner = match &**key {
                attr::WORKBIN_AGENT_ID => WorkbinOwner::Agent,
                attr::WORKBIN_PLACE_ID => WorkbinOwner::Place,
                attr::WORKBIN_GROUP_ID => WorkbinOwner::AgentGroup,
                attr::WORKBIN_PLACE_GROUP_ID => WorkbinOwner::PlaceGroup,
                _ => continue,
            };
            let id = value.as_str().cloned().ok_or_else(|| {
                ValueFault::Invalid(format!(
                    "{}: expected string, found {}",
                    &**key,
                    value.type_name()
                ))
            })?;
            if owner.is_some() {
                return Err(ValueFault::Invalid("more than one owner key".to_owned()));
            }
            owner = Some(make(id));
        }
        Ok(Self { type_id, owner })
    }

    /// The WorkbinInfo KVList.
    pub fn to_list(&self) -> KvList {
        let mut list = KvList::with_capacity(2);
        list.push(attr::WORKBIN_TYPE_ID, self.type_id.clone());
        if let Some(owner) = &self.owner {
            list.push(owner.key(), owner.id().clone());
        }
        list
    }
}

impl AttrType for WorkbinInfo {
    fn from_value(value: &Value) -> Result<Self, ValueFault> {
        let list = value.as_list().ok_or_else(|| wrong_type("KVList", value))?;
        Self::read(list)
    }
    fn to_value(&self) -> Value {
        Value::List(self.to_list())
    }
}

/// How a field is read and written: a plain type is required, an `Option` is optional.
pub trait Field: Sized {
    /// Reads the field named `name` from `msg`.
    fn read(msg: &Message, name: &'static str) -> Result<Self, Error>;
    /// Appends the field to `attrs` (nothing for an absent optional field).
    fn write(&self, attrs: &mut KvList, name: &'static str);
}

fn read_value<T: AttrType>(msg: &Message, name: &'static str, v: &Value) -> Result<T, Error> {
    T::from_value(v).map_err(|fault| match fault {
        // A nested required key (of a WorkbinInfo) is reported as missing, with its full name.
        ValueFault::MissingKey(key) => Error::MissingAttribute {
            message: msg.id,
            attr: key,
        },
        ValueFault::Invalid(reason) => Error::InvalidAttribute {
            message: msg.id,
            attr: name,
            reason,
        },
    })
}

impl<T: AttrType> Field for T {
    fn read(msg: &Message, name: &'static str) -> Result<Self, Error> {
        match msg.attrs.get(name) {
            None => Err(Error::MissingAttribute {
                message: msg.id,
                attr: name,
            }),
            Some(v) => read_value(msg, name, v),
        }
    }
    fn write(&self, attrs: &mut KvList, name: &'static str) {
        attrs.push(name, self.to_value());
    }
}

impl<T: AttrType> Field for Option<T> {
    fn read(msg: &Message, name: &'static str) -> Result<Self, Error> {
        msg.attrs
            .get(name)
            .map(|v| read_value(msg, name, v))
            .transpose()
    }
    fn write(&self, attrs: &mut KvList, name: &'static str) {
        if let Some(v) = self {
            attrs.push(name, v.to_value());
        }
    }
}

macro_rules! typed_messages {
    ($(
        $(#[$doc:meta])*
        $name:ident = $id:ident { $( $(#[$fdoc:meta])* $field:ident : $ty:ty = $attr:ident ),* $(,)? }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, Default, PartialEq, Eq)]
            pub struct $name {
                /// `ReferenceId`: set by the requester, echoed in the reply.
                pub reference_id: Option<i32>,
                /// `ProxyClientId`: the logical client on a proxy connection.
                pub proxy_client_id: Option<i32>,
                $( $(#[$fdoc])* pub $field: $ty, )*
            }

            impl $name {
                /// This message's id.
                pub const ID: MessageId = MessageId::$id;
            }

            impl TryFrom<&Message> for $name {
                type Error = Error;

                fn try_from(msg: &Message) -> Result<Self, Error> {
                    if msg.id != Self::ID {
                        return Err(Error::WrongMessage { expected: Self::ID, found: msg.id });
                    }
                    Ok(Self {
                        reference_id: Field::read(msg, attr::REFERENCE_ID)?,
                        proxy_client_id: Field::read(msg, attr::PROXY_CLIENT_ID)?,
                        $( $field: Field::read(msg, attr::$attr)?, )*
                    })
                }
            }

            impl From<&$name> for Message {
                fn from(v: &$name) -> Self {
                    let mut attrs = KvList::new();
                    v.reference_id.write(&mut attrs, attr::REFERENCE_ID);
                    v.proxy_client_id.write(&mut attrs, attr::PROXY_CLIENT_ID);
                    $( v.$field.write(&mut attrs, attr::$attr); )*
                    Message { id: $name::ID, attrs }
                }
            }

            impl From<$name> for Message {
                fn from(v: $name) -> Self {
                    Self::from(&v)
                }
            }
        )*

        /// Any message, typed when its id is one of docs/protocol.md.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)] // a transient view; boxing would cost more than it saves
        pub enum Typed {
            $( #[doc = concat!("`", stringify!($name), "`")] $name($name), )*
            /// An id this crate does not know, kept whole.
            Other(Message),
        }

        impl TryFrom<&Message> for Typed {
            type Error = Error;

            fn try_from(msg: &Message) -> Result<Self, Error> {
                $( if msg.id == MessageId::$id { return $name::try_from(msg).map(Self::$name); } )*
                Ok(Self::Other(msg.clone()))
            }
        }

        impl From<&Typed> for Message {
            fn from(t: &Typed) -> Self {
                match t {
                    $( Typed::$name(v) => Self::from(v), )*
                    Typed::Other(m) => m.clone(),
                }
            }
        }

        #[cfg(test)]
        pub(crate) fn all_defaults() -> Vec<Typed> {
            vec![$( Typed::$name($name::default()), )*]
        }
    };
}

// `Default` for the required field types, so that every view has one (tests, builders).
// The enums come from a macro that cannot mark a `#[default]` variant, hence the impls.
#[allow(clippy::derivable_impls)]
impl Default for ClientType {
    fn default() -> Self {
        Self::AgentApplication
    }
}
#[allow(clippy::derivable_impls)]
impl Default for WorkbinContentOperation {
    fn default() -> Self {
        Self::PlacedIn
    }
}
#[allow(clippy::derivable_impls)]
impl Default for ErrorCode {
    fn default() -> Self {
        Self::Internal
    }
}
impl Default for WorkbinInfo {
    fn default() -> Self {
        Self {
            type_id: ByteString::new(),
            owner: None,
        }
    }
}

typed_messages! {
    /// 100: registers a client (or, on a proxy connection, a logical client).
    RequestRegisterClient = REQUEST_REGISTER_CLIENT {
        /// `ClientName`
        client_name: ByteString = CLIENT_NAME,
        /// `ClientType`
        client_type: ClientType = CLIENT_TYPE,
    }
    /// 174: ends a (logical) client.
    RequestUnregisterClient = REQUEST_UNREGISTER_CLIENT {}
    /// 135: logs an agent in on this client.
    RequestAgentLogin = REQUEST_AGENT_LOGIN {
        /// `TenantId`
        tenant_id: i32 = TENANT_ID,
        /// `AgentId`
        agent_id: ByteString = AGENT_ID,
        /// `PlaceId`
        place_id: ByteString = PLACE_ID,
        /// `MediaList`: media name to int.
        media_list: Option<KvList> = MEDIA_LIST,
    }
    /// 136: logs the client's agent out.
    RequestAgentLogout = REQUEST_AGENT_LOGOUT {}
    /// 178: lists the tenant's workbin types.
    RequestWorkbinTypesInfo = REQUEST_WORKBIN_TYPES_INFO {
        /// `TenantId`
        tenant_id: i32 = TENANT_ID,
    }
    /// 113: asks for a workbin's content.
    RequestGetWorkbinContent = REQUEST_GET_WORKBIN_CONTENT {
        /// `Workbin`
        workbin: WorkbinInfo = WORKBIN,
    }
    /// 114: subscribes to a workbin's changes.
    RequestWorkbinNotifications = REQUEST_WORKBIN_NOTIFICATIONS {
        /// `Workbin`
        workbin: WorkbinInfo = WORKBIN,
        /// `NotifyPropertyChanges` (0/1, default 0)
        notify_property_changes: Option<bool> = NOTIFY_PROPERTY_CHANGES,
    }
    /// 115: ends a subscription.
    RequestCancelWorkbinNotifications = REQUEST_CANCEL_WORKBIN_NOTIFICATIONS {
        /// `Workbin`
        workbin: WorkbinInfo = WORKBIN,
    }
    /// 101: submits a new interaction into a queue.
    RequestSubmit = REQUEST_SUBMIT {
        /// `TenantId`
        tenant_id: i32 = TENANT_ID,
        /// `MediaType`
        media_type: ByteString = MEDIA_TYPE,
        /// `InteractionType`
        interaction_type: ByteString = INTERACTION_TYPE,
        /// `Queue`
        queue: ByteString = QUEUE,
        /// `InteractionSubtype`
        interaction_subtype: Option<ByteString> = INTERACTION_SUBTYPE,
        /// `UserData`
        user_data: Option<KvList> = USER_DATA,
        /// `InteractionId` (server-generated when absent)
        interaction_id: Option<ByteString> = INTERACTION_ID,
    }
    /// 106: places an interaction in a workbin.
    RequestPlaceInWorkbin = REQUEST_PLACE_IN_WORKBIN {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
        /// `Workbin`
        workbin: WorkbinInfo = WORKBIN,
    }
    /// 105: places an interaction in a queue.
    RequestPlaceInQueue = REQUEST_PLACE_IN_QUEUE {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
        /// `Queue`
        queue: ByteString = QUEUE,
    }
    /// 108: pulls an interaction to the requesting agent.
    RequestPull = REQUEST_PULL {
        /// `ViewId` (must be `_system_`)
        view_id: ByteString = VIEW_ID,
        /// `PullParameters` (with `id`)
        pull_parameters: KvList = PULL_PARAMETERS,
        /// `Workbin`: when given, the interaction must be in this workbin instance.
        workbin: Option<WorkbinInfo> = WORKBIN,
    }
    /// 102: ends (deletes) an interaction.
    RequestStopProcessing = REQUEST_STOP_PROCESSING {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
        /// `Reason` (any type)
        reason: Option<Value> = REASON,
    }
    /// 103: edits an interaction's UserData.
    RequestChangeProperties = REQUEST_CHANGE_PROPERTIES {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
        /// `ChangedProperties`
        changed_properties: Option<KvList> = CHANGED_PROPERTIES,
        /// `AddedProperties`
        added_properties: Option<KvList> = ADDED_PROPERTIES,
        /// `DeletedProperties`
        deleted_properties: Option<KvList> = DELETED_PROPERTIES,
    }
    /// 188: reads an interaction's properties.
    RequestGetInteractionProperties = REQUEST_GET_INTERACTION_PROPERTIES {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
    }
    /// 190: lists the workbin instances the logged-in agent may access.
    RequestGetWorkbins = REQUEST_GET_WORKBINS {
        /// `AgentId`: whose workbins (default: the agent logged in on the client).
        agent_id: Option<ByteString> = AGENT_ID,
    }
    /// 175: keep-alive, answered with a Ping carrying the same ReferenceId.
    Ping = PING {}
    /// 125: success.
    EventAck = EVENT_ACK {
        /// `InteractionId` (after RequestSubmit)
        interaction_id: Option<ByteString> = INTERACTION_ID,
    }
    /// 126: failure.
    EventError = EVENT_ERROR {
        /// `ErrorCode`
        error_code: ErrorCode = ERROR_CODE,
        /// `ErrorDescription`
        error_description: ByteString = ERROR_DESCRIPTION,
    }
    /// 116: a workbin's content.
    EventWorkbinContent = EVENT_WORKBIN_CONTENT {
        /// `Workbin`
        workbin: WorkbinInfo = WORKBIN,
        /// `Interactions`: interaction id to its properties.
        interactions: KvList = INTERACTIONS,
    }
    /// 117: a subscribed workbin changed (no ReferenceId).
    EventWorkbinContentChanged = EVENT_WORKBIN_CONTENT_CHANGED {
        /// `Workbin`
        workbin: WorkbinInfo = WORKBIN,
        /// `WorkbinContentOperation`
        workbin_content_operation: WorkbinContentOperation = WORKBIN_CONTENT_OPERATION,
        /// `Interaction`: the interaction's properties.
        interaction: KvList = INTERACTION,
    }
    /// 109: the pulled interactions.
    EventPulledInteractions = EVENT_PULLED_INTERACTIONS {
        /// `Interactions`: interaction id to its properties.
        interactions: KvList = INTERACTIONS,
    }
    /// 179: the tenant's workbin types.
    EventWorkbinTypesInfo = EVENT_WORKBIN_TYPES_INFO {
        /// `WorkbinTypes`: name to `{Active: 1, OwnerType: name}`.
        workbin_types: KvList = WORKBIN_TYPES,
    }
    /// 189: an interaction's properties.
    EventInteractionProperties = EVENT_INTERACTION_PROPERTIES {
        /// `Interaction`
        interaction: KvList = INTERACTION,
    }
    /// 191: the workbin instances an agent may access.
    EventWorkbins = EVENT_WORKBINS {
        /// `Workbins`: WorkbinTypeId to a KVList of owner (id or name) to WorkbinInfo.
        workbins: KvList = WORKBINS,
    }
    /// 150: selects interactions by a condition (docs/conditions.md).
    RequestTakeSnapshot = REQUEST_TAKE_SNAPSHOT {
        /// `Condition`
        condition: ByteString = CONDITION,
        /// `Order`: `Prop [ASC|DESC], ...` (default: as received)
        order: Option<ByteString> = ORDER,
        /// `Lock` (0/1, default 0): lock what is selected.
        lock: Option<bool> = LOCK,
        /// `SnapshotMaxInteractions` (default and cap: `max_interactions_per_snapshot`)
        snapshot_max_interactions: Option<i32> = SNAPSHOT_MAX_INTERACTIONS,
    }
    /// 151: the snapshot taken.
    EventSnapshotTaken = EVENT_SNAPSHOT_TAKEN {
        /// `SnapshotId`
        snapshot_id: ByteString = SNAPSHOT_ID,
        /// `NumberOfInteractions`: how many it holds.
        number_of_interactions: i32 = NUMBER_OF_INTERACTIONS,
        /// `NotLocked`: with Lock = 1, how many were left out (locked by another client).
        not_locked: Option<i32> = NOT_LOCKED,
    }
    /// 152: a page of a snapshot.
    RequestGetSnapshotInteractions = REQUEST_GET_SNAPSHOT_INTERACTIONS {
        /// `SnapshotId`
        snapshot_id: ByteString = SNAPSHOT_ID,
        /// `StartFrom`: the first position (from 0).
        start_from: i32 = START_FROM,
        /// `NumberOfInteractions`: the page's size.
        number_of_interactions: i32 = NUMBER_OF_INTERACTIONS,
    }
    /// 153: a page of a snapshot, in its order.
    EventSnapshotInteractions = EVENT_SNAPSHOT_INTERACTIONS {
        /// `SnapshotId`
        snapshot_id: ByteString = SNAPSHOT_ID,
        /// `StartFrom`
        start_from: i32 = START_FROM,
        /// `Interactions`: interaction id to its current properties (an empty KVList for one
        /// gone since the snapshot was taken).
        interactions: KvList = INTERACTIONS,
    }
    /// 154: ends a snapshot, unlocking what it locked.
    RequestReleaseSnapshot = REQUEST_RELEASE_SNAPSHOT {
        /// `SnapshotId`
        snapshot_id: ByteString = SNAPSHOT_ID,
    }
    /// 155: locks an interaction for this client.
    RequestLockInteraction = REQUEST_LOCK_INTERACTION {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
        /// `SnapshotId`: the lock ends with this snapshot too.
        snapshot_id: Option<ByteString> = SNAPSHOT_ID,
        /// `Reason` (any type)
        reason: Option<Value> = REASON,
    }
    /// 156: unlocks an interaction this client locked.
    RequestUnlockInteraction = REQUEST_UNLOCK_INTERACTION {
        /// `InteractionId`
        interaction_id: ByteString = INTERACTION_ID,
        /// `SnapshotId`
        snapshot_id: Option<ByteString> = SNAPSHOT_ID,
        /// `Reason` (any type)
        reason: Option<Value> = REASON,
    }
    /// 157: moves a snapshot's interactions to a queue or a workbin.
    RequestMoveInteractions = REQUEST_MOVE_INTERACTIONS {
        /// `SnapshotId`
        snapshot_id: ByteString = SNAPSHOT_ID,
        /// `Queue` (or `Workbin`)
        queue: Option<ByteString> = QUEUE,
        /// `Workbin` (or `Queue`)
        workbin: Option<WorkbinInfo> = WORKBIN,
    }
    /// 158: what a move did.
    EventInteractionMoved = EVENT_INTERACTION_MOVED {
        /// `Moved`: how many were moved.
        moved: i32 = MOVED,
        /// `NotMoved`: interaction id to `{ErrorCode, ErrorDescription}`.
        not_moved: KvList = NOT_MOVED,
    }
}

#[cfg(test)]
mod tests;
