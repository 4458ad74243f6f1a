//! The embedded connector: a fresh [`Engine`] per scenario, no sockets.

use crate::connector::{Connector, Session};
use crate::error::TransportError;
use crate::scenario::Scenario;
use ixn_codec::Message;
use ixn_core::{ConnId, Engine, Output};
use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

/// Runs scenarios against the bare engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Embedded;

impl Connector for Embedded {
    fn start(&mut self, scenario: &Scenario) -> Result<Box<dyn Session>, TransportError> {
        Ok(Box::new(EmbeddedSession {
            engine: Engine::new(scenario.config.clone(), 0x1c5e_ed00),
            conns: HashMap::new(),
            inbox: HashMap::new(),
            closed: HashMap::new(),
            clock: SystemTime::UNIX_EPOCH,
        }))
    }
}

struct EmbeddedSession {
    engine: Engine,
    conns: HashMap<String, ConnId>,
    inbox: HashMap<ConnId, VecDeque<Message>>,
    closed: HashMap<ConnId, bool>,
    clock: SystemTime,
}

impl EmbeddedSession {
    fn conn(&mut self, name: &str) -> ConnId {
        let next = ConnId(self.conns.len() as u64 + 1);
        let id = *self.conns.entry(name.to_owned()).or_insert(next);
        if id == next {
            self.engine.open(id);
        }
        id
    }

    /// Takes every snapshot under way to its end (as the server does, a slice at a time),
    /// then handles the requests that waited behind each.
    fn finish_scans(&mut self) {
        while self.engine.has_work() {
            let mut out = Vec::new();
            let done = self.engine.work(self.clock, &mut out);
            self.deliver(out);
            if let Some(done) = done {
                for m in done.held {
                    let mut out = Vec::new();
                    self.engine.handle(self.clock, done.conn, &m, &mut out);
                    self.deliver(out);
                }
            }
        }
    }

    fn deliver(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match &o {
                Output::Send { conn, .. } => {
                    if let Some(m) = o.message() {
                        self.inbox.entry(*conn).or_default().push_back(m);
                    }
                }
                Output::Close { conn, .. } => {
                    self.closed.insert(*conn, true);
                    let mut more = Vec::new();
                    self.engine.close(*conn, &mut more);
                    self.deliver(more);
                }
            }
        }
    }
}

impl Session for EmbeddedSession {
    fn send(&mut self, conn: &str, msg: &Message) -> Result<(), TransportError> {
        let id = self.conn(conn);
        if self.closed.get(&id).copied().unwrap_or(false) {
            return Err(format!("{conn}'s connection is closed").into());
        }
        let mut out = Vec::new();
        self.clock += std::time::Duration::from_secs(1);
        // As the server does before a registration reaches its engine (R15): the password is
        // checked here, proven to the engine, and removed.
        let mut stripped;
        let mut msg = msg;
        if msg.attrs.get(ixn_codec::attr::PASSWORD).is_some() {
            if let Some(proof) = ixn_core::verify_password(self.engine.config(), msg) {
                self.engine.prove(id, proof);
            }
            stripped = msg.clone();
            stripped.attrs.remove(ixn_codec::attr::PASSWORD);
            msg = &stripped;
        }
        self.engine.handle(self.clock, id, msg, &mut out);
        self.deliver(out);
        self.finish_scans();
        Ok(())
    }

    fn recv(&mut self, conn: &str) -> Result<Option<Message>, TransportError> {
        let id = self.conn(conn);
        Ok(self.inbox.get_mut(&id).and_then(VecDeque::pop_front))
    }

    fn silent(&mut self, conn: &str) -> Result<Option<Message>, TransportError> {
        self.recv(conn)
    }

    fn disconnect(&mut self, conn: &str) -> Result<(), TransportError> {
        let id = self.conn(conn);
        let mut out = Vec::new();
        self.engine.close(id, &mut out);
        self.closed.insert(id, true);
        self.deliver(out);
        Ok(())
    }

    fn closed(&mut self, conn: &str) -> Result<bool, TransportError> {
        let id = self.conn(conn);
        let empty = self.inbox.get(&id).is_none_or(VecDeque::is_empty);
        Ok(self.closed.get(&id).copied().unwrap_or(false) && empty)
    }
}
