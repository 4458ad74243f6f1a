//! Connecting to PostgreSQL, and naming a database in messages without its password.

use crate::error::Error;
use postgres::{Client, NoTls};

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
