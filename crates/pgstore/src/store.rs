//! [`PgStore`]: opening the store (migrating, taking an epoch), reading it back, and the
//! [`Store`] interface over the group commits of `commit.rs`.

mod commit;

use crate::connect::connect;
use crate::error::{Error, query};
use crate::schema::{inspect_schema, migrate};
use ixn_codec::{Bytes, Codec, Limits, Message};
use ixn_store::Store;
use postgres::Client;

/// Key of the id generator's state in `ixn_meta`.
pub(crate) const IDS_KEY: &str = "ids";

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
    /// [`Leadership::try_take`](crate::Leadership::try_take)). A transaction left open longer than `lease` (a frozen
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

impl Store for PgStore {
    fn append(&mut self, batches: &[Vec<Message>]) -> Result<(), ixn_store::Error> {
        self.commit(batches.iter().flatten(), false)
    }

    fn compact(&mut self, snapshot: &[Message]) -> Result<(), ixn_store::Error> {
        self.commit(snapshot.iter(), true)
    }
}
