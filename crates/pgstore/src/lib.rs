//! Interactions in PostgreSQL, behind the same [`Store`] interface as the journal.
//!
//! - One row per interaction (`ixn_interactions`): its state and location by name, its
//!   properties in the JSON form of docs/protocol.md, the Put change in the codec's binary form
//!   (what recovery reads back), and a version bumped by every commit that changes it. The
//!   InteractionId generator's state is a row of `ixn_meta`.
//! - Group commit: [`Store::append`] writes every batch it is given (all the requests that
//!   arrived while the previous commit ran) in one transaction: the last state of each
//!   interaction is upserted with one statement, the removed ones deleted with another. The
//!   server acknowledges only after the commit returned.
//! - Versioned migrations (`migrations/NNNN_*.sql`, recorded in `ixn_schema_version`), applied at
//!   start under an advisory lock; a database newer than this program is refused.
//! - Fencing: opening the store takes the next epoch in `ixn_leader`; every write transaction
//!   first checks that the epoch is still its own, so a server that another one has replaced can
//!   never commit again (it gets [`ixn_store::Error::Fenced`] and stops acknowledging).
//!
//! The store runs on the server's store thread, so it uses the blocking client (`postgres`,
//! tokio-postgres inside) over one connection: commits are sequential by design, and the next
//! batch accumulates while one commits.

#![warn(missing_docs)]

use ixn_codec::{Bytes, Codec, Limits, Message, attr};
use ixn_store::Store;
use postgres::{Client, NoTls};
use std::collections::HashMap;

/// A throwaway PostgreSQL cluster for tests (feature `test-cluster`).
#[cfg(feature = "test-cluster")]
pub mod cluster;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/0001_interactions.sql"))];

/// The schema version this program writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Key of the id generator's state in `ixn_meta`.
const IDS_KEY: &str = "ids";

/// Advisory lock key serialising migrations between servers starting at once.
const MIGRATION_LOCK: i64 = 0x1c5e_0001;

/// Why the PostgreSQL store failed. The text names the database (without its password) and
/// what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached.
    #[error(
        "cannot connect to PostgreSQL at {url}: {source} (is it running and reachable? check --store / [store] url)"
    )]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        source: postgres::Error,
    },
    /// A migration failed.
    #[error("PostgreSQL schema migration {version} failed: {source}")]
    Migrate {
        /// The migration.
        version: i32,
        /// Why.
        source: postgres::Error,
    },
    /// The database was migrated by a newer program.
    #[error(
        "the PostgreSQL schema is at version {found}, newer than this ixn-server knows ({known}); run the ixn-server that migrated it, or a newer one"
    )]
    SchemaTooNew {
        /// The database's version.
        found: i32,
        /// This program's.
        known: i32,
    },
    /// A statement failed.
    #[error("PostgreSQL: {what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// Why.
        source: postgres::Error,
    },
    /// A stored change could not be read back.
    #[error("PostgreSQL: the stored interaction {id:?} cannot be decoded: {source}")]
    Decode {
        /// Its id.
        id: String,
        /// Why.
        source: ixn_codec::Error,
    },
    /// A change could not be encoded.
    #[error("cannot encode a change: {0}")]
    Encode(#[from] ixn_codec::Error),
}

impl From<Error> for ixn_store::Error {
    fn from(e: Error) -> Self {
        Self::Backend(e.to_string())
    }
}

fn query(what: &'static str) -> impl FnOnce(postgres::Error) -> Error {
    move |source| Error::Query { what, source }
}

/// Whether a store given on a command line names a PostgreSQL database (a `postgres://` or
/// `postgresql://` URL, or a libpq key-value string) rather than a data directory.
pub fn is_url(store: &str) -> bool {
    store.starts_with("postgres://")
        || store.starts_with("postgresql://")
        || store.contains("host=")
}

/// `url` with any password replaced by `***` (for messages and logs).
pub fn redact(url: &str) -> String {
    // URL form: postgres://user:password@host/db
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    // Key-value form: host=... password=...
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The codec for stored changes: whatever was stored can be read back.
fn codec() -> Codec {
    Codec::trusting(Limits {
        max_frame_len: u32::MAX as usize,
        max_depth: ixn_codec::MAX_DEPTH_CAP,
    })
}

/// What opening the store found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// The epoch this server took.
    pub epoch: i64,
    /// The schema version before migrations ran (0: a new database).
    pub schema_before: i32,
}

/// Interactions in PostgreSQL. See the crate documentation.
pub struct PgStore {
    client: Client,
    epoch: i64,
    codec: Codec,
    /// [`APPEND_SQL`], prepared at the first append.
    append_statement: Option<postgres::Statement>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (a libpq URL or key-value string), applies the migrations this
    /// database lacks, and takes the next epoch as `holder` (for people: host and pid),
    /// reachable by clients at `advertised`.
    pub fn open(url: &str, holder: &str, advertised: &str) -> Result<(Self, Opened), Error> {
        let mut client = connect(url, std::time::Duration::from_secs(10))?;
        let schema_before = migrate(&mut client)?;
        let row = client
            .query_one(
                "UPDATE ixn_leader SET epoch = epoch + 1, holder = $1, advertised = $2, renewed_at = now() WHERE id = 1 RETURNING epoch",
                &[&holder, &advertised],
            )
            .map_err(query("taking the next epoch"))?;
        let epoch: i64 = row.get(0);
        Ok((
            Self {
                client,
                epoch,
                codec: codec(),
                append_statement: None,
            },
            Opened {
                epoch,
                schema_before,
            },
        ))
    }

    /// Connects to `url` to write as the holder of `epoch` (taken with
    /// [`Leadership::try_take`]). A transaction left open longer than `lease` (a frozen
    /// process) is ended by the database, so that it cannot block a takeover.
    pub fn open_at(url: &str, epoch: i64, lease: std::time::Duration) -> Result<Self, Error> {
        let mut client = connect(url, lease)?;
        let millis = lease.as_millis().max(1);
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {millis}"
            ))
            .map_err(query("setting idle_in_transaction_session_timeout"))?;
        Ok(Self {
            client,
            epoch,
            codec: codec(),
            append_statement: None,
        })
    }

    /// The epoch this server holds.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Reads every stored change (the id generator's state first, then one Put per
    /// interaction) into `each`; returns how many.
    pub fn load(&mut self, each: &mut dyn FnMut(Message)) -> Result<usize, Error> {
        read_changes(&mut self.client, &self.codec, each)
    }

    /// Writes `changes` (in order; later ones win) in one transaction that first checks this
    /// server still holds the store.
    fn commit<'a>(
        &mut self,
        changes: impl Iterator<Item = &'a Message>,
        replace_all: bool,
    ) -> Result<(), ixn_store::Error> {
        // The last state of each interaction in this commit: a Put, or None for a Delete.
        let mut last: HashMap<String, Option<&Message>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut ids: Option<&Message> = None;
        for c in changes {
            match c.id {
                ixn_core_ids::PUT | ixn_core_ids::DELETE => {
                    let Some(id) = c.attrs.get_str(attr::INTERACTION_ID) else {
                        continue;
                    };
                    let id = id.to_string();
                    if !last.contains_key(&id) {
                        order.push(id.clone());
                    }
                    last.insert(id, (c.id == ixn_core_ids::PUT).then_some(c));
                }
                ixn_core_ids::IDS => ids = Some(c),
                other => {
                    // A Move (the journal's compact form) or anything newer: this store keeps
                    // whole interactions, so the engine must record Puts for it.
                    return Err(ixn_store::Error::Backend(format!(
                        "PostgreSQL store: cannot apply a change of kind {other}; it keeps whole interactions (Put, Delete, Ids), so the engine must record Puts for it (Engine::record_moves off)"
                    )));
                }
            }
        }
        let mut put_ids = Vec::new();
        let mut states = Vec::new();
        let mut locations = Vec::new();
        let mut props = Vec::new();
        let mut frames = Vec::new();
        let mut deleted = Vec::new();
        for id in order {
            match last.get(&id).copied().flatten() {
                Some(put) => {
                    let frame = self
                        .codec
                        .encode_to_bytes(put)
                        .map_err(ixn_store::Error::Encode)?;
                    let json = put.to_json_value().map_err(ixn_store::Error::Encode)?;
                    let (state, location) = location_of(put);
                    put_ids.push(id);
                    states.push(state);
                    locations.push(location);
                    props.push(json);
                    frames.push(frame.to_vec());
                }
                None => deleted.push(id),
            }
        }
        let ids_frame = match ids {
            Some(m) => Some(
                self.codec
                    .encode_to_bytes(m)
                    .map_err(ixn_store::Error::Encode)?
                    .to_vec(),
            ),
            None => None,
        };
        let epoch = self.epoch;
        if !replace_all {
            // The common path: one prepared statement, one round trip, its own transaction.
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
            let row = self
                .client
                .query_one(
                    &statement,
                    &[
                        &epoch, &put_ids, &states, &locations, &props, &frames, &deleted, &IDS_KEY,
                        &ids_frame,
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
            return Ok(());
        }
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
        if replace_all {
            tx.execute("DELETE FROM ixn_interactions", &[])
                .map_err(query("replacing the interactions"))?;
        }
        if !put_ids.is_empty() {
            tx.execute(
                "INSERT INTO ixn_interactions (id, state, location, properties, change) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) \
                 ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, location = EXCLUDED.location, \
                 properties = EXCLUDED.properties, change = EXCLUDED.change, version = ixn_interactions.version + 1",
                &[&put_ids, &states, &locations, &props, &frames],
            )
            .map_err(query("writing interactions"))?;
        }
        if !deleted.is_empty() {
            tx.execute(
                "DELETE FROM ixn_interactions WHERE id = ANY($1)",
                &[&deleted],
            )
            .map_err(query("removing interactions"))?;
        }
        if let Some(frame) = ids_frame {
            tx.execute(
                "INSERT INTO ixn_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&IDS_KEY, &frame],
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

/// Streams every stored change (the id generator's state first, then one Put per interaction,
/// by id) into `each`; returns how many.
fn read_changes(
    client: &mut impl postgres::GenericClient,
    codec: &Codec,
    each: &mut dyn FnMut(Message),
) -> Result<usize, Error> {
    use postgres::fallible_iterator::FallibleIterator as _;
    let mut n = 0;
    if let Some(row) = client
        .query_opt("SELECT value FROM ixn_meta WHERE key = $1", &[&IDS_KEY])
        .map_err(query("reading the id generator's state"))?
    {
        let bytes: Vec<u8> = row.get(0);
        let change = codec
            .decode_frame(&Bytes::from(bytes))
            .map_err(|source| Error::Decode {
                id: "(id generator)".to_owned(),
                source,
            })?;
        each(change);
        n += 1;
    }
    let mut rows = client
        .query_raw(
            "SELECT id, change FROM ixn_interactions ORDER BY id",
            std::iter::empty::<i32>(),
        )
        .map_err(query("reading the interactions"))?;
    while let Some(row) = rows.next().map_err(query("reading the interactions"))? {
        let bytes: Vec<u8> = row.get(1);
        let change = codec
            .decode_frame(&Bytes::from(bytes))
            .map_err(|source| Error::Decode {
                id: row.get(0),
                source,
            })?;
        each(change);
        n += 1;
    }
    Ok(n)
}

/// Reads every stored change of the database at `url` into `each` (as [`PgStore::load`]) from
/// one consistent snapshot, without taking the store over: for copying a database out while a
/// server runs on it. Returns how many changes.
pub fn read_all(url: &str, each: &mut dyn FnMut(Message)) -> Result<usize, Error> {
    let mut client = connect(url, std::time::Duration::from_secs(10))?;
    let found = inspect_schema(&mut client)?;
    if found == 0 {
        return Ok(0);
    }
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(query("starting a read-only transaction"))?;
    let n = read_changes(&mut tx, &codec(), each)?;
    tx.commit()
        .map_err(query("ending the read-only transaction"))?;
    Ok(n)
}

/// The schema version of the database (0: none), refusing one newer than this program.
fn inspect_schema(client: &mut Client) -> Result<i32, Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('ixn_schema_version') IS NOT NULL", &[])
        .map_err(query("looking for the ixn schema"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let schema: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM ixn_schema_version",
            &[],
        )
        .map_err(query("reading the schema version"))?
        .get(0);
    if schema > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: schema,
            known: SCHEMA_VERSION,
        });
    }
    Ok(schema)
}

/// Connects with a connect timeout of `timeout` and TCP keepalives.
fn connect(url: &str, timeout: std::time::Duration) -> Result<Client, Error> {
    let mut config: postgres::Config = url.parse().map_err(|source| Error::Connect {
        url: redact(url),
        source,
    })?;
    config
        .connect_timeout(timeout)
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(5))
        .application_name("ixn-server");
    config.connect(NoTls).map_err(|source| Error::Connect {
        url: redact(url),
        source,
    })
}

/// What [`inspect`] found in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// The schema version (0: no ixn schema yet; a start creates it).
    pub schema: i32,
    /// Interactions stored.
    pub interactions: i64,
    /// The leader row, when the schema exists.
    pub leader: Option<Leader>,
}

/// Reads what a database holds without changing anything (for `ixn-server --check`): the
/// schema version, the interactions stored, who holds the store. A schema newer than this
/// program is an error, as at start.
pub fn inspect(url: &str, lease: std::time::Duration) -> Result<Inspected, Error> {
    let mut client = connect(url, std::time::Duration::from_secs(10))?;
    let schema = inspect_schema(&mut client)?;
    if schema == 0 {
        return Ok(Inspected {
            schema,
            interactions: 0,
            leader: None,
        });
    }
    let interactions: i64 = client
        .query_one("SELECT count(*) FROM ixn_interactions", &[])
        .map_err(query("counting the interactions"))?
        .get(0);
    Ok(Inspected {
        schema,
        interactions,
        leader: Some(leader_row(&mut client, lease.as_secs_f64())?),
    })
}

/// Reads the leader row; `lease` (seconds) decides whether it expired.
fn leader_row(client: &mut Client, lease: f64) -> Result<Leader, Error> {
    let row = client
        .query_one(
            "SELECT epoch, holder, advertised, \
             (holder = '' OR renewed_at < now() - $1::float8 * interval '1 second') \
             FROM ixn_leader WHERE id = 1",
            &[&lease],
        )
        .map_err(query("reading the leader row"))?;
    Ok(Leader {
        epoch: row.get(0),
        holder: row.get(1),
        advertised: row.get(2),
        expired: row.get(3),
    })
}

/// The leader row: who holds the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The epoch in force.
    pub epoch: i64,
    /// Who holds it (host and pid), empty when released.
    pub holder: String,
    /// Where its clients reach it.
    pub advertised: String,
    /// Whether the holder failed to renew within the lease (or released it): another server
    /// may take the store over.
    pub expired: bool,
}

/// Leadership on a shared store: a lease row with an epoch. The active server renews it every
/// fraction of the lease; a standby takes the store over (the next epoch) once the lease went
/// unrenewed for longer than the lease, by the database's clock. Every write transaction of a
/// [`PgStore`] checks its epoch (fencing), so a server that was replaced can never commit
/// again. Reconnects by itself after a failure.
pub struct Leadership {
    url: String,
    client: Option<Client>,
    holder: String,
    advertised: String,
    lease: std::time::Duration,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("url", &redact(&self.url))
            .field("holder", &self.holder)
            .field("advertised", &self.advertised)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// Connects to `url` and applies the migrations the database lacks (returns the schema
    /// version found before). `holder` names this server for people, `advertised` is where
    /// its clients reach it; `lease` is how long a holder may go without renewing.
    pub fn connect(
        url: &str,
        holder: &str,
        advertised: &str,
        lease: std::time::Duration,
    ) -> Result<(Self, i32), Error> {
        let mut this = Self {
            url: url.to_owned(),
            client: None,
            holder: holder.to_owned(),
            advertised: advertised.to_owned(),
            lease,
        };
        let before = migrate(this.client()?)?;
        Ok((this, before))
    }

    /// The lease.
    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    fn client(&mut self) -> Result<&mut Client, Error> {
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => {
                let mut client = connect(&self.url, self.lease)?;
                // A statement that waits longer than half a lease (a lock held by a frozen
                // holder) fails instead of stalling the loop.
                let millis = (self.lease.as_millis() / 2).max(1);
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = {millis}; SET statement_timeout = {millis}"
                    ))
                    .map_err(query("setting timeouts"))?;
                client
            }
        };
        Ok(self.client.insert(client))
    }

    /// Runs `f` on the connection; a failure drops the connection (the next call reconnects).
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Client, f64) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let lease = self.lease.as_secs_f64();
        let result = f(self.client()?, lease);
        if result.is_err() {
            self.client = None;
        }
        result
    }

    /// Reads the leader row.
    pub fn observe(&mut self) -> Result<Leader, Error> {
        self.with(leader_row)
    }

    /// Takes the store over if `seen` is still the epoch and its lease expired: returns the
    /// new epoch, or `None` when another server holds it (or took it first).
    pub fn try_take(&mut self, seen: i64) -> Result<Option<i64>, Error> {
        let (holder, advertised) = (self.holder.clone(), self.advertised.clone());
        self.with(|c, lease| {
            Ok(c.query_opt(
                "UPDATE ixn_leader SET epoch = epoch + 1, holder = $1, advertised = $2, renewed_at = now() \
                 WHERE id = 1 AND epoch = $3 \
                 AND (holder = '' OR renewed_at < now() - $4::float8 * interval '1 second') \
                 RETURNING epoch",
                &[&holder, &advertised, &seen, &lease],
            )
            .map_err(query("taking the store over"))?
            .map(|row| row.get(0)))
        })
    }

    /// Renews the lease of `epoch`: false when another server took the store over.
    pub fn renew(&mut self, epoch: i64) -> Result<bool, Error> {
        self.with(|c, _| {
            Ok(c.execute(
                "UPDATE ixn_leader SET renewed_at = now() WHERE id = 1 AND epoch = $1",
                &[&epoch],
            )
            .map_err(query("renewing the lease"))?
                == 1)
        })
    }

    /// Gives the store up (a clean stop), so that a standby takes over at once.
    pub fn release(&mut self, epoch: i64) -> Result<(), Error> {
        self.with(|c, _| {
            c.execute(
                "UPDATE ixn_leader SET holder = '', advertised = '', renewed_at = '-infinity' \
                 WHERE id = 1 AND epoch = $1",
                &[&epoch],
            )
            .map_err(query("releasing the lease"))?;
            Ok(())
        })
    }
}

/// The change ids of `ixn_core::durable` (not a dependency: the store does not need the engine).
mod ixn_core_ids {
    use ixn_codec::MessageId;
    pub(crate) const PUT: MessageId = MessageId(0xF001);
    pub(crate) const DELETE: MessageId = MessageId(0xF002);
    pub(crate) const IDS: MessageId = MessageId(0xF003);
}

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

impl Store for PgStore {
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), ixn_store::Error> {
        self.commit(batches.iter().flatten(), false)
    }

    fn compact(&mut self, snapshot: &[Message]) -> Result<(), ixn_store::Error> {
        self.commit(snapshot.iter(), true)
    }
}

/// Applies the migrations the database lacks, under an advisory lock; returns the version
/// found before.
fn migrate(client: &mut Client) -> Result<i32, Error> {
    let mut tx = client
        .transaction()
        .map_err(query("starting the migration transaction"))?;
    // "already exists, skipping" notices are not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .map_err(query("quieting notices"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(query("locking for migrations"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ixn_schema_version (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(query("creating ixn_schema_version"))?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM ixn_schema_version",
            &[],
        )
        .map_err(query("reading the schema version"))?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).map_err(|source| Error::Migrate {
            version: *version,
            source,
        })?;
        tx.execute(
            "INSERT INTO ixn_schema_version (version) VALUES ($1)",
            &[version],
        )
        .map_err(|source| Error::Migrate {
            version: *version,
            source,
        })?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    tx.commit().map_err(query("committing the migrations"))?;
    Ok(found)
}
