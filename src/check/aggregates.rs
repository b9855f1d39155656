//! Event functions: `count(E where … within …)` and friends, their property, filter and window.

use super::literals::{describe_literal, describe_type};
use super::typed::*;
use super::{Checker, Ctx};
use crate::base::span::Span;
use crate::base::time::{MICROS_PER_HOUR, MICROS_PER_SEC};
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
            AggFunc::First if a.of_event.is_some() => AggKind::FirstValue,
            AggFunc::Last if a.of_event.is_some() => AggKind::LastValue,
            AggFunc::First => AggKind::First,
            AggFunc::Last => AggKind::Last,
            AggFunc::CountDistinct => AggKind::CountDistinct,
        };
        let mut ok = true;
        let property = match (&a.property, a.func.takes_property()) {
            _ if a.of_event.is_some() => {
                let p = a.of_event.as_ref().expect("checked");
                match event.properties.iter().find(|d| same(&d.name, &p.text)) {
                    Some(d) => Some((d.column.clone(), d.ty)),
                    None => {
                        let fake = Name {
                            parts: vec![p.clone()],
                            span: p.span,
                        };
                        self.property(&fake, event);
                        ok = false;
                        None
                    }
                }
            }
            (Some(p), true) => match event.properties.iter().find(|d| same(&d.name, &p.text)) {
                Some(d) if a.func == AggFunc::CountDistinct && d.ty != ValueType::StringList => {
                    Some((d.column.clone(), d.ty))
                }
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
            (None, true) if a.func == AggFunc::CountDistinct => {
                let hint = match event.properties.first() {
                    Some(p) => format!("write count distinct({}.{})", event.name, p.name),
                    None => format!("{} has no properties", event.name),
                };
                self.error_hint(
                    Code::BadAggregateProperty,
                    a.span,
                    format!(
                        "count distinct(…) counts the distinct values of a property: which property of {}?",
                        event.name
                    ),
                    hint,
                );
                ok = false;
                None
            }
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
                    match a.func {
                        // The property of the first or last event follows the call.
                        AggFunc::First | AggFunc::Last => format!(
                            "write {f}({e}).{p} for the {p} of the {f} {e}, or {f}({e}) for its time",
                            f = a.func.name(),
                            e = event.name,
                            p = p.text
                        ),
                        _ => format!("write {}({})", a.func.name(), event.name),
                    },
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
            Some(w) => match self.window_of(w) {
                Some(w) => w,
                None => {
                    ok = false;
                    Window::All
                }
            },
        };
        if ok && !a.installation_scope {
            self.scope_trap(a, &event.name);
        }
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

    /// An event window as written, checked.
    pub(super) fn window_of(&mut self, w: &ast::Window) -> Option<Window> {
        match w {
            ast::Window::Within(d) => match &d.value {
                LitValue::Duration(p, text) => {
                    self.window_reads_as_another_unit(*p, text, d.span);
                    Some(Window::Within(*p))
                }
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
                    None
                }
            },
            ast::Window::Since(t) => self.time_bound(t).map(Window::Since),
            ast::Window::Between(x, y) => match (self.time_bound(x), self.time_bound(y)) {
                (Some(b1), Some(b2)) => Some(Window::Between(b1, b2)),
                _ => None,
            },
        }
    }

    /// A date, timestamp or `D ago`.
    pub(super) fn time_bound(&mut self, l: &Literal) -> Option<TimeBound> {
        match &l.value {
            LitValue::Date(d) => Some(TimeBound::Date(*d)),
            LitValue::Timestamp(t) => Some(TimeBound::Timestamp(t.timestamp_micros())),
            LitValue::Ago(p, _) => Some(TimeBound::Ago(*p)),
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

    /// Warns about an event window of minutes or seconds: `within 3m` is 3 minutes, which
    /// marketers rarely mean (months are `mo`).
    fn window_reads_as_another_unit(&mut self, p: Period, text: &str, span: Span) {
        if p.months != 0 || p.micros >= MICROS_PER_HOUR {
            return;
        }
        let n: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
        let hint = if text.ends_with('m') {
            format!("for months write {n}mo; for days {n}d")
        } else {
            format!("for days write {n}d")
        };
        self.warn(
            Code::SuspiciousWindow,
            span,
            format!(
                "`within {text}` is {}, shorter than an hour",
                describe_short(p)
            ),
            Some(hint),
        );
    }

    /// Warns where person and installation scope mean different things: Personalize and
    /// Depersonalize stay with the identified person while the device moves on, so at person
    /// scope they count the events of every device the person had.
    fn scope_trap(&mut self, a: &ast::Agg, event: &str) {
        let why = match event {
            "Depersonalize" => {
                "a Depersonalize stays with the person the device logged out of, so at person \
                 scope it matches that person's other devices, not the device that logged out"
            }
            "Personalize" => {
                "a Personalize stays with the identified person, so at person scope it matches \
                 every device of that person, not only the device that was personalized"
            }
            _ => return,
        };
        self.warn(
            Code::ScopeTrap,
            a.span,
            format!("`{}(…)` of {event} at person scope: {why}", a.func.name()),
            Some(format!("for the device itself, write installation.{a}")),
        );
    }
}

fn describe_short(p: Period) -> String {
    let secs = p.micros / MICROS_PER_SEC;
    if secs >= 60 && secs % 60 == 0 {
        format!("{} minute(s)", secs / 60)
    } else {
        format!("{secs} second(s)")
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testing::checked;
    use insta::assert_snapshot;

    #[test]
    fn event_functions_resolve_their_property_filter_and_window() {
        assert_snapshot!(checked("sum(purchase.AMOUNT where currency = \"EUR\" within 30d) > 10"), @r#"sum(Purchase.amount where currency = "EUR" within 30d) > 10"#);
        assert_snapshot!(checked("did(AddToCart since 7d ago) and last(AppLaunch) before 2026-10-01"), @"count(AddToCart since 7d ago) > 0 and last(AppLaunch) before 2026-10-01");
    }

    #[test]
    fn event_functions_say_what_they_need() {
        assert_snapshot!(checked("sum(Purchase.currency) > 1"), @"E041 13..21 sum(…) needs a number property, but Purchase.currency is a string (count(…) counts events: count(Purchase where currency = …))");
        assert_snapshot!(checked("avg(Purchase) > 1"), @"E041 0..13 avg(…) needs a property: which number of Purchase should it use? (write avg(Purchase.amount))");
        assert_snapshot!(checked("first(Install.price) within 7d"), @"E041 14..19 first(…) takes an event, not a property (write first(Install).price for the price of the first Install, or first(Install) for its time)");
        assert_snapshot!(checked("count(AppLaunch within 2026-01-01) > 1"), @"E035 23..33 `within` takes a duration, not a date (e.g. within 30d, within 12h)");
        assert_snapshot!(checked("count(AppLaunch since 30d) > 1"), @"E035 22..25 a duration where a point in time belongs (write `30d ago`, or use `within 30d`)");
        assert_snapshot!(checked("did(Purchase) > 1"), @"E040 0..13 did(…) is a condition on its own and cannot be compared (use count(…) to compare how often: count(AddToCart within 7d) >= 2)");
        assert_snapshot!(checked("count(Purchase where count(AppLaunch) > 1) > 0"), @"E043 21..37 event functions cannot be nested inside `where`");
    }
}
