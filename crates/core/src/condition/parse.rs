//! The condition language's parser: a tokenizer and a recursive descent over the grammar of
//! docs/conditions.md. Every error names the position (in characters from 1) where the
//! condition stops making sense and what was expected there.
//!
//! Precedence, loosest first: `OR`, `AND`, `NOT`, then a predicate (a comparison, `IN`,
//! `LIKE`, `IS NULL`, `_empty(..)`) or a parenthesised condition. Keywords and property names
//! are case-insensitive; nesting is bounded ([`MAX_DEPTH`]) so that no input exhausts the
//! stack.

use super::ast::{Cmp, Expr, Field, Lit, Operand, Order, OrderKey, Prop};

/// How deep parentheses and `NOT`s may nest.
pub const MAX_DEPTH: usize = 64;

/// Why a condition or an order does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {what}")]
pub struct ParseError {
    /// Where, in characters from 1 (one past the end when the text ended too soon).
    pub position: usize,
    /// What was wrong, and what was expected.
    pub what: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `[name]`
    Bracketed(String),
    Str(String),
    Int(i64),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("`{s}`"),
            Self::Bracketed(s) => format!("`[{s}]`"),
            Self::Str(s) => format!("the string '{s}'"),
            Self::Int(n) => format!("the number {n}"),
            Self::Op(o) => format!("`{o}`"),
            Self::LParen => "`(`".into(),
            Self::RParen => "`)`".into(),
            Self::LBracket => "`[`".into(),
            Self::RBracket => "`]`".into(),
            Self::Comma => "`,`".into(),
            Self::Dot => "`.`".into(),
            Self::End => "the end of the condition".into(),
        }
    }
}

/// Tokens with their positions (characters from 1).
fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |position: usize, what: String| ParseError { position, what };
    while let Some(&c) = chars.get(i) {
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '.' => (Tok::Dot, 1),
            ']' => (Tok::RBracket, 1),
            '=' => (Tok::Op("="), 1),
            '!' if next == Some('=') => (Tok::Op("!="), 2),
            '<' if next == Some('>') => (Tok::Op("!="), 2),
            '<' if next == Some('=') => (Tok::Op("<="), 2),
            '<' => (Tok::Op("<"), 1),
            '>' if next == Some('=') => (Tok::Op(">="), 2),
            '>' => (Tok::Op(">"), 1),
            '[' => {
                // `[media_type]` names a column; `UserData['key']` opens a key.
                if next == Some('\'') {
                    (Tok::LBracket, 1)
                } else {
                    let rest = chars.get(i + 1..).unwrap_or_default();
                    let end = rest
                        .iter()
                        .position(|&c| c == ']')
                        .ok_or_else(|| err(at, "`[` is never closed by `]`".into()))?;
                    let name: String = rest.iter().take(end).collect();
                    (Tok::Bracketed(name.trim().to_owned()), end + 2)
                }
            }
            '\'' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(at, "the string is never closed by `'`".into())),
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            s.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Str(s), j + 1 - i)
            }
            '-' | '0'..='9' => {
                let mut j = i + 1;
                while chars.get(j).is_some_and(char::is_ascii_digit) {
                    j += 1;
                }
                let digits: String = chars.iter().skip(i).take(j - i).collect();
                let n = digits.parse::<i64>().map_err(|_| {
                    err(
                        at,
                        format!("expected an integer (at most 19 digits), found `{digits}`"),
                    )
                })?;
                (Tok::Int(n), j - i)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    j += 1;
                }
                (
                    Tok::Ident(chars.iter().skip(i).take(j - i).collect()),
                    j - i,
                )
            }
            other => {
                return Err(err(
                    at,
                    format!(
                        "unexpected `{other}`: expected a name, a 'string', a number, an operator or a parenthesis"
                    ),
                ));
            }
        };
        out.push((tok, at));
        i += len;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// The names a bare unknown name is compared with, for the error.
fn known_names() -> String {
    let mut names: Vec<&str> = Prop::ALL.iter().map(|(_, n, _)| *n).collect();
    names.extend(["UserData.Key", "UserData['any key']"]);
    names.join(", ")
}

impl Parser {
    fn new(text: &str) -> Result<Self, ParseError> {
        Ok(Self {
            toks: tokenize(text)?,
            pos: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |(t, _)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |(_, p)| *p)
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, expected: &str) -> ParseError {
        ParseError {
            position: self.at(),
            what: format!("expected {expected}, found {}", self.peek().describe()),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.keyword(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == tok {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError {
                position: self.at(),
                what: format!("nested more than {MAX_DEPTH} deep"),
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.and()?;
        while self.eat_keyword("OR") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.not()?;
        while self.eat_keyword("AND") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_keyword("NOT") {
            self.deeper()?;
            let e = Expr::Not(Box::new(self.not()?));
            self.depth -= 1;
            return Ok(e);
        }
        if *self.peek() == Tok::LParen {
            self.pos += 1;
            self.deeper()?;
            let e = self.or()?;
            self.depth -= 1;
            self.expect(&Tok::RParen, "`)` or AND or OR")?;
            return Ok(e);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        if self.keyword("_empty") {
            self.pos += 1;
            self.expect(&Tok::LParen, "`(` after _empty")?;
            let a = self.operand()?;
            self.expect(&Tok::RParen, "`)` closing _empty(")?;
            return Ok(Expr::Empty(a));
        }
        let operand = self.operand()?;
        if let Tok::Op(op) = self.peek().clone() {
            self.pos += 1;
            let cmp = match op {
                "=" => Cmp::Eq,
                "!=" => Cmp::Ne,
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                ">" => Cmp::Gt,
                _ => Cmp::Ge,
            };
            return Ok(Expr::Cmp(operand, cmp, self.operand()?));
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            if !self.eat_keyword("NULL") {
                return Err(self.error("NULL after IS [NOT]"));
            }
            return Ok(Expr::IsNull { operand, negated });
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("IN") {
            self.expect(&Tok::LParen, "`(` after IN")?;
            let mut list = vec![self.literal()?];
            while *self.peek() == Tok::Comma {
                self.pos += 1;
                list.push(self.literal()?);
            }
            self.expect(&Tok::RParen, "`,` or `)` in the IN list")?;
            return Ok(Expr::In {
                operand,
                list,
                negated,
            });
        }
        if self.eat_keyword("LIKE") {
            return match self.bump() {
                Tok::Str(pattern) => Ok(Expr::Like {
                    operand,
                    pattern,
                    negated,
                }),
                _ => {
                    self.pos -= 1;
                    Err(self.error("a 'pattern' after LIKE"))
                }
            };
        }
        Err(self.error(if negated {
            "IN or LIKE after NOT"
        } else {
            "a comparison (= != <> < <= > >=), IN, LIKE or IS [NOT] NULL"
        }))
    }

    fn literal(&mut self) -> Result<Lit, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Lit::Str(s))
            }
            Tok::Int(n) => {
                self.pos += 1;
                Ok(Lit::Int(n))
            }
            _ => Err(self.error("a 'string' or a number")),
        }
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        match self.peek().clone() {
            Tok::Str(_) | Tok::Int(_) => self.literal().map(Operand::Lit),
            Tok::Ident(s) if s.eq_ignore_ascii_case("_age") => {
                self.pos += 1;
                self.expect(&Tok::LParen, "`(` after _age")?;
                self.expect(&Tok::RParen, "`)`: _age() takes nothing")?;
                Ok(Operand::Age)
            }
            Tok::Ident(_) | Tok::Bracketed(_) => self.field().map(Operand::Field),
            _ => Err(self.error("a property name, a 'string', a number or _age()")),
        }
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let at = self.at();
        let name = match self.bump() {
            Tok::Ident(s) | Tok::Bracketed(s) => s,
            _ => {
                self.pos -= 1;
                return Err(self.error("a property name"));
            }
        };
        if name.eq_ignore_ascii_case("UserData") {
            return match self.bump() {
                Tok::Dot => match self.bump() {
                    Tok::Ident(k) => Ok(Field::UserData(k)),
                    _ => {
                        self.pos -= 1;
                        Err(self.error("a key after `UserData.`"))
                    }
                },
                Tok::LBracket => match self.bump() {
                    Tok::Str(k) => {
                        self.expect(&Tok::RBracket, "`]` after the key")?;
                        Ok(Field::UserData(k))
                    }
                    _ => {
                        self.pos -= 1;
                        Err(self.error("a 'key' in UserData['...']"))
                    }
                },
                _ => {
                    self.pos -= 1;
                    Err(self.error("`.Key` or `['key']` after UserData"))
                }
            };
        }
        Prop::named(&name)
            .map(Field::Prop)
            .ok_or_else(|| ParseError {
                position: at,
                what: format!(
                    "unknown name `{name}`; the known names are {}",
                    known_names()
                ),
            })
    }
}

/// Parses a condition (docs/conditions.md).
pub fn condition(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(text)?;
    let e = p.or()?;
    if *p.peek() != Tok::End {
        return Err(p.error("AND, OR or the end of the condition"));
    }
    Ok(e)
}

/// Parses an order: `Prop [ASC|DESC], ...` (empty: no order given).
pub fn order(text: &str) -> Result<Order, ParseError> {
    let mut p = Parser::new(text)?;
    let mut keys = Vec::new();
    if *p.peek() == Tok::End {
        return Ok(Order(keys));
    }
    loop {
        let field = p.field()?;
        let descending = if p.eat_keyword("DESC") {
            true
        } else {
            p.eat_keyword("ASC");
            false
        };
        keys.push(OrderKey { field, descending });
        match p.peek() {
            Tok::Comma => p.pos += 1,
            Tok::End => return Ok(Order(keys)),
            _ => return Err(p.error("`,`, ASC, DESC or the end of the order")),
        }
    }
}
