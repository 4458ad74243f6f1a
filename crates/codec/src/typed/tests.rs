//! The typed views: every id round-trips, the first faulty attribute is named.

use super::*;

#[test]
fn every_known_id_has_a_view_and_round_trips() {
    let all = all_defaults();
    assert_eq!(all.len(), MessageId::ALL.len());
    for t in all {
        let msg = Message::from(&t);
        assert!(msg.id.name().is_some());
        assert_eq!(Typed::try_from(&msg).unwrap(), t);
    }
}

#[test]
fn unknown_ids_stay_generic() {
    let msg = Message::new(MessageId(9)).with("X", 1);
    assert_eq!(Typed::try_from(&msg).unwrap(), Typed::Other(msg.clone()));
    assert_eq!(Message::from(&Typed::Other(msg.clone())), msg);
}

#[test]
fn the_first_missing_or_invalid_attribute_is_named() {
    let login = Message::new(MessageId::REQUEST_AGENT_LOGIN)
        .with("TenantId", "101")
        .with("PlaceId", "p1");
    let err = RequestAgentLogin::try_from(&login).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidAttribute {
            message: MessageId::REQUEST_AGENT_LOGIN,
            attr: "TenantId",
            reason: "expected int, found string".into()
        }
    );
    let login = Message::new(MessageId::REQUEST_AGENT_LOGIN).with("TenantId", 101);
    assert_eq!(
        RequestAgentLogin::try_from(&login).unwrap_err(),
        Error::MissingAttribute {
            message: MessageId::REQUEST_AGENT_LOGIN,
            attr: "AgentId"
        }
    );
}

#[test]
fn workbin_info_shape_is_checked() {
    let id = MessageId::REQUEST_GET_WORKBIN_CONTENT;
    let with = |wb: KvList| Message::new(id).with("Workbin", wb);
    let ok = RequestGetWorkbinContent::try_from(&with(
        KvList::new()
            .with("WorkbinTypeId", "Drafts")
            .with("WorkbinAgentId", "a1"),
    ))
    .unwrap();
    assert_eq!(ok.workbin.owner, Some(WorkbinOwner::Agent("a1".into())));
    let no_type = with(KvList::new().with("WorkbinAgentId", "a1"));
    assert_eq!(
        RequestGetWorkbinContent::try_from(&no_type).unwrap_err(),
        Error::MissingAttribute {
            message: id,
            attr: "Workbin.WorkbinTypeId"
        }
    );
    let two = with(
        KvList::new()
            .with("WorkbinTypeId", "Drafts")
            .with("WorkbinAgentId", "a1")
            .with("WorkbinPlaceId", "p1"),
    );
    assert!(matches!(
        RequestGetWorkbinContent::try_from(&two).unwrap_err(),
        Error::InvalidAttribute {
            attr: "Workbin",
            ..
        }
    ));
    let scalar = Message::new(id).with("Workbin", "Drafts");
    assert!(matches!(
        RequestGetWorkbinContent::try_from(&scalar).unwrap_err(),
        Error::InvalidAttribute {
            attr: "Workbin",
            ..
        }
    ));
}

#[test]
fn flags_accept_only_zero_and_one() {
    let wb = KvList::new().with("WorkbinTypeId", "Drafts");
    let m = |v: i32| {
        Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
            .with("Workbin", wb.clone())
            .with("NotifyPropertyChanges", v)
    };
    assert_eq!(
        RequestWorkbinNotifications::try_from(&m(1))
            .unwrap()
            .notify_property_changes,
        Some(true)
    );
    assert!(RequestWorkbinNotifications::try_from(&m(2)).is_err());
}

#[test]
fn wrong_id_is_refused() {
    assert_eq!(
        Ping::try_from(&Message::new(MessageId::EVENT_ACK)).unwrap_err(),
        Error::WrongMessage {
            expected: MessageId::PING,
            found: MessageId::EVENT_ACK
        }
    );
}
