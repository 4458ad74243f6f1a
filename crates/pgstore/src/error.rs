//! The crate's error type, and the mapping of a failed statement to it.

/// Why the PostgreSQL store failed. The text names the database (without its password) and
/// what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached.
    #[error(
        "cannot connect to PostgreSQL at {url}: {} (is it running and reachable? check --store / [store] url)",
        describe(source)
    )]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        source: postgres::Error,
    },
    /// A migration failed.
    #[error("PostgreSQL schema migration {version} failed: {}", describe(source))]
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
    #[error("PostgreSQL: {what}: {}", describe(source))]
    Query {
        /// What was being done.
        what: &'static str,
        /// Why.
        source: postgres::Error,
    },
    /// The database user may not create the store's tables (a database with no ixn schema yet).
    #[error(
        "PostgreSQL user {user} may not create tables in database {database} (schema public), which the first start needs: make the user the database's owner (`ALTER DATABASE {database} OWNER TO {user}`, or create it with `CREATE DATABASE {database} OWNER {user}`), or `GRANT CREATE ON SCHEMA public TO {user}`"
    )]
    CannotCreate {
        /// The user of the URL.
        user: String,
        /// The database.
        database: String,
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

impl Error {
    /// Whether only a change by a person cures this (privileges, a password, a missing
    /// database, a schema too new), as opposed to a database that is down or restarting:
    /// a supervisor should not restart into it.
    pub fn needs_a_fix(&self) -> bool {
        use postgres::error::SqlState;
        let db = match self {
            Self::CannotCreate { .. } | Self::SchemaTooNew { .. } => return true,
            Self::Connect { source, .. }
            | Self::Migrate { source, .. }
            | Self::Query { source, .. } => source.code(),
            Self::Decode { .. } | Self::Encode(_) => None,
        };
        db.is_some_and(|c| {
            [
                SqlState::INSUFFICIENT_PRIVILEGE,
                SqlState::INVALID_PASSWORD,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                SqlState::INVALID_CATALOG_NAME,
            ]
            .contains(c)
        })
    }
}

impl From<Error> for ixn_store::Error {
    fn from(e: Error) -> Self {
        Self::Backend(e.to_string())
    }
}

pub(crate) fn query(what: &'static str) -> impl FnOnce(postgres::Error) -> Error {
    move |source| Error::Query { what, source }
}

/// A PostgreSQL error in words. The client library says only "db error" when the database
/// refused: the database's own message, detail and hint are what tell the cause, with advice
/// for the usual ones (privileges, password, a missing database). A failure before the
/// database answered gives its causes (a refused port, a timeout).
pub(crate) fn describe(e: &postgres::Error) -> String {
    use postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        let advice = match db.code() {
            c if *c == SqlState::INSUFFICIENT_PRIVILEGE => Some(
                "the user in the URL lacks a privilege: make it the database's owner (ALTER DATABASE ... OWNER TO ...), or grant what is named above",
            ),
            c if *c == SqlState::INVALID_PASSWORD => {
                Some("the password in the URL is wrong for that user")
            }
            c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => Some(
                "the server does not let that user in from here (pg_hba.conf), or the user does not exist",
            ),
            c if *c == SqlState::INVALID_CATALOG_NAME => Some(
                "the database in the URL does not exist: create it (CREATE DATABASE name OWNER user)",
            ),
            _ => None,
        };
        if let Some(a) = advice {
            text.push_str(&format!(" ({a})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
