//! How a snapshot selects (docs/protocol.md, "Snapshots"), a slice at a time.
//!
//! - **Candidates.** A condition that requires one queue, or one workbin instance (its type and
//!   owner), reads only the interactions held there, in the order they were received (an index
//!   per queue and workbin instance); when the snapshot's order is that order (none, or
//!   ReceivedAt either way), reading stops once the best are found. Any other condition reads
//!   every slot of [`Interactions`](crate::interactions::Interactions).
//! - **Reading.** Each candidate the requester sees (docs/behaviour.md, "Access") is read as a
//!   condition sees it ([`View`]); AND and OR read their cheapest side first
//!   ([`condition::cheapest_first`]).
//! - **Keeping.** The best `max` by the snapshot's order (then ReceivedAt, as a time, then
//!   InteractionId) are kept as they come ([`TopK`]): a candidate no better than the worst kept
//!   is dropped with one comparison, and the kept ones are cut back to `max` whenever they
//!   reach twice that, so a scan holds at most `2 * max` entries whatever it reads.
//! - **Slicing.** A scan reads at most [`SCAN_SLICE`] candidates in one call. One that is not
//!   done after its first slice is answered later: the driver calls
//!   [`Engine::work`](crate::Engine::work) while [`Engine::has_work`](crate::Engine::has_work),
//!   handling other clients' requests in between, so a scan of a million interactions never
//!   holds the others up for more than a slice. Until the answer, the requester's later
//!   requests wait behind it (at most [`MAX_HELD_BEHIND_SCAN`]; past that they are refused with
//!   LimitExceeded) and are handed back with the answer ([`Finished`]) to be handled in order.
//!   Each interaction is read as it is when the scan reaches it; one put into a slot (or a place
//!   in a queue's order) the scan has passed is not seen, and one gone by the end is left out.

use crate::condition::{self, Expr, Field, Order, Prop, Subject, Val};
use crate::ids::ClientId;
use crate::interactions::{Interaction, Received, Slot};
use crate::names::Names;
use crate::output::ConnId;
use crate::snapshots::Snapshots;
use crate::types::{Location, Login, Owner};
use ixn_codec::{ByteString, Message, Value};
use std::cmp::Ordering;
use std::collections::VecDeque;

/// Candidates read per slice: about a millisecond of work.
pub const SCAN_SLICE: usize = 4096;
/// Requests that may wait behind a client's scan.
pub const MAX_HELD_BEHIND_SCAN: usize = 4096;

/// An interaction as a condition sees it.
pub(crate) struct View<'a> {
    pub(crate) ix: &'a Interaction,
    pub(crate) names: &'a Names,
    pub(crate) snapshots: &'a Snapshots,
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
            Prop::IsLocked => Some(Val::Int(i64::from(self.snapshots.holder(&ix.id).is_some()))),
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
        Some(self.ix.received)
    }
}

/// Whose eyes a snapshot sees with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Viewer {
    /// The agent logged in on the client.
    Agent(Login),
    /// A media server, routing engine or proxy without a login: every interaction.
    Service,
}

/// A kept candidate's order keys, owned (the interaction may change before the scan ends).
#[derive(Debug)]
enum Key {
    Absent,
    Int(i64),
    Str(Box<str>),
}

impl Key {
    fn val(&self) -> Option<Val<'_>> {
        match self {
            Self::Absent => None,
            Self::Int(n) => Some(Val::Int(*n)),
            Self::Str(s) => Some(Val::Str(s)),
        }
    }
}

#[derive(Debug)]
struct Entry {
    keys: Box<[Key]>,
    received: i64,
    id: ByteString,
}

/// An order key's value: ReceivedAt as a time (seconds), anything else as the view gives it.
fn key_val<'v>(view: &'v View<'_>, f: &Field) -> Option<Val<'v>> {
    match f {
        Field::Prop(Prop::ReceivedAt) => Some(Val::Int(view.ix.received)),
        Field::Prop(p) => view.prop(*p),
        Field::UserData(k) => view.user_data(k),
    }
}

/// One order key compared, as [`condition::order_cmp`] does: absent first, values that cannot
/// be compared equal, reversed when descending.
fn cmp_key(x: Option<Val<'_>>, y: Option<Val<'_>>, descending: bool) -> Ordering {
    let o = match (x, y) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => condition::compare(x, y).unwrap_or(Ordering::Equal),
    };
    if descending { o.reverse() } else { o }
}

/// The best `max` candidates by an order (see the module documentation).
#[derive(Debug)]
pub(crate) struct TopK {
    pub(crate) max: usize,
    order: Order,
    entries: Vec<Entry>,
    /// Cut at least once: `entries[max - 1]` is the worst kept.
    cut: bool,
}

impl TopK {
    pub(crate) fn new(max: usize, order: Order) -> Self {
        Self {
            max,
            order,
            // Room for what is kept before each cut, so that it never grows by copying.
            entries: Vec::with_capacity(Self::cut_at(max)),
            cut: false,
        }
    }

    /// How many entries are kept before they are cut back to `max`.
    fn cut_at(max: usize) -> usize {
        2 * max.max(64)
    }

    /// How `view` compares with a kept entry.
    fn cmp_view(&self, view: &View<'_>, e: &Entry) -> Ordering {
        for (k, kept) in self.order.0.iter().zip(e.keys.iter()) {
            let o = cmp_key(key_val(view, &k.field), kept.val(), k.descending);
            if o != Ordering::Equal {
                return o;
            }
        }
        view.ix
            .received
            .cmp(&e.received)
            .then_with(|| (*view.ix.id).cmp(&*e.id))
    }

    fn cmp_entries(order: &Order, a: &Entry, b: &Entry) -> Ordering {
        for ((k, x), y) in order.0.iter().zip(a.keys.iter()).zip(b.keys.iter()) {
            let o = cmp_key(x.val(), y.val(), k.descending);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.received
            .cmp(&b.received)
            .then_with(|| (*a.id).cmp(&*b.id))
    }

    /// Keeps `view` if it may be among the best.
    pub(crate) fn offer(&mut self, view: &View<'_>) {
        if self.max == 0 {
            return;
        }
        if self.cut
            && let Some(worst) = self.entries.get(self.max - 1)
            && self.cmp_view(view, worst) != Ordering::Less
        {
            return;
        }
        let keys = self
            .order
            .0
            .iter()
            .map(|k| match key_val(view, &k.field) {
                None => Key::Absent,
                Some(Val::Int(n)) => Key::Int(n),
                Some(Val::Str(s)) => Key::Str(s.into()),
            })
            .collect();
        self.entries.push(Entry {
            keys,
            received: view.ix.received,
            id: view.ix.id.clone(),
        });
        if self.entries.len() >= Self::cut_at(self.max) {
            self.cut_back();
        }
    }

    fn cut_back(&mut self) {
        let order = &self.order;
        if self.entries.len() > self.max {
            self.entries
                .select_nth_unstable_by(self.max - 1, |a, b| Self::cmp_entries(order, a, b));
            self.entries.truncate(self.max);
        }
        self.cut = true;
    }

    /// The kept ids, in order (a vector of exactly that many).
    pub(crate) fn finish(mut self) -> Vec<ByteString> {
        self.cut_back();
        let order = &self.order;
        self.entries
            .sort_unstable_by(|a, b| Self::cmp_entries(order, a, b));
        let mut ids = Vec::with_capacity(self.entries.len());
        ids.extend(self.entries.into_iter().map(|e| e.id));
        ids
    }
}

/// What a scan reads.
#[derive(Debug)]
pub(crate) enum Source {
    /// The interactions in one queue or workbin instance, in their order (from the end when
    /// `rev`), after `after`. With `early`, the order is the snapshot's own, so reading stops
    /// once the best `max` are found: at the `max`-th hit going forward, and going backward
    /// at the first one received before the `max`-th hit (`threshold`), ties being ordered by
    /// id.
    Located {
        loc: Location,
        after: Option<Received>,
        rev: bool,
        early: bool,
        hits: usize,
        threshold: i64,
    },
    /// Every slot, from `next`.
    Slots { next: Slot },
    /// Nothing (a queue or workbin that does not exist).
    Nothing,
}

/// A snapshot being taken.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Where the request came from: the connection and the ProxyClientId it carried.
    pub(crate) conn: ConnId,
    pub(crate) proxied: Option<i32>,
    /// The request's ReferenceId, and the logical client its reply is addressed to.
    pub(crate) reference_id: Option<i32>,
    pub(crate) proxy_client_id: Option<ClientId>,
    pub(crate) client: ClientId,
    pub(crate) who: Viewer,
    pub(crate) cond: Expr,
    /// The request's time in seconds (for `_age()`).
    pub(crate) secs: i64,
    pub(crate) lock: bool,
    pub(crate) top: TopK,
    pub(crate) source: Source,
    /// The requester's requests that came meanwhile, in order.
    pub(crate) held: VecDeque<Message>,
}

/// The scans not done yet, taken in turn.
#[derive(Debug, Default)]
pub(crate) struct Scans(VecDeque<Scan>);

impl Scans {
    /// The scan whose turn it is, taken out.
    pub(crate) fn next(&mut self) -> Option<Scan> {
        self.0.pop_front()
    }

    /// `scan` waits for its next turn, after the others.
    pub(crate) fn push(&mut self, scan: Scan) {
        self.0.push_back(scan);
    }

    /// The scan a request from `conn` (with this ProxyClientId) must wait behind.
    pub(crate) fn waiting_for(&mut self, conn: ConnId, proxied: Option<i32>) -> Option<&mut Scan> {
        self.0
            .iter_mut()
            .find(|s| s.conn == conn && s.proxied == proxied)
    }

    /// A connection closed: its scans end unanswered.
    pub(crate) fn closed(&mut self, conn: ConnId) {
        self.0.retain(|s| s.conn != conn);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A scan answered: the requests of its requester that waited behind it, to be handled now,
/// in order, as if they had just arrived on `conn`.
#[derive(Debug)]
pub struct Finished {
    /// The connection the answer went to.
    pub conn: ConnId,
    /// Its requests that waited.
    pub held: Vec<Message>,
}
