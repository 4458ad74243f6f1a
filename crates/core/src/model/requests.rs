//! The request each operation sends, built from the model's names (the ids it generated, the
//! snapshot a client took last).

use super::ops::{AGENTS, APPS, CONDITIONS, Op, PLACES, WB_POOL, WBS};
use super::reference::Model;
use super::snapshots::PAGE;
use ixn_codec::{KvList, Message, MessageId, attr};

fn wb_info(wb: u8) -> KvList {
    let (ty, owner) = WBS.get(wb as usize).copied().unwrap_or(("Nope", None));
    let mut l = KvList::new().with(attr::WORKBIN_TYPE_ID, ty);
    if let Some((k, v)) = owner {
        l.push(k, v);
    }
    l
}

pub(super) fn request(op: Op, model: &Model, reference: i32) -> Option<Message> {
    let m = |id: MessageId| Message::new(id).with(attr::REFERENCE_ID, reference);
    let ix = |i: u8| model.ix_name(i);
    Some(match op {
        Op::Register { app, .. } => {
            let (name, kind) = APPS.get(app as usize).copied().unwrap_or(APPS[0]);
            let kind = ixn_codec::ClientType::from_name(kind).map_or(1, |k| k.to_int());
            m(MessageId::REQUEST_REGISTER_CLIENT)
                .with(attr::CLIENT_NAME, name)
                .with(attr::CLIENT_TYPE, kind)
        }
        Op::Unregister { .. } => m(MessageId::REQUEST_UNREGISTER_CLIENT),
        Op::Login { agent, place, .. } => m(MessageId::REQUEST_AGENT_LOGIN)
            .with(attr::TENANT_ID, 101)
            .with(
                attr::AGENT_ID,
                AGENTS.get(agent as usize).copied().unwrap_or("ghost"),
            )
            .with(
                attr::PLACE_ID,
                PLACES.get(place as usize).copied().unwrap_or("nowhere"),
            ),
        Op::Logout { .. } => m(MessageId::REQUEST_AGENT_LOGOUT),
        Op::Content { wb, .. } => {
            m(MessageId::REQUEST_GET_WORKBIN_CONTENT).with(attr::WORKBIN, wb_info(wb))
        }
        Op::Subscribe { wb, props, .. } => m(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
            .with(attr::WORKBIN, wb_info(wb))
            .with(attr::NOTIFY_PROPERTY_CHANGES, i32::from(props)),
        Op::Cancel { wb, .. } => {
            m(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, wb_info(wb))
        }
        Op::Submit { ix: i, .. } => {
            let mut r = m(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, "email")
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, "Inbound")
                .with(
                    attr::USER_DATA,
                    KvList::new().with("Subject", format!("s{reference}")),
                );
            if i < 3 {
                r.attrs.push(attr::INTERACTION_ID, format!("IXPOOL{i}"));
            }
            r
        }
        Op::Place { ix: i, wb, .. } => m(MessageId::REQUEST_PLACE_IN_WORKBIN)
            .with(attr::INTERACTION_ID, ix(i))
            .with(attr::WORKBIN, wb_info(wb)),
        Op::Queue { ix: i, .. } => m(MessageId::REQUEST_PLACE_IN_QUEUE)
            .with(attr::INTERACTION_ID, ix(i))
            .with(attr::QUEUE, "Inbound"),
        Op::Pull { ix: i, .. } => m(MessageId::REQUEST_PULL)
            .with(attr::VIEW_ID, "_system_")
            .with(
                attr::PULL_PARAMETERS,
                KvList::new().with(attr::PULL_ID, ix(i)),
            ),
        Op::Stop { ix: i, .. } => {
            m(MessageId::REQUEST_STOP_PROCESSING).with(attr::INTERACTION_ID, ix(i))
        }
        Op::Change { ix: i, .. } => m(MessageId::REQUEST_CHANGE_PROPERTIES)
            .with(attr::INTERACTION_ID, ix(i))
            .with(
                attr::ADDED_PROPERTIES,
                KvList::new().with("Step", reference),
            ),
        Op::Props { ix: i, .. } => {
            m(MessageId::REQUEST_GET_INTERACTION_PROPERTIES).with(attr::INTERACTION_ID, ix(i))
        }
        Op::Ping { .. } => m(MessageId::PING),
        Op::Bad {
            unknown_id: true, ..
        } => m(MessageId(4242)),
        Op::Bad {
            unknown_id: false, ..
        } => m(MessageId::REQUEST_GET_WORKBIN_CONTENT),
        Op::Disconnect { .. } => return None,
        Op::Snap { .. }
        | Op::Page { .. }
        | Op::Release { .. }
        | Op::Lock { .. }
        | Op::Unlock { .. }
        | Op::MoveAll { .. } => snapshot_request(op, model, reference),
    })
}

/// The request a snapshot or lock op sends.
fn snapshot_request(op: Op, model: &Model, reference: i32) -> Message {
    let m = |id: MessageId| Message::new(id).with(attr::REFERENCE_ID, reference);
    let sid = model
        .clients
        .get(&op.conn())
        .and_then(|c| c.last_snap.clone())
        .unwrap_or_else(|| "S0".to_owned());
    match op {
        Op::Snap { a, .. } => {
            let mut r = m(MessageId::REQUEST_TAKE_SNAPSHOT).with(
                attr::CONDITION,
                CONDITIONS.get(usize::from(a % 5)).copied().unwrap_or(""),
            );
            if (a / 5) % 2 == 1 {
                r.attrs.push(attr::SNAPSHOT_MAX_INTERACTIONS, 2);
            }
            if a >= 128 {
                r.attrs.push(attr::LOCK, 1);
            }
            r
        }
        Op::Page { .. } => m(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
            .with(attr::SNAPSHOT_ID, sid)
            .with(attr::START_FROM, 0)
            .with(attr::NUMBER_OF_INTERACTIONS, PAGE as i32),
        Op::Release { .. } => m(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, sid),
        Op::Lock { ix, snap, .. } => {
            let mut r = m(MessageId::REQUEST_LOCK_INTERACTION)
                .with(attr::INTERACTION_ID, model.ix_name(ix));
            if snap {
                r.attrs.push(attr::SNAPSHOT_ID, sid);
            }
            r
        }
        Op::Unlock { ix, .. } => {
            m(MessageId::REQUEST_UNLOCK_INTERACTION).with(attr::INTERACTION_ID, model.ix_name(ix))
        }
        Op::MoveAll { to, .. } => {
            let r = m(MessageId::REQUEST_MOVE_INTERACTIONS).with(attr::SNAPSHOT_ID, sid);
            if to < WB_POOL {
                r.with(attr::WORKBIN, wb_info(to))
            } else {
                r.with(attr::QUEUE, "Inbound")
            }
        }
        _ => m(MessageId::PING),
    }
}
