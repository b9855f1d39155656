//! Stage 2, check: resolve names against the catalog, type-check every test, function and
//! window, inline saved segments. Reports every error it finds, each with its span.

mod aggregates;
mod literals;
mod patterns;
mod resolve;
pub mod saved;
pub mod typed;

use crate::catalog::names::same;
use crate::catalog::{Catalog, Entity, EventDef, ValueType};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::syntax::ast::{self, AggFunc, CmpOp, Operand, Pred, Span, Test};
use literals::describe_type;
pub use saved::{NoSavedSegments, SavedMap, SavedSegments, SegmentDir, MAX_SAVED_EXPANSIONS};
use typed::*;

/// Parses and checks a segment.
pub fn compile(
    src: &str,
    catalog: &Catalog,
    saved: &dyn SavedSegments,
) -> Result<TypedSegment, Diagnostics> {
    let seg = crate::syntax::parse(src)?;
    check(&seg, catalog, saved)
}

/// Checks a parsed segment against the catalog.
pub fn check(
    seg: &ast::Segment,
    catalog: &Catalog,
    saved: &dyn SavedSegments,
) -> Result<TypedSegment, Diagnostics> {
    let mut c = Checker {
        catalog,
        saved,
        errors: vec![],
        warnings: vec![],
        stack: vec![],
        expansions: 0,
        graph_error: None,
    };
    let root = c.pred(&seg.root, None);
    if c.errors.is_empty() {
        Ok(TypedSegment {
            root,
            warnings: c.warnings,
        })
    } else {
        Err(Diagnostics(c.errors))
    }
}

/// Resolves an attribute name as segments write it (`externalUserId`, `person.custom.x`), for
/// choosing output columns.
pub fn resolve_attribute(name: &str, catalog: &Catalog) -> Option<(Entity, String, String)> {
    let seg = crate::syntax::parse(name).ok()?;
    let Pred::Bare(Operand::Name(n)) = &seg.root else {
        return None;
    };
    let c = Checker {
        catalog,
        saved: &NoSavedSegments,
        errors: vec![],
        warnings: vec![],
        stack: vec![],
        expansions: 0,
        graph_error: None,
    };
    match c.resolve_attribute(n)? {
        Field::Attribute {
            entity,
            name,
            column,
            ..
        } => Some((entity, column, name)),
        _ => None,
    }
}

struct Checker<'a> {
    catalog: &'a Catalog,
    saved: &'a dyn SavedSegments,
    errors: Vec<Diagnostic>,
    /// What runs but may not mean what was meant (values the data never has, …).
    warnings: Vec<Diagnostic>,
    /// Saved segments being checked, for cycle detection.
    stack: Vec<String>,
    /// Saved segments inlined so far: a bound, because references that fan out (`a` uses `b`
    /// twice, `b` uses `c` twice, …) would otherwise inline exponentially many copies.
    expansions: usize,
    /// A cycle or too many expansions, found in a saved segment: reported as it is at each
    /// reference on the way out, not wrapped in "saved segment `x` has errors: …" per level.
    graph_error: Option<Diagnostic>,
}

/// Inside `where`, names are the event's properties.
type Ctx<'e> = Option<&'e EventDef>;

impl<'a> Checker<'a> {
    fn error(&mut self, code: Code, span: Span, message: impl Into<String>) {
        self.errors.push(Diagnostic::error(code, span, message));
    }

    fn warn(&mut self, code: Code, span: Span, message: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::warning(code, span, message);
        d.hint = hint;
        self.warnings.push(d);
    }

    fn error_hint(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors
            .push(Diagnostic::error(code, span, message).with_hint(hint));
    }

    fn pred(&mut self, p: &Pred, ctx: Ctx) -> TPred {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.pred_inner(p, ctx))
    }

    fn pred_inner(&mut self, p: &Pred, ctx: Ctx) -> TPred {
        match p {
            Pred::Or(items) => TPred::Or(items.iter().map(|p| self.pred(p, ctx)).collect()),
            Pred::And(items) => TPred::And(items.iter().map(|p| self.pred(p, ctx)).collect()),
            Pred::Not(inner, _) => TPred::Not(Box::new(self.pred(inner, ctx))),
            Pred::Group(inner, _) => self.pred(inner, ctx),
            Pred::Bare(o) => self.bare(o, ctx),
            Pred::Test {
                subject: Operand::Agg(a),
                test: Test::Regular(r),
                ..
            } => self.regularity(a, r, ctx),
            Pred::Test {
                subject,
                test: Test::Regular(_),
                ..
            } => {
                self.error_hint(
                    Code::BadRegularity,
                    subject.span(),
                    format!("a regularity test counts events, but `{subject}` is not count(…)"),
                    "count(AppLaunch) >= 3 per week in 4 of the last 6 weeks",
                );
                TPred::Const(false)
            }
            Pred::Test { subject, test, .. } => match self.operand(subject, ctx) {
                Some(field) => self.test(field, subject, test),
                None => TPred::Const(false),
            },
        }
    }

    /// An operand used as a condition on its own.
    fn bare(&mut self, o: &Operand, ctx: Ctx) -> TPred {
        match o {
            Operand::Segment { name, span } => self.saved_segment(name, *span, ctx),
            Operand::Sequence(s) => self.sequence(s, ctx),
            Operand::Lapse(l) => self.lapse(l, ctx),
            Operand::Agg(a) if a.func == AggFunc::Did => match self.agg(a, ctx) {
                Some(field) => TPred::Compare {
                    field,
                    op: CmpOp::Gt,
                    value: Value::Number(0.0),
                },
                None => TPred::Const(false),
            },
            Operand::Name(n)
                if ctx.is_none()
                    && n.parts.len() == 1
                    && self
                        .catalog
                        .events
                        .iter()
                        .any(|e| same(&e.name, &n.parts[0].text))
                    && self.resolve_attribute(n).is_none() =>
            {
                // A bare event name means "did it ever happen".
                let event = self
                    .catalog
                    .events
                    .iter()
                    .find(|e| same(&e.name, &n.parts[0].text))
                    .expect("checked");
                let agg = EventAgg {
                    installation_scope: false,
                    event: event.name.clone(),
                    kind: AggKind::Count,
                    property: None,
                    filter: None,
                    window: Window::All,
                };
                TPred::Compare {
                    field: Field::Agg(agg),
                    op: CmpOp::Gt,
                    value: Value::Number(0.0),
                }
            }
            _ => match self.operand(o, ctx) {
                Some(field) if field.ty() == ValueType::Boolean => TPred::IsTrue(field),
                Some(field) => {
                    let hint = match field.ty() {
                        ValueType::StringList => {
                            format!("test it: `{o} has \"…\"` or `{o} is set`")
                        }
                        ValueType::Number => format!("compare it: `{o} > 0`"),
                        ValueType::Date if matches!(field, Field::Anniversary(_)) => {
                            format!("test it: `{o} within next 7d`")
                        }
                        ValueType::Date | ValueType::Timestamp => {
                            format!("test it: `{o} within 30d` or `{o} is set`")
                        }
                        _ => format!("compare it (`{o} = \"…\"`) or test it (`{o} is set`)"),
                    };
                    self.error_hint(
                        Code::NotACondition,
                        o.span(),
                        format!("`{o}` is {}, not a condition", describe_type(field.ty())),
                        hint,
                    );
                    TPred::Const(false)
                }
                None => TPred::Const(false),
            },
        }
    }

    fn operand(&mut self, o: &Operand, ctx: Ctx) -> Option<Field> {
        match o {
            Operand::Name(n) => self.name(n, ctx),
            Operand::Agg(a) if a.func == AggFunc::Did => {
                self.error_hint(
                    Code::NotComparable,
                    a.span,
                    "did(…) is a condition on its own and cannot be compared",
                    "use count(…) to compare how often: count(AddToCart within 7d) >= 2",
                );
                None
            }
            Operand::Agg(a) => self.agg(a, ctx),
            Operand::Anniversary(n, span) => {
                let inner = self.name(n, ctx)?;
                self.anniversary_of(inner, *span)
            }
            Operand::Sequence(ast::Sequence { span, .. })
            | Operand::Lapse(ast::Lapse { span, .. }) => {
                self.error(
                    Code::NotComparable,
                    *span,
                    format!("`{o}` is a condition on its own and cannot be compared"),
                );
                None
            }
            Operand::Segment { span, .. } => {
                self.error(
                    Code::NotComparable,
                    *span,
                    "segment(…) is a condition on its own and cannot be compared",
                );
                None
            }
        }
    }
}

impl<'a> Checker<'a> {
    /// The anniversaries of a date or timestamp attribute.
    fn anniversary_of(&mut self, inner: Field, span: Span) -> Option<Field> {
        match &inner {
            Field::Attribute {
                ty: ValueType::Date | ValueType::Timestamp,
                ..
            } => Some(Field::Anniversary(Box::new(inner))),
            other => {
                self.error_hint(
                    Code::NotAnniversary,
                    span,
                    format!(
                        "`{other}` is {}: only dates have anniversaries",
                        describe_type(other.ty())
                    ),
                    "e.g. anniversary of custom.contractStart within next 30d",
                );
                None
            }
        }
    }
}

/// Test helpers: a segment checked against the sample catalog (with two saved segments), shown
/// as its resolved form or as its diagnostics, one a line with code, span, message and hint.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn saved() -> SavedMap {
        SavedMap(
            [
                ("vip-users", "tags has \"vip\""),
                ("loop-a", "segment(\"loop-b\")"),
                ("loop-b", "segment(\"loop-a\")"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
    }

    pub fn checked(src: &str) -> String {
        match compile(src, &Catalog::sample(), &saved()) {
            Ok(t) => t.root.to_string(),
            Err(d) => d.brief(),
        }
    }
}
