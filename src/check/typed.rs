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
    /// `[from, to)`, half-open (what `restarted(…)` expands to).
    Range(TimeBound, TimeBound),
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
    /// The number of distinct values of a property (missing values not counted).
    CountDistinct,
    /// The property of the first / last event. Events at the same instant: a set value wins
    /// over a missing one; among set values the first takes the smallest, the last the largest.
    FirstValue,
    LastValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventAgg {
    /// Events of one installation (`installation.count(…)`) instead of all the person's.
    pub installation_scope: bool,
    /// Canonical event name.
    pub event: String,
    pub kind: AggKind,
    /// Property column and type for sum/avg/min/max, count distinct, first/last values.
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
    /// The yearly recurrences of a date attribute (`birthday` is birthDate's), tested with
    /// `within [next] D`. 29 February falls on 1 March in other years; the date itself is not
    /// its own anniversary (the first one is a year later).
    Anniversary(Box<Field>),
}

impl Field {
    pub fn ty(&self) -> ValueType {
        match self {
            Field::Attribute { ty, .. } | Field::Property { ty, .. } => *ty,
            Field::Age | Field::RandomBucket => ValueType::Number,
            Field::Agg(a) => match a.kind {
                AggKind::First | AggKind::Last => ValueType::Timestamp,
                AggKind::FirstValue | AggKind::LastValue => {
                    a.property.as_ref().map_or(ValueType::String, |p| p.1)
                }
                _ => ValueType::Number,
            },
            Field::Anniversary(_) => ValueType::Date,
        }
    }
}

/// Time tests on dates and timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeTest {
    /// In the length D up to the as-of time.
    Within(Period),
    /// In the length D from the as-of time on.
    WithinNext(Period),
    Before(TimeBound),
    After(TimeBound),
}

/// One step of a sequence: an event of `event` matching `filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub event: String,
    pub filter: Option<Box<TPred>>,
    /// The longest time after the previous step (exact microseconds).
    pub gap: Option<i64>,
}

/// `did(A then B within G … [then not Z within H] window)`: events e1 … en of the steps, each
/// strictly after the one before (events at the same instant do not follow each other) and at
/// most its gap after it, all in `window`; with `absent`, no event of that step follows en
/// within its gap (which must have passed by the as-of time; without a gap, none up to it).
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub installation_scope: bool,
    /// At least one.
    pub steps: Vec<Step>,
    pub absent: Option<Step>,
    pub window: Window,
}

/// `count(E where P) op N per period in K of the last M periods`: period k (1 ≤ k ≤ M) holds
/// the events in [as-of − k·period, as-of − (k−1)·period); a period without events has 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Regularity {
    pub installation_scope: bool,
    pub event: String,
    pub filter: Option<Box<TPred>>,
    pub op: CmpOp,
    pub times: f64,
    pub period: Period,
    /// The unit word, for printing.
    pub unit: crate::syntax::ast::PeriodUnit,
    pub at_least: u32,
    pub of_last: u32,
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
    Sequence(Sequence),
    Regular(Regularity),
    /// Documented sugar (`stopped(…)`, `restarted(…)`), expanded; printed as written.
    Sugar {
        written: String,
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
            TPred::Saved { body, .. } | TPred::Sugar { body, .. } => body.visit_fields(f),
            TPred::Sequence(_) | TPred::Regular(_) => {}
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
            Window::Range(a, b) => write!(f, " from {a} until {b}"),
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
            Field::Anniversary(inner) => match inner.as_ref() {
                Field::Attribute { column, .. } if column == "birth_date" => {
                    f.write_str("birthday")
                }
                other => write!(f, "anniversary of {other}"),
            },
            Field::Agg(a) => {
                let func = match a.kind {
                    AggKind::Count => "count",
                    AggKind::Sum => "sum",
                    AggKind::Avg => "avg",
                    AggKind::Min => "min",
                    AggKind::Max => "max",
                    AggKind::First | AggKind::FirstValue => "first",
                    AggKind::Last | AggKind::LastValue => "last",
                    AggKind::CountDistinct => "count distinct",
                };
                let of_event = matches!(a.kind, AggKind::FirstValue | AggKind::LastValue);
                let scope = if a.installation_scope {
                    "installation."
                } else {
                    ""
                };
                write!(f, "{scope}{func}({}", a.event)?;
                match &a.property {
                    Some((column, _)) if !of_event => write!(f, ".{column}")?,
                    _ => {}
                }
                if let Some(p) = &a.filter {
                    write!(f, " where {p}")?;
                }
                write!(f, "{})", a.window)?;
                match &a.property {
                    Some((column, _)) if of_event => write!(f, ".{column}"),
                    _ => Ok(()),
                }
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
                TimeTest::WithinNext(p) => write!(f, "{field} within next {}", p.format()),
                TimeTest::Before(t) => write!(f, "{field} before {t}"),
                TimeTest::After(t) => write!(f, "{field} after {t}"),
            },
            TPred::Saved { name, body } => write!(
                f,
                "segment({}) {{ {body} }}",
                crate::syntax::ast::quote(name)
            ),
            TPred::Sugar { written, .. } => f.write_str(written),
            TPred::Sequence(s) => {
                if s.installation_scope {
                    f.write_str("installation.")?;
                }
                f.write_str("did(")?;
                let step = |f: &mut fmt::Formatter<'_>, s: &Step| -> fmt::Result {
                    write!(f, "{}", s.event)?;
                    if let Some(p) = &s.filter {
                        write!(f, " where {p}")?;
                    }
                    if let Some(g) = s.gap {
                        write!(f, " within {}", crate::base::time::format_duration(g))?;
                    }
                    Ok(())
                };
                for (i, st) in s.steps.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" then ")?;
                    }
                    step(f, st)?;
                }
                if let Some(a) = &s.absent {
                    f.write_str(" then not ")?;
                    step(f, a)?;
                }
                let last_gap = s
                    .absent
                    .as_ref()
                    .map_or(s.steps.last().and_then(|x| x.gap), |a| a.gap);
                match s.window {
                    Window::Within(p) if last_gap.is_none() => {
                        write!(f, " since {} ago", p.format())?
                    }
                    w => write!(f, "{w}")?,
                }
                f.write_str(")")
            }
            TPred::Regular(r) => {
                let scope = if r.installation_scope {
                    "installation."
                } else {
                    ""
                };
                write!(f, "{scope}count({}", r.event)?;
                if let Some(p) = &r.filter {
                    write!(f, " where {p}")?;
                }
                let unit = r.unit.name();
                write!(
                    f,
                    ") {} {} per {unit} in {} of the last {} {unit}s",
                    r.op.symbol(),
                    r.times,
                    r.at_least,
                    r.of_last
                )
            }
        }
    }
}
