//! The crate's error type, and the mapping of a failed statement to it.

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
