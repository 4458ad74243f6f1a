//! The condition language of snapshots (docs/conditions.md): which interactions a snapshot
//! selects (`MediaType='email' AND _age()<259200 AND _empty(AssignedTo)`) and in which order
//! (`ReceivedAt DESC, Queue`).
//!
//! - `ast`: the tree, and printing it back as a condition;
//! - `parse`: text to tree, with errors that name a position and what was expected;
//! - `eval`: a tree applied to anything that says what its properties are ([`Subject`]).

mod ast;
mod eval;
mod parse;

pub use ast::{Cmp, Expr, Field, Lit, Operand, Order, OrderKey, Prop};
pub use eval::{Subject, Val, cheapest_first, compare, eval, like, order_cmp};
pub use parse::{MAX_DEPTH, ParseError, condition, order};

/// What the fuzz target `condition` checks on any input: parsing a condition or an order never
/// panics; a condition that parses prints as text that parses back to the same tree, and
/// evaluating it on an interaction with no properties returns.
#[cfg(any(test, fuzzing))]
pub fn fuzz(data: &[u8]) {
    struct Nothing;
    impl Subject for Nothing {
        fn prop(&self, _: Prop) -> Option<Val<'_>> {
            None
        }
        fn user_data(&self, _: &str) -> Option<Val<'_>> {
            None
        }
        fn received_secs(&self) -> Option<i64> {
            Some(0)
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = order(&text);
    if let Ok(e) = condition(&text) {
        let printed = e.to_string();
        assert_eq!(
            condition(&printed).as_ref(),
            Ok(&e),
            "{text:?} printed as {printed:?}"
        );
        let _ = eval(&e, &Nothing, 0);
    }
}

#[cfg(test)]
mod tests;
