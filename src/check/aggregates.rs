//! Event functions: `count(E where … within …)` and friends, their property, filter and window.

use super::literals::{describe_literal, describe_type};
use super::typed::*;
use super::{Checker, Ctx};
use crate::catalog::names::same;
use crate::catalog::ValueType;
use crate::diagnostic::Code;
use crate::syntax::ast::{self, AggFunc, LitValue, Literal, Name};

impl<'a> Checker<'a> {
    pub(super) fn agg(&mut self, a: &ast::Agg, ctx: Ctx) -> Option<Field> {
        if ctx.is_some() {
            self.error(
                Code::NestedFunction,
                a.span,
                "event functions cannot be nested inside `where`",
            );
            return None;
        }
        let event = self.event(&a.event)?;
        let kind = match a.func {
            AggFunc::Count | AggFunc::Did => AggKind::Count,
            AggFunc::Sum => AggKind::Sum,
            AggFunc::Avg => AggKind::Avg,
            AggFunc::Min => AggKind::Min,
            AggFunc::Max => AggKind::Max,
            AggFunc::First => AggKind::First,
            AggFunc::Last => AggKind::Last,
        };
        let mut ok = true;
        let property = match (&a.property, a.func.takes_property()) {
            (Some(p), true) => match event.properties.iter().find(|d| same(&d.name, &p.text)) {
                Some(d) if d.ty == ValueType::Number => Some((d.column.clone(), d.ty)),
                Some(d) => {
                    self.error_hint(
                        Code::BadAggregateProperty,
                        p.span,
                        format!(
                            "{}(…) needs a number property, but {}.{} is {}",
                            a.func.name(),
                            event.name,
                            d.name,
                            describe_type(d.ty)
                        ),
                        format!(
                            "count(…) counts events: count({} where {} = …)",
                            event.name, d.name
                        ),
                    );
                    ok = false;
                    None
                }
                None => {
                    let fake = Name {
                        parts: vec![p.clone()],
                        span: p.span,
                    };
                    self.property(&fake, event);
                    ok = false;
                    None
                }
            },
            (None, true) => {
                let numbers: Vec<&str> = event
                    .properties
                    .iter()
                    .filter(|p| p.ty == ValueType::Number)
                    .map(|p| p.name.as_str())
                    .collect();
                let hint = match numbers.first() {
                    Some(p) => format!("write {}({}.{p})", a.func.name(), event.name),
                    None => format!("{} has no number property", event.name),
                };
                self.error_hint(
                    Code::BadAggregateProperty,
                    a.span,
                    format!(
                        "{}(…) needs a property: which number of {} should it use?",
                        a.func.name(),
                        event.name
                    ),
                    hint,
                );
                ok = false;
                None
            }
            (Some(p), false) => {
                self.error_hint(
                    Code::BadAggregateProperty,
                    p.span,
                    format!("{}(…) takes an event, not a property", a.func.name()),
                    format!("write {}({})", a.func.name(), event.name),
                );
                ok = false;
                None
            }
            (None, false) => None,
        };
        let filter = a
            .filter
            .as_ref()
            .map(|f| Box::new(self.pred(f, Some(event))));
        let window = match &a.window {
            None => Window::All,
            Some(ast::Window::Within(d)) => match d.value {
                LitValue::Duration(us, _) => Window::Within(us),
                _ => {
                    self.error_hint(
                        Code::TimeExpected,
                        d.span,
                        format!(
                            "`within` takes a duration, not {}",
                            describe_literal(&d.value)
                        ),
                        "e.g. within 30d, within 12h",
                    );
                    ok = false;
                    Window::All
                }
            },
            Some(ast::Window::Since(t)) => match self.time_bound(t) {
                Some(b) => Window::Since(b),
                None => {
                    ok = false;
                    Window::All
                }
            },
            Some(ast::Window::Between(x, y)) => match (self.time_bound(x), self.time_bound(y)) {
                (Some(b1), Some(b2)) => Window::Between(b1, b2),
                _ => {
                    ok = false;
                    Window::All
                }
            },
        };
        ok.then(|| {
            Field::Agg(EventAgg {
                installation_scope: a.installation_scope,
                event: event.name.clone(),
                kind,
                property,
                filter,
                window,
            })
        })
    }

    /// A date, timestamp or `D ago`.
    pub(super) fn time_bound(&mut self, l: &Literal) -> Option<TimeBound> {
        match &l.value {
            LitValue::Date(d) => Some(TimeBound::Date(*d)),
            LitValue::Timestamp(t) => Some(TimeBound::Timestamp(t.timestamp_micros())),
            LitValue::Ago(us, _) => Some(TimeBound::Ago(*us)),
            LitValue::Duration(_, text) => {
                self.error_hint(
                    Code::TimeExpected,
                    l.span,
                    "a duration where a point in time belongs",
                    format!("write `{text} ago`, or use `within {text}`"),
                );
                None
            }
            other => {
                self.error_hint(
                    Code::TimeExpected,
                    l.span,
                    format!(
                        "expected a point in time, found {}",
                        describe_literal(other)
                    ),
                    "write a date (2026-01-01), a timestamp (2026-01-01T10:00:00Z) or `30d ago`",
                );
                None
            }
        }
    }
}
