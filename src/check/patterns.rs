//! Patterns of events over time: sequences (`did(A then B within 1h)`), regularity (`count(E) >= 3
//! per week in 4 of the last 6 weeks`) and the sugar `stopped(…)` / `restarted(…)`.

use super::literals::describe_literal;
use super::typed::*;
use super::{Checker, Ctx};
use crate::base::span::Span;
use crate::base::time::MICROS_PER_DAY;
use crate::diagnostic::Code;
use crate::syntax::ast::{self, LapseKind, LitValue, Literal, PeriodUnit};

/// The most periods a regularity test looks back over.
pub const MAX_PERIODS: u32 = 366;

impl<'a> Checker<'a> {
    fn nested_here(&mut self, ctx: Ctx, span: Span, what: &str) -> bool {
        if ctx.is_some() {
            self.error(
                Code::NestedFunction,
                span,
                format!("{what} cannot be nested inside `where`"),
            );
        }
        ctx.is_some()
    }

    /// An exact duration (no months): a sequence's gap.
    fn exact_duration(&mut self, l: &Literal, what: &str) -> Option<i64> {
        match &l.value {
            LitValue::Duration(p, text) if p.months != 0 => {
                self.error_hint(
                    Code::BadGap,
                    l.span,
                    format!("{what} `{text}` is in calendar months, which have no fixed length"),
                    "write it in days: within 30d",
                );
                None
            }
            LitValue::Duration(p, text) if p.micros <= 0 => {
                // Each step comes strictly after the one before, so nothing follows within 0.
                self.error_hint(
                    Code::BadGap,
                    l.span,
                    format!("{what} `{text}` is empty: a step comes strictly after the one before"),
                    "e.g. within 1s, within 1h",
                );
                None
            }
            LitValue::Duration(p, _) => Some(p.micros),
            other => {
                self.error_hint(
                    Code::TimeExpected,
                    l.span,
                    format!("{what} is a duration, not {}", describe_literal(other)),
                    "e.g. within 1h, within 2d",
                );
                None
            }
        }
    }

    fn step(&mut self, s: &ast::SeqStep, first: bool) -> Option<Step> {
        let event = self.event(&s.event)?;
        let filter = s
            .filter
            .as_ref()
            .map(|f| Box::new(self.pred(f, Some(event))));
        let gap = match &s.gap {
            Some(l) if !first => Some(self.exact_duration(l, "a step's gap")?),
            _ => None,
        };
        Some(Step {
            event: event.name.clone(),
            filter,
            gap,
        })
    }

    pub(super) fn sequence(&mut self, s: &ast::Sequence, ctx: Ctx) -> TPred {
        if self.nested_here(ctx, s.span, "a sequence") {
            return TPred::Const(false);
        }
        let mut steps = Vec::new();
        let mut absent = None;
        let mut ok = true;
        for (i, st) in s.steps.iter().enumerate() {
            match self.step(st, i == 0) {
                Some(step) if st.negated => absent = Some(step),
                Some(step) => steps.push(step),
                None => ok = false,
            }
        }
        let window = match &s.window {
            Some(w) => self.window_of(w),
            None => Some(Window::All),
        };
        match (ok, window) {
            (true, Some(window)) => TPred::Sequence(Sequence {
                installation_scope: s.installation_scope,
                steps,
                absent,
                window,
            }),
            _ => TPred::Const(false),
        }
    }

    /// `count(E [where P]) op N per period in K of the last M periods`.
    pub(super) fn regularity(&mut self, a: &ast::Agg, r: &ast::Regularity, ctx: Ctx) -> TPred {
        if self.nested_here(ctx, a.span, "an event function") {
            return TPred::Const(false);
        }
        if a.func != ast::AggFunc::Count || a.property.is_some() || a.of_event.is_some() {
            self.error_hint(
                Code::BadRegularity,
                a.span,
                format!(
                    "a regularity test counts events: `{}(…)` cannot have one",
                    a.func.name()
                ),
                format!("count({}) >= 3 per week in 4 of the last 6 weeks", a.event),
            );
            return TPred::Const(false);
        }
        if let Some(w) = &a.window {
            self.error_hint(
                Code::BadRegularity,
                match w {
                    ast::Window::Within(l) | ast::Window::Since(l) | ast::Window::Between(l, _) => {
                        l.span
                    }
                },
                "a regularity test's periods are its window",
                "drop the window: count(E) >= 3 per week in 4 of the last 6 weeks",
            );
            return TPred::Const(false);
        }
        let Some(event) = self.event(&a.event) else {
            return TPred::Const(false);
        };
        let filter = a
            .filter
            .as_ref()
            .map(|f| Box::new(self.pred(f, Some(event))));
        let whole = |c: &mut Self, l: &Literal, what: &str, min: f64| -> Option<u32> {
            match l.value {
                LitValue::Number(n, _)
                    if n.fract() == 0.0 && n >= min && n <= f64::from(u32::MAX) =>
                {
                    Some(n as u32)
                }
                _ => {
                    c.error(
                        Code::BadRegularityCount,
                        l.span,
                        format!("{what} is a whole number of at least {min}, not {l}"),
                    );
                    None
                }
            }
        };
        let times = whole(self, &r.times, "the count per period", 0.0);
        let at_least = whole(self, &r.at_least, "the number of periods", 1.0);
        let of_last = whole(self, &r.of_last, "the number of periods", 1.0);
        let (Some(times), Some(at_least), Some(of_last)) = (times, at_least, of_last) else {
            return TPred::Const(false);
        };
        if at_least > of_last || of_last > MAX_PERIODS {
            self.error_hint(
                Code::BadRegularityCount,
                r.at_least.span.to(r.of_last.span),
                if at_least > of_last {
                    format!("`in {at_least} of the last {of_last}`: {at_least} periods cannot be more than the {of_last} looked at")
                } else {
                    format!("`of the last {of_last}`: a regularity test looks at most {MAX_PERIODS} periods back")
                },
                "e.g. in 4 of the last 6 weeks",
            );
            return TPred::Const(false);
        }
        let period = match r.unit {
            PeriodUnit::Day => Period::exact(MICROS_PER_DAY),
            PeriodUnit::Week => Period::exact(7 * MICROS_PER_DAY),
            PeriodUnit::Month => Period {
                months: 1,
                micros: 0,
            },
        };
        TPred::Regular(Regularity {
            installation_scope: a.installation_scope,
            event: event.name.clone(),
            filter,
            op: r.op,
            times: f64::from(times),
            period,
            unit: r.unit,
            at_least,
            of_last,
        })
    }

    /// `stopped(E for R within L)` = did(E within L) and not did(E within R);
    /// `restarted(E within R after B)` = did(E within R) and not did(E in the B before that)
    /// and did(E before that).
    pub(super) fn lapse(&mut self, l: &ast::Lapse, ctx: Ctx) -> TPred {
        if self.nested_here(ctx, l.span, "an event function") {
            return TPred::Const(false);
        }
        let Some(event) = self.event(&l.event) else {
            return TPred::Const(false);
        };
        let filter = l
            .filter
            .as_ref()
            .map(|f| Box::new(self.pred(f, Some(event))));
        let duration = |c: &mut Self, x: &Literal| match x.value {
            LitValue::Duration(p, _) => Some(p),
            ref other => {
                c.error_hint(
                    Code::BadLapse,
                    x.span,
                    format!("expected a duration, found {}", describe_literal(other)),
                    match l.kind {
                        LapseKind::Stopped => "e.g. stopped(AppLaunch for 30d within 90d)",
                        LapseKind::Restarted => "e.g. restarted(AppLaunch within 7d after 30d)",
                    },
                );
                None
            }
        };
        let (Some(recent), Some(other)) = (duration(self, &l.recent), duration(self, &l.other))
        else {
            return TPred::Const(false);
        };
        let agg = |window: Window| TPred::Compare {
            field: Field::Agg(EventAgg {
                installation_scope: l.installation_scope,
                event: event.name.clone(),
                kind: AggKind::Count,
                property: None,
                filter: filter.clone(),
                window,
            }),
            op: crate::syntax::ast::CmpOp::Gt,
            value: Value::Number(0.0),
        };
        let body = match l.kind {
            LapseKind::Stopped => {
                // Compared at one instant so that `1mo` and `30d` order as they do there.
                let at = 0;
                if recent.before(at) <= other.before(at) {
                    self.error_hint(
                        Code::BadLapse,
                        l.recent.span.to(l.other.span),
                        format!(
                            "`for {}` must be shorter than `within {}`",
                            l.recent, l.other
                        ),
                        "stopped(AppLaunch for 30d within 90d): did it in the last 90 days, not in the last 30",
                    );
                    return TPred::Const(false);
                }
                TPred::And(vec![
                    agg(Window::Within(other)),
                    TPred::Not(Box::new(agg(Window::Within(recent)))),
                ])
            }
            LapseKind::Restarted => {
                let gap_start = TimeBound::Ago(recent.plus(other));
                TPred::And(vec![
                    agg(Window::Within(recent)),
                    TPred::Not(Box::new(agg(Window::Range(
                        gap_start,
                        TimeBound::Ago(recent),
                    )))),
                    agg(Window::Range(TimeBound::Ago(Period::EVER), gap_start)),
                ])
            }
        };
        let scope = if l.installation_scope {
            "installation."
        } else {
            ""
        };
        let filter = filter.map(|f| format!(" where {f}")).unwrap_or_default();
        let written = match l.kind {
            LapseKind::Stopped => format!(
                "{scope}stopped({}{filter} for {} within {})",
                event.name, l.recent, l.other
            ),
            LapseKind::Restarted => format!(
                "{scope}restarted({}{filter} within {} after {})",
                event.name, l.recent, l.other
            ),
        };
        TPred::Sugar {
            written,
            body: Box::new(body),
        }
    }
}
