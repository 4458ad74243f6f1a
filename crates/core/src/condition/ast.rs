//! The condition language's tree, and its printing: a printed condition parses back to the
//! same tree (the property test checks it), with every operator written out and every
//! sub-condition parenthesised where precedence would otherwise decide.

use std::fmt;

/// A property an interaction has, named in a condition by its name (`MediaType`) or by the
/// column name Genesys's interaction table gives it (`media_type`, also written `[media_type]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prop {
    /// `InteractionId` (`id`)
    InteractionId,
    /// `TenantId` (`tenant_id`)
    TenantId,
    /// `MediaType` (`media_type`)
    MediaType,
    /// `InteractionType` (`type`)
    InteractionType,
    /// `InteractionSubtype` (`subtype`)
    InteractionSubtype,
    /// `Queue` (`queue`)
    Queue,
    /// `InteractionState` (`state`): `Queued`, `InWorkbin` or `Handling`.
    InteractionState,
    /// `WorkbinTypeId` (`workbin`)
    WorkbinTypeId,
    /// `AgentId` (`agent_id`): the owner of the agent workbin it is in.
    AgentId,
    /// `PlaceId` (`place_id`)
    PlaceId,
    /// `AgentGroupId` (`agent_group_id`)
    AgentGroupId,
    /// `PlaceGroupId` (`place_group_id`)
    PlaceGroupId,
    /// `AssignedTo` (`assigned_to`): the agent handling it.
    AssignedTo,
    /// `SubmittedBy` (`submitted_by`)
    SubmittedBy,
    /// `ReceivedAt` (`received_at`): RFC 3339, so that strings compare as times.
    ReceivedAt,
    /// `IsLocked` (`is_locked`): 1 while a client holds a lock on it, else 0.
    IsLocked,
}

impl Prop {
    /// Every property: its name, then the column name.
    pub const ALL: &'static [(Self, &'static str, &'static str)] = &[
        (Self::InteractionId, "InteractionId", "id"),
        (Self::TenantId, "TenantId", "tenant_id"),
        (Self::MediaType, "MediaType", "media_type"),
        (Self::InteractionType, "InteractionType", "type"),
        (Self::InteractionSubtype, "InteractionSubtype", "subtype"),
        (Self::Queue, "Queue", "queue"),
        (Self::InteractionState, "InteractionState", "state"),
        (Self::WorkbinTypeId, "WorkbinTypeId", "workbin"),
        (Self::AgentId, "AgentId", "agent_id"),
        (Self::PlaceId, "PlaceId", "place_id"),
        (Self::AgentGroupId, "AgentGroupId", "agent_group_id"),
        (Self::PlaceGroupId, "PlaceGroupId", "place_group_id"),
        (Self::AssignedTo, "AssignedTo", "assigned_to"),
        (Self::SubmittedBy, "SubmittedBy", "submitted_by"),
        (Self::ReceivedAt, "ReceivedAt", "received_at"),
        (Self::IsLocked, "IsLocked", "is_locked"),
    ];

    /// The property a name (or column name) denotes; case does not matter.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n, c)| n.eq_ignore_ascii_case(name) || c.eq_ignore_ascii_case(name))
            .map(|(p, _, _)| *p)
    }

    /// Its name (as in the interaction's properties).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or("?", |(_, n, _)| n)
    }
}

/// What a condition reads of an interaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// A property.
    Prop(Prop),
    /// A key of its UserData: `UserData.Key` or `UserData['Any key']`.
    UserData(String),
}

/// A string or integer literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lit {
    /// `'text'` (a quote inside is written twice).
    Str(String),
    /// `42`, `-7`
    Int(i64),
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A property or a UserData key.
    Field(Field),
    /// A literal.
    Lit(Lit),
    /// `_age()`: seconds since the interaction was received.
    Age,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `!=` (also written `<>`)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A condition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `a OR b`
    Or(Box<Self>, Box<Self>),
    /// `a AND b`
    And(Box<Self>, Box<Self>),
    /// `NOT a`
    Not(Box<Self>),
    /// `a = b` and the other comparisons.
    Cmp(Operand, Cmp, Operand),
    /// `a [NOT] IN ('x', 'y')`
    In {
        /// What is looked for.
        operand: Operand,
        /// Where.
        list: Vec<Lit>,
        /// `NOT IN`
        negated: bool,
    },
    /// `a [NOT] LIKE 'pattern'` (`%` any run of characters, `_` any one).
    Like {
        /// What is matched.
        operand: Operand,
        /// The pattern.
        pattern: String,
        /// `NOT LIKE`
        negated: bool,
    },
    /// `a IS [NOT] NULL`: whether the property or key is absent.
    IsNull {
        /// What is tested.
        operand: Operand,
        /// `IS NOT NULL`
        negated: bool,
    },
    /// `_empty(a)`: absent, or the empty string.
    Empty(Operand),
}

/// One key of an order: `Prop [ASC|DESC]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrderKey {
    /// What is compared.
    pub field: Field,
    /// `DESC`
    pub descending: bool,
}

/// An order: keys compared in turn (then the InteractionId, so that an order is total).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Order(pub Vec<OrderKey>);

impl Expr {
    /// The `Prop = 'text'` comparisons (either way round) among the conditions joined by
    /// AND at the top: every interaction the condition selects has these values, so a caller
    /// may read only the interactions an index gives for one of them.
    pub fn required_values(&self) -> Vec<(Prop, &str)> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Self::And(a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                Self::Cmp(Operand::Field(Field::Prop(p)), Cmp::Eq, Operand::Lit(Lit::Str(v)))
                | Self::Cmp(Operand::Lit(Lit::Str(v)), Cmp::Eq, Operand::Field(Field::Prop(p))) => {
                    out.push((*p, v.as_str()));
                }
                _ => {}
            }
        }
        out
    }
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Self::Int(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Prop(p) => f.write_str(p.name()),
            Self::UserData(k) => write!(f, "UserData[{}]", Lit::Str(k.clone())),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(x) => x.fmt(f),
            Self::Lit(l) => l.fmt(f),
            Self::Age => f.write_str("_age()"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Or(a, b) => write!(f, "({a} OR {b})"),
            Self::And(a, b) => write!(f, "({a} AND {b})"),
            Self::Not(a) => write!(f, "NOT {a}"),
            Self::Cmp(a, op, b) => write!(f, "{a} {} {b}", op.symbol()),
            Self::In {
                operand,
                list,
                negated,
            } => {
                write!(f, "{operand} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, l) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    l.fmt(f)?;
                }
                f.write_str(")")
            }
            Self::Like {
                operand,
                pattern,
                negated,
            } => write!(
                f,
                "{operand} {}LIKE {}",
                if *negated { "NOT " } else { "" },
                Lit::Str(pattern.clone())
            ),
            Self::IsNull { operand, negated } => {
                write!(f, "{operand} IS {}NULL", if *negated { "NOT " } else { "" })
            }
            Self::Empty(a) => write!(f, "_empty({a})"),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{} {}",
                k.field,
                if k.descending { "DESC" } else { "ASC" }
            )?;
        }
        Ok(())
    }
}
