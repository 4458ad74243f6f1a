//! The engine's side of taking a snapshot (see [`crate::scans`] for how it works): who sees
//! what, where a scan reads, a slice of reading, and the answer.

use super::{Engine, Reply};
use crate::condition;
use crate::condition::{Expr, Field, Order, Prop};
use crate::error::Error;
use crate::interactions::Interaction;
use crate::output::{ConnId, Output};
use crate::scans::{Finished, MAX_HELD_BEHIND_SCAN, SCAN_SLICE, Scan, Source, View, Viewer};
use crate::types::Location;
use ixn_codec::{Message, MessageId, attr};
use std::time::SystemTime;

impl Engine {
    /// Whether `who` sees `ix` through a snapshot (docs/behaviour.md, "Access"): an agent its
    /// tenant's interactions in the workbins it may access, those it or an agent it supervises
    /// handles, and, when it supervises a group, the queued ones; a service every one.
    pub(super) fn sees(&self, who: Viewer, ix: &Interaction) -> bool {
        let Viewer::Agent(l) = who else {
            return true;
        };
        let me = &self.cfg[l.agent];
        me.tenant == ix.tenant
            && match ix.loc {
                Location::Queued(_) => !me.supervises.is_empty(),
                Location::InWorkbin(key) => crate::access::may_access(&self.cfg, l, key),
                Location::Handling(a) => {
                    a == l.agent || self.cfg[a].groups.iter().any(|g| me.supervises.contains(g))
                }
            }
    }

    pub(super) fn view<'a>(&'a self, ix: &'a Interaction) -> View<'a> {
        View {
            ix,
            names: &self.names,
            snapshots: &self.snapshots,
        }
    }

    /// What a scan for `cond` in `order` reads: when it requires one queue, or one workbin
    /// instance, only what is there; else every slot.
    pub(super) fn source(&self, cond: &Expr, order: &Order) -> Source {
        let required = cond.required_values();
        let value = |p: Prop| required.iter().find(|(q, _)| *q == p).map(|(_, v)| *v);
        let loc = if let Some(queue) = value(Prop::Queue) {
            self.cfg.queue(queue).map(Location::Queued)
        } else if let Some(ty) = value(Prop::WorkbinTypeId)
            && let Some(key) = self.required_workbin(ty, value)
        {
            key.map(Location::InWorkbin)
        } else {
            return Source::Slots { next: 0 };
        };
        let Some(loc) = loc else {
            return Source::Nothing;
        };
        let (early, rev) = match order.0.as_slice() {
            [] => (true, false),
            [k] if k.field == Field::Prop(Prop::ReceivedAt) => (true, k.descending),
            _ => (false, false),
        };
        Source::Located {
            loc,
            after: None,
            rev,
            early,
            hits: 0,
            threshold: i64::MIN,
        }
    }

    /// The workbin instance a condition requiring workbin type `ty` requires (`Some(None)`:
    /// one that does not exist), or `None` when it names no owner.
    fn required_workbin<'c>(
        &self,
        ty: &str,
        value: impl Fn(Prop) -> Option<&'c str>,
    ) -> Option<Option<crate::types::BinKey>> {
        use ixn_config::OwnerKind;
        let (kind, name) = [
            (Prop::AgentId, OwnerKind::Agent),
            (Prop::PlaceId, OwnerKind::Place),
            (Prop::AgentGroupId, OwnerKind::AgentGroup),
            (Prop::PlaceGroupId, OwnerKind::PlaceGroup),
        ]
        .into_iter()
        .find_map(|(p, kind)| value(p).map(|name| (kind, name)))?;
        Some(self.cfg.workbin(ty).and_then(|t| {
            (self.cfg[t].owner == kind)
                .then(|| crate::access::owner_named(&self.cfg, kind, name))
                .flatten()
                .map(|owner| crate::types::BinKey { ty: t, owner })
        }))
    }

    /// Reads up to [`SCAN_SLICE`] of `scan`'s candidates; true when it has read them all (or
    /// all it needs).
    pub(super) fn read_slice(&self, scan: &mut Scan) -> bool {
        let Scan {
            who,
            cond,
            secs,
            top,
            source,
            ..
        } = scan;
        let max = top.max;
        let mut consider = |ix: &Interaction| {
            if !self.sees(*who, ix) {
                return false;
            }
            let view = self.view(ix);
            let hit = condition::eval(cond, &view, *secs);
            if hit {
                top.offer(&view);
            }
            hit
        };
        match source {
            Source::Nothing => true,
            Source::Slots { next } => {
                let last = self.interactions.slot_end();
                let end = last.min(next.saturating_add(SCAN_SLICE));
                for slot in *next..end {
                    if let Some(ix) = self.interactions.at(slot) {
                        consider(ix);
                    }
                }
                *next = end;
                end >= last
            }
            Source::Located {
                loc,
                after,
                rev,
                early,
                hits,
                threshold,
            } => {
                let mut last = None;
                let mut done = true;
                let located = self.interactions.located_after(*loc, after.as_ref(), *rev);
                for (read, (k, ix)) in located.enumerate() {
                    if *early && *hits >= max && (!*rev || ix.received < *threshold) {
                        break;
                    }
                    if read == SCAN_SLICE {
                        done = false;
                        break;
                    }
                    last = Some(k);
                    if consider(ix) {
                        *hits += 1;
                        if *hits == max {
                            *threshold = ix.received;
                        }
                    }
                }
                if let Some(k) = last {
                    *after = Some(k.clone());
                }
                done
            }
        }
    }

    /// Whether a snapshot is being taken (call [`Engine::work`]).
    pub fn has_work(&self) -> bool {
        self.scans.len() > 0
    }

    /// Reads one slice of the scan whose turn it is; when that scan is done, appends its
    /// answer to `out` and returns the requests that waited behind it, to be handled next
    /// (see the module documentation).
    pub fn work(&mut self, now: SystemTime, out: &mut Vec<Output>) -> Option<Finished> {
        let mut scan = self.scans.next()?;
        if !self.read_slice(&mut scan) {
            self.scans.push(scan);
            return None;
        }
        let conn = scan.conn;
        let reply = Reply {
            conn,
            reference_id: scan.reference_id,
            proxy_client_id: scan.proxy_client_id,
        };
        let held = std::mem::take(&mut scan.held);
        out.push(match self.finish_scan(now, scan) {
            Ok(m) => reply.to(m),
            Err(e) => reply.error(&e),
        });
        Some(Finished {
            conn,
            held: held.into(),
        })
    }

    /// Holds `msg` behind the scan of its sender, if one is under way (true), refusing it when
    /// too many wait already.
    pub(super) fn hold_behind_scan(
        &mut self,
        conn: ConnId,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> bool {
        if self.scans.len() == 0 {
            // Nothing under way (nearly always): no attribute is looked up.
            return false;
        }
        let proxied = msg.proxy_client_id();
        let Some(scan) = self.scans.waiting_for(conn, proxied) else {
            return false;
        };
        if scan.held.len() < MAX_HELD_BEHIND_SCAN {
            scan.held.push_back(msg.clone());
        } else {
            let reply = Reply {
                conn,
                reference_id: msg.reference_id(),
                proxy_client_id: scan.proxy_client_id,
            };
            out.push(reply.error(&Error::LimitExceeded {
                limit: "requests waiting behind a snapshot",
                value: MAX_HELD_BEHIND_SCAN,
                what: "this client's snapshot is still being taken: wait for its answer".to_owned(),
            }));
        }
        true
    }

    /// Starts `scan`: answered now when its first slice reads everything, else queued.
    pub(super) fn start_scan(
        &mut self,
        now: SystemTime,
        mut scan: Scan,
    ) -> Result<Option<Message>, Error> {
        if self.read_slice(&mut scan) {
            return self.finish_scan(now, scan).map(Some);
        }
        self.scans.push(scan);
        Ok(None)
    }

    /// Opens the snapshot of what `scan` kept (those gone since left out), taking its locks.
    fn finish_scan(&mut self, now: SystemTime, scan: Scan) -> Result<Message, Error> {
        let client = scan.client;
        // The client may have ended while the scan went on.
        self.sessions.client(client)?;
        let idle = self.idle();
        let sid = self.snapshots.open(client, now, idle);
        let mut kept = scan.top.finish();
        let mut not_locked = 0i32;
        kept.retain(|id| {
            if !self.interactions.contains(id) {
                return false;
            }
            let locked = !scan.lock || self.snapshots.lock(client, id, Some(&sid));
            if !locked {
                not_locked = not_locked.saturating_add(1);
            }
            locked
        });
        kept.shrink_to_fit();
        let n = i32::try_from(kept.len()).unwrap_or(i32::MAX);
        self.snapshots.fill(&sid, kept);
        let mut reply = Message::new(MessageId::EVENT_SNAPSHOT_TAKEN)
            .with(attr::SNAPSHOT_ID, sid)
            .with(attr::NUMBER_OF_INTERACTIONS, n);
        if scan.lock {
            reply = reply.with(attr::NOT_LOCKED, not_locked);
        }
        Ok(reply)
    }
}
