//! Leadership over a shared store: the lease row (`ixn_leader`) with its epoch, read by
//! [`inspect`] and moved by [`Leadership`].

use crate::connect::{connect, redact};
use crate::error::{Error, query};
use crate::schema::{inspect_schema, migrate};
use postgres::Client;

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
        // A start would create the schema: the user must be allowed to.
        let row = client
            .query_one(
                "SELECT current_user::text, current_database()::text, \
                 has_schema_privilege('public', 'CREATE')",
                &[],
            )
            .map_err(query("checking the privilege to create the schema"))?;
        if !row.get::<_, bool>(2) {
            return Err(Error::CannotCreate {
                user: row.get(0),
                database: row.get(1),
            });
        }
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
/// [`PgStore`](crate::PgStore) checks its epoch (fencing), so a server that was replaced can never commit
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

    /// Who this server is in the leader row's `holder`.
    pub fn holder(&self) -> &str {
        &self.holder
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
