//! The model of snapshots and locks, from the contract: who sees what (docs/behaviour.md,
//! "Access"), what each condition of [`CONDITIONS`] selects, in the order snapshots use
//! (every interaction here is received at the same instant, so by id), which locks refuse
//! which requests, and what a snapshot's move does to each of its interactions.

use super::ops::{Op, WB_POOL};
use super::reference::{Effect, MClient, Model, Predict, access, groups_of, supervises};
use ixn_codec::{ErrorCode, KvList, Message, attr};
use std::collections::BTreeMap;

/// At most this many snapshots per client (the default `max_snapshots_per_client`).
const MAX_SNAPSHOTS: usize = 16;
/// At most this many per snapshot (the default `max_interactions_per_snapshot`).
const MAX_PER_SNAPSHOT: usize = 500;
/// A page's size.
pub(super) const PAGE: usize = 100;

/// Whose eyes: `None` a service (sees everything), else the agent and place.
type Viewer = Option<(&'static str, &'static str)>;

impl Model {
    /// A snapshot request's viewer: a media server, or the logged-in agent.
    fn viewer(client: &MClient) -> Result<Viewer, ErrorCode> {
        match (client.media_server, client.login) {
            (true, _) => Ok(None),
            (false, Some(l)) => Ok(Some(l)),
            (false, None) => Err(ErrorCode::AgentNotLoggedIn),
        }
    }

    /// Whether `viewer` sees interaction `id` through a snapshot.
    pub(super) fn sees(&self, viewer: Viewer, id: &str) -> bool {
        let Some(loc) = self.ix.get(id) else {
            return false;
        };
        let Some((agent, place)) = viewer else {
            return true;
        };
        if loc.starts_with("queue ") {
            !supervises(agent).is_empty()
        } else if let Some(wb) = loc.strip_prefix("workbin ") {
            access(agent, place, wb)
        } else {
            let handler = loc.strip_prefix("agent ").unwrap_or_default();
            handler == agent
                || groups_of(handler)
                    .iter()
                    .any(|g| supervises(agent).contains(g))
        }
    }

    /// Whether a client other than `c` holds `id` locked.
    pub(super) fn locked_by_other(&self, c: u8, id: &str) -> bool {
        self.locks.get(id).is_some_and(|(holder, _)| *holder != c)
    }

    /// The snapshot `c`'s snapshot ops name, when it is open.
    fn open_snap(client: &MClient) -> Option<(String, &Vec<String>)> {
        let sid = client.last_snap.as_ref()?;
        client.snaps.get(sid).map(|ids| (sid.clone(), ids))
    }

    /// What a registered client's snapshot and lock requests do.
    pub(super) fn predict_snapshot(&self, op: Op, c: u8, client: &MClient) -> Predict {
        use ErrorCode as E;
        use Predict::{Err, Ok};
        if let Op::Release { .. } = op {
            return match Self::open_snap(client) {
                Some((sid, _)) => Ok(Effect::Release(sid)),
                None => Err(E::UnknownSnapshot),
            };
        }
        let viewer = match Self::viewer(client) {
            Result::Ok(v) => v,
            Result::Err(e) => return Err(e),
        };
        match op {
            Op::Snap { a, .. } => self.predict_snap(c, client, viewer, a),
            Op::Page { .. } => match Self::open_snap(client) {
                Some((sid, _)) => Ok(Effect::Page(sid)),
                None => Err(E::UnknownSnapshot),
            },
            Op::Lock { ix, .. } | Op::Unlock { ix, .. } => {
                let snap = matches!(op, Op::Lock { snap: true, .. });
                let id = self.ix_name(ix);
                if !self.ix.contains_key(&id) {
                    return Err(E::UnknownInteraction);
                }
                if !self.sees(viewer, &id) {
                    return Err(E::Forbidden);
                }
                let sid = match (op, snap) {
                    (Op::Lock { .. }, true) => match Self::open_snap(client) {
                        Some((sid, _)) => Some(sid),
                        None => return Err(E::UnknownSnapshot),
                    },
                    _ => None,
                };
                if self.locked_by_other(c, &id) {
                    return Err(E::InteractionLocked);
                }
                match op {
                    Op::Lock { .. } => Ok(Effect::Lock(id, sid)),
                    _ if self.locks.contains_key(&id) => Ok(Effect::Unlock(id)),
                    _ => Err(E::InvalidState),
                }
            }
            Op::MoveAll { to, .. } => match Self::open_snap(client) {
                Some((_, ids)) => Ok(self.predict_move_all(c, client, viewer, ids, to)),
                None => Err(E::UnknownSnapshot),
            },
            _ => Ok(Effect::None),
        }
    }

    fn predict_snap(&self, c: u8, client: &MClient, viewer: Viewer, a: u8) -> Predict {
        let cond = a % 5;
        if cond == 4 {
            return Predict::Err(ErrorCode::InvalidAttribute);
        }
        if client.snaps.len() >= MAX_SNAPSHOTS {
            return Predict::Err(ErrorCode::LimitExceeded);
        }
        let max = if (a / 5) % 2 == 1 {
            2
        } else {
            MAX_PER_SNAPSHOT
        };
        let selected = self
            .ix
            .iter()
            .filter(|(id, loc)| {
                self.sees(viewer, id)
                    && match cond {
                        0 => true,
                        1 => loc.starts_with("workbin ") || loc.starts_with("agent "),
                        2 => *loc == "queue Inbound",
                        _ => *loc == "workbin Drafts/a1",
                    }
            })
            .map(|(id, _)| id.clone())
            .take(max);
        let lock = a >= 128;
        let (ids, others): (Vec<String>, Vec<String>) =
            selected.partition(|id| !lock || !self.locked_by_other(c, id));
        Predict::Ok(Effect::Snap {
            ids,
            lock,
            not_locked: others.len(),
        })
    }

    /// A snapshot's move: each interaction as its own place request would go.
    fn predict_move_all(
        &self,
        c: u8,
        client: &MClient,
        viewer: Viewer,
        ids: &[String],
        to: u8,
    ) -> Effect {
        let login = client.login;
        let actor = if client.media_server { None } else { login };
        let target = (to < WB_POOL).then(|| self.resolve(to, actor));
        let mut moves = Vec::new();
        let mut moved = 0;
        let mut not_moved = BTreeMap::new();
        for id in ids {
            let outcome = self.move_one(c, viewer, actor, id, target.as_ref());
            match outcome {
                Ok(Some(dest)) => {
                    moves.push((id.clone(), dest));
                    moved += 1;
                }
                Ok(None) => moved += 1,
                Err(e) => {
                    not_moved.insert(id.clone(), e);
                }
            }
        }
        Effect::MoveMany {
            moves,
            moved,
            not_moved,
        }
    }

    /// One interaction of a move: where it goes (`None`: it is there already) or why not.
    fn move_one(
        &self,
        c: u8,
        viewer: Viewer,
        actor: Viewer,
        id: &str,
        target: Option<&Result<String, ErrorCode>>,
    ) -> Result<Option<String>, ErrorCode> {
        use ErrorCode as E;
        if !self.ix.contains_key(id) {
            return Err(E::UnknownInteraction);
        }
        if !self.sees(viewer, id) {
            return Err(E::Forbidden);
        }
        let dest = match target {
            Some(Ok(key)) => format!("workbin {key}"),
            Some(Err(e)) => return Err(*e),
            None => "queue Inbound".to_owned(),
        };
        if !self.may_act(actor, id) {
            return Err(E::Forbidden);
        }
        if self.locked_by_other(c, id) {
            return Err(E::InteractionLocked);
        }
        if let (Some(Ok(key)), Some((a, p))) = (target, actor)
            && !access(a, p, key)
        {
            return Err(E::Forbidden);
        }
        Ok((self.ix.get(id) != Some(&dest)).then_some(dest))
    }

    pub(super) fn apply_snap(&mut self, c: u8, ids: Vec<String>, lock: bool, sid: String) {
        if lock {
            for id in &ids {
                self.locks
                    .entry(id.clone())
                    .or_insert((c, Some(sid.clone())));
            }
        }
        if let Some(client) = self.clients.get_mut(&c) {
            client.snaps.insert(sid.clone(), ids);
            client.last_snap = Some(sid);
        }
    }

    pub(super) fn apply_release(&mut self, c: u8, sid: &str) {
        self.locks
            .retain(|_, (holder, s)| !(*holder == c && s.as_deref() == Some(sid)));
        if let Some(client) = self.clients.get_mut(&c) {
            client.snaps.remove(sid);
            // The ops go on naming an open snapshot, if the client has one.
            if let Some(other) = client.snaps.keys().next_back() {
                client.last_snap = Some(other.clone());
            }
        }
    }
}

/// A snapshot's data reply says what the model predicts: how many it took (and left out for
/// others' locks), the page's interactions in order with their current properties, how many
/// moved and why the others did not.
pub(super) fn check_reply(
    model: &Model,
    c: u8,
    effect: &Effect,
    reply: &Message,
) -> Result<(), String> {
    let int = |a| reply.attrs.get_int(a).map(i64::from);
    match effect {
        Effect::Snap {
            ids,
            lock,
            not_locked,
        } => {
            let want = (Some(ids.len() as i64), lock.then_some(*not_locked as i64));
            let got = (int(attr::NUMBER_OF_INTERACTIONS), int(attr::NOT_LOCKED));
            if want != got {
                return Err(format!(
                    "snapshot taken: want (count, not locked) {want:?}, got {got:?}"
                ));
            }
        }
        Effect::Page(sid) => check_page(model, c, sid, reply)?,
        Effect::MoveMany {
            moved, not_moved, ..
        } => {
            let got: BTreeMap<String, ErrorCode> = reply
                .attrs
                .get_list(attr::NOT_MOVED)
                .map(|l| {
                    l.iter()
                        .map(|(id, v)| {
                            let code = v
                                .as_list()
                                .and_then(|e| e.get_int(attr::ERROR_CODE))
                                .map_or(ErrorCode::Unknown(-1), ErrorCode::from_int);
                            (id.to_string(), code)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if int(attr::MOVED) != Some(*moved as i64) || &got != not_moved {
                return Err(format!(
                    "moved: want {moved} and not moved {not_moved:?}, got {reply:?}"
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A page lists the snapshot's first interactions in its order: those the client still sees
/// with their properties (`IsLocked: 1` on the locked), the others empty.
fn check_page(model: &Model, c: u8, sid: &str, reply: &Message) -> Result<(), String> {
    let Some(client) = model.clients.get(&c) else {
        return Err("a page for a client the model does not hold".into());
    };
    let ids = client.snaps.get(sid).cloned().unwrap_or_default();
    let empty = KvList::new();
    let listed = reply.attrs.get_list(attr::INTERACTIONS).unwrap_or(&empty);
    let got: Vec<String> = listed.iter().map(|(k, _)| k.to_string()).collect();
    let want: Vec<String> = ids.into_iter().take(PAGE).collect();
    if got != want {
        return Err(format!("page lists {got:?}, model has {want:?}"));
    }
    let Ok(viewer) = Model::viewer(client) else {
        return Err("a page for a client without a viewer".into());
    };
    for (id, props) in listed.iter() {
        let props = props.as_list().unwrap_or(&empty);
        let seen = model.sees(viewer, id);
        let locked = props.get_int(attr::IS_LOCKED) == Some(1);
        if seen == props.is_empty() || locked != (seen && model.locks.contains_key(&**id)) {
            return Err(format!(
                "page gives {id:?} as {props:?}; model: seen {seen}, locked {:?}",
                model.locks.get(&**id)
            ));
        }
    }
    Ok(())
}
