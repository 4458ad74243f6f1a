//! Helpers that the test suites of several crates share, so that none keeps a copy:
//!
//! - [`process`]: a child process killed and reaped when dropped ([`Reaped`]), and reading
//!   `ixn-server`'s banner (its listening addresses) as tests and tools do.
//! - [`pg`]: a throwaway PostgreSQL cluster, stopped and removed when dropped, and also when
//!   the test process dies without dropping it (a reaper process watches it).
//! - [`grouped`]: a store's changes appended a group at a time, as the server's group commit
//!   does ([`Grouped`]), for the stores' random differentials.
//!
//! Dev-only: no crate depends on it outside its tests, examples and benches.

pub mod grouped;
pub mod pg;
pub mod process;

pub use grouped::Grouped;
pub use process::{Banner, Reaped};

/// `PROPTEST_CASES` when set (a number), else `default`: how many cases a property test runs.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
