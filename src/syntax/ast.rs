//! The segment AST, as written (names are resolved by the checker). `Display` is the canonical
//! printer: lowercase keywords, single spaces, parentheses only where precedence needs them.

use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;

pub use crate::base::span::Span;
pub use crate::base::time::Period;

/// A name as written: `tags`, `person.custom.favoriteTeam`, `` `App Launch` ``.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub parts: Vec<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    Or(Vec<Pred>),
    And(Vec<Pred>),
    Not(Box<Pred>, Span),
    /// `subject test`, e.g. `age >= 18`, `tags has "vip"`.
    Test {
        subject: Operand,
        test: Test,
        span: Span,
    },
    /// An operand alone: a boolean field, `did(…)`, `segment("…")`, an event name.
    Bare(Operand),
    /// Parenthesized, kept so spans cover the parentheses.
    Group(Box<Pred>, Span),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Name(Name),
    Agg(Agg),
    Segment {
        name: String,
        span: Span,
    },
    /// `did(A then B within 1h then not C within 1d within 30d)`.
    Sequence(Sequence),
    /// `stopped(E for D1 within D2)` / `restarted(E within D1 after D2)`: sugar the checker
    /// expands.
    Lapse(Lapse),
    /// `anniversary of custom.contractStart` (and `birthday`, which the checker resolves).
    Anniversary(Name, Span),
}

/// One step of a sequence: `[not] Event [where P] [within gap]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqStep {
    pub negated: bool,
    pub event: Ident,
    pub filter: Option<Box<Pred>>,
    /// The longest time from the previous step to this one (none for the first step).
    pub gap: Option<Literal>,
}

/// `[installation.]did(step then [not] step … [window])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub installation_scope: bool,
    pub steps: Vec<SeqStep>,
    /// The window every positive step falls in.
    pub window: Option<Window>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LapseKind {
    /// Did it in the long window, not in the recent one.
    Stopped,
    /// Did it recently, not in the break before that, and before the break.
    Restarted,
}

/// `stopped(E [where P] for RECENT within LONG)`, `restarted(E [where P] within RECENT after
/// BREAK)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lapse {
    pub installation_scope: bool,
    pub kind: LapseKind,
    pub event: Ident,
    pub filter: Option<Box<Pred>>,
    pub recent: Literal,
    pub other: Literal,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Did,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    /// `count distinct(E.property)`.
    CountDistinct,
}

impl AggFunc {
    pub const ALL: [AggFunc; 9] = [
        AggFunc::CountDistinct,
        AggFunc::Count,
        AggFunc::Did,
        AggFunc::Sum,
        AggFunc::Avg,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::First,
        AggFunc::Last,
    ];
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Did => "did",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::First => "first",
            AggFunc::Last => "last",
            AggFunc::CountDistinct => "count distinct",
        }
    }
    /// sum/avg/min/max/count distinct read a property.
    pub fn takes_property(self) -> bool {
        matches!(
            self,
            AggFunc::Sum | AggFunc::Avg | AggFunc::Min | AggFunc::Max | AggFunc::CountDistinct
        )
    }
}

/// `[installation.]func(Event[.property] [where P] [window])`
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    pub installation_scope: bool,
    pub func: AggFunc,
    pub event: Ident,
    pub property: Option<Ident>,
    pub filter: Option<Box<Pred>>,
    pub window: Option<Window>,
    /// `last(E).property`: the property of the first or last event.
    pub of_event: Option<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    Within(Literal),
    Since(Literal),
    Between(Literal, Literal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Contains,
    StartsWith,
    EndsWith,
    Matches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasOp {
    Has,
    Any,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Cmp(CmpOp, Literal),
    In {
        values: Vec<Literal>,
        negated: bool,
    },
    Between(Literal, Literal),
    IsSet {
        negated: bool,
    },
    Match(MatchOp, Literal),
    Has(HasOp, Vec<Literal>),
    Within(Literal),
    /// `within next D`: from the as-of time on.
    WithinNext(Literal),
    Before(Literal),
    After(Literal),
    /// `op N per period in K of [the] last M periods`.
    Regular(Box<Regularity>),
}

/// Calendar periods of a regularity test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Day,
    Week,
    Month,
}

impl PeriodUnit {
    pub fn name(self) -> &'static str {
        match self {
            PeriodUnit::Day => "day",
            PeriodUnit::Week => "week",
            PeriodUnit::Month => "month",
        }
    }
}

/// `>= 3 per week in 4 of the last 6 weeks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Regularity {
    pub op: CmpOp,
    pub times: Literal,
    pub unit: PeriodUnit,
    pub at_least: Literal,
    pub of_last: Literal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LitValue {
    String(String),
    /// The number and how it was written (kept for printing).
    Number(f64, String),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    /// A length of time, and how it was written (`1d12h`, `3mo`, `30 days`).
    Duration(Period, String),
    /// `D ago`.
    Ago(Period, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: LitValue,
    pub span: Span,
}

/// The whole segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub root: Pred,
}

// ---- canonical printing ----

/// Reserved words (the server lists them for completion).
pub const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "between", "is", "where", "within", "since", "before", "after",
    "true", "false", "has", "contains", "matches", "then",
];

pub fn is_reserved(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self
            .text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && self
                .text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !is_reserved(&self.text)
            && AggFunc::ALL
                .iter()
                .all(|a| !a.name().eq_ignore_ascii_case(&self.text));
        if plain {
            f.write_str(&self.text)
        } else {
            write!(f, "`{}`", self.text.replace('`', "``"))
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            // Namespace words are printed lowercase; they are keywords only in this position.
            let ns = i + 1 < self.parts.len()
                && ["person", "installation", "custom"]
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&p.text));
            if ns {
                f.write_str(&p.text.to_ascii_lowercase())?;
            } else {
                write!(f, "{p}")?;
            }
        }
        Ok(())
    }
}

pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            LitValue::String(s) => f.write_str(&quote(s)),
            LitValue::Number(_, text) => f.write_str(text),
            LitValue::Bool(b) => write!(f, "{b}"),
            LitValue::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            LitValue::Timestamp(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            LitValue::Duration(_, text) => f.write_str(text),
            LitValue::Ago(_, text) => write!(f, "{text} ago"),
        }
    }
}

/// `(a, b, c)`: the list syntax of `in`, `has any` and `has all`.
pub fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, values: &[T]) -> fmt::Result {
    f.write_str("(")?;
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::Cmp(op, v) => write!(f, "{} {v}", op.symbol()),
            Test::In { values, negated } => {
                f.write_str(if *negated { "not in " } else { "in " })?;
                list(f, values)
            }
            Test::Between(a, b) => write!(f, "between {a} and {b}"),
            Test::IsSet { negated } => f.write_str(if *negated { "is not set" } else { "is set" }),
            Test::Match(op, v) => {
                let word = match op {
                    MatchOp::Contains => "contains",
                    MatchOp::StartsWith => "starts with",
                    MatchOp::EndsWith => "ends with",
                    MatchOp::Matches => "matches",
                };
                write!(f, "{word} {v}")
            }
            Test::Has(HasOp::Has, v) => write!(f, "has {}", v[0]),
            Test::Has(op, v) => {
                f.write_str(if *op == HasOp::Any {
                    "has any "
                } else {
                    "has all "
                })?;
                list(f, v)
            }
            Test::Within(v) => write!(f, "within {v}"),
            Test::WithinNext(v) => write!(f, "within next {v}"),
            Test::Before(v) => write!(f, "before {v}"),
            Test::After(v) => write!(f, "after {v}"),
            Test::Regular(r) => {
                let unit = r.unit.name();
                write!(
                    f,
                    "{} {} per {unit} in {} of the last {} {unit}s",
                    r.op.symbol(),
                    r.times,
                    r.at_least,
                    r.of_last
                )
            }
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Within(d) => write!(f, "within {d}"),
            Window::Since(t) => write!(f, "since {t}"),
            Window::Between(a, b) => write!(f, "between {a} and {b}"),
        }
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.installation_scope {
            f.write_str("installation.")?;
        }
        write!(f, "{}({}", self.func.name(), self.event)?;
        if let Some(p) = &self.property {
            write!(f, ".{p}")?;
        }
        if let Some(p) = &self.filter {
            write!(f, " where {p}")?;
        }
        if let Some(w) = &self.window {
            write!(f, " {w}")?;
        }
        f.write_str(")")?;
        if let Some(p) = &self.of_event {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.installation_scope {
            f.write_str("installation.")?;
        }
        f.write_str("did(")?;
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(" then ")?;
            }
            if s.negated {
                f.write_str("not ")?;
            }
            write!(f, "{}", s.event)?;
            if let Some(p) = &s.filter {
                write!(f, " where {p}")?;
            }
            if let Some(g) = &s.gap {
                write!(f, " within {g}")?;
            }
        }
        let last_gap = self.steps.last().is_some_and(|s| s.gap.is_some());
        match &self.window {
            // Right after a step, `within` would read as that step's gap; `since D ago` is the
            // same window.
            Some(Window::Within(d)) if !last_gap => write!(f, " since {d} ago")?,
            Some(w) => write!(f, " {w}")?,
            None => {}
        }
        f.write_str(")")
    }
}

impl fmt::Display for Lapse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.installation_scope {
            f.write_str("installation.")?;
        }
        let word = match self.kind {
            LapseKind::Stopped => "stopped",
            LapseKind::Restarted => "restarted",
        };
        write!(f, "{word}({}", self.event)?;
        if let Some(p) = &self.filter {
            write!(f, " where {p}")?;
        }
        match self.kind {
            LapseKind::Stopped => write!(f, " for {} within {})", self.recent, self.other),
            LapseKind::Restarted => write!(f, " within {} after {})", self.recent, self.other),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Name(n) => write!(f, "{n}"),
            Operand::Agg(a) => write!(f, "{a}"),
            Operand::Segment { name, .. } => write!(f, "segment({})", quote(name)),
            Operand::Sequence(s) => write!(f, "{s}"),
            Operand::Lapse(l) => write!(f, "{l}"),
            Operand::Anniversary(n, _) => write!(f, "anniversary of {n}"),
        }
    }
}

/// Precedence levels: or 1, and 2, not 3, atoms 4.
fn level(p: &Pred) -> u8 {
    match p {
        Pred::Or(_) => 1,
        Pred::And(_) => 2,
        Pred::Not(..) => 3,
        Pred::Group(inner, _) => level(inner),
        _ => 4,
    }
}

fn child(f: &mut fmt::Formatter<'_>, p: &Pred, min: u8) -> fmt::Result {
    if level(p) < min {
        write!(f, "({p})")
    } else {
        write!(f, "{p}")
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pred::Or(items) | Pred::And(items) => {
                let (word, min) = if matches!(self, Pred::Or(_)) {
                    (" or ", 2)
                } else {
                    (" and ", 3)
                };
                for (i, p) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    child(f, p, min)?;
                }
                Ok(())
            }
            Pred::Not(p, _) => {
                f.write_str("not ")?;
                child(f, p, 3)
            }
            Pred::Test { subject, test, .. } => write!(f, "{subject} {test}"),
            Pred::Bare(o) => write!(f, "{o}"),
            Pred::Group(p, _) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}

impl Pred {
    pub fn span(&self) -> Span {
        match self {
            Pred::Or(items) | Pred::And(items) => items[0].span().to(items[items.len() - 1].span()),
            Pred::Not(_, s) | Pred::Group(_, s) | Pred::Test { span: s, .. } => *s,
            Pred::Bare(o) => o.span(),
        }
    }
}

impl Operand {
    pub fn span(&self) -> Span {
        match self {
            Operand::Name(n) => n.span,
            Operand::Agg(a) => a.span,
            Operand::Segment { span, .. } => *span,
            Operand::Sequence(s) => s.span,
            Operand::Lapse(l) => l.span,
            Operand::Anniversary(_, span) => *span,
        }
    }
}
