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

use ixn_codec::{Bytes, Codec, Limits, Message};
use ixn_store::Store;
use postgres::{Client, NoTls};

mod commit;
mod leadership;
mod schema;

pub use leadership::{Inspected, Leader, Leadership, inspect};
pub use schema::SCHEMA_VERSION;
use schema::{inspect_schema, migrate};

/// Key of the id generator's state in `ixn_meta`.
pub(crate) const IDS_KEY: &str = "ids";

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

pub(crate) fn query(what: &'static str) -> impl FnOnce(postgres::Error) -> Error {
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
    /// The append statement, prepared at the first append.
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
}

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

/// Connects with a connect timeout of `timeout` and TCP keepalives.
pub(crate) fn connect(url: &str, timeout: std::time::Duration) -> Result<Client, Error> {
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

impl Store for PgStore {
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), ixn_store::Error> {
        self.commit(batches.iter().flatten(), false)
    }

    fn compact(&mut self, snapshot: &[Message]) -> Result<(), ixn_store::Error> {
        self.commit(snapshot.iter(), true)
    }
}
