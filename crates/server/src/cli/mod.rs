//! The `ixn-server` binary's own parts: its options ([`args`]), `--check` ([`check`]) and a
//! start ([`start`]). The server itself is the library (`ixn_server`).

pub(crate) mod args;
pub(crate) mod check;
pub(crate) mod start;
