//! Tests and literals: which operators apply to which types, and what a literal means next to a
//! field of a given type.

use super::typed::*;
use super::Checker;
use crate::base::version;
use crate::catalog::ValueType;
use crate::diagnostic::Code;
use crate::syntax::ast::{CmpOp, LitValue, Literal, MatchOp, Operand, Test};

pub(super) fn describe_type(ty: ValueType) -> &'static str {
    match ty {
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Boolean => "a boolean",
        ValueType::Date => "a date",
        ValueType::Timestamp => "a timestamp",
        ValueType::Version => "a version",
        ValueType::StringList => "a list of strings",
    }
}

pub(super) fn describe_literal(v: &LitValue) -> &'static str {
    match v {
        LitValue::String(_) => "a string",
        LitValue::Number(..) => "a number",
        LitValue::Bool(_) => "a boolean",
        LitValue::Date(_) => "a date",
        LitValue::Timestamp(_) => "a timestamp",
        LitValue::Duration(..) => "a duration",
        LitValue::Ago(..) => "a relative time",
    }
}

impl<'a> Checker<'a> {
    /// A literal compared with a field of type `ty`.
    pub(super) fn value(&mut self, field: &Field, subject: &Operand, l: &Literal) -> Option<Value> {
        let ty = field.ty();
        let v = match (ty, &l.value) {
            (ValueType::Number, LitValue::Number(n, _)) => Value::Number(*n),
            (ValueType::String, LitValue::String(s)) => Value::String(s.clone()),
            (ValueType::Boolean, LitValue::Bool(b)) => Value::Bool(*b),
            (ValueType::Version, LitValue::String(s) | LitValue::Number(_, s)) => {
                // The planner orders versions by their numeric parts; anything else would
                // silently compare as 0.
                if !version::is_literal(s) {
                    self.error_hint(
                        Code::BadVersion,
                        l.span,
                        format!("`{s}` is not a version: `{subject}` compares part by part"),
                        "write dotted numbers such as \"17.2\" or \"5.10.1\" (at most 4 parts)",
                    );
                    return None;
                }
                Value::Version(s.clone())
            }
            (
                ValueType::Date | ValueType::Timestamp,
                LitValue::Date(_) | LitValue::Timestamp(_) | LitValue::Ago(..),
            ) => Value::Time(self.time_bound(l)?),
            (ValueType::Date | ValueType::Timestamp, LitValue::Duration(_, text)) => {
                self.error_hint(
                    Code::TimeExpected,
                    l.span,
                    format!(
                        "a duration where a date belongs: `{subject}` is {}",
                        describe_type(ty)
                    ),
                    format!("write `{subject} within {text}` or `{subject} before {text} ago`"),
                );
                return None;
            }
            (ValueType::StringList, _) => {
                self.error_hint(
                    Code::OperatorNotApplicable,
                    subject.span(),
                    format!("`{subject}` is a list; it cannot be compared"),
                    format!("use `{subject} has \"…\"`, `has any (…)` or `has all (…)`"),
                );
                return None;
            }
            (_, other) => {
                let hint = match ty {
                    ValueType::Number => "write a number, e.g. 100 or 99.5".to_string(),
                    ValueType::String | ValueType::Version => {
                        "write a string in double quotes".to_string()
                    }
                    ValueType::Boolean => "write true or false".to_string(),
                    _ => "write a date (2026-01-01), a timestamp or `30d ago`".to_string(),
                };
                self.error_hint(
                    Code::TypeMismatch,
                    l.span,
                    format!(
                        "`{subject}` is {}, but this is {}",
                        describe_type(ty),
                        describe_literal(other)
                    ),
                    hint,
                );
                return None;
            }
        };
        Some(v)
    }

    pub(super) fn test(&mut self, field: Field, subject: &Operand, test: &Test) -> TPred {
        let ty = field.ty();
        let span = subject.span();
        if matches!(field, Field::Anniversary(_))
            && !matches!(test, Test::Within(_) | Test::WithinNext(_))
        {
            self.error_hint(
                Code::NotAnniversary,
                span,
                format!(
                    "`{subject}` recurs every year: test it with `within next D` or `within D`"
                ),
                format!("e.g. {subject} within next 7d"),
            );
            return TPred::Const(false);
        }
        if let (Field::Agg(_), Test::WithinNext(l)) = (&field, test) {
            // Only events up to the as-of time count, so an event's time never lies ahead.
            self.error_hint(
                Code::OperatorNotApplicable,
                span,
                format!("`{subject}` is an event's time, never after the as-of time: `within next` looks ahead"),
                format!("to look back, write `{subject} within {l}`"),
            );
            return TPred::Const(false);
        }
        let result = match test {
            Test::Regular(_) => {
                unreachable!("the checker reads regularity tests before their operand")
            }
            Test::Cmp(op, l) => {
                if ty == ValueType::Boolean && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    self.error(
                        Code::OperatorNotApplicable,
                        l.span,
                        format!("`{subject}` is a boolean: only = and != compare it"),
                    );
                    return TPred::Const(false);
                }
                if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    self.known_value(&field, l);
                }
                self.value(&field, subject, l).map(|value| TPred::Compare {
                    field: field.clone(),
                    op: *op,
                    value,
                })
            }
            Test::In { values, negated } => {
                for l in values {
                    self.known_value(&field, l);
                }
                let vs: Vec<Option<Value>> = values
                    .iter()
                    .map(|l| self.value(&field, subject, l))
                    .collect();
                vs.into_iter().collect::<Option<Vec<_>>>().map(|values| {
                    let p = TPred::In {
                        field: field.clone(),
                        values,
                    };
                    if *negated {
                        TPred::Not(Box::new(p))
                    } else {
                        p
                    }
                })
            }
            Test::Between(a, b) => {
                if matches!(ty, ValueType::Boolean) {
                    self.error(
                        Code::OperatorNotApplicable,
                        span,
                        format!("`{subject}` is a boolean; `between` needs an ordered value"),
                    );
                    return TPred::Const(false);
                }
                match (
                    self.value(&field, subject, a),
                    self.value(&field, subject, b),
                ) {
                    (Some(low), Some(high)) => Some(TPred::Between {
                        field: field.clone(),
                        low,
                        high,
                    }),
                    _ => None,
                }
            }
            Test::IsSet { negated } => {
                if let Field::Agg(a) = &field {
                    if matches!(a.kind, AggKind::Count | AggKind::Sum) {
                        self.error_hint(
                            Code::AlwaysSet,
                            span,
                            format!("`{subject}` always has a value (0 when there are no events)"),
                            format!("compare it: `{subject} > 0`"),
                        );
                        return TPred::Const(false);
                    }
                }
                let p = TPred::IsSet(field.clone());
                Some(if *negated { TPred::Not(Box::new(p)) } else { p })
            }
            Test::Match(op, l) => {
                if !matches!(ty, ValueType::String | ValueType::Version) {
                    let word = match op {
                        MatchOp::Contains => "contains",
                        MatchOp::StartsWith => "starts with",
                        MatchOp::EndsWith => "ends with",
                        MatchOp::Matches => "matches",
                    };
                    let hint = if ty == ValueType::StringList {
                        format!("for lists use `{subject} has \"…\"`")
                    } else {
                        "string matching works on strings".into()
                    };
                    self.error_hint(
                        Code::OperatorNotApplicable,
                        span,
                        format!(
                            "`{word}` needs a string, but `{subject}` is {}",
                            describe_type(ty)
                        ),
                        hint,
                    );
                    return TPred::Const(false);
                }
                match &l.value {
                    LitValue::String(s) => {
                        if *op == MatchOp::Matches {
                            if let Err(e) = regex::Regex::new(s) {
                                let detail = e
                                    .to_string()
                                    .lines()
                                    .last()
                                    .unwrap_or("")
                                    .trim()
                                    .trim_start_matches("error: ")
                                    .to_string();
                                self.error_hint(
                                    Code::BadRegex,
                                    l.span,
                                    format!("invalid regular expression: {detail}"),
                                    "the syntax is Rust's regex crate (like RE2)",
                                );
                                return TPred::Const(false);
                            }
                        }
                        Some(TPred::Match {
                            field: field.clone(),
                            op: *op,
                            pattern: s.clone(),
                        })
                    }
                    other => {
                        self.error_hint(
                            Code::TypeMismatch,
                            l.span,
                            format!(
                                "expected a string to match, found {}",
                                describe_literal(other)
                            ),
                            "write it in double quotes",
                        );
                        None
                    }
                }
            }
            Test::Has(op, values) => {
                if ty != ValueType::StringList {
                    let hint = match ty {
                        ValueType::String => format!("for a single value use `{subject} = \"…\"` or `{subject} contains \"…\"`"),
                        _ => "`has` tests lists such as tags, emails and phones".to_string(),
                    };
                    self.error_hint(
                        Code::OperatorNotApplicable,
                        span,
                        format!(
                            "`has` needs a list, but `{subject}` is {}",
                            describe_type(ty)
                        ),
                        hint,
                    );
                    return TPred::Const(false);
                }
                let mut out = Vec::new();
                for l in values {
                    match &l.value {
                        LitValue::String(s) => out.push(s.clone()),
                        other => {
                            self.error_hint(
                                Code::TypeMismatch,
                                l.span,
                                format!(
                                    "`{subject}` holds strings, but this is {}",
                                    describe_literal(other)
                                ),
                                "write it in double quotes",
                            );
                            return TPred::Const(false);
                        }
                    }
                }
                Some(TPred::Has {
                    field: field.clone(),
                    op: *op,
                    values: out,
                })
            }
            Test::Within(l) | Test::WithinNext(l) | Test::Before(l) | Test::After(l) => {
                if !matches!(ty, ValueType::Date | ValueType::Timestamp) {
                    let word = match test {
                        Test::Within(_) => "within",
                        Test::WithinNext(_) => "within next",
                        Test::Before(_) => "before",
                        _ => "after",
                    };
                    self.error_hint(
                        Code::OperatorNotApplicable,
                        span,
                        format!(
                            "`{word}` needs a date or timestamp, but `{subject}` is {}",
                            describe_type(ty)
                        ),
                        "time tests apply to dates, timestamps and first(…)/last(…)",
                    );
                    return TPred::Const(false);
                }
                match test {
                    Test::Within(l) | Test::WithinNext(l) => match l.value {
                        LitValue::Duration(p, _) => Some(TPred::Time {
                            field: field.clone(),
                            test: if matches!(test, Test::WithinNext(_)) {
                                TimeTest::WithinNext(p)
                            } else {
                                TimeTest::Within(p)
                            },
                        }),
                        ref other => {
                            self.error_hint(
                                Code::TimeExpected,
                                l.span,
                                format!(
                                    "`within` takes a duration, not {}",
                                    describe_literal(other)
                                ),
                                "e.g. within 7d; for a fixed time use after/before",
                            );
                            None
                        }
                    },
                    Test::Before(_) => self.time_bound(l).map(|b| TPred::Time {
                        field: field.clone(),
                        test: TimeTest::Before(b),
                    }),
                    _ => self.time_bound(l).map(|b| TPred::Time {
                        field: field.clone(),
                        test: TimeTest::After(b),
                    }),
                }
            }
        };
        result.unwrap_or(TPred::Const(false))
    }

    /// Warns when a string is compared with a value no row of the snapshot has (the catalog
    /// records the values of few-valued strings): `platform = "ios"` would silently match
    /// nothing. Suggests the value meant: the same letters in another case, else the closest.
    pub(super) fn known_value(&mut self, field: &Field, l: &Literal) {
        let LitValue::String(wanted) = &l.value else {
            return;
        };
        let (values, whose) = match field {
            Field::Attribute {
                entity, name, ty, ..
            } if *ty == ValueType::String => {
                let a = self
                    .catalog
                    .attribute(*entity, name, false)
                    .or_else(|| self.catalog.attribute(*entity, name, true));
                (
                    a.and_then(|a| a.values.as_ref()),
                    format!("{entity} has {name}"),
                )
            }
            Field::Property {
                event, name, ty, ..
            } if *ty == ValueType::String => {
                let p = self.catalog.event(event).and_then(|e| e.property(name));
                (
                    p.and_then(|p| p.values.as_ref()),
                    format!("{event} event has {name}"),
                )
            }
            _ => return,
        };
        let Some(values) = values.filter(|v| v.complete) else {
            return;
        };
        if values.contains(wanted) {
            return;
        }
        let same_letters = values
            .top
            .iter()
            .find(|(v, _)| v.to_lowercase() == wanted.to_lowercase());
        let close = same_letters.map(|(v, _)| v.as_str()).or_else(|| {
            crate::catalog::names::suggest(wanted, values.top.iter().map(|(v, _)| v.as_str()))
        });
        let hint = match close {
            Some(v) => Some(format!("did you mean {}?", crate::syntax::ast::quote(v))),
            None if values.top.len() <= 12 => Some(format!(
                "its values: {}",
                values
                    .top
                    .iter()
                    .map(|(v, _)| crate::syntax::ast::quote(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => None,
        };
        self.warn(
            Code::ValueNeverSeen,
            l.span,
            format!(
                "no {whose} {} in this snapshot",
                crate::syntax::ast::quote(wanted)
            ),
            hint,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testing::checked;
    use insta::assert_snapshot;

    #[test]
    fn literals_take_the_type_of_their_field() {
        assert_snapshot!(checked("custom.loyaltyPoints = \"abc\""), @"E030 23..28 `custom.loyaltyPoints` is a number, but this is a string (write a number, e.g. 100 or 99.5)");
        assert_snapshot!(checked("osVersion >= \"17.x\""), @r#"E033 13..19 `17.x` is not a version: `osVersion` compares part by part (write dotted numbers such as "17.2" or "5.10.1" (at most 4 parts))"#);
        assert_snapshot!(checked("installedAt > 30d"), @"E035 14..17 a duration where a date belongs: `installedAt` is a timestamp (write `installedAt within 30d` or `installedAt before 30d ago`)");
        assert_snapshot!(checked("lastSeenAt within 2026-01-01"), @"E035 18..28 `within` takes a duration, not a date (e.g. within 7d; for a fixed time use after/before)");
    }

    #[test]
    fn operators_apply_to_their_types_only() {
        assert_snapshot!(checked("primaryDevice > true"), @"E032 16..20 `primaryDevice` is a boolean: only = and != compare it");
        assert_snapshot!(checked("platform has \"iOS\""), @r#"E032 0..8 `has` needs a list, but `platform` is a string (for a single value use `platform = "…"` or `platform contains "…"`)"#);
        assert_snapshot!(checked("tags = \"vip\""), @r#"E032 0..4 `tags` is a list; it cannot be compared (use `tags has "…"`, `has any (…)` or `has all (…)`)"#);
        assert_snapshot!(checked("age contains \"1\""), @"E032 0..3 `contains` needs a string, but `age` is a number (string matching works on strings)");
        assert_snapshot!(checked("deviceModel matches \"(\""), @"E034 20..23 invalid regular expression: unclosed group (the syntax is Rust's regex crate (like RE2))");
        assert_snapshot!(checked("count(AppLaunch) is set"), @"E042 0..16 `count(AppLaunch)` always has a value (0 when there are no events) (compare it: `count(AppLaunch) > 0`)");
    }
}
