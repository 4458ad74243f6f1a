//! The requests that create, move, change, read and end interactions (R11, R12).

use super::{Actor, Ctx, Engine};
use crate::access;
use crate::error::Error;
use crate::interactions::{Interaction, interaction_size};
use crate::types::Location;
use ixn_codec::typed;
use ixn_codec::{
    ByteString, KvList, Message, MessageId, Value, WorkbinContentOperation, attr, detach_str,
};
use ixn_config::AppType;
use std::time::SystemTime;

/// Longest client-supplied InteractionId accepted.
const MAX_SUPPLIED_ID: usize = 64;
/// The only ViewId RequestPull accepts.
const SYSTEM_VIEW: &str = "_system_";

impl Engine {
    fn actor(&self, ctx: &Ctx) -> Result<Actor, Error> {
        let c = self.sessions.client(ctx.client)?;
        match (c.kind(), c.login()) {
            (AppType::MediaServer | AppType::RoutingEngine, _) => Ok(Actor::Service),
            (_, Some(l)) => Ok(Actor::Agent(l)),
            (_, None) => Err(Error::AgentNotLoggedIn(ctx.id)),
        }
    }

    /// May `actor` act on `ix` (place, move, pull, stop, change or read it)?
    fn check_may_act(&self, actor: Actor, ix: &Interaction) -> Result<(), Error> {
        let Actor::Agent(l) = actor else {
            return Ok(());
        };
        if access::may_act(&self.cfg, l, ix.tenant, ix.loc) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "agent {:?} may not act on interaction {:?} ({})",
                &**self.names.agent(l.agent),
                &*ix.id,
                self.names.where_is(ix.loc)
            )))
        }
    }

    fn props_of(&self, id: &str) -> KvList {
        self.interactions
            .get(id)
            .map(|ix| self.client_properties(ix))
            .unwrap_or_default()
    }

    /// Takes the interaction out of the workbin it is in, if any: TakenOut (with its
    /// properties as they were) to that workbin's subscribers, and the instance dropped when
    /// left empty. Every way out of a workbin goes through here.
    fn leave_workbin(&mut self, id: &str) {
        let Some(Location::InWorkbin(key)) = self.interactions.get(id).map(|ix| ix.loc) else {
            return;
        };
        // Built only if the workbin has subscribers, and before anything moves.
        self.notify(key, WorkbinContentOperation::TakenOut, |e| e.props_of(id));
        self.workbins.take_out(key, id);
    }

    /// Moves an interaction to `to`: TakenOut on the workbin it leaves, then PlacedIn on the
    /// one it enters.
    fn relocate(&mut self, id: &ByteString, to: Location) {
        self.leave_workbin(id);
        self.interactions.set_location(id, to);
        if let Location::InWorkbin(new) = to {
            self.workbins.put(new, id.clone());
            self.notify(new, WorkbinContentOperation::PlacedIn, |e| e.props_of(id));
        }
        self.record_move(id);
    }

    pub(super) fn submit(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: typed::RequestSubmit,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        if !self.cfg.tenants.contains_key(&r.tenant_id) {
            return Err(Error::UnknownTenant(r.tenant_id));
        }
        if let Actor::Agent(l) = actor
            && self.cfg[l.agent].tenant != r.tenant_id
        {
            return Err(Error::Forbidden(format!(
                "agent {:?} may not submit into tenant {}",
                &**self.names.agent(l.agent),
                r.tenant_id
            )));
        }
        let queue = access::queue_in(&self.cfg, ctx.id, &r.queue, r.tenant_id)?;
        if let Some(id) = &r.interaction_id {
            if id.is_empty() || id.len() > MAX_SUPPLIED_ID || id.chars().any(char::is_control) {
                return Err(Error::invalid(
                    ctx.id,
                    attr::INTERACTION_ID,
                    format!("must be 1 to {MAX_SUPPLIED_ID} bytes without control characters"),
                ));
            }
            if self.interactions.contains(id) {
                return Err(Error::DuplicateInteraction(id.to_string()));
            }
        }
        let limit = self.cfg.limits.max_interactions;
        if self.interactions.len() >= limit {
            return Err(Error::LimitExceeded {
                limit: "max_interactions",
                value: limit,
                what: "the server holds as many interactions as it may".to_owned(),
            });
        }
        let submitted_by = self.sessions.client(ctx.client)?.name().clone();
        // A generated id and ReceivedAt have a fixed length: the size is known before either
        // is made (a refused request changes nothing, not even the id generator).
        let size = interaction_size(
            &[
                r.interaction_id.as_deref().unwrap_or("0123456789abcdef"),
                &r.media_type,
                &r.interaction_type,
                r.interaction_subtype.as_deref().unwrap_or(""),
                &submitted_by,
                "2000-01-01T00:00:00Z",
            ],
            r.user_data.as_ref(),
        );
        self.interactions.check_size(&self.cfg.limits, size, 0)?;
        // Everything stored is detached from the request's frame (see `Value::detached`).
        let generated = r.interaction_id.is_none();
        let id = match r.interaction_id {
            Some(id) => detach_str(&id),
            None => self.interactions.new_id(),
        };
        self.interactions.insert(Interaction {
            id: id.clone(),
            tenant: r.tenant_id,
            media_type: detach_str(&r.media_type),
            interaction_type: detach_str(&r.interaction_type),
            subtype: r.interaction_subtype.as_ref().map(detach_str),
            loc: Location::Queued(queue),
            submitted_by,
            received_at: ByteString::from(humantime::format_rfc3339_seconds(now).to_string()),
            received: now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            user_data: r
                .user_data
                .as_ref()
                .map(KvList::detached)
                .unwrap_or_default(),
        });
        if generated {
            self.record_ids();
        }
        self.record_put(&id);
        Ok(Message::new(MessageId::EVENT_ACK).with(attr::INTERACTION_ID, id))
    }

    pub(super) fn place_in_workbin(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestPlaceInWorkbin,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let login = match actor {
            Actor::Agent(l) => Some(l),
            Actor::Service => None,
        };
        let key = access::resolve(&self.cfg, ctx.id, &r.workbin, login)?;
        let ix = self.interactions.find(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        self.check_unlocked(ctx, &ix.id)?;
        let type_tenant = self.cfg[key.ty].tenant;
        match actor {
            Actor::Agent(l) if !access::may_access(&self.cfg, l, key) => {
                return Err(access::forbidden_bin(&self.names, l, key));
            }
            Actor::Service if type_tenant != ix.tenant => {
                return Err(Error::Forbidden(format!(
                    "interaction {:?} of tenant {} cannot go into workbin {} of tenant {type_tenant}",
                    &*ix.id,
                    ix.tenant,
                    self.names.bin_label(key)
                )));
            }
            _ => {}
        }
        if ix.loc == Location::InWorkbin(key) {
            return Ok(Message::new(MessageId::EVENT_ACK));
        }
        let limit = self.cfg.limits.max_interactions_per_workbin;
        if self.workbins.len(key) >= limit {
            return Err(Error::LimitExceeded {
                limit: "max_interactions_per_workbin",
                value: limit,
                what: format!("workbin {} is full", self.names.bin_label(key)),
            });
        }
        let id = ix.id.clone();
        self.relocate(&id, Location::InWorkbin(key));
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn place_in_queue(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestPlaceInQueue,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let ix = self.interactions.find(&r.interaction_id)?;
        let queue = access::queue_in(&self.cfg, ctx.id, &r.queue, ix.tenant)?;
        self.check_may_act(actor, ix)?;
        self.check_unlocked(ctx, &ix.id)?;
        if ix.loc != Location::Queued(queue) {
            let id = ix.id.clone();
            self.relocate(&id, Location::Queued(queue));
        }
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn pull(&mut self, ctx: &Ctx, r: &typed::RequestPull) -> Result<Message, Error> {
        if &*r.view_id != SYSTEM_VIEW {
            return Err(Error::invalid(
                ctx.id,
                attr::VIEW_ID,
                format!("must be {SYSTEM_VIEW:?}"),
            ));
        }
        let id = match r.pull_parameters.get(attr::PULL_ID) {
            None => return Err(Error::missing(ctx.id, "PullParameters.id")),
            Some(Value::Str(id)) => id.clone(),
            Some(other) => {
                return Err(Error::invalid(
                    ctx.id,
                    "PullParameters.id",
                    format!("expected string, found {}", other.type_name()),
                ));
            }
        };
        let l = self.require_login(ctx)?;
        let from = r
            .workbin
            .as_ref()
            .map(|wb| access::resolve(&self.cfg, ctx.id, wb, Some(l)))
            .transpose()?;
        let ix = self.interactions.find(&id)?;
        self.check_may_act(Actor::Agent(l), ix)?;
        self.check_unlocked(ctx, &ix.id)?;
        if let Some(key) = from
            && ix.loc != Location::InWorkbin(key)
        {
            return Err(Error::InvalidState(format!(
                "interaction {:?} is not in workbin {} (it is {})",
                &*id,
                self.names.bin_label(key),
                self.names.where_is(ix.loc)
            )));
        }
        if ix.loc != Location::Handling(l.agent) {
            self.relocate(&id, Location::Handling(l.agent));
        }
        Ok(Message::new(MessageId::EVENT_PULLED_INTERACTIONS).with(
            attr::INTERACTIONS,
            KvList::new().with(id.clone(), self.props_of(&id)),
        ))
    }

    pub(super) fn stop(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestStopProcessing,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let ix = self.interactions.find(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        self.check_unlocked(ctx, &ix.id)?;
        self.leave_workbin(&r.interaction_id);
        if let Some(ix) = self.interactions.remove(&r.interaction_id) {
            self.record_delete(&ix.id);
        }
        self.snapshots.forget(&r.interaction_id);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn change_properties(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestChangeProperties,
    ) -> Result<Message, Error> {
        if r.changed_properties.is_none()
            && r.added_properties.is_none()
            && r.deleted_properties.is_none()
        {
            return Err(Error::missing(
                ctx.id,
                "ChangedProperties, AddedProperties or DeletedProperties (at least one)",
            ));
        }
        let actor = self.actor(ctx)?;
        let ix = self.interactions.find(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        self.check_unlocked(ctx, &ix.id)?;
        let loc = ix.loc;
        // The new UserData is built aside and measured: a change that would pass a size limit
        // is refused with nothing changed.
        let mut user_data = ix.user_data.clone();
        for list in [&r.added_properties, &r.changed_properties]
            .into_iter()
            .flatten()
        {
            for (k, v) in list {
                user_data.set(detach_str(k), v.detached());
            }
        }
        if let Some(deleted) = &r.deleted_properties {
            for (k, _) in deleted {
                user_data.remove(k);
            }
        }
        let (old, new) = (ix.size(), ix.size_with(&user_data));
        self.interactions.check_size(&self.cfg.limits, new, old)?;
        self.interactions
            .set_user_data(&r.interaction_id, user_data);
        if let Location::InWorkbin(key) = loc {
            let id = &r.interaction_id;
            self.notify(key, WorkbinContentOperation::PropertiesChanged, |e| {
                e.props_of(id)
            });
        }
        self.record_put(&r.interaction_id);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn get_properties(
        &self,
        ctx: &Ctx,
        r: &typed::RequestGetInteractionProperties,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let ix = self.interactions.find(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        Ok(Message::new(MessageId::EVENT_INTERACTION_PROPERTIES)
            .with(attr::INTERACTION, self.client_properties(ix)))
    }
}
