//! The snapshot and lock requests (docs/protocol.md, "Snapshots"): take a snapshot by a
//! condition, read it a page at a time, release it, lock and unlock interactions, and move a
//! snapshot's interactions to a queue or a workbin. Who sees what through a snapshot is
//! docs/behaviour.md's rule ("Access"), written once here ([`Engine::sees`]).

use super::{Ctx, Engine};
use crate::access;
use crate::condition::{self, Prop, Subject, Val};
use crate::error::Error;
use crate::interactions::Interaction;
use crate::names::Names;
use crate::types::{Location, Login, Owner};
use ixn_codec::typed;
use ixn_codec::{ByteString, KvList, Message, MessageId, Value, attr};
use ixn_config::AppType;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An interaction as a condition sees it.
struct View<'a> {
    ix: &'a Interaction,
    names: &'a Names,
    locked: bool,
}

impl Subject for View<'_> {
    fn prop(&self, p: Prop) -> Option<Val<'_>> {
        let ix = self.ix;
        let owner = |want: fn(Owner) -> bool| match ix.loc {
            Location::InWorkbin(key) if want(key.owner) => {
                Some(Val::Str(self.names.owner(key.owner)))
            }
            _ => None,
        };
        match p {
            Prop::InteractionId => Some(Val::Str(&ix.id)),
            Prop::TenantId => Some(Val::Int(i64::from(ix.tenant))),
            Prop::MediaType => Some(Val::Str(&ix.media_type)),
            Prop::InteractionType => Some(Val::Str(&ix.interaction_type)),
            Prop::InteractionSubtype => ix.subtype.as_deref().map(Val::Str),
            Prop::Queue => match ix.loc {
                Location::Queued(q) => Some(Val::Str(self.names.queue(q))),
                _ => None,
            },
            Prop::InteractionState => Some(Val::Str(match ix.loc {
                Location::Queued(_) => "Queued",
                Location::InWorkbin(_) => "InWorkbin",
                Location::Handling(_) => "Handling",
            })),
            Prop::WorkbinTypeId => match ix.loc {
                Location::InWorkbin(key) => Some(Val::Str(self.names.workbin(key.ty))),
                _ => None,
            },
            Prop::AgentId => owner(|o| matches!(o, Owner::Agent(_))),
            Prop::PlaceId => owner(|o| matches!(o, Owner::Place(_))),
            Prop::AgentGroupId => owner(|o| matches!(o, Owner::AgentGroup(_))),
            Prop::PlaceGroupId => owner(|o| matches!(o, Owner::PlaceGroup(_))),
            Prop::AssignedTo => match ix.loc {
                Location::Handling(a) => Some(Val::Str(self.names.agent(a))),
                _ => None,
            },
            Prop::SubmittedBy => Some(Val::Str(&ix.submitted_by)),
            Prop::ReceivedAt => Some(Val::Str(&ix.received_at)),
            Prop::IsLocked => Some(Val::Int(i64::from(self.locked))),
        }
    }

    fn user_data(&self, key: &str) -> Option<Val<'_>> {
        match self.ix.user_data.get(key)? {
            Value::Str(s) => Some(Val::Str(s)),
            Value::Int(n) => Some(Val::Int(i64::from(*n))),
            _ => None,
        }
    }

    fn received_secs(&self) -> Option<i64> {
        let t = humantime::parse_rfc3339(&self.ix.received_at).ok()?;
        i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
    }
}

/// Whose eyes a snapshot sees with.
#[derive(Clone, Copy, Debug)]
enum Viewer {
    /// The agent logged in on the client.
    Agent(Login),
    /// A media server, routing engine or proxy without a login: every interaction.
    Service,
}

impl Engine {
    fn viewer(&self, ctx: &Ctx) -> Result<Viewer, Error> {
        let c = self.sessions.client(ctx.client)?;
        // As for every request on interactions: a media server or a routing engine acts as
        // itself even with an agent logged in on it.
        match (c.kind(), c.login()) {
            (AppType::MediaServer | AppType::RoutingEngine, _) => Ok(Viewer::Service),
            (_, Some(l)) => Ok(Viewer::Agent(l)),
            (AppType::AgentApplication, None) => Err(Error::AgentNotLoggedIn(ctx.id)),
            (_, None) => Ok(Viewer::Service),
        }
    }

    /// Whether `who` sees `ix` through a snapshot (docs/behaviour.md, "Access"): an agent its
    /// tenant's interactions in the workbins it may access, those it or an agent it supervises
    /// handles, and, when it supervises a group, the queued ones; a service every one.
    fn sees(&self, who: Viewer, ix: &Interaction) -> bool {
        let Viewer::Agent(l) = who else {
            return true;
        };
        let me = &self.cfg[l.agent];
        me.tenant == ix.tenant
            && match ix.loc {
                Location::Queued(_) => !me.supervises.is_empty(),
                Location::InWorkbin(key) => access::may_access(&self.cfg, l, key),
                Location::Handling(a) => {
                    a == l.agent || self.cfg[a].groups.iter().any(|g| me.supervises.contains(g))
                }
            }
    }

    /// An interaction's properties as clients read them: with `IsLocked: 1` while locked.
    pub(super) fn client_properties(&self, ix: &Interaction) -> KvList {
        let mut p = ix.properties(&self.names);
        if self.snapshots.holder(&ix.id).is_some() {
            p.push(attr::IS_LOCKED, 1);
        }
        p
    }

    /// Fails with InteractionLocked when a client other than the requester holds `id`.
    pub(super) fn check_unlocked(&self, ctx: &Ctx, id: &str) -> Result<(), Error> {
        match self.snapshots.holder(id) {
            Some(h) if h != ctx.client => Err(Error::InteractionLocked {
                id: id.to_owned(),
                holder: self.sessions.client(h).map_or_else(
                    |_| h.to_string(),
                    |c| format!("application {:?} ({h})", &**c.name()),
                ),
            }),
            _ => Ok(()),
        }
    }

    fn idle(&self) -> Duration {
        Duration::from_secs(self.cfg.limits.snapshot_idle_secs)
    }

    /// Ends the snapshots unread for too long (before each request).
    pub(super) fn expire_snapshots(&mut self, now: SystemTime) {
        let idle = self.idle();
        self.snapshots.expire(now, idle);
    }

    /// The clients that ended: their snapshots and locks end.
    pub(super) fn end_clients(&mut self) {
        for c in self.sessions.take_ended() {
            self.snapshots.client_ended(c);
        }
    }

    fn view<'a>(&'a self, ix: &'a Interaction) -> View<'a> {
        View {
            ix,
            names: &self.names,
            locked: self.snapshots.holder(&ix.id).is_some(),
        }
    }

    /// The interactions `cond` may select: when it requires one queue, or one workbin instance
    /// (its type and owner), only those held there (an index each); else every interaction.
    fn candidates<'a>(
        &'a self,
        cond: &condition::Expr,
    ) -> Box<dyn Iterator<Item = &'a Interaction> + 'a> {
        let required = cond.required_values();
        let value = |p: Prop| required.iter().find(|(q, _)| *q == p).map(|(_, v)| *v);
        if let Some(queue) = value(Prop::Queue) {
            return match self.cfg.queue(queue) {
                Some(q) => Box::new(self.interactions.in_queue(q)),
                None => Box::new(std::iter::empty()),
            };
        }
        if let Some(ty) = value(Prop::WorkbinTypeId) {
            let owner = [
                (Prop::AgentId, ixn_config::OwnerKind::Agent),
                (Prop::PlaceId, ixn_config::OwnerKind::Place),
                (Prop::AgentGroupId, ixn_config::OwnerKind::AgentGroup),
                (Prop::PlaceGroupId, ixn_config::OwnerKind::PlaceGroup),
            ]
            .into_iter()
            .find_map(|(p, kind)| value(p).map(|name| (kind, name)));
            if let Some((kind, name)) = owner {
                let key = self.cfg.workbin(ty).and_then(|t| {
                    (self.cfg[t].owner == kind)
                        .then(|| access::owner_named(&self.cfg, kind, name))
                        .flatten()
                        .map(|owner| crate::types::BinKey { ty: t, owner })
                });
                return match key {
                    Some(key) => Box::new(
                        self.workbins
                            .items(key)
                            .filter_map(|id| self.interactions.get(id)),
                    ),
                    None => Box::new(std::iter::empty()),
                };
            }
        }
        Box::new(self.interactions.iter())
    }

    /// The interactions `who` sees that satisfy `cond`, ordered by `order` (then by
    /// ReceivedAt and InteractionId), at most `max`.
    fn select(
        &self,
        who: Viewer,
        cond: &condition::Expr,
        order: &condition::Order,
        max: usize,
        now: i64,
    ) -> Vec<ByteString> {
        let mut hits: Vec<&Interaction> = self
            .candidates(cond)
            .filter(|ix| self.sees(who, ix) && condition::eval(cond, &self.view(ix), now))
            .collect();
        let cmp = |a: &&Interaction, b: &&Interaction| {
            condition::order_cmp(order, &self.view(a), &self.view(b))
                .then_with(|| a.received_at.cmp(&b.received_at))
                .then_with(|| a.id.cmp(&b.id))
        };
        if hits.len() > max && max > 0 {
            // Only the first `max` in order are kept: no need to sort the rest.
            hits.select_nth_unstable_by(max - 1, cmp);
        }
        hits.truncate(max);
        hits.sort_unstable_by(cmp);
        hits.into_iter().map(|ix| ix.id.clone()).collect()
    }

    pub(super) fn take_snapshot(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: &typed::RequestTakeSnapshot,
    ) -> Result<Message, Error> {
        let who = self.viewer(ctx)?;
        let limits = &self.cfg.limits;
        if r.condition.len() > limits.max_condition_bytes {
            return Err(Error::LimitExceeded {
                limit: "max_condition_bytes",
                value: limits.max_condition_bytes,
                what: format!("the condition has {} bytes", r.condition.len()),
            });
        }
        let cond = condition::condition(&r.condition)
            .map_err(|e| Error::invalid(ctx.id, attr::CONDITION, e.to_string()))?;
        let order = condition::order(r.order.as_deref().unwrap_or(""))
            .map_err(|e| Error::invalid(ctx.id, attr::ORDER, e.to_string()))?;
        let cap = limits.max_interactions_per_snapshot;
        let max = match r.snapshot_max_interactions {
            Some(n) if n < 1 => {
                return Err(Error::invalid(
                    ctx.id,
                    attr::SNAPSHOT_MAX_INTERACTIONS,
                    format!("must be at least 1, found {n}"),
                ));
            }
            Some(n) => usize::try_from(n).unwrap_or(cap).min(cap),
            None => cap,
        };
        let held = limits.max_snapshots_per_client;
        if self.snapshots.held_by(ctx.client) >= held {
            return Err(Error::LimitExceeded {
                limit: "max_snapshots_per_client",
                value: held,
                what: "this client holds as many snapshots as it may: release one".to_owned(),
            });
        }
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let ids = self.select(who, &cond, &order, max, secs);
        let idle = self.idle();
        let sid = self.snapshots.open(ctx.client, Vec::new(), now, idle);
        let mut kept = Vec::with_capacity(ids.len());
        let mut not_locked = 0i32;
        for id in ids {
            if r.lock == Some(true) && !self.snapshots.lock(ctx.client, &id, Some(&sid)) {
                not_locked = not_locked.saturating_add(1);
            } else {
                kept.push(id);
            }
        }
        let n = i32::try_from(kept.len()).unwrap_or(i32::MAX);
        if let Some(s) = self.snapshots.get(ctx.client, &sid, now) {
            s.ids = kept;
        }
        let mut reply = Message::new(MessageId::EVENT_SNAPSHOT_TAKEN)
            .with(attr::SNAPSHOT_ID, sid)
            .with(attr::NUMBER_OF_INTERACTIONS, n);
        if r.lock == Some(true) {
            reply = reply.with(attr::NOT_LOCKED, not_locked);
        }
        Ok(reply)
    }

    pub(super) fn snapshot_page(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: &typed::RequestGetSnapshotInteractions,
    ) -> Result<Message, Error> {
        let who = self.viewer(ctx)?;
        let start = usize::try_from(r.start_from).map_err(|_| {
            Error::invalid(ctx.id, attr::START_FROM, "must be 0 or more".to_owned())
        })?;
        let cap = self.cfg.limits.max_interactions_per_snapshot;
        let n = match usize::try_from(r.number_of_interactions) {
            Ok(n) if n >= 1 => n.min(cap),
            _ => {
                return Err(Error::invalid(
                    ctx.id,
                    attr::NUMBER_OF_INTERACTIONS,
                    format!("must be at least 1 (at most {cap} are given)"),
                ));
            }
        };
        let page: Vec<ByteString> = self
            .snapshots
            .get(ctx.client, &r.snapshot_id, now)
            .ok_or_else(|| Error::UnknownSnapshot(r.snapshot_id.to_string()))?
            .ids
            .iter()
            .skip(start)
            .take(n)
            .cloned()
            .collect();
        let mut list = KvList::with_capacity(page.len());
        for id in page {
            // One gone since (or no longer visible) keeps its place, empty.
            let props = self
                .interactions
                .get(&id)
                .filter(|ix| self.sees(who, ix))
                .map(|ix| self.client_properties(ix))
                .unwrap_or_default();
            list.push(id, props);
        }
        Ok(Message::new(MessageId::EVENT_SNAPSHOT_INTERACTIONS)
            .with(attr::SNAPSHOT_ID, r.snapshot_id.clone())
            .with(attr::START_FROM, r.start_from)
            .with(attr::INTERACTIONS, list))
    }

    pub(super) fn release_snapshot(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestReleaseSnapshot,
    ) -> Result<Message, Error> {
        if self.snapshots.release(ctx.client, &r.snapshot_id) {
            Ok(Message::new(MessageId::EVENT_ACK))
        } else {
            Err(Error::UnknownSnapshot(r.snapshot_id.to_string()))
        }
    }

    /// The interaction `id` if `who` sees it (else UnknownInteraction or Forbidden).
    fn seen(&self, ctx: &Ctx, who: Viewer, id: &str) -> Result<&Interaction, Error> {
        let ix = self.interactions.find(id)?;
        if self.sees(who, ix) {
            Ok(ix)
        } else {
            Err(Error::Forbidden(format!(
                "{}: interaction {id:?} ({}) is not one this client may see",
                ctx.id,
                self.names.where_is(ix.loc)
            )))
        }
    }

    pub(super) fn lock(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: &typed::RequestLockInteraction,
    ) -> Result<Message, Error> {
        let who = self.viewer(ctx)?;
        let id = self.seen(ctx, who, &r.interaction_id)?.id.clone();
        if let Some(s) = &r.snapshot_id
            && self.snapshots.get(ctx.client, s, now).is_none()
        {
            return Err(Error::UnknownSnapshot(s.to_string()));
        }
        self.check_unlocked(ctx, &id)?;
        self.snapshots.lock(ctx.client, &id, r.snapshot_id.as_ref());
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn unlock(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestUnlockInteraction,
    ) -> Result<Message, Error> {
        let who = self.viewer(ctx)?;
        self.seen(ctx, who, &r.interaction_id)?;
        self.check_unlocked(ctx, &r.interaction_id)?;
        if self.snapshots.unlock(ctx.client, &r.interaction_id) {
            Ok(Message::new(MessageId::EVENT_ACK))
        } else {
            Err(Error::InvalidState(format!(
                "interaction {:?} is not locked",
                &*r.interaction_id
            )))
        }
    }

    /// Moves every interaction of the snapshot that still exists and may be moved: each one
    /// as its own RequestPlaceInQueue or RequestPlaceInWorkbin would (all or nothing, its
    /// subscribers told, its change recorded), the others listed with why.
    pub(super) fn move_interactions(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: &typed::RequestMoveInteractions,
    ) -> Result<Message, Error> {
        let who = self.viewer(ctx)?;
        match (&r.queue, &r.workbin) {
            (None, None) => return Err(Error::missing(ctx.id, "Queue or Workbin")),
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    ctx.id,
                    attr::WORKBIN,
                    "give Queue or Workbin, not both".to_owned(),
                ));
            }
            _ => {}
        }
        let ids = self
            .snapshots
            .get(ctx.client, &r.snapshot_id, now)
            .ok_or_else(|| Error::UnknownSnapshot(r.snapshot_id.to_string()))?
            .ids
            .clone();
        let mut moved = 0i32;
        let mut not_moved = KvList::new();
        for id in ids {
            let result =
                self.seen(ctx, who, &id)
                    .map(|_| ())
                    .and_then(|()| match (&r.queue, &r.workbin) {
                        (Some(queue), _) => self.place_in_queue(
                            ctx,
                            &typed::RequestPlaceInQueue {
                                interaction_id: id.clone(),
                                queue: queue.clone(),
                                ..Default::default()
                            },
                        ),
                        (None, Some(workbin)) => self.place_in_workbin(
                            ctx,
                            &typed::RequestPlaceInWorkbin {
                                interaction_id: id.clone(),
                                workbin: workbin.clone(),
                                ..Default::default()
                            },
                        ),
                        (None, None) => Err(Error::missing(ctx.id, "Queue or Workbin")),
                    });
            match result {
                Ok(_) => moved = moved.saturating_add(1),
                Err(e) => not_moved.push(
                    id,
                    KvList::new()
                        .with(attr::ERROR_CODE, e.code().to_int())
                        .with(attr::ERROR_DESCRIPTION, e.to_string()),
                ),
            }
        }
        Ok(Message::new(MessageId::EVENT_INTERACTION_MOVED)
            .with(attr::MOVED, moved)
            .with(attr::NOT_MOVED, not_moved))
    }
}
