//! Evaluating a condition, and comparing by an order, over anything that can say what its
//! properties are ([`Subject`]).
//!
//! Two-valued: a comparison, `IN` or `LIKE` whose side is absent (a property the interaction
//! does not have, a UserData key it lacks) is false, and `NOT` turns false into true. Strings
//! compare by their bytes (RFC 3339 times compare as times); a string compared with a number is
//! read as a number when it is one, else the comparison is false. `LIKE` is case-sensitive.

use super::ast::{Cmp, Expr, Field, Lit, Operand, Order, Prop};
use std::cmp::Ordering;

/// A value a condition reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
}

/// What a condition is evaluated over: an interaction as the engine holds it, or a test's.
pub trait Subject {
    /// A property's value, if it has it.
    fn prop(&self, p: Prop) -> Option<Val<'_>>;
    /// A UserData key's value, if it has the key with a string or integer value.
    fn user_data(&self, key: &str) -> Option<Val<'_>>;
    /// When it was received, in seconds since the Unix epoch.
    fn received_secs(&self) -> Option<i64>;
}

fn field<'s>(s: &'s dyn Subject, f: &Field) -> Option<Val<'s>> {
    match f {
        Field::Prop(p) => s.prop(*p),
        Field::UserData(k) => s.user_data(k),
    }
}

fn operand<'s>(s: &'s dyn Subject, o: &'s Operand, now: i64) -> Option<Val<'s>> {
    match o {
        Operand::Field(f) => field(s, f),
        Operand::Lit(Lit::Str(x)) => Some(Val::Str(x)),
        Operand::Lit(Lit::Int(n)) => Some(Val::Int(*n)),
        Operand::Age => s.received_secs().map(|r| Val::Int(now.saturating_sub(r))),
    }
}

/// How two values compare, when they can be.
pub fn compare(a: Val<'_>, b: Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(&y)),
        (Val::Str(x), Val::Int(y)) => x.parse::<i64>().ok().map(|x| x.cmp(&y)),
        (Val::Int(x), Val::Str(y)) => y.parse::<i64>().ok().map(|y| x.cmp(&y)),
    }
}

/// Whether `text` matches a LIKE `pattern` (`%` any run, `_` any one character).
pub fn like(text: &str, pattern: &str) -> bool {
    if text.is_ascii() && pattern.is_ascii() {
        // One byte is one character: no copy.
        like_units(text.as_bytes(), pattern.as_bytes(), b'%', b'_')
    } else {
        let t: Vec<char> = text.chars().collect();
        let p: Vec<char> = pattern.chars().collect();
        like_units(&t, &p, '%', '_')
    }
}

/// LIKE over units (bytes or characters), iteratively with one backtrack point (the last
/// `%`): linear in practice, never exponential.
fn like_units<T: PartialEq + Copy>(t: &[T], p: &[T], any: T, one: T) -> bool {
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(&c) if c == any => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == one => {
                ti += 1;
                pi += 1;
            }
            Some(c) if t.get(ti) == Some(c) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == any))
}

fn text_of(v: Val<'_>) -> std::borrow::Cow<'_, str> {
    match v {
        Val::Str(s) => std::borrow::Cow::Borrowed(s),
        Val::Int(n) => std::borrow::Cow::Owned(n.to_string()),
    }
}

/// Whether `s` satisfies `e` at `now` (seconds since the Unix epoch, for `_age()`).
pub fn eval(e: &Expr, s: &dyn Subject, now: i64) -> bool {
    match e {
        Expr::Or(a, b) => eval(a, s, now) || eval(b, s, now),
        Expr::And(a, b) => eval(a, s, now) && eval(b, s, now),
        Expr::Not(a) => !eval(a, s, now),
        Expr::Cmp(a, op, b) => {
            let (Some(x), Some(y)) = (operand(s, a, now), operand(s, b, now)) else {
                return false;
            };
            compare(x, y).is_some_and(|o| match op {
                Cmp::Eq => o == Ordering::Equal,
                Cmp::Ne => o != Ordering::Equal,
                Cmp::Lt => o == Ordering::Less,
                Cmp::Le => o != Ordering::Greater,
                Cmp::Gt => o == Ordering::Greater,
                Cmp::Ge => o != Ordering::Less,
            })
        }
        Expr::In {
            operand: a,
            list,
            negated,
        } => {
            let Some(x) = operand(s, a, now) else {
                return false;
            };
            let found = list.iter().any(|l| {
                let y = match l {
                    Lit::Str(t) => Val::Str(t),
                    Lit::Int(n) => Val::Int(*n),
                };
                compare(x, y) == Some(Ordering::Equal)
            });
            found != *negated
        }
        Expr::Like {
            operand: a,
            pattern,
            negated,
        } => operand(s, a, now).is_some_and(|x| like(&text_of(x), pattern) != *negated),
        Expr::IsNull {
            operand: a,
            negated,
        } => operand(s, a, now).is_none() != *negated,
        Expr::Empty(a) => matches!(operand(s, a, now), None | Some(Val::Str(""))),
    }
}

/// How `a` and `b` compare by `order` (absent values first; values that cannot be compared
/// are equal for that key).
pub fn order_cmp(order: &Order, a: &dyn Subject, b: &dyn Subject) -> Ordering {
    for k in &order.0 {
        let o = match (field(a, &k.field), field(b, &k.field)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => compare(x, y).unwrap_or(Ordering::Equal),
        };
        let o = if k.descending { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// What reading an operand costs, roughly: a property the interaction holds inline is cheap,
/// a UserData key is looked up in its list.
fn operand_cost(o: &Operand) -> u32 {
    match o {
        Operand::Lit(_) => 0,
        Operand::Age | Operand::Field(Field::Prop(_)) => 1,
        Operand::Field(Field::UserData(_)) => 4,
    }
}

/// What evaluating `e` costs, roughly (see [`cheapest_first`]).
fn cost(e: &Expr) -> u32 {
    match e {
        Expr::Or(a, b) | Expr::And(a, b) => cost(a).saturating_add(cost(b)),
        Expr::Not(a) => cost(a),
        Expr::Cmp(a, _, b) => operand_cost(a) + operand_cost(b),
        Expr::In { operand, list, .. } => {
            operand_cost(operand).saturating_add(u32::try_from(list.len() / 4).unwrap_or(u32::MAX))
        }
        Expr::Like { operand, .. } => operand_cost(operand) + 4,
        Expr::IsNull { operand, .. } | Expr::Empty(operand) => operand_cost(operand),
    }
}

/// The same condition with the cheaper operand of every AND and OR first, so that evaluation
/// stops as early as it can (in `a AND b AND c`, a cheap `c` goes before the pair): conditions
/// have no side effects and are two-valued, so the result is the same.
pub fn cheapest_first(e: Expr) -> Expr {
    let ordered = |a: Box<Expr>, b: Box<Expr>| {
        let (a, b) = (cheapest_first(*a), cheapest_first(*b));
        if cost(&b) < cost(&a) { (b, a) } else { (a, b) }
    };
    match e {
        Expr::And(a, b) => {
            let (a, b) = ordered(a, b);
            Expr::And(Box::new(a), Box::new(b))
        }
        Expr::Or(a, b) => {
            let (a, b) = ordered(a, b);
            Expr::Or(Box::new(a), Box::new(b))
        }
        Expr::Not(a) => Expr::Not(Box::new(cheapest_first(*a))),
        other => other,
    }
}
