//! Sessions: connections, the clients registered on them, agents' logins, and each client's
//! subscriptions (the workbin side of a subscription is in `workbins.rs`; the engine keeps the
//! two in step).

use crate::error::Error;
use crate::ids::ClientId;
use crate::output::ConnId;
use crate::types::{BinKey, Login};
use foldhash::fast::FixedState;
use ixn_codec::ByteString;
use ixn_config::{AgentIdx, AppType};
use std::collections::{HashMap, HashSet};

#[derive(Debug)]
struct Conn {
    /// The client registered first on this connection (plain client or the proxy itself).
    client: Option<ClientId>,
    /// True when `client` is a Proxy: further registrations create logical clients.
    proxy: bool,
    /// Logical clients of a proxy connection.
    logical: HashSet<ClientId, FixedState>,
    /// What the connection proved (R15); boxed, since most connections prove nothing.
    proofs: Option<Box<crate::auth::Proofs>>,
}

/// A registered client.
#[derive(Debug)]
pub(crate) struct Client {
    conn: ConnId,
    name: ByteString,
    kind: AppType,
    /// A logical client of a proxy connection: its messages carry its ProxyClientId.
    logical: bool,
    login: Option<Login>,
    subs: HashSet<BinKey, FixedState>,
}

impl Client {
    pub(crate) fn name(&self) -> &ByteString {
        &self.name
    }

    pub(crate) fn kind(&self) -> AppType {
        self.kind
    }

    pub(crate) fn login(&self) -> Option<Login> {
        self.login
    }
}

/// Who a message on a connection comes from.
pub(crate) enum Caller {
    /// A registered client (for a proxy connection, the one its ProxyClientId names, and
    /// `proxied` is true: the replies carry that id).
    Client { id: ClientId, proxied: bool },
    /// Nothing is registered on the connection (R3).
    Unregistered,
    /// A proxy connection's message names no registered logical client.
    UnknownLogical,
}

/// Where a client's messages go: its connection and, for a logical client, its ProxyClientId.
pub(crate) type Address = (ConnId, Option<ClientId>);

/// Connections, clients and logins.
#[derive(Debug)]
pub(crate) struct Sessions {
    conns: HashMap<ConnId, Conn, FixedState>,
    clients: HashMap<ClientId, Client, FixedState>,
    next_client: ClientId,
    /// Per agent (by index): the client it is logged in on.
    logins: Vec<Option<ClientId>>,
    /// Clients that ended since the engine last asked ([`Sessions::take_ended`]): their
    /// snapshots and locks end with them.
    ended: Vec<ClientId>,
    hasher: FixedState,
}

impl Sessions {
    pub(crate) fn new(agents: usize, hasher: FixedState) -> Self {
        Self {
            conns: HashMap::with_hasher(hasher.clone()),
            clients: HashMap::with_hasher(hasher.clone()),
            next_client: ClientId::FIRST,
            logins: vec![None; agents],
            ended: Vec::new(),
            hasher,
        }
    }

    fn conn_mut(&mut self, conn: ConnId) -> &mut Conn {
        let hasher = &self.hasher;
        self.conns.entry(conn).or_insert_with(|| Conn {
            client: None,
            proxy: false,
            logical: HashSet::with_hasher(hasher.clone()),
            proofs: None,
        })
    }

    /// A connection was accepted (known connections are left as they are).
    pub(crate) fn open(&mut self, conn: ConnId) {
        self.conn_mut(conn);
    }

    /// Records what `conn` proved (R15).
    pub(crate) fn prove(&mut self, conn: ConnId, proof: crate::auth::Proof) {
        self.conn_mut(conn)
            .proofs
            .get_or_insert_default()
            .add(proof);
    }

    /// What `conn` proved so far.
    pub(crate) fn proofs(&self, conn: ConnId) -> Option<&crate::auth::Proofs> {
        self.conns.get(&conn).and_then(|c| c.proofs.as_deref())
    }

    /// Forgets a connection that registered nothing (after R2/R3 the driver closes it).
    pub(crate) fn drop_unregistered(&mut self, conn: ConnId) {
        if self.conns.get(&conn).is_some_and(|c| c.client.is_none()) {
            self.conns.remove(&conn);
        }
    }

    /// True when `conn` has a registered client.
    pub(crate) fn is_registered(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.client.is_some())
    }

    /// Who sends a message on `conn` naming `proxy_client_id`.
    pub(crate) fn caller(&mut self, conn: ConnId, proxy_client_id: Option<i32>) -> Caller {
        let c = self.conn_mut(conn);
        match (c.client, c.proxy) {
            (None, _) => Caller::Unregistered,
            (Some(own), false) => Caller::Client {
                id: own,
                proxied: false,
            },
            (Some(own), true) => match proxy_client_id.and_then(ClientId::from_wire) {
                Some(id) if id == own || c.logical.contains(&id) => {
                    Caller::Client { id, proxied: true }
                }
                _ => Caller::UnknownLogical,
            },
        }
    }

    /// Registers a client on `conn`: the connection's own client, or a logical client of a
    /// proxy connection (at most `max_logical`).
    pub(crate) fn register(
        &mut self,
        conn: ConnId,
        name: ByteString,
        kind: AppType,
        max_logical: usize,
    ) -> Result<ClientId, Error> {
        let c = self.conn_mut(conn);
        let logical = match (c.client, c.proxy) {
            (None, _) => false,
            (Some(_), true) if kind == AppType::Proxy => {
                return Err(Error::InvalidState(
                    "a proxy connection cannot register another Proxy".to_owned(),
                ));
            }
            (Some(_), true) if c.logical.len() >= max_logical => {
                return Err(Error::LimitExceeded {
                    limit: "max_clients_per_connection",
                    value: max_logical,
                    what: "no more logical clients on this proxy connection".to_owned(),
                });
            }
            (Some(_), true) => true,
            (Some(own), false) => {
                return Err(Error::InvalidState(format!(
                    "this connection already has a registered client (ProxyClientId {}); \
                     send RequestUnregisterClient first",
                    own.get()
                )));
            }
        };
        let id = self.allocate();
        let c = self.conn_mut(conn);
        if logical {
            c.logical.insert(id);
        } else {
            c.client = Some(id);
            c.proxy = kind == AppType::Proxy;
        }
        self.clients.insert(
            id,
            Client {
                conn,
                name,
                kind,
                logical,
                login: None,
                subs: HashSet::with_hasher(self.hasher.clone()),
            },
        );
        Ok(id)
    }

    /// The next free id (unique among live clients).
    fn allocate(&mut self) -> ClientId {
        loop {
            let id = self.next_client;
            self.next_client = id.next();
            if !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn client(&self, id: ClientId) -> Result<&Client, Error> {
        self.clients
            .get(&id)
            .ok_or(Error::ClientNotRegistered("client is gone"))
    }

    /// Where the client's messages go.
    pub(crate) fn address(&self, id: ClientId) -> Option<Address> {
        self.clients
            .get(&id)
            .map(|c| (c.conn, c.logical.then_some(id)))
    }

    /// Unregisters a client; the connection's own client takes its logical clients with it.
    /// Returns the subscriptions of every client that ended.
    pub(crate) fn unregister(&mut self, id: ClientId) -> Vec<(ClientId, BinKey)> {
        let mut ended = vec![id];
        if let Some(conn) = self.clients.get(&id).map(|c| c.conn)
            && let Some(c) = self.conns.get_mut(&conn)
        {
            if c.client == Some(id) {
                ended.extend(c.logical.drain());
                c.client = None;
                c.proxy = false;
            } else {
                c.logical.remove(&id);
            }
        }
        ended.into_iter().flat_map(|id| self.end(id)).collect()
    }

    /// A connection ended: every client on it ends. Returns their subscriptions.
    pub(crate) fn close(&mut self, conn: ConnId) -> Vec<(ClientId, BinKey)> {
        let Some(c) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        c.logical
            .into_iter()
            .chain(c.client)
            .flat_map(|id| self.end(id))
            .collect()
    }

    /// Logs the client out and forgets it; returns its subscriptions.
    fn end(&mut self, id: ClientId) -> Vec<(ClientId, BinKey)> {
        let subs = self.logout(id);
        if self.clients.remove(&id).is_some() {
            self.ended.push(id);
        }
        subs
    }

    /// The clients that ended since the last call.
    pub(crate) fn take_ended(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.ended)
    }

    /// Logs an agent in on a client that has no login, the agent being logged in nowhere (the
    /// engine checks both first).
    pub(crate) fn set_login(&mut self, id: ClientId, login: Login) {
        debug_assert!(self.logged_in_on(login.agent).is_none());
        if let Some(slot) = self.logins.get_mut(login.agent.get()) {
            *slot = Some(id);
        }
        if let Some(c) = self.clients.get_mut(&id) {
            c.login = Some(login);
        }
    }

    /// The client the agent is logged in on.
    pub(crate) fn logged_in_on(&self, agent: AgentIdx) -> Option<ClientId> {
        self.logins.get(agent.get()).copied().flatten()
    }

    /// Ends the client's login (if any) and all its subscriptions (R4); returns them.
    pub(crate) fn logout(&mut self, id: ClientId) -> Vec<(ClientId, BinKey)> {
        let Some(c) = self.clients.get_mut(&id) else {
            return Vec::new();
        };
        let login = c.login.take();
        let subs = c.subs.drain().map(|k| (id, k)).collect();
        if let Some(l) = login
            && let Some(slot) = self.logins.get_mut(l.agent.get())
        {
            *slot = None;
        }
        subs
    }

    /// Records a subscription; at most `limit` per client.
    pub(crate) fn subscribe(
        &mut self,
        id: ClientId,
        key: BinKey,
        limit: usize,
        label: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        let c = self
            .clients
            .get_mut(&id)
            .ok_or(Error::ClientNotRegistered("client is gone"))?;
        if !c.subs.contains(&key) && c.subs.len() >= limit {
            return Err(Error::LimitExceeded {
                limit: "max_subscriptions_per_client",
                value: limit,
                what: format!("cannot subscribe to workbin {}", label()),
            });
        }
        c.subs.insert(key);
        Ok(())
    }

    /// Drops a subscription; false when the client held none to `key`.
    pub(crate) fn unsubscribe(&mut self, id: ClientId, key: BinKey) -> bool {
        self.clients
            .get_mut(&id)
            .is_some_and(|c| c.subs.remove(&key))
    }

    pub(crate) fn connections(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Clients by type: AgentApplication, MediaServer, RoutingEngine, Proxy.
    pub(crate) fn clients_by_type(&self) -> [usize; 4] {
        let mut by = [0usize; 4];
        for c in self.clients.values() {
            let i = match c.kind {
                AppType::AgentApplication => 0,
                AppType::MediaServer => 1,
                AppType::RoutingEngine => 2,
                AppType::Proxy => 3,
            };
            if let Some(n) = by.get_mut(i) {
                *n += 1;
            }
        }
        by
    }

    pub(crate) fn logins(&self) -> usize {
        self.logins.iter().filter(|l| l.is_some()).count()
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.clients.values().map(|c| c.subs.len()).sum()
    }

    /// Every connection (own client, proxy, logical clients) and client (for inspection in
    /// tests).
    #[cfg(any(test, fuzzing, feature = "model"))]
    pub(crate) fn inspect(&self) -> (Vec<ConnView>, Vec<(ClientId, &Client)>) {
        let conns = self
            .conns
            .iter()
            .map(|(id, c)| {
                let mut logical: Vec<ClientId> = c.logical.iter().copied().collect();
                logical.sort();
                (*id, c.client, c.proxy, logical)
            })
            .collect();
        let clients = self.clients.iter().map(|(id, c)| (*id, c)).collect();
        (conns, clients)
    }
}

/// A connection for inspection: id, own client, proxy or not, logical clients (sorted).
#[cfg(any(test, fuzzing, feature = "model"))]
pub(crate) type ConnView = (ConnId, Option<ClientId>, bool, Vec<ClientId>);

#[cfg(any(test, fuzzing, feature = "model"))]
impl Client {
    pub(crate) fn conn(&self) -> ConnId {
        self.conn
    }

    pub(crate) fn is_logical(&self) -> bool {
        self.logical
    }

    pub(crate) fn subscription_keys(&self) -> impl Iterator<Item = BinKey> + '_ {
        self.subs.iter().copied()
    }
}
