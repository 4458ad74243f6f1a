//! The snapshot and lock requests (docs/protocol.md, "Snapshots"): take a snapshot by a
//! condition, read it a page at a time, release it, lock and unlock interactions, and move a
//! snapshot's interactions to a queue or a workbin. Who sees what through a snapshot is
//! docs/behaviour.md's rule ("Access"), written once ([`Engine::sees`]); how a snapshot
//! selects is [`super::scan`].

use super::{Ctx, Engine, Reply};
use crate::condition;
use crate::error::Error;
use crate::interactions::Interaction;
use crate::scans::{Scan, TopK, Viewer};
use ixn_codec::typed;
use ixn_codec::{ByteString, KvList, Message, MessageId, attr};
use ixn_config::AppType;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    pub(super) fn idle(&self) -> Duration {
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

    /// Validates a RequestTakeSnapshot and starts its scan ([`super::scan`]): the answer now,
    /// or `None` when it comes from [`Engine::work`].
    pub(super) fn take_snapshot(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: &typed::RequestTakeSnapshot,
        from: (Reply, Option<i32>),
    ) -> Result<Option<Message>, Error> {
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
        let (reply, proxied) = from;
        let scan = Scan {
            conn: reply.conn,
            proxied,
            reference_id: reply.reference_id,
            proxy_client_id: reply.proxy_client_id,
            client: ctx.client,
            who,
            source: self.source(&cond, &order),
            cond: condition::cheapest_first(cond),
            secs,
            lock: r.lock == Some(true),
            top: TopK::new(max, order),
            held: VecDeque::new(),
        };
        self.start_scan(now, scan)
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
            .page(ctx.client, &r.snapshot_id, now, start, n)
            .ok_or_else(|| Error::UnknownSnapshot(r.snapshot_id.to_string()))?;
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
            .ids(ctx.client, &r.snapshot_id, now)
            .ok_or_else(|| Error::UnknownSnapshot(r.snapshot_id.to_string()))?;
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
