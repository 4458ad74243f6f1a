//! Reading, listing and subscribing to workbins (R5-R10).

use super::{Ctx, Engine};
use crate::access;
use crate::error::Error;
use crate::types::{BinKey, Login};
use ixn_codec::typed::{self, WorkbinInfo};
use ixn_codec::{KvList, Message, MessageId, attr};

impl Engine {
    /// Resolution and access for the requests that read or subscribe (agent required).
    fn readable_bin(&self, ctx: &Ctx, wb: &WorkbinInfo) -> Result<(Login, BinKey), Error> {
        let l = self.require_login(ctx)?;
        let key = access::resolve(&self.cfg, ctx.id, wb, Some(l))?;
        if !access::may_access(&self.cfg, l, key) {
            return Err(access::forbidden_bin(&self.names, l, key));
        }
        Ok((l, key))
    }

    /// R5/R6.
    pub(super) fn content(
        &self,
        ctx: &Ctx,
        r: &typed::RequestGetWorkbinContent,
    ) -> Result<Message, Error> {
        let (_, key) = self.readable_bin(ctx, &r.workbin)?;
        let mut list = KvList::with_capacity(self.workbins.len(key));
        for id in self.workbins.items(key) {
            if let Some(ix) = self.interactions.get(id) {
                list.push(id.clone(), self.client_properties(ix));
            }
        }
        Ok(Message::new(MessageId::EVENT_WORKBIN_CONTENT)
            .with(attr::WORKBIN, self.names.bin_info(key))
            .with(attr::INTERACTIONS, list))
    }

    /// RequestGetWorkbins: every instance the agent may access (the logged-in one, or the one
    /// named, listed without a place unless it is the logged-in one).
    pub(super) fn workbins_of(
        &self,
        ctx: &Ctx,
        r: &typed::RequestGetWorkbins,
    ) -> Result<Message, Error> {
        let login = self.sessions.client(ctx.client)?.login();
        let (agent, place) = match (&r.agent_id, login) {
            (None, Some(l)) => (l.agent, Some(l.place)),
            (None, None) => return Err(Error::AgentNotLoggedIn(ctx.id)),
            (Some(name), _) => {
                let a = self
                    .cfg
                    .agent(name)
                    .ok_or_else(|| Error::UnknownAgent(name.to_string()))?;
                (a, login.filter(|l| l.agent == a).map(|l| l.place))
            }
        };
        // Type to owner to WorkbinInfo: keys stay unique (one owner kind per type).
        let mut list = KvList::new();
        let mut current: Option<(ixn_config::WorkbinTypeIdx, KvList)> = None;
        for key in access::accessible(&self.cfg, agent, place) {
            match &mut current {
                Some((ty, owners)) if *ty == key.ty => {
                    owners.push(
                        self.names.owner(key.owner).clone(),
                        self.names.bin_info(key),
                    );
                }
                _ => {
                    if let Some((ty, owners)) = current.take() {
                        list.push(self.names.workbin(ty).clone(), owners);
                    }
                    let owners = KvList::new().with(
                        self.names.owner(key.owner).clone(),
                        self.names.bin_info(key),
                    );
                    current = Some((key.ty, owners));
                }
            }
        }
        if let Some((ty, owners)) = current {
            list.push(self.names.workbin(ty).clone(), owners);
        }
        Ok(Message::new(MessageId::EVENT_WORKBINS).with(attr::WORKBINS, list))
    }

    /// R7/R8.
    pub(super) fn subscribe(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestWorkbinNotifications,
    ) -> Result<Message, Error> {
        let (_, key) = self.readable_bin(ctx, &r.workbin)?;
        let wants_props = r.notify_property_changes.unwrap_or(false);
        let names = &self.names;
        self.sessions.subscribe(
            ctx.client,
            key,
            self.cfg.limits.max_subscriptions_per_client,
            || names.bin_label(key),
        )?;
        self.workbins.subscribe(key, ctx.client, wants_props);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    /// R9/R10.
    pub(super) fn unsubscribe(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestCancelWorkbinNotifications,
    ) -> Result<Message, Error> {
        let l = self.require_login(ctx)?;
        let key = access::resolve(&self.cfg, ctx.id, &r.workbin, Some(l))?;
        if !self.sessions.unsubscribe(ctx.client, key) {
            return Err(Error::NotSubscribed(self.names.bin_label(key)));
        }
        self.workbins.unsubscribe(key, ctx.client);
        Ok(Message::new(MessageId::EVENT_ACK))
    }
}
