//! The store's one error type.

use std::path::PathBuf;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A record in the middle of the journal is damaged (not a torn tail): the data directory
    /// needs attention before the server can start.
    #[error(
        "{path}: corrupt record at byte offset {offset}: {why} (records after it are intact, so this is not a torn write; restore the data directory from a backup, or move this file away to start empty)"
    )]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        why: String,
    },
    /// The file is not an ixn journal.
    #[error("{path}: not an ixn journal (bad header); move it out of the data directory")]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// The journal was written in a format version this program does not read.
    #[error(
        "{path}: journal format version {found}, but this ixn-server reads version {supported}; run the ixn-server that wrote it (or a newer one), or restore a backup made for this version"
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this program reads.
        supported: u32,
    },
    /// A change could not be encoded.
    #[error("cannot encode a change: {0}")]
    Encode(#[from] ixn_codec::Error),
    /// One request's changes are larger than a record may be: the journal could not read them
    /// back, so they are not written (and not acknowledged).
    #[error(
        "one request's changes take {len} bytes, more than a journal record may hold ({max}); lower [limits] max_interaction_bytes"
    )]
    RecordTooLarge {
        /// The record's payload size.
        len: usize,
        /// The largest record.
        max: usize,
    },
    /// A store other than the journal (a database) failed; the text says what and why.
    #[error("{0}")]
    Backend(String),
    /// Another server took the store over (a higher epoch): this one may not write any more.
    #[error(
        "another ixn-server took the store over (its epoch {current} is newer than this server's {mine}); this server no longer writes or acknowledges"
    )]
    Fenced {
        /// This server's epoch.
        mine: i64,
        /// The epoch in the store now.
        current: i64,
    },
    /// Another process (or another store in this one) holds the data directory.
    #[error(
        "the data directory {dir} is in use by another ixn-server ({holder}); stop that server first, or give this one another --data-dir"
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// Who holds it: "pid N" as the holder wrote it, or what is known.
        holder: String,
    },
}

/// Maps an I/O error on `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}
