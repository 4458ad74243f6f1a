//! One test per message of spec section 2: its JSON form reads into the typed view with the
//! expected fields, and survives typed -> generic -> bytes -> generic -> JSON unchanged.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_codec::typed::*;
use ixn_codec::{ClientType, Codec, ErrorCode, Message, MessageId, WorkbinContentOperation};

/// JSON -> Message -> typed -> Message -> bytes -> Message -> JSON; returns the typed view.
fn check<T>(json: &str) -> T
where
    T: for<'a> TryFrom<&'a Message, Error = ixn_codec::Error> + Clone + PartialEq + std::fmt::Debug,
    Message: From<T>,
{
    let msg = Message::from_json(json).unwrap();
    let typed = T::try_from(&msg).unwrap();
    let generic = Message::from(typed.clone());
    let codec = Codec::default();
    let bytes = codec.encode_to_bytes(&generic).unwrap();
    let decoded = codec.decode_frame(&bytes).unwrap();
    assert_eq!(decoded, generic);
    assert_eq!(T::try_from(&decoded).unwrap(), typed);
    let want: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        decoded.to_json_value().unwrap(),
        want,
        "JSON form of {json}"
    );
    typed
}

const WB: &str = r#"{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"}"#;

#[test]
fn request_register_client() {
    let t: RequestRegisterClient = check(
        r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#,
    );
    assert_eq!(
        (&*t.client_name, t.client_type),
        ("desk", ClientType::AgentApplication)
    );
    assert_eq!(t.reference_id, Some(1));
}

#[test]
fn request_unregister_client() {
    let t: RequestUnregisterClient =
        check(r#"{"message":"RequestUnregisterClient","ReferenceId":2,"ProxyClientId":5}"#);
    assert_eq!(t.proxy_client_id, Some(5));
}

#[test]
fn request_agent_login() {
    let t: RequestAgentLogin = check(
        r#"{"message":"RequestAgentLogin","ReferenceId":2,"TenantId":101,"AgentId":"a1","PlaceId":"p1","MediaList":{"email":1,"chat":1}}"#,
    );
    assert_eq!((t.tenant_id, &*t.agent_id, &*t.place_id), (101, "a1", "p1"));
    assert_eq!(t.media_list.unwrap().get_int("chat"), Some(1));
}

#[test]
fn request_agent_logout() {
    check::<RequestAgentLogout>(r#"{"message":"RequestAgentLogout","ReferenceId":3}"#);
}

#[test]
fn request_workbin_types_info() {
    let t: RequestWorkbinTypesInfo =
        check(r#"{"message":"RequestWorkbinTypesInfo","ReferenceId":4,"TenantId":101}"#);
    assert_eq!(t.tenant_id, 101);
}

#[test]
fn request_get_workbin_content() {
    let t: RequestGetWorkbinContent = check(&format!(
        r#"{{"message":"RequestGetWorkbinContent","ReferenceId":5,"Workbin":{WB}}}"#
    ));
    assert_eq!(&*t.workbin.type_id, "Drafts");
    assert_eq!(t.workbin.owner, Some(WorkbinOwner::Agent("a1".into())));
}

#[test]
fn request_workbin_notifications() {
    let t: RequestWorkbinNotifications = check(&format!(
        r#"{{"message":"RequestWorkbinNotifications","ReferenceId":6,"Workbin":{WB},"NotifyPropertyChanges":1}}"#
    ));
    assert_eq!(t.notify_property_changes, Some(true));
}

#[test]
fn request_cancel_workbin_notifications() {
    let t: RequestCancelWorkbinNotifications = check(
        r#"{"message":"RequestCancelWorkbinNotifications","ReferenceId":7,"Workbin":{"WorkbinTypeId":"Team","WorkbinGroupId":"Sales"}}"#,
    );
    assert_eq!(
        t.workbin.owner,
        Some(WorkbinOwner::AgentGroup("Sales".into()))
    );
}

#[test]
fn request_submit() {
    let t: RequestSubmit = check(
        r#"{"message":"RequestSubmit","ReferenceId":8,"TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionSubtype":"InboundNew","UserData":{"Subject":"Invoice 42","Attachment":{"$binary":"JVBERg=="}},"InteractionId":"0001AaBF30060015"}"#,
    );
    assert_eq!(&*t.queue, "Inbound");
    assert_eq!(t.interaction_id.as_deref(), Some("0001AaBF30060015"));
    assert_eq!(
        t.user_data
            .unwrap()
            .get("Attachment")
            .unwrap()
            .as_binary()
            .unwrap(),
        "%PDF"
    );
}

#[test]
fn request_place_in_workbin() {
    let t: RequestPlaceInWorkbin = check(
        r#"{"message":"RequestPlaceInWorkbin","ReferenceId":9,"InteractionId":"X1","Workbin":{"WorkbinTypeId":"Desk","WorkbinPlaceId":"p1"}}"#,
    );
    assert_eq!(t.workbin.owner, Some(WorkbinOwner::Place("p1".into())));
}

#[test]
fn request_place_in_queue() {
    let t: RequestPlaceInQueue = check(
        r#"{"message":"RequestPlaceInQueue","ReferenceId":10,"InteractionId":"X1","Queue":"Outbound"}"#,
    );
    assert_eq!(&*t.queue, "Outbound");
}

#[test]
fn request_pull() {
    let t: RequestPull = check(
        r#"{"message":"RequestPull","ReferenceId":11,"ViewId":"_system_","PullParameters":{"id":"X1"}}"#,
    );
    assert_eq!(t.pull_parameters.get_str("id").map(|s| &**s), Some("X1"));
    assert_eq!(t.workbin, None);
    let t: RequestPull = check(&format!(
        r#"{{"message":"RequestPull","ReferenceId":11,"ViewId":"_system_","PullParameters":{{"id":"X1"}},"Workbin":{WB}}}"#
    ));
    assert_eq!(
        t.workbin.map(|w| w.type_id.to_string()).as_deref(),
        Some("Drafts")
    );
}

#[test]
fn request_stop_processing() {
    let t: RequestStopProcessing = check(
        r#"{"message":"RequestStopProcessing","ReferenceId":12,"InteractionId":"X1","Reason":{"Code":3}}"#,
    );
    assert!(t.reason.unwrap().as_list().is_some());
}

#[test]
fn request_change_properties() {
    let t: RequestChangeProperties = check(
        r#"{"message":"RequestChangeProperties","ReferenceId":13,"InteractionId":"X1","ChangedProperties":{"A":"b"},"AddedProperties":{"Priority":5},"DeletedProperties":{"Old":""}}"#,
    );
    assert_eq!(t.added_properties.unwrap().get_int("Priority"), Some(5));
    assert!(t.deleted_properties.is_some() && t.changed_properties.is_some());
}

#[test]
fn request_get_interaction_properties() {
    check::<RequestGetInteractionProperties>(
        r#"{"message":"RequestGetInteractionProperties","ReferenceId":14,"InteractionId":"X1"}"#,
    );
}

#[test]
fn request_get_workbins() {
    let t: RequestGetWorkbins = check(r#"{"message":"RequestGetWorkbins","ReferenceId":15}"#);
    assert_eq!((t.reference_id, t.agent_id), (Some(15), None));
    let t: RequestGetWorkbins =
        check(r#"{"message":"RequestGetWorkbins","ReferenceId":16,"AgentId":"a1"}"#);
    assert_eq!(t.agent_id.as_deref(), Some("a1"));
}

#[test]
fn event_workbins() {
    let t: EventWorkbins = check(&format!(
        r#"{{"message":"EventWorkbins","ReferenceId":15,"Workbins":{{"Drafts":{{"a1":{WB}}},"Team":{{"g1":{{"WorkbinTypeId":"Team","WorkbinGroupId":"g1"}}}}}}}}"#
    ));
    assert_eq!(t.workbins.len(), 2);
}

#[test]
fn ping() {
    let t: Ping = check(r#"{"message":"Ping","ReferenceId":77}"#);
    assert_eq!(t.reference_id, Some(77));
}

#[test]
fn event_ack() {
    let t: EventAck =
        check(r#"{"message":"EventAck","ReferenceId":8,"ProxyClientId":3,"InteractionId":"X1"}"#);
    assert_eq!(t.interaction_id.as_deref(), Some("X1"));
}

#[test]
fn event_error() {
    let t: EventError = check(
        r#"{"message":"EventError","ReferenceId":5,"ErrorCode":13,"ErrorDescription":"agent a3 may not access workbin Drafts of agent a1"}"#,
    );
    assert_eq!(t.error_code, ErrorCode::Forbidden);
}

#[test]
fn event_workbin_content() {
    let t: EventWorkbinContent = check(&format!(
        r#"{{"message":"EventWorkbinContent","ReferenceId":50,"Workbin":{WB},"Interactions":{{"X1":{{"InteractionId":"X1","MediaType":"email","UserData":{{}}}}}}}}"#
    ));
    assert_eq!(t.interactions.len(), 1);
}

#[test]
fn event_workbin_content_changed() {
    let t: EventWorkbinContentChanged = check(&format!(
        r#"{{"message":"EventWorkbinContentChanged","Workbin":{WB},"WorkbinContentOperation":"PlacedIn","Interaction":{{"InteractionId":"X1","InteractionState":"InWorkbin"}}}}"#
    ));
    assert_eq!(
        t.workbin_content_operation,
        WorkbinContentOperation::PlacedIn
    );
    assert_eq!(t.reference_id, None);
}

#[test]
fn event_pulled_interactions() {
    let t: EventPulledInteractions = check(
        r#"{"message":"EventPulledInteractions","ReferenceId":30,"Interactions":{"X1":{"InteractionState":"Handling","AssignedTo":"a1"}}}"#,
    );
    assert_eq!(t.interactions.len(), 1);
}

#[test]
fn event_workbin_types_info() {
    let t: EventWorkbinTypesInfo = check(
        r#"{"message":"EventWorkbinTypesInfo","ReferenceId":4,"WorkbinTypes":{"Drafts":{"Active":1,"OwnerType":"Agent"}}}"#,
    );
    assert_eq!(t.workbin_types.len(), 1);
}

#[test]
fn event_interaction_properties() {
    check::<EventInteractionProperties>(
        r#"{"message":"EventInteractionProperties","ReferenceId":14,"Interaction":{"InteractionId":"X1"}}"#,
    );
}

#[test]
fn request_take_snapshot() {
    let t: RequestTakeSnapshot = check(
        r#"{"message":"RequestTakeSnapshot","ReferenceId":20,"Condition":"MediaType = 'email' AND _age() < 3600","Order":"ReceivedAt DESC","Lock":1,"SnapshotMaxInteractions":100}"#,
    );
    assert_eq!(
        (t.lock, t.snapshot_max_interactions, t.order.as_deref()),
        (Some(true), Some(100), Some("ReceivedAt DESC"))
    );
}

#[test]
fn event_snapshot_taken() {
    let t: EventSnapshotTaken = check(
        r#"{"message":"EventSnapshotTaken","ReferenceId":20,"SnapshotId":"S1","NumberOfInteractions":3,"NotLocked":1}"#,
    );
    assert_eq!((&*t.snapshot_id, t.number_of_interactions), ("S1", 3));
}

#[test]
fn request_get_snapshot_interactions() {
    let t: RequestGetSnapshotInteractions = check(
        r#"{"message":"RequestGetSnapshotInteractions","ReferenceId":21,"SnapshotId":"S1","StartFrom":100,"NumberOfInteractions":100}"#,
    );
    assert_eq!((t.start_from, t.number_of_interactions), (100, 100));
}

#[test]
fn event_snapshot_interactions() {
    let t: EventSnapshotInteractions = check(
        r#"{"message":"EventSnapshotInteractions","ReferenceId":21,"SnapshotId":"S1","StartFrom":0,"Interactions":{"X1":{"InteractionId":"X1"},"X2":{}}}"#,
    );
    assert_eq!(t.interactions.len(), 2);
}

#[test]
fn request_release_snapshot() {
    let t: RequestReleaseSnapshot =
        check(r#"{"message":"RequestReleaseSnapshot","ReferenceId":22,"SnapshotId":"S1"}"#);
    assert_eq!(&*t.snapshot_id, "S1");
}

#[test]
fn request_lock_interaction() {
    let t: RequestLockInteraction = check(
        r#"{"message":"RequestLockInteraction","ReferenceId":23,"InteractionId":"X1","SnapshotId":"S1","Reason":"review"}"#,
    );
    assert_eq!(t.snapshot_id.as_deref(), Some("S1"));
}

#[test]
fn request_unlock_interaction() {
    let t: RequestUnlockInteraction =
        check(r#"{"message":"RequestUnlockInteraction","ReferenceId":24,"InteractionId":"X1"}"#);
    assert_eq!(&*t.interaction_id, "X1");
}

#[test]
fn request_move_interactions() {
    let t: RequestMoveInteractions = check(
        r#"{"message":"RequestMoveInteractions","ReferenceId":25,"SnapshotId":"S1","Queue":"Outbound"}"#,
    );
    assert_eq!((t.queue.as_deref(), t.workbin), (Some("Outbound"), None));
}

#[test]
fn event_interaction_moved() {
    let t: EventInteractionMoved = check(
        r#"{"message":"EventInteractionMoved","ReferenceId":25,"Moved":2,"NotMoved":{"X3":{"ErrorCode":22,"ErrorDescription":"locked"}}}"#,
    );
    assert_eq!((t.moved, t.not_moved.len()), (2, 1));
}

#[test]
fn every_spec_message_has_a_test_here() {
    // Keeps this file honest when a message is added to the spec table.
    let source = include_str!("messages.rs");
    for (_, name, _) in MessageId::ALL {
        let snake: String = name
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let lower = c.to_ascii_lowercase();
                if c.is_ascii_uppercase() && i > 0 {
                    vec!['_', lower]
                } else {
                    vec![lower]
                }
            })
            .collect();
        assert!(
            source.contains(&format!("fn {snake}()")),
            "no test for {name}"
        );
    }
}
