//! The schema: versioned migrations (`migrations/NNNN_*.sql`, recorded in
//! `ixn_schema_version`), applied at start under an advisory lock so that servers starting at
//! once do not race; a database newer than this program is refused.

use crate::error::{Error, query};
use postgres::Client;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/0001_interactions.sql"))];

/// The schema version this program writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Advisory lock key serialising migrations between servers starting at once.
const MIGRATION_LOCK: i64 = 0x1c5e_0001;

/// Applies the migrations the database lacks, under an advisory lock; returns the version
/// found before.
pub(crate) fn migrate(client: &mut Client) -> Result<i32, Error> {
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

/// The schema version of the database (0: none), refusing one newer than this program.
pub(crate) fn inspect_schema(client: &mut Client) -> Result<i32, Error> {
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
