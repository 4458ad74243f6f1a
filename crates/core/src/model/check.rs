//! Running an operation sequence against the engine and the model side by side, checking the
//! invariants after each request (one reply first, the predicted outcome, nothing changed by a
//! failure, listings, notifications, locations), and at the end what a store rebuilds.

use super::ops::{CONFIG_JSON, Op};
use super::reference::{Effect, Model, Predict};
use super::requests::request;
use crate::inspect::{State, Where};
use crate::{ConnId, Engine, Output};
use ixn_codec::{ByteString, ErrorCode, KvList, Message, MessageId, attr};
use ixn_config::Config;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

/// The engine under test, beside the model, and the changes it recorded.
struct Run<'a> {
    engine: Engine,
    model: Model,
    journal: Vec<Message>,
    store: &'a mut dyn Keeper,
}

/// What one request produced.
struct Handled {
    out: Vec<Output>,
    reply: Message,
    closed: bool,
    /// How many changes the journal held before it.
    journal_before: usize,
}

/// A store under test: it keeps each request's changes and gives back what it stored.
pub trait Keeper {
    /// Keeps one request's changes (the first call gets the new engine's snapshot).
    fn keep(&mut self, changes: &[Message]) -> Result<(), String>;
    /// Everything kept, as a store gives it back at start.
    fn reload(&mut self) -> Result<Vec<Message>, String>;
    /// Whether it applies Move changes (see [`Engine::record_moves`]); by default it gets Puts.
    fn moves(&self) -> bool {
        false
    }
}

/// The journal's shape: every change, in order.
#[derive(Debug, Default)]
struct InMemory(Vec<Message>);

impl Keeper for InMemory {
    fn keep(&mut self, changes: &[Message]) -> Result<(), String> {
        self.0.extend_from_slice(changes);
        Ok(())
    }
    fn reload(&mut self) -> Result<Vec<Message>, String> {
        Ok(std::mem::take(&mut self.0))
    }
    fn moves(&self) -> bool {
        true
    }
}

/// Runs `ops` against a fresh engine and the model; `Err` describes the first broken invariant.
pub fn check_ops(ops: &[Op]) -> Result<(), String> {
    check_ops_with(ops, &mut InMemory::default())
}

/// The fuzz target's body: panics when an invariant breaks.
pub fn core_ops(data: &[u8]) {
    let ops = Op::from_bytes(data);
    if let Err(e) = check_ops(&ops) {
        // A broken invariant is exactly what the fuzzer looks for.
        #[allow(clippy::panic)]
        {
            panic!("{e}");
        }
    }
}

/// [`check_ops`], keeping every request's changes in `store` as well: what it
/// reloads must rebuild the same interactions and id generator as the engine holds at the end.
pub fn check_ops_with(ops: &[Op], store: &mut dyn Keeper) -> Result<(), String> {
    // Parsed once per process: the fuzzer calls this hundreds of thousands of times.
    static CONFIG: std::sync::OnceLock<Result<Arc<Config>, String>> = std::sync::OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            Config::from_json_str(CONFIG_JSON, "conformance/config.json")
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()?;
    let mut engine = Engine::new(config.clone(), 0x5eed);
    engine.record_changes(true);
    engine.record_moves(store.moves());
    // A new store starts with the engine's snapshot (it pins the id generator's prefix).
    let journal: Vec<Message> = engine.snapshot();
    store.keep(&journal)?;
    let mut run = Run {
        engine,
        model: Model::default(),
        journal,
        store,
    };
    for (i, &op) in ops.iter().enumerate() {
        run.step(i, op)
            .map_err(|what| format!("op {} {op:?}: {what}", i + 1))?;
    }
    run.check_durability(&config)
}

impl Run<'_> {
    /// Operation `i` (from 0): handled by the engine and the model, every invariant checked.
    fn step(&mut self, i: usize, op: Op) -> Result<(), String> {
        let c = op.conn();
        let conn = ConnId(u64::from(c));
        let reference = i32::try_from(i + 1).unwrap_or(i32::MAX);
        let Some(req) = request(op, &self.model, reference) else {
            // Disconnect.
            let mut out = Vec::new();
            self.engine.close(conn, &mut out);
            if !out.is_empty() {
                return Err(format!("close produced output {out:?}"));
            }
            self.model.end_client(c);
            return Ok(());
        };
        let predicted = self.model.predict(op);
        let before = self.engine.inspect();
        let handled = self.handle(conn, &req, reference)?;
        check_outcome(&predicted, &handled)?;
        let Predict::Ok(effect) = predicted else {
            if let Predict::ErrClose(_) = predicted {
                // The driver closes the connection; the engine already forgot it.
                let mut more = Vec::new();
                self.engine.close(conn, &mut more);
            }
            return self.check_unchanged(c, before, &handled);
        };
        // Replies that list things list what the model holds.
        if let Effect::Content(wb) = &effect {
            check_content(&self.model, wb, &handled.reply)?;
        }
        super::snapshots::check_reply(&self.model, c, &effect, &handled.reply)?;
        check_notifications(&self.model.notifications(&effect), &handled.out)?;
        self.model.apply(c, effect, &handled.reply);
        self.check_locations()
    }

    /// Hands `req` to the engine, keeps its changes, and checks that it got exactly one reply,
    /// first among what the requester gets, with its ReferenceId.
    fn handle(&mut self, conn: ConnId, req: &Message, reference: i32) -> Result<Handled, String> {
        let mut out = Vec::new();
        self.engine
            .handle(SystemTime::UNIX_EPOCH, conn, req, &mut out);
        let journal_before = self.journal.len();
        self.engine.drain_changes(&mut self.journal);
        if let Some(new) = self.journal.get(journal_before..)
            && !new.is_empty()
        {
            self.store
                .keep(new)
                .map_err(|e| format!("the store failed: {e}"))?;
        }
        let to_me: Vec<&Output> = out.iter().filter(|o| o.conn() == conn).collect();
        let replies: Vec<Message> = to_me
            .iter()
            .filter_map(|o| o.message())
            .filter(|m| m.id != MessageId::EVENT_WORKBIN_CONTENT_CHANGED)
            .collect();
        let [reply] = replies.as_slice() else {
            return Err(format!("{} replies: {replies:?}", replies.len()));
        };
        if to_me.first().and_then(|o| o.message()).as_ref() != Some(reply) {
            return Err("the reply is not the first message to the requester".into());
        }
        if reply.reference_id() != Some(reference) {
            return Err(format!("reply has ReferenceId {:?}", reply.reference_id()));
        }
        let closed = out.iter().any(|o| matches!(o, Output::Close { .. }));
        Ok(Handled {
            reply: reply.clone(),
            out,
            closed,
            journal_before,
        })
    }

    /// A failed request changed nothing, recorded nothing and produced only its reply (and,
    /// for R2/R3, the close).
    fn check_unchanged(&self, c: u8, before: State, handled: &Handled) -> Result<(), String> {
        // A connection closed for R2/R3 registered nothing; the engine forgot it.
        let without_conn = |mut state: State| {
            if state
                .conns
                .get(&u64::from(c))
                .is_some_and(|s| s.client.is_none())
            {
                state.conns.remove(&u64::from(c));
            }
            state
        };
        let (before, after) = (without_conn(before), without_conn(self.engine.inspect()));
        if before != after {
            return Err(format!(
                "a failed request changed the state:\n{before:#?}\n{after:#?}"
            ));
        }
        if self.journal.len() != handled.journal_before {
            return Err(format!(
                "a failed request recorded changes: {:?}",
                self.journal.get(handled.journal_before..)
            ));
        }
        if handled.out.len() != 1 + usize::from(handled.closed) {
            return Err(format!("a failed request produced {:?}", handled.out));
        }
        Ok(())
    }

    /// Every interaction is where the model says, and there are no others.
    fn check_locations(&self) -> Result<(), String> {
        for (id, loc) in &self.model.ix {
            let at_engine = self.engine.location(id);
            if at_engine.as_ref() != Some(&model_where(loc)) {
                return Err(format!("{id} is at {at_engine:?}, model says {loc}"));
            }
        }
        if self.engine.stats().interactions != self.model.ix.len() {
            return Err(format!(
                "engine holds {} interactions, model {}",
                self.engine.stats().interactions,
                self.model.ix.len()
            ));
        }
        Ok(())
    }

    /// Durability: the journal, a snapshot and the store each rebuild the same interactions and
    /// id generator.
    fn check_durability(self, config: &Arc<Config>) -> Result<(), String> {
        let want = self.engine.durable_state();
        follow_without_engine(&self.journal, &self.engine.snapshot())?;
        let kept = self.store.reload()?;
        for (what, changes) in [
            ("journal", self.journal),
            ("snapshot", self.engine.snapshot()),
            ("store", kept),
        ] {
            let mut fresh = Engine::new(config.clone(), 1);
            let restored = fresh.restore(changes);
            let got = fresh.durable_state();
            if got != want || restored.dropped + restored.relocated != 0 {
                return Err(format!(
                    "restoring from the {what} gives {got:#?}\nnot {want:#?}"
                ));
            }
            // The id generator continues where it was: no generated id is ever reused.
            if fresh.snapshot().first() != self.engine.snapshot().first() {
                return Err(format!(
                    "restoring from the {what} loses the id generator's state"
                ));
            }
        }
        Ok(())
    }
}

/// The outcome is the one the model predicts.
fn check_outcome(predicted: &Predict, handled: &Handled) -> Result<(), String> {
    let (reply, closed) = (&handled.reply, handled.closed);
    let code = (reply.id == MessageId::EVENT_ERROR)
        .then(|| {
            reply
                .attrs
                .get_int(attr::ERROR_CODE)
                .map(ErrorCode::from_int)
        })
        .flatten();
    match (predicted, code) {
        (Predict::Ok(_), None) if !closed => Ok(()),
        (Predict::Err(want), Some(got)) if *want == got && !closed => Ok(()),
        (Predict::ErrClose(want), Some(got)) if *want == got && closed => Ok(()),
        _ => Err(format!(
            "predicted {predicted:?}, got {reply:?} (closed: {closed})"
        )),
    }
}

/// A content reply lists exactly the model's interactions in workbin `wb`.
fn check_content(model: &Model, wb: &str, reply: &Message) -> Result<(), String> {
    let listed: BTreeSet<String> = reply
        .attrs
        .get_list(attr::INTERACTIONS)
        .map(|l| l.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default();
    let want: BTreeSet<String> = model
        .ix
        .iter()
        .filter(|(_, loc)| loc.strip_prefix("workbin ") == Some(wb))
        .map(|(id, _)| id.clone())
        .collect();
    if listed != want {
        return Err(format!("content lists {listed:?}, model has {want:?}"));
    }
    Ok(())
}

/// Notifications go exactly to the model's subscribers, group by group, in order.
fn check_notifications(
    expected: &[(i32, String, BTreeSet<u8>)],
    out: &[Output],
) -> Result<(), String> {
    let mut got: Vec<(i32, String, u8)> = Vec::new();
    for o in out {
        let Some(m) = o.message() else { continue };
        if m.id != MessageId::EVENT_WORKBIN_CONTENT_CHANGED {
            continue;
        }
        let opn = m
            .attrs
            .get_int(attr::WORKBIN_CONTENT_OPERATION)
            .unwrap_or(0);
        let wb = m.attrs.get_list(attr::WORKBIN).map(|w| {
            let ty = w
                .get_str(attr::WORKBIN_TYPE_ID)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let owner = w
                .iter()
                .nth(1)
                .and_then(|(_, v)| v.as_str())
                .map(|s| s.to_string())
                .unwrap_or_default();
            format!("{ty}/{owner}")
        });
        let to = u8::try_from(o.conn().0).unwrap_or(u8::MAX);
        got.push((opn, wb.unwrap_or_default(), to));
    }
    let mut cursor = 0;
    for (opn, wb, to) in expected {
        let group: BTreeSet<u8> = got
            .iter()
            .skip(cursor)
            .take(to.len())
            .filter(|(o, w, _)| o == opn && w == wb)
            .map(|(_, _, c)| *c)
            .collect();
        if &group != to {
            return Err(format!("expected {opn} on {wb} to {to:?}, got {got:?}"));
        }
        cursor += to.len();
    }
    if cursor != got.len() {
        return Err(format!(
            "unexpected notifications: expected {expected:?}, got {got:?}"
        ));
    }
    Ok(())
}

/// What a store that follows the changes without an engine (keeping each interaction's latest
/// Put and applying Moves to it, as the journal's compaction does) ends with: exactly the Puts of
/// the engine's snapshot.
fn follow_without_engine(journal: &[Message], snapshot: &[Message]) -> Result<(), String> {
    use crate::durable::{DELETE, MOVE, PUT, apply_move};
    let id_of = |m: &Message| m.attrs.get_str(attr::INTERACTION_ID).cloned();
    let mut held: HashMap<ByteString, KvList> = HashMap::new();
    for change in journal {
        let Some(id) = id_of(change) else { continue };
        match change.id {
            PUT => {
                held.insert(id, change.attrs.clone());
            }
            DELETE => {
                held.remove(&id);
            }
            MOVE => {
                let put = held
                    .get_mut(&id)
                    .ok_or_else(|| format!("a Move of {id:?} before any Put"))?;
                *put = apply_move(put, &change.attrs);
            }
            _ => {}
        }
    }
    let want: HashMap<ByteString, KvList> = snapshot
        .iter()
        .filter(|m| m.id == PUT)
        .filter_map(|m| Some((id_of(m)?, m.attrs.clone())))
        .collect();
    if held == want {
        Ok(())
    } else {
        Err(format!(
            "following the changes without an engine gives {held:#?}\nnot the snapshot's {want:#?}"
        ))
    }
}

/// The model's location (`queue Inbound`, `workbin Type/owner`, `agent a1`) as the engine
/// reports one.
fn model_where(loc: &str) -> Where {
    if let Some(q) = loc.strip_prefix("queue ") {
        return Where::Queue(q.to_owned());
    }
    if let Some(a) = loc.strip_prefix("agent ") {
        return Where::Agent(a.to_owned());
    }
    let wb = loc.strip_prefix("workbin ").unwrap_or(loc);
    let (ty, owner) = wb.split_once('/').unwrap_or((wb, ""));
    Where::Workbin((ty.to_owned(), owner.to_owned()))
}
