//! Operation sequences checked against a small reference model. Shared by the property tests
//! (`model_tests`) and the `core_ops` fuzz target, so both check the same invariants:
//!
//! - every request gets exactly one reply, carrying its ReferenceId, before anything else sent
//!   to the requester;
//! - the reply is what the model predicts: success, or EventError with the predicted code;
//! - notifications go exactly to the model's current subscribers of the workbins that changed
//!   (PropertiesChanged only to those that asked), TakenOut before PlacedIn;
//! - where every interaction is, and what a workbin's content lists, equals the model;
//! - a request that failed changed nothing;
//! - snapshots select what their condition and the requester's eyes say, in order, pages
//!   list them with their current properties (`IsLocked` on the locked), locks refuse others'
//!   requests, and a snapshot's move moves what may be moved and names why the rest was not.
//!
//! The model is written independently of the engine, with names instead of indexes, and covers
//! plain connections (proxies are covered by the conformance suite).

mod check;
mod ops;
mod reference;
mod requests;
mod snapshots;

pub use check::{Keeper, check_ops, check_ops_with, core_ops};
#[cfg(any(test, feature = "model"))]
pub use ops::op;
pub use ops::{CONFIG_JSON, CONNS, Op};
