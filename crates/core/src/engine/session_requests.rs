//! Registration, login and the tenant's workbin types (R1-R4).

use super::{Ctx, Engine};
use crate::auth::Proofs;
use crate::error::Error;
use crate::ids::ClientId;
use crate::output::ConnId;
use crate::types::Login;
use ixn_codec::{ByteString, KvList, Message, MessageId, attr, typed};

impl Engine {
    pub(super) fn register(
        &mut self,
        conn: ConnId,
        r: &typed::RequestRegisterClient,
    ) -> Result<ClientId, Error> {
        let invalid = || Error::InvalidClient {
            name: r.client_name.to_string(),
            kind: r.client_type.to_string(),
        };
        let kind = crate::auth::app_type(r.client_type).ok_or_else(invalid)?;
        let auth = self
            .cfg
            .application(&r.client_name, kind)
            .ok_or_else(invalid)?;
        // R15: the connection's own registration proves the application; a proxy's logical
        // clients are covered by the proxy's.
        if !self.sessions.is_registered(conn)
            && let Some(reason) =
                Proofs::refusal(self.sessions.proofs(conn), &r.client_name, kind, auth)
        {
            return Err(Error::AuthenticationFailed {
                name: r.client_name.to_string(),
                reason,
            });
        }
        self.sessions.register(
            conn,
            ixn_codec::detach_str(&r.client_name),
            kind,
            self.cfg.limits.max_clients_per_connection,
        )
    }

    pub(super) fn unregister(&mut self, ctx: &Ctx) -> Result<Message, Error> {
        self.sessions.client(ctx.client)?;
        let subs = self.sessions.unregister(ctx.client);
        self.drop_subscriptions(subs);
        self.end_clients();
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn login(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestAgentLogin,
    ) -> Result<Message, Error> {
        if let Some(media) = &r.media_list
            && let Some((k, v)) = media.iter().find(|(_, v)| v.as_int().is_none())
        {
            return Err(Error::invalid(
                ctx.id,
                attr::MEDIA_LIST,
                format!(
                    "media {:?} must map to an int, found {}",
                    &**k,
                    v.type_name()
                ),
            ));
        }
        if !self.cfg.tenants.contains_key(&r.tenant_id) {
            return Err(Error::UnknownTenant(r.tenant_id));
        }
        let agent = self
            .cfg
            .agent(&r.agent_id)
            .filter(|&a| self.cfg[a].tenant == r.tenant_id)
            .ok_or_else(|| Error::UnknownAgent(r.agent_id.to_string()))?;
        let place = self
            .cfg
            .place(&r.place_id)
            .ok_or_else(|| Error::UnknownPlace(r.place_id.to_string()))?;
        if let Some(l) = self.sessions.client(ctx.client)?.login() {
            return if l.agent == agent {
                Ok(Message::new(MessageId::EVENT_ACK))
            } else {
                Err(Error::InvalidState(format!(
                    "agent {:?} is already logged in on this client; log out first",
                    &**self.names.agent(l.agent)
                )))
            };
        }
        if self.sessions.logged_in_on(agent).is_some() {
            return Err(Error::AgentLoggedInElsewhere(r.agent_id.to_string()));
        }
        self.sessions.set_login(ctx.client, Login { agent, place });
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(super) fn logout(&mut self, ctx: &Ctx) -> Result<Message, Error> {
        self.require_login(ctx)?;
        let subs = self.sessions.logout(ctx.client);
        self.drop_subscriptions(subs);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    /// RequestWorkbinTypesInfo: the tenant's workbin types.
    pub(super) fn workbin_types(
        &self,
        r: &typed::RequestWorkbinTypesInfo,
    ) -> Result<Message, Error> {
        if !self.cfg.tenants.contains_key(&r.tenant_id) {
            return Err(Error::UnknownTenant(r.tenant_id));
        }
        let mut types = KvList::new();
        for (ty, wt) in self.cfg.workbins().filter(|(_, w)| w.tenant == r.tenant_id) {
            let info = KvList::new()
                .with(attr::ACTIVE, 1)
                .with(attr::OWNER_TYPE, ByteString::from_static(wt.owner.name()));
            types.push(self.names.workbin(ty).clone(), info);
        }
        Ok(Message::new(MessageId::EVENT_WORKBIN_TYPES_INFO).with(attr::WORKBIN_TYPES, types))
    }
}
