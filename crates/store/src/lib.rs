//! Durable storage for the ixn server: an append-only journal of the engine's durable changes
//! (`ixn_core::durable`), with checksums, group commit, torn-tail recovery and compaction.
//!
//! # Files
//!
//! A data directory holds `journal-<generation>.log`; only the highest generation is live.
//! Compaction writes the next generation next to it (`.tmp`), syncs it, renames it into place,
//! syncs the directory and removes the old one, so a crash at any point leaves one complete
//! journal.
//!
//! ```text
//! file   = "IXNJ" version:u32be record* zero*
//! record = "IXNR" len:u32be crc:u32be payload[len]       crc = CRC-32(len:u32be ++ payload)
//! payload = frame*                                       frames of the wire codec (docs/protocol.md)
//! ```
//!
//! A record holds one request's changes, so a request's changes are applied all or not at all.
//! [`Journal::append`] writes many records (many requests: group commit) with one `write` and one
//! `fdatasync`. The file is extended ahead of its records with zeros ([`PREALLOCATE`] bytes at a
//! time, synced once), so that the sync of an append writes data blocks only.
//!
//! Version 2 (this program's) added the zeros after the records and Move changes (a moved
//! interaction's id and new location, instead of its whole Put). Version-1 journals are read,
//! and upgraded in place when opened for writing: their records are valid in version 2.
//!
//! # Recovery
//!
//! [`Journal::open`] reads every record, up to the end of the file or to preallocated space (only
//! zeros from there on). A record cut off at the end of the file, or a bad last
//! record, is a torn tail: the write that made it was never acknowledged (its sync did not
//! complete), so it is reported, cut off and ignored. A bad record followed by a good one is
//! corruption: opening fails with the file and the offset.
//!
//! The [`Store`] trait is what the server uses, so that another store (a shared database) can
//! replace the journal.
//!
//! # Why a journal, not an embedded database
//!
//! The durable state is small (one record per interaction) and always loaded whole at start;
//! what matters is an append path with one `fdatasync` per group of requests, atomic per
//! request, and precise crash diagnostics (torn tail versus corruption, with the offset). A
//! journal of the codec's canonical frames gives exactly that in a few hundred lines that the
//! tests cover at every cut point; a B-tree database would add page management not needed
//! here, its own commit protocol to reason about, and less control over what is reported on a
//! damaged file.

#![warn(missing_docs)]

mod compacting;
mod error;
/// Fuzz target bodies (test and fuzzing builds only).
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
mod journal;
mod lock;
mod store;

pub use compacting::{Compacting, DEFAULT_COMPACT_MIN_BYTES, Shadow, approx_size};
pub use error::Error;
pub use journal::{
    Journal, MAX_RECORD, OLDEST_VERSION, Opened, PREALLOCATE, VERSION, live_journal, read_journal,
};
pub use lock::{DirLock, LOCK_FILE};
pub use store::{FLUSH_LANES, Flush, Store};
