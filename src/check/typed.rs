//! The typed segment: names resolved to columns, types checked, saved segments inlined. The
//! planner consumes only this; it never needs the text again.

pub use crate::base::time::Period;
use crate::catalog::{Entity, ValueType};
use crate::syntax::ast::{CmpOp, HasOp, MatchOp};
use chrono::NaiveDate;

/// Where a relative time is measured from is the planner's business (the as-of time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeBound {
    Date(NaiveDate),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
    /// `D ago`: D before the as-of time.
    Ago(Period),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    Time(TimeBound),
    /// A version literal, compared part by part.
    Version(String),
}

/// Which events an aggregate reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// All history up to the as-of time.
    All,
    /// The length D up to the as-of time.
    Within(Period),
    Since(TimeBound),
    /// Inclusive at both ends; a date end includes that whole day.
    Between(TimeBound, TimeBound),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventAgg {
    /// Events of one installation (`installation.count(…)`) instead of all the person's.
    pub installation_scope: bool,
    /// Canonical event name.
    pub event: String,
    pub kind: AggKind,
    /// Property column and type for sum/avg/min/max.
    pub property: Option<(String, ValueType)>,
    pub filter: Option<Box<TPred>>,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Attribute {
        entity: Entity,
        name: String,
        column: String,
        ty: ValueType,
    },
    /// Whole years from birthDate to the as-of time.
    Age,
    /// Stable hash of the person into 0..=9999.
    RandomBucket,
    /// count/sum/… over events: a number, or a timestamp for first/last.
    Agg(EventAgg),
    /// A property of the event, inside `where`.
    Property {
        event: String,
        name: String,
        column: String,
        ty: ValueType,
    },
}

impl Field {
    pub fn ty(&self) -> ValueType {
        match self {
            Field::Attribute { ty, .. } | Field::Property { ty, .. } => *ty,
            Field::Age | Field::RandomBucket => ValueType::Number,
            Field::Agg(a) => match a.kind {
                AggKind::First | AggKind::Last => ValueType::Timestamp,
                _ => ValueType::Number,
            },
        }
    }
}

/// Time tests on dates and timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeTest {
    /// In the length D up to the as-of time.
    Within(Period),
    Before(TimeBound),
    After(TimeBound),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TPred {
    Const(bool),
    And(Vec<TPred>),
    Or(Vec<TPred>),
    Not(Box<TPred>),
    /// A boolean field alone.
    IsTrue(Field),
    Compare {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
    },
    /// Inclusive.
    Between {
        field: Field,
        low: Value,
        high: Value,
    },
    IsSet(Field),
    /// Case-insensitive contains / starts with / ends with; `matches` is a regular expression.
    Match {
        field: Field,
        op: MatchOp,
        pattern: String,
    },
    Has {
        field: Field,
        op: HasOp,
        values: Vec<String>,
    },
    Time {
        field: Field,
        test: TimeTest,
    },
    /// A saved segment, inlined (the name is kept for plans and messages).
    Saved {
        name: String,
        body: Box<TPred>,
    },
}

/// A checked segment, and the warnings checking it raised (it runs, but may not mean what
/// was meant).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedSegment {
    pub root: TPred,
    pub warnings: Vec<crate::diagnostic::Diagnostic>,
}

impl TypedSegment {
    /// A segment of `root`, without warnings (built by the application, not checked text).
    pub fn of(root: TPred) -> TypedSegment {
        TypedSegment {
            root,
            warnings: Vec::new(),
        }
    }
}

impl TPred {
    /// Calls `f` on every field the predicate reads (not descending into aggregate filters).
    pub fn visit_fields(&self, f: &mut dyn FnMut(&Field)) {
        match self {
            TPred::Const(_) => {}
            TPred::And(v) | TPred::Or(v) => v.iter().for_each(|p| p.visit_fields(f)),
            TPred::Not(p) => p.visit_fields(f),
            TPred::Saved { body, .. } => body.visit_fields(f),
            TPred::IsTrue(x)
            | TPred::Compare { field: x, .. }
            | TPred::In { field: x, .. }
            | TPred::Between { field: x, .. }
            | TPred::IsSet(x)
            | TPred::Match { field: x, .. }
            | TPred::Has { field: x, .. }
            | TPred::Time { field: x, .. } => f(x),
        }
    }
}

// ---- display: the resolved segment, with canonical names (what `audience check` prints) ----

use crate::syntax::ast::list;
use std::fmt;

impl fmt::Display for TimeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeBound::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            TimeBound::Timestamp(t) => match chrono::DateTime::from_timestamp_micros(*t) {
                Some(t) => write!(
                    f,
                    "{}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
                None => write!(f, "{t}µs"),
            },
            TimeBound::Ago(p) => write!(f, "{} ago", p.format()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) | Value::Version(s) => f.write_str(&crate::syntax::ast::quote(s)),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Value::Time(t) => write!(f, "{t}"),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::All => Ok(()),
            Window::Within(p) => write!(f, " within {}", p.format()),
            Window::Since(t) => write!(f, " since {t}"),
            Window::Between(a, b) => write!(f, " between {a} and {b}"),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute {
                entity,
                name,
                column,
                ..
            } => {
                let custom = if column.starts_with("custom_") {
                    "custom."
                } else {
                    ""
                };
                write!(f, "{entity}.{custom}{name}")
            }
            Field::Age => f.write_str("age"),
            Field::RandomBucket => f.write_str("randomBucket"),
            Field::Property { name, .. } => f.write_str(name),
            Field::Agg(a) => {
                let func = match a.kind {
                    AggKind::Count => "count",
                    AggKind::Sum => "sum",
                    AggKind::Avg => "avg",
                    AggKind::Min => "min",
                    AggKind::Max => "max",
                    AggKind::First => "first",
                    AggKind::Last => "last",
                };
                let scope = if a.installation_scope {
                    "installation."
                } else {
                    ""
                };
                write!(f, "{scope}{func}({}", a.event)?;
                if let Some((column, _)) = &a.property {
                    write!(f, ".{column}")?;
                }
                if let Some(p) = &a.filter {
                    write!(f, " where {p}")?;
                }
                write!(f, "{})", a.window)
            }
        }
    }
}

impl fmt::Display for TPred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TPred::Const(b) => write!(f, "{b}"),
            TPred::And(items) | TPred::Or(items) => {
                let word = if matches!(self, TPred::And(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, p) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    match p {
                        TPred::And(_) | TPred::Or(_) => write!(f, "({p})")?,
                        _ => write!(f, "{p}")?,
                    }
                }
                Ok(())
            }
            TPred::Not(p) => match p.as_ref() {
                TPred::IsTrue(_) | TPred::Const(_) | TPred::Saved { .. } => write!(f, "not {p}"),
                _ => write!(f, "not ({p})"),
            },
            TPred::IsTrue(x) => write!(f, "{x}"),
            TPred::Compare { field, op, value } => write!(f, "{field} {} {value}", op.symbol()),
            TPred::In { field, values } => {
                write!(f, "{field} in ")?;
                list(f, values)
            }
            TPred::Between { field, low, high } => write!(f, "{field} between {low} and {high}"),
            TPred::IsSet(x) => write!(f, "{x} is set"),
            TPred::Match { field, op, pattern } => {
                let word = match op {
                    MatchOp::Contains => "contains",
                    MatchOp::StartsWith => "starts with",
                    MatchOp::EndsWith => "ends with",
                    MatchOp::Matches => "matches",
                };
                write!(f, "{field} {word} {}", crate::syntax::ast::quote(pattern))
            }
            TPred::Has { field, op, values } => {
                let quoted: Vec<String> = values
                    .iter()
                    .map(|v| crate::syntax::ast::quote(v))
                    .collect();
                match op {
                    HasOp::Has => write!(f, "{field} has {}", quoted[0]),
                    HasOp::Any => {
                        write!(f, "{field} has any ")?;
                        list(f, &quoted)
                    }
                    HasOp::All => {
                        write!(f, "{field} has all ")?;
                        list(f, &quoted)
                    }
                }
            }
            TPred::Time { field, test } => match test {
                TimeTest::Within(p) => write!(f, "{field} within {}", p.format()),
                TimeTest::Before(t) => write!(f, "{field} before {t}"),
                TimeTest::After(t) => write!(f, "{field} after {t}"),
            },
            TPred::Saved { name, body } => write!(
                f,
                "segment({}) {{ {body} }}",
                crate::syntax::ast::quote(name)
            ),
        }
    }
}
