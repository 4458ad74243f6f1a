//! Group commit into PostgreSQL: the last state of each interaction a commit touches (a Put
//! upserted, a Delete deleted; never both for one interaction), written under the epoch check
//! (fencing). The common path ([`PgStore`]'s `append`) is one prepared statement: one round
//! trip, its own transaction. A compaction replaces every row in one transaction that holds the
//! leader row's lock to its end.

use super::{IDS_KEY, PgStore};
use crate::error::query;
use ixn_codec::{Codec, Message, attr};
use ixn_core::durable::{DELETE, IDS, PUT};
use std::collections::HashMap;

/// The rows one commit writes, as the statements' array parameters.
#[derive(Default)]
struct Rows {
    put_ids: Vec<String>,
    states: Vec<String>,
    locations: Vec<String>,
    props: Vec<serde_json::Value>,
    frames: Vec<Vec<u8>>,
    deleted: Vec<String>,
    /// The id generator's state, when the commit changes it.
    ids_frame: Option<Vec<u8>>,
}

impl Rows {
    /// The last state of each interaction in `changes` (in order; later ones win), encoded.
    fn of<'a>(
        changes: impl Iterator<Item = &'a Message>,
        codec: &Codec,
    ) -> Result<Self, ixn_store::Error> {
        // The last state of each interaction in this commit: a Put, or None for a Delete.
        let mut last: HashMap<String, Option<&Message>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut ids: Option<&Message> = None;
        for c in changes {
            match c.id {
                PUT | DELETE => {
                    let Some(id) = c.attrs.get_str(attr::INTERACTION_ID) else {
                        continue;
                    };
                    let id = id.to_string();
                    if !last.contains_key(&id) {
                        order.push(id.clone());
                    }
                    last.insert(id, (c.id == PUT).then_some(c));
                }
                IDS => ids = Some(c),
                other => {
                    // A Move (the journal's compact form) or anything newer: this store keeps
                    // whole interactions, so the engine must record Puts for it.
                    return Err(ixn_store::Error::Backend(format!(
                        "PostgreSQL store: cannot apply a change of kind {other}; it keeps whole interactions (Put, Delete, Ids), so the engine must record Puts for it (Engine::record_moves off)"
                    )));
                }
            }
        }
        let mut rows = Self::default();
        for id in order {
            match last.get(&id).copied().flatten() {
                Some(put) => {
                    let frame = codec
                        .encode_to_bytes(put)
                        .map_err(ixn_store::Error::Encode)?;
                    let json = put.to_json_value().map_err(ixn_store::Error::Encode)?;
                    let (state, location) = location_of(put);
                    rows.put_ids.push(id);
                    rows.states.push(state);
                    rows.locations.push(location);
                    rows.props.push(json);
                    rows.frames.push(frame.to_vec());
                }
                None => rows.deleted.push(id),
            }
        }
        rows.ids_frame = match ids {
            Some(m) => Some(
                codec
                    .encode_to_bytes(m)
                    .map_err(ixn_store::Error::Encode)?
                    .to_vec(),
            ),
            None => None,
        };
        Ok(rows)
    }
}

impl PgStore {
    /// Writes `changes` (in order; later ones win) in one transaction that first checks this
    /// server still holds the store; `replace_all` first removes every stored interaction.
    pub(crate) fn commit<'a>(
        &mut self,
        changes: impl Iterator<Item = &'a Message>,
        replace_all: bool,
    ) -> Result<(), ixn_store::Error> {
        let rows = Rows::of(changes, &self.codec)?;
        if replace_all {
            self.replace(&rows)
        } else {
            self.append_rows(&rows)
        }
    }

    /// The common path: one prepared statement, one round trip, its own transaction.
    fn append_rows(&mut self, rows: &Rows) -> Result<(), ixn_store::Error> {
        let statement = match &self.append_statement {
            Some(s) => s.clone(),
            None => {
                let s = self
                    .client
                    .prepare(APPEND_SQL)
                    .map_err(query("preparing the append statement"))?;
                self.append_statement = Some(s.clone());
                s
            }
        };
        let epoch = self.epoch;
        let row = self
            .client
            .query_one(
                &statement,
                &[
                    &epoch,
                    &rows.put_ids,
                    &rows.states,
                    &rows.locations,
                    &rows.props,
                    &rows.frames,
                    &rows.deleted,
                    &IDS_KEY,
                    &rows.ids_frame,
                ],
            )
            .map_err(query("writing interactions"))?;
        let fenced: i64 = row.get(0);
        if fenced == 0 {
            let current: Option<i64> = row.get(1);
            return Err(ixn_store::Error::Fenced {
                mine: epoch,
                current: current.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// A compaction: every stored interaction replaced by `rows`, in one transaction.
    fn replace(&mut self, rows: &Rows) -> Result<(), ixn_store::Error> {
        let epoch = self.epoch;
        let mut tx = self
            .client
            .transaction()
            .map_err(query("starting a transaction"))?;
        // Fencing: the row lock is held to the commit, so no other server can take the store
        // over between this check and the commit.
        let current: i64 = tx
            .query_one("SELECT epoch FROM ixn_leader WHERE id = 1 FOR UPDATE", &[])
            .map_err(query("checking the epoch"))?
            .get(0);
        if current != epoch {
            return Err(ixn_store::Error::Fenced {
                mine: epoch,
                current,
            });
        }
        tx.execute("DELETE FROM ixn_interactions", &[])
            .map_err(query("replacing the interactions"))?;
        if !rows.put_ids.is_empty() {
            tx.execute(
                "INSERT INTO ixn_interactions (id, state, location, properties, change) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) \
                 ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, location = EXCLUDED.location, \
                 properties = EXCLUDED.properties, change = EXCLUDED.change, version = ixn_interactions.version + 1",
                &[&rows.put_ids, &rows.states, &rows.locations, &rows.props, &rows.frames],
            )
            .map_err(query("writing interactions"))?;
        }
        if !rows.deleted.is_empty() {
            tx.execute(
                "DELETE FROM ixn_interactions WHERE id = ANY($1)",
                &[&rows.deleted],
            )
            .map_err(query("removing interactions"))?;
        }
        if let Some(frame) = &rows.ids_frame {
            tx.execute(
                "INSERT INTO ixn_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&IDS_KEY, frame],
            )
            .map_err(query("writing the id generator's state"))?;
        }
        tx.execute("UPDATE ixn_leader SET renewed_at = now() WHERE id = 1", &[])
            .map_err(query("renewing the epoch"))?;
        tx.commit().map_err(query("committing"))?;
        Ok(())
    }
}

/// One group commit as one statement (so one round trip, one transaction): the leader row is
/// locked first and every write is conditional on the epoch still being this server's, so a
/// replaced server writes nothing (the first column is then 0). Each interaction is in the
/// upsert or in the delete, never both (the last state of each is computed first).
const APPEND_SQL: &str = "\
WITH fence AS ( \
    SELECT epoch FROM ixn_leader WHERE id = 1 AND epoch = $1 FOR UPDATE \
), put AS ( \
    INSERT INTO ixn_interactions (id, state, location, properties, change) \
    SELECT u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bytea[]) AS u \
    WHERE EXISTS (SELECT 1 FROM fence) \
    ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, location = EXCLUDED.location, \
        properties = EXCLUDED.properties, change = EXCLUDED.change, \
        version = ixn_interactions.version + 1 \
), del AS ( \
    DELETE FROM ixn_interactions WHERE id = ANY($7::text[]) AND EXISTS (SELECT 1 FROM fence) \
), ids AS ( \
    INSERT INTO ixn_meta (key, value) \
    SELECT $8::text, $9::bytea WHERE $9::bytea IS NOT NULL AND EXISTS (SELECT 1 FROM fence) \
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value \
) \
SELECT (SELECT count(*) FROM fence), (SELECT epoch FROM ixn_leader WHERE id = 1)";

/// An interaction's state and location by name, from its Put change: `queue Inbound`,
/// `workbin Drafts agent a1`, `handling a1`.
fn location_of(put: &Message) -> (String, String) {
    let s = |k: &str| put.attrs.get_str(k).map(ToString::to_string);
    let state = s(attr::INTERACTION_STATE).unwrap_or_default();
    let location = match state.as_str() {
        "Queued" => format!("queue {}", s(attr::QUEUE).unwrap_or_default()),
        "Handling" => format!("handling {}", s(attr::ASSIGNED_TO).unwrap_or_default()),
        _ => {
            let owner = [
                ("agent", attr::INTERACTION_AGENT_ID),
                ("place", attr::INTERACTION_PLACE_ID),
                ("agent_group", attr::INTERACTION_AGENT_GROUP_ID),
                ("place_group", attr::INTERACTION_PLACE_GROUP_ID),
            ]
            .into_iter()
            .find_map(|(kind, key)| s(key).map(|v| format!("{kind} {v}")))
            .unwrap_or_default();
            format!(
                "workbin {} {owner}",
                s(attr::INTERACTION_WORKBIN_TYPE_ID).unwrap_or_default()
            )
        }
    };
    (state, location)
}
