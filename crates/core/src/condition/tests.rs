//! The condition language: Genesys's documented conditions, errors with positions, and two
//! properties over random trees (printing parses back to the same tree; evaluation agrees with
//! a naive evaluator written independently here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// An interaction as a map of property names (and `UserData.key`) to values.
#[derive(Clone, Debug, Default)]
struct Item {
    props: HashMap<&'static str, Owned>,
    user_data: HashMap<String, Owned>,
    received: Option<i64>,
}

#[derive(Clone, Debug)]
enum Owned {
    S(String),
    I(i64),
}

impl Owned {
    fn val(&self) -> Val<'_> {
        match self {
            Self::S(s) => Val::Str(s),
            Self::I(n) => Val::Int(*n),
        }
    }
}

impl Subject for Item {
    fn prop(&self, p: Prop) -> Option<Val<'_>> {
        self.props.get(p.name()).map(Owned::val)
    }
    fn user_data(&self, key: &str) -> Option<Val<'_>> {
        self.user_data.get(key).map(Owned::val)
    }
    fn received_secs(&self) -> Option<i64> {
        self.received
    }
}

fn item(pairs: &[(&'static str, &str)], received: i64) -> Item {
    let mut i = Item {
        received: Some(received),
        ..Item::default()
    };
    for (k, v) in pairs {
        i.props.insert(k, Owned::S((*v).to_owned()));
    }
    i
}

const NOW: i64 = 1_000_000;

#[test]
fn genesys_documented_conditions_parse_and_select() {
    let fresh_email = item(&[("MediaType", "email")], NOW - 100);
    let old_email = item(&[("MediaType", "email")], NOW - 300_000);
    let assigned = item(&[("MediaType", "email"), ("AssignedTo", "a1")], NOW - 100);
    let chat = item(&[("MediaType", "chat")], NOW - 100);
    let callback = item(&[("MediaType", "webcallback")], NOW);

    let c = condition("MediaType='email' AND _age()<259200 AND _empty(AssignedTo)").unwrap();
    assert!(eval(&c, &fresh_email, NOW));
    assert!(!eval(&c, &old_email, NOW));
    assert!(!eval(&c, &assigned, NOW));
    assert!(!eval(&c, &chat, NOW));

    let c = condition("MediaType!='email' AND MediaType!='webcallback'").unwrap();
    assert!(eval(&c, &chat, NOW));
    assert!(!eval(&c, &fresh_email, NOW));
    assert!(!eval(&c, &callback, NOW));

    let c = condition("[media_type] = 'chat'").unwrap();
    assert!(eval(&c, &chat, NOW));
    assert!(!eval(&c, &fresh_email, NOW));
}

#[test]
fn the_rest_of_the_language() {
    let mut i = item(
        &[
            ("MediaType", "email"),
            ("Queue", "Inbound"),
            ("IsLocked", "0"),
        ],
        NOW,
    );
    i.props.insert("IsLocked", Owned::I(0));
    i.user_data
        .insert("Subject".into(), Owned::S("Order 66 refund".into()));
    i.user_data.insert("Priority".into(), Owned::I(7));
    i.user_data
        .insert("Any key".into(), Owned::S("it's here".into()));
    for (text, expected) in [
        ("Queue IN ('Inbound', 'Outbound')", true),
        ("Queue NOT IN ('Inbound')", false),
        ("UserData.Subject LIKE 'Order%refund'", true),
        ("UserData.Subject LIKE 'Order __ refund'", true),
        ("UserData.Subject NOT LIKE '%refund'", false),
        ("UserData['Any key'] = 'it''s here'", true),
        ("UserData.Priority >= 5 AND UserData.Priority < 8", true),
        ("UserData.Priority = '7'", true),
        ("UserData.Missing IS NULL", true),
        ("UserData.Missing IS NOT NULL", false),
        ("UserData.Missing = 'x'", false),
        ("NOT UserData.Missing = 'x'", true),
        (
            "is_locked = 0 and not (queue <> 'Inbound' or media_type = 'chat')",
            true,
        ),
        (
            "InteractionSubtype IS NULL OR InteractionSubtype = 'x'",
            true,
        ),
        ("_age() <= 0", true),
        ("UserData.Priority IN (1, 7)", true),
    ] {
        let c = condition(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(eval(&c, &i, NOW), expected, "{text}");
    }
}

#[test]
fn errors_name_the_position_and_what_was_expected() {
    for (text, position, words) in [
        ("MediaType = ", 13, "expected a property name"),
        ("MediaType == 'x'", 12, "expected a property name"),
        ("Colour = 'red'", 1, "unknown name `Colour`"),
        ("MediaType = 'email' AND", 24, "expected a property name"),
        ("(MediaType = 'email'", 21, "expected `)`"),
        ("MediaType 'email'", 11, "expected a comparison"),
        ("MediaType = 'email", 13, "never closed"),
        ("MediaType IS 'x'", 14, "NULL"),
        ("Queue IN ()", 11, "a 'string' or a number"),
        ("UserData = 'x'", 10, "after UserData"),
        ("MediaType = 'a' 'b'", 17, "AND, OR or the end"),
        ("MediaType ~ 'a'", 11, "unexpected `~`"),
        ("_age( ) < 99999999999999999999", 11, "at most 19 digits"),
    ] {
        let e = condition(text).unwrap_err();
        assert_eq!(e.position, position, "{text}: {e}");
        assert!(e.to_string().contains(words), "{text}: {e}");
    }
    let e = condition("Colour = 'red'").unwrap_err().to_string();
    assert!(e.contains("MediaType") && e.contains("UserData.Key"), "{e}");
    let deep = format!("{}MediaType = 'x'{}", "(".repeat(100), ")".repeat(100));
    assert!(condition(&deep).unwrap_err().to_string().contains("nested"));
    let nots = format!("{}MediaType = 'x'", "NOT ".repeat(100));
    assert!(condition(&nots).is_err());
}

#[test]
fn orders_parse_and_compare() {
    let o = order("ReceivedAt DESC, [queue], UserData.Priority asc").unwrap();
    assert_eq!(o.0.len(), 3);
    assert!(o.0[0].descending && !o.0[1].descending);
    assert_eq!(order("").unwrap(), Order::default());
    assert_eq!(order("ReceivedAt DESC Queue").unwrap_err().position, 17);
    let a = item(&[("ReceivedAt", "2026-01-01T00:00:00Z")], 0);
    let b = item(&[("ReceivedAt", "2026-02-01T00:00:00Z")], 0);
    let o = order("ReceivedAt DESC").unwrap();
    assert_eq!(order_cmp(&o, &a, &b), std::cmp::Ordering::Greater);
}

#[test]
fn required_values_are_the_equalities_joined_by_and_at_the_top() {
    let c = condition("MediaType = 'email' AND ('Inbound' = Queue AND _age() > 5)").unwrap();
    let mut got = c.required_values();
    got.sort_by_key(|(p, _)| p.name());
    assert_eq!(got, [(Prop::MediaType, "email"), (Prop::Queue, "Inbound")]);
    for none in [
        "Queue = 'Inbound' OR MediaType = 'chat'",
        "NOT Queue = 'Inbound'",
        "Queue != 'Inbound'",
        "UserData.Queue = 'Inbound'",
        "Queue IN ('Inbound')",
    ] {
        assert!(
            condition(none)
                .unwrap()
                .required_values()
                .iter()
                .all(|(p, _)| *p != Prop::Queue),
            "{none}"
        );
    }
}

/// Replays the fuzz target's seeds (`fuzz/seeds/condition`) and every crash it found
/// (`fuzz/regressions/condition`).
#[test]
fn condition_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join("condition")) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".gitkeep") {
                continue;
            }
            fuzz(&std::fs::read(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 3, "the condition seed corpus is missing");
}

// --- Properties ---

const STRINGS: &[&str] = &["email", "chat", "", "a%b", "it's", "Inbound", "7", "x_y"];
const PROPS: &[Prop] = &[
    Prop::MediaType,
    Prop::Queue,
    Prop::AssignedTo,
    Prop::IsLocked,
    Prop::ReceivedAt,
];

fn lit() -> impl Strategy<Value = Lit> {
    prop_oneof![
        proptest::sample::select(STRINGS).prop_map(|s| Lit::Str(s.to_owned())),
        (-3i64..10).prop_map(Lit::Int),
    ]
}

fn field_s() -> impl Strategy<Value = Field> {
    prop_oneof![
        proptest::sample::select(PROPS).prop_map(Field::Prop),
        proptest::sample::select(&["k", "Any key", "it's"][..])
            .prop_map(|k| Field::UserData(k.to_owned())),
    ]
}

fn operand_s() -> impl Strategy<Value = Operand> {
    prop_oneof![
        3 => field_s().prop_map(Operand::Field),
        2 => lit().prop_map(Operand::Lit),
        1 => Just(Operand::Age),
    ]
}

fn cmp_s() -> impl Strategy<Value = Cmp> {
    proptest::sample::select(&[Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge][..])
}

fn expr_s() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (operand_s(), cmp_s(), operand_s()).prop_map(|(a, c, b)| Expr::Cmp(a, c, b)),
        (
            operand_s(),
            proptest::collection::vec(lit(), 1..4),
            any::<bool>()
        )
            .prop_map(|(operand, list, negated)| Expr::In {
                operand,
                list,
                negated
            }),
        (
            operand_s(),
            proptest::sample::select(&["%", "e%", "_h%", "%b", "it''s", "7"][..]),
            any::<bool>()
        )
            .prop_map(|(operand, p, negated)| Expr::Like {
                operand,
                pattern: p.replace("''", "'"),
                negated
            }),
        (operand_s(), any::<bool>())
            .prop_map(|(operand, negated)| Expr::IsNull { operand, negated }),
        operand_s().prop_map(Expr::Empty),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

fn owned_s() -> impl Strategy<Value = Owned> {
    prop_oneof![
        proptest::sample::select(STRINGS).prop_map(|s| Owned::S(s.to_owned())),
        (-3i64..10).prop_map(Owned::I),
    ]
}

fn item_s() -> impl Strategy<Value = Item> {
    (
        proptest::collection::vec(
            (
                proptest::sample::select(PROPS),
                proptest::option::of(owned_s()),
            ),
            0..5,
        ),
        proptest::collection::vec(
            (
                proptest::sample::select(&["k", "Any key", "it's"][..]),
                owned_s(),
            ),
            0..3,
        ),
        proptest::option::of(NOW - 20..NOW + 5),
    )
        .prop_map(|(props, ud, received)| {
            let mut i = Item {
                received,
                ..Item::default()
            };
            for (p, v) in props {
                if let Some(v) = v {
                    i.props.insert(p.name(), v);
                }
            }
            for (k, v) in ud {
                i.user_data.insert(k.to_owned(), v);
            }
            i
        })
}

/// The naive evaluator: the semantics of docs/conditions.md written out again, on owned
/// values, with a recursive (exponential but obviously right) LIKE.
fn naive(e: &Expr, i: &Item) -> bool {
    fn value(o: &Operand, i: &Item) -> Option<Owned> {
        match o {
            Operand::Field(Field::Prop(p)) => i.props.get(p.name()).cloned(),
            Operand::Field(Field::UserData(k)) => i.user_data.get(k).cloned(),
            Operand::Lit(Lit::Str(s)) => Some(Owned::S(s.clone())),
            Operand::Lit(Lit::Int(n)) => Some(Owned::I(*n)),
            Operand::Age => i.received.map(|r| Owned::I(NOW - r)),
        }
    }
    fn num(v: &Owned) -> Option<i64> {
        match v {
            Owned::I(n) => Some(*n),
            Owned::S(s) => s.parse().ok(),
        }
    }
    fn ord(a: &Owned, b: &Owned) -> Option<std::cmp::Ordering> {
        match (a, b) {
            (Owned::S(x), Owned::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
            _ => Some(num(a)?.cmp(&num(b)?)),
        }
    }
    fn like_rec(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|k| like_rec(&t[k..], rest)),
            Some(('_', rest)) => !t.is_empty() && like_rec(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && like_rec(&t[1..], rest),
        }
    }
    fn text(v: &Owned) -> String {
        match v {
            Owned::S(s) => s.clone(),
            Owned::I(n) => n.to_string(),
        }
    }
    use std::cmp::Ordering::*;
    match e {
        Expr::Or(a, b) => naive(a, i) || naive(b, i),
        Expr::And(a, b) => naive(a, i) && naive(b, i),
        Expr::Not(a) => !naive(a, i),
        Expr::Cmp(a, c, b) => match (value(a, i), value(b, i)) {
            (Some(x), Some(y)) => match ord(&x, &y) {
                None => false,
                Some(o) => match c {
                    Cmp::Eq => o == Equal,
                    Cmp::Ne => o != Equal,
                    Cmp::Lt => o == Less,
                    Cmp::Le => o == Less || o == Equal,
                    Cmp::Gt => o == Greater,
                    Cmp::Ge => o == Greater || o == Equal,
                },
            },
            _ => false,
        },
        Expr::In {
            operand,
            list,
            negated,
        } => match value(operand, i) {
            None => false,
            Some(x) => {
                let hit = list.iter().any(|l| {
                    let y = value(&Operand::Lit(l.clone()), i).unwrap();
                    ord(&x, &y) == Some(Equal)
                });
                if *negated { !hit } else { hit }
            }
        },
        Expr::Like {
            operand,
            pattern,
            negated,
        } => match value(operand, i) {
            None => false,
            Some(x) => {
                let t: Vec<char> = text(&x).chars().collect();
                let p: Vec<char> = pattern.chars().collect();
                like_rec(&t, &p) != *negated
            }
        },
        Expr::IsNull { operand, negated } => value(operand, i).is_none() != *negated,
        Expr::Empty(o) => match value(o, i) {
            None => true,
            Some(Owned::S(s)) => s.is_empty(),
            Some(Owned::I(_)) => false,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_printed_condition_parses_back_to_the_same_tree(e in expr_s()) {
        let text = e.to_string();
        let back = condition(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(back, e, "{}", text);
    }

    #[test]
    fn evaluation_agrees_with_the_naive_evaluator(e in expr_s(), i in item_s()) {
        prop_assert_eq!(eval(&e, &i, NOW), naive(&e, &i), "{}", e);
    }

    #[test]
    fn like_agrees_with_the_naive_matcher(t in "[aé%_]{0,8}", p in "[aé%_]{0,6}") {
        let e = Expr::Like { operand: Operand::Lit(Lit::Str(t.clone())), pattern: p.clone(), negated: false };
        prop_assert_eq!(eval(&e, &Item::default(), NOW), naive(&e, &Item::default()), "{} LIKE {}", t, p);
    }

    #[test]
    fn any_text_parses_or_fails_without_panicking(text in "\\PC{0,60}") {
        let _ = condition(&text);
        let _ = order(&text);
    }
}

/// Cases per property (PROPTEST_CASES overrides).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}
