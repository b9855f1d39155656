//! The segment parser: recursive descent over nom's character-level combinators.
//!
//! Each function's doc comment carries its EBNF rule (grammar/segment.ebnf is the whole grammar).
//! Failures at commit points (after `(`, after an operator, …) are `nom::Err::Failure` with a
//! plain-language message and the byte offset, so the user sees what was expected where.

use super::ast::*;
use crate::base::time::{
    Period, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SEC, MICROS_PER_WEEK,
};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use chrono::{DateTime, NaiveDate, Utc};
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};
use std::cell::Cell;

/// Segments longer than this are refused (they are typed by people, or generated from lists).
pub const MAX_SEGMENT_BYTES: usize = 64 * 1024;
/// Nesting deeper than this (parentheses, `not`, `where`) is refused instead of risking the stack.
pub const MAX_DEPTH: usize = 256;

/// A parse failure at a byte offset (counted from the end while parsing: nom sees suffixes).
#[derive(Debug, Clone, PartialEq)]
pub struct PErr {
    remaining: usize,
    end: Option<usize>,
    code: Code,
    message: Option<String>,
    hint: Option<String>,
}

impl<'a> ParseError<&'a str> for PErr {
    fn from_error_kind(input: &'a str, _: ErrorKind) -> Self {
        PErr {
            remaining: input.len(),
            end: None,
            code: Code::Unexpected,
            message: None,
            hint: None,
        }
    }
    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, PErr>;

struct P<'a> {
    src: &'a str,
    depth: Cell<usize>,
}

/// The keyword of an event function a word at the start of `at` is a typo of (`than` → `then`).
fn misspelled_keyword(at: &str) -> Option<&'static str> {
    let word: String = at.chars().take_while(|c| is_ident_char(*c)).collect();
    if word.len() < 3 {
        return None;
    }
    let words = ["then", "where", "within", "since", "between"];
    if words.iter().any(|w| w.eq_ignore_ascii_case(&word)) {
        return None;
    }
    let found = crate::catalog::names::suggest(&word, words)?;
    words.into_iter().find(|w| *w == found)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// What the next token looks like, for messages: `foo`, `)` or "the end of the segment".
fn describe(i: &str) -> String {
    let i = i.trim_start();
    match i.chars().next() {
        None => "the end of the segment".into(),
        Some(c) if is_ident_char(c) => format!(
            "`{}`",
            i.chars()
                .take_while(|c| is_ident_char(*c) || *c == '.')
                .collect::<String>()
        ),
        Some('"') => "a string".into(),
        Some(c) => format!("`{c}`"),
    }
}

impl<'a> P<'a> {
    fn pos(&self, i: &str) -> usize {
        self.src.len() - i.len()
    }

    fn fail<T>(&self, i: &'a str, code: Code, message: impl Into<String>) -> Res<'a, T> {
        Err(nom::Err::Failure(PErr {
            remaining: i.len(),
            end: None,
            code,
            message: Some(message.into()),
            hint: None,
        }))
    }

    fn fail_hint<T>(
        &self,
        i: &'a str,
        code: Code,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Res<'a, T> {
        Err(nom::Err::Failure(PErr {
            remaining: i.len(),
            end: None,
            code,
            message: Some(message.into()),
            hint: Some(hint.into()),
        }))
    }

    fn backtrack<T>(&self, i: &'a str) -> Res<'a, T> {
        Err(nom::Err::Error(PErr::from_error_kind(i, ErrorKind::Tag)))
    }

    /// Whitespace and `#` comments.
    fn ws(&self, mut i: &'a str) -> &'a str {
        loop {
            let t = i.trim_start();
            if let Some(rest) = t.strip_prefix('#') {
                i = rest.find('\n').map_or("", |n| &rest[n..]);
            } else {
                return t;
            }
        }
    }

    /// A keyword, matched whole and case-insensitively (`and` does not match `andromeda`).
    fn kw(&self, i: &'a str, word: &str) -> Option<&'a str> {
        let t = self.ws(i);
        if t.len() >= word.len()
            && t.is_char_boundary(word.len())
            && t[..word.len()].eq_ignore_ascii_case(word)
        {
            let rest = &t[word.len()..];
            if !rest.chars().next().is_some_and(is_ident_char) {
                return Some(rest);
            }
        }
        None
    }

    fn punct(&self, i: &'a str, p: &str) -> Option<&'a str> {
        self.ws(i).strip_prefix(p)
    }

    /// Runs a nested parse with enough stack (frames are large in debug builds).
    fn nested<T>(&self, f: impl FnOnce() -> T) -> T {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
    }

    fn enter(&self, i: &'a str) -> Res<'a, ()> {
        let d = self.depth.get() + 1;
        if d > MAX_DEPTH {
            return self.fail(
                i,
                Code::TooLarge,
                format!("the segment nests deeper than {MAX_DEPTH} levels"),
            );
        }
        self.depth.set(d);
        Ok((i, ()))
    }

    fn leave(&self) {
        self.depth.set(self.depth.get() - 1);
    }

    /// `segment = or_expr ;`
    fn segment(&self, i: &'a str) -> Res<'a, Segment> {
        if self.ws(i).is_empty() {
            return self.fail(
                self.ws(i),
                Code::Empty,
                "the segment is empty: expected a condition",
            );
        }
        let (i, root) = self.or_expr(i)?;
        let rest = self.ws(i);
        if !rest.is_empty() {
            if self.punct(rest, ")").is_some() {
                return self.fail(
                    rest,
                    Code::Unexpected,
                    "unexpected `)`: there is no `(` for it to close",
                );
            }
            return self.fail(
                rest,
                Code::Unexpected,
                format!(
                    "unexpected {}: expected `and`, `or` or the end of the segment",
                    describe(rest)
                ),
            );
        }
        Ok((rest, Segment { root }))
    }

    /// `or_expr = and_expr , { "or" , and_expr } ;`
    fn or_expr(&self, i: &'a str) -> Res<'a, Pred> {
        self.chain(i, "or", |s, i| s.and_expr(i), Pred::Or)
    }

    /// `and_expr = not_expr , { "and" , not_expr } ;`
    fn and_expr(&self, i: &'a str) -> Res<'a, Pred> {
        self.chain(i, "and", |s, i| s.not_expr(i), Pred::And)
    }

    /// `item , { word , item }`, one item alone when there is no `word`.
    fn chain(
        &self,
        i: &'a str,
        word: &str,
        item: impl Fn(&Self, &'a str) -> Res<'a, Pred>,
        make: fn(Vec<Pred>) -> Pred,
    ) -> Res<'a, Pred> {
        let (mut i, first) = item(self, i)?;
        let mut items = vec![first];
        while let Some(rest) = self.kw(i, word) {
            let (rest, p) = self.required(rest, word, &item)?;
            items.push(p);
            i = rest;
        }
        Ok((
            i,
            if items.len() == 1 {
                items.pop().expect("one")
            } else {
                make(items)
            },
        ))
    }

    /// After an operator, a condition is required.
    fn required<T>(
        &self,
        i: &'a str,
        after: &str,
        f: impl Fn(&Self, &'a str) -> Res<'a, T>,
    ) -> Res<'a, T> {
        match f(self, i) {
            Err(nom::Err::Error(_)) => {
                let t = self.ws(i);
                self.fail(
                    t,
                    Code::ExpectedCondition,
                    format!(
                        "expected a condition after `{after}`, found {}",
                        describe(t)
                    ),
                )
            }
            other => other,
        }
    }

    /// `not_expr = "not" , not_expr | primary ;`
    fn not_expr(&self, i: &'a str) -> Res<'a, Pred> {
        if let Some(rest) = self.kw(i, "not") {
            let start = self.pos(self.ws(i));
            self.enter(i)?;
            let (rest, inner) = self.nested(|| self.required(rest, "not", |s, i| s.not_expr(i)))?;
            self.leave();
            let span = Span::new(start, inner.span().end);
            return Ok((rest, Pred::Not(Box::new(inner), span)));
        }
        self.primary(i)
    }

    /// `primary = "(" , or_expr , ")" | operand , [ test ] ;`
    fn primary(&self, i: &'a str) -> Res<'a, Pred> {
        let t = self.ws(i);
        if let Some(rest) = t.strip_prefix('(') {
            let start = self.pos(t);
            self.enter(t)?;
            let (rest, inner) = self.nested(|| self.required(rest, "(", |s, i| s.or_expr(i)))?;
            self.leave();
            let Some(rest) = self.punct(rest, ")") else {
                let at = self.ws(rest);
                let (line, col) = Diagnostics::line_col(self.src, start);
                return self.fail_hint(
                    at,
                    Code::Unclosed,
                    format!(
                        "expected `)` to close the `(` opened at {line}:{col}, found {}",
                        describe(at)
                    ),
                    "every `(` needs a matching `)`",
                );
            };
            return Ok((
                rest,
                Pred::Group(Box::new(inner), Span::new(start, self.pos(rest))),
            ));
        }
        let (rest, subject) = match self.operand(t) {
            Err(nom::Err::Error(_)) => {
                return self.fail(
                    t,
                    Code::ExpectedCondition,
                    format!("expected a condition (an attribute, an event function such as count(…), or `(`), found {}", describe(t)),
                )
            }
            other => other?,
        };
        match self.test(rest)? {
            (rest, Some(test)) => {
                let span = Span::new(subject.span().start, self.pos(rest));
                Ok((
                    rest,
                    Pred::Test {
                        subject,
                        test,
                        span,
                    },
                ))
            }
            (rest, None) => Ok((rest, Pred::Bare(subject))),
        }
    }

    /// `ident = letter , { letter | digit | "_" } | "`" , { any character but "`" | "``" } , "`" ;`
    fn ident(&self, i: &'a str) -> Res<'a, Ident> {
        let t = self.ws(i);
        let start = self.pos(t);
        if let Some(rest) = t.strip_prefix('`') {
            let mut text = String::new();
            let mut chars = rest.char_indices();
            while let Some((k, c)) = chars.next() {
                if c == '`' {
                    if rest[k + 1..].starts_with('`') {
                        text.push('`');
                        chars.next();
                        continue;
                    }
                    if text.trim().is_empty() {
                        return self.fail(t, Code::BadName, "a quoted name cannot be empty");
                    }
                    let rest = &rest[k + 1..];
                    return Ok((
                        rest,
                        Ident {
                            text,
                            span: Span::new(start, self.pos(rest)),
                        },
                    ));
                }
                text.push(c);
            }
            return self.fail(
                t,
                Code::BadName,
                "unterminated quoted name: expected a closing backtick",
            );
        }
        // Bare names are ASCII; a name with other letters (`färg`) must be quoted. Say so
        // instead of stumbling over the first non-ASCII letter.
        let word_len = t
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        if t[..word_len].starts_with(|c: char| c.is_alphabetic() || c == '_')
            && !t[..word_len].is_ascii()
        {
            let word = &t[..word_len];
            return Err(nom::Err::Failure(PErr {
                remaining: t.len(),
                end: Some(start + word_len),
                code: Code::BadName,
                message: Some(format!("`{word}` must be quoted: bare names are ASCII")),
                hint: Some(format!("quote it with backticks: `{word}`")),
            }));
        }
        let (rest, word) = recognize((
            take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
            take_while(is_ident_char),
        ))
        .parse(t)?;
        if is_reserved(word) {
            return self.backtrack(t);
        }
        Ok((
            rest,
            Ident {
                text: word.to_string(),
                span: Span::new(start, self.pos(rest)),
            },
        ))
    }

    /// `operand = "segment" , "(" , string , ")" | [ "installation" , "." ] , agg | name ;`
    /// `name = ident , { "." , ident } ;`
    fn operand(&self, i: &'a str) -> Res<'a, Operand> {
        let t = self.ws(i);
        let start = self.pos(t);
        if let Some(rest) = self.kw(t, "segment").and_then(|r| self.punct(r, "(")) {
            let (rest, lit) = self.literal(rest)?;
            let LitValue::String(name) = lit.value else {
                return self.fail_hint(
                    &self.src[lit.span.start..],
                    Code::BadSegmentReference,
                    "segment(…) takes the saved segment's name as a string",
                    "write segment(\"vip-users\")",
                );
            };
            let Some(rest) = self.punct(rest, ")") else {
                return self.fail(
                    self.ws(rest),
                    Code::Unclosed,
                    "expected `)` after the saved segment's name",
                );
            };
            return Ok((
                rest,
                Operand::Segment {
                    name,
                    span: Span::new(start, self.pos(rest)),
                },
            ));
        }
        let (scope_rest, installation_scope) =
            match self.kw(t, "installation").and_then(|r| r.strip_prefix('.')) {
                Some(rest) => (rest, true),
                None => (t, false),
            };
        for (word, kind) in [
            ("stopped", LapseKind::Stopped),
            ("restarted", LapseKind::Restarted),
        ] {
            if let Some(rest) = self.kw(scope_rest, word).and_then(|r| self.punct(r, "(")) {
                return self.lapse(rest, kind, installation_scope, start);
            }
        }
        if let Some((rest, func)) = self.agg_func(scope_rest) {
            return self.agg(rest, func, installation_scope, start);
        }
        if let Some(rest) = self.kw(t, "anniversary").and_then(|r| self.kw(r, "of")) {
            let (rest, name) = match self.operand(rest)? {
                (rest, Operand::Name(n)) => (rest, n),
                (_, other) => {
                    return self.fail_hint(
                        &self.src[other.span().start..],
                        Code::BadName,
                        "`anniversary of` takes a date attribute",
                        "e.g. anniversary of custom.contractStart within next 30d",
                    )
                }
            };
            let span = Span::new(start, self.pos(rest));
            return Ok((rest, Operand::Anniversary(name, span)));
        }
        let (mut rest, first) = self.ident(t)?;
        let mut parts = vec![first];
        while let Some(after_dot) = rest.strip_prefix('.') {
            let (r, part) = match self.ident(after_dot) {
                Err(nom::Err::Error(_)) => {
                    return self.fail(
                        after_dot,
                        Code::BadName,
                        format!("expected a name after `.`, found {}", describe(after_dot)),
                    )
                }
                other => other?,
            };
            parts.push(part);
            rest = r;
        }
        let span = Span::new(start, self.pos(rest));
        Ok((rest, Operand::Name(Name { parts, span })))
    }

    fn agg_func(&self, i: &'a str) -> Option<(&'a str, AggFunc)> {
        AggFunc::ALL.iter().find_map(|f| {
            f.name()
                .split(' ')
                .try_fold(i, |r, word| self.kw(r, word))
                .and_then(|r| self.punct(r, "("))
                .map(|r| (r, *f))
        })
    }

    /// ```text
    /// agg = func , "(" , ident , [ "." , ident ] , [ "where" , or_expr ] , [ window ] , ")" ,
    ///       [ "." , ident ]                                  (* first(E).p, last(E).p *)
    ///     | "did" , "(" , step , "then" , [ "not" ] , step , { "then" , [ "not" ] , step } ,
    ///       [ window ] , ")" ;
    /// step = ident , [ "where" , or_expr ] , [ "within" , duration ] ;
    /// func = "count" | "count" , "distinct" | "did" | "sum" | "avg" | "min" | "max"
    ///      | "first" | "last" ;
    /// ```
    fn agg(
        &self,
        i: &'a str,
        func: AggFunc,
        installation_scope: bool,
        start: usize,
    ) -> Res<'a, Operand> {
        let (mut rest, event) = match self.ident(i) {
            Err(nom::Err::Error(_)) => {
                let t = self.ws(i);
                return self.fail(
                    t,
                    Code::BadName,
                    format!(
                        "expected an event name in {}(…), found {}",
                        func.name(),
                        describe(t)
                    ),
                );
            }
            other => other?,
        };
        let mut property = None;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (r, p) = match self.ident(after_dot) {
                Err(nom::Err::Error(_)) => {
                    return self.fail(
                        after_dot,
                        Code::BadName,
                        "expected a property name after `.`",
                    )
                }
                other => other?,
            };
            property = Some(p);
            rest = r;
        }
        let mut filter = None;
        if let Some(r) = self.kw(rest, "where") {
            self.enter(r)?;
            let (r, p) = self.nested(|| self.required(r, "where", |s, i| s.or_expr(i)))?;
            self.leave();
            filter = Some(Box::new(p));
            rest = r;
        }
        let window_at = self.ws(rest);
        let (rest, window) = self.window(rest)?;
        if let Some(after_then) = self.kw(rest, "then") {
            let then_at = self.ws(rest);
            if func != AggFunc::Did {
                return self.fail_hint(
                    then_at,
                    Code::BadSequence,
                    format!(
                        "a sequence is a condition: it goes in did(…), not {}(…)",
                        func.name()
                    ),
                    "e.g. did(AddToCart then Purchase within 1h)",
                );
            }
            if property.is_some() {
                return self.fail(
                    then_at,
                    Code::BadSequence,
                    "a sequence's steps are events, not properties",
                );
            }
            if window.is_some() {
                return self.fail_hint(
                    window_at,
                    Code::BadSequence,
                    "the first step of a sequence has no gap to bound",
                    "a `within` after a later step bounds the time since the step before; the sequence's own window goes after the last step: did(A then B within 1h within 30d)",
                );
            }
            let first = SeqStep {
                negated: false,
                event,
                filter,
                gap: None,
            };
            return self.sequence(after_then, first, installation_scope, start);
        }
        let Some(mut rest) = self.punct(rest, ")") else {
            let at = self.ws(rest);
            let hint = match misspelled_keyword(at) {
                Some(k) => format!("did you mean `{k}`?"),
                None => "inside an event function: the event, then `where …`, then a window (`within 30d`, `since 2026-01-01`, `between … and …`); a sequence: did(A then B within 1h)".into(),
            };
            return self.fail_hint(
                at,
                Code::Unclosed,
                format!(
                    "expected `)` to close {}(…), found {}",
                    func.name(),
                    describe(at)
                ),
                hint,
            );
        };
        let mut of_event = None;
        if let Some(after_dot) = rest.strip_prefix('.') {
            if !matches!(func, AggFunc::First | AggFunc::Last) {
                return self.fail_hint(
                    rest,
                    Code::BadName,
                    format!("{}(…) has no properties", func.name()),
                    "only the first or last event has: last(Purchase).category",
                );
            }
            let (r, p) = match self.ident(after_dot) {
                Err(nom::Err::Error(_)) => {
                    return self.fail(
                        after_dot,
                        Code::BadName,
                        "expected a property name after `.`",
                    )
                }
                other => other?,
            };
            of_event = Some(p);
            rest = r;
        }
        Ok((
            rest,
            Operand::Agg(Agg {
                installation_scope,
                func,
                event,
                property,
                filter,
                window,
                of_event,
                span: Span::new(start, self.pos(rest)),
            }),
        ))
    }

    /// The steps of a sequence after its first `then`, its window and its `)`.
    fn sequence(
        &self,
        mut rest: &'a str,
        first: SeqStep,
        installation_scope: bool,
        start: usize,
    ) -> Res<'a, Operand> {
        let mut steps = vec![first];
        loop {
            let (negated, r) = match self.kw(rest, "not") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let (mut r, event) = match self.ident(r) {
                Err(nom::Err::Error(_)) => {
                    let t = self.ws(r);
                    return self.fail(
                        t,
                        Code::BadName,
                        format!("expected an event name after `then`, found {}", describe(t)),
                    );
                }
                other => other?,
            };
            let mut filter = None;
            if let Some(w) = self.kw(r, "where") {
                self.enter(w)?;
                let (w, p) = self.nested(|| self.required(w, "where", |s, i| s.or_expr(i)))?;
                self.leave();
                filter = Some(Box::new(p));
                r = w;
            }
            let mut gap = None;
            if let Some(w) = self.kw(r, "within") {
                let (w, d) = self.value_after(w, "within")?;
                gap = Some(d);
                r = w;
            }
            steps.push(SeqStep {
                negated,
                event,
                filter,
                gap,
            });
            match self.kw(r, "then") {
                Some(_) if negated => {
                    return self.fail_hint(
                        self.ws(r),
                        Code::BadSequence,
                        "`then not` can only be the last step of a sequence",
                        "did(A then B then not C within 1d)",
                    );
                }
                Some(next) => rest = next,
                None => {
                    rest = r;
                    break;
                }
            }
        }
        let (rest, window) = self.window(rest)?;
        let Some(rest) = self.punct(rest, ")") else {
            let at = self.ws(rest);
            let hint = match misspelled_keyword(at) {
                Some(k) => format!("did you mean `{k}`?"),
                None => "a sequence: did(A where … then B where … within 1h … [within 30d])".into(),
            };
            return self.fail_hint(
                at,
                Code::Unclosed,
                format!("expected `)` to close did(…), found {}", describe(at)),
                hint,
            );
        };
        Ok((
            rest,
            Operand::Sequence(Sequence {
                installation_scope,
                steps,
                window,
                span: Span::new(start, self.pos(rest)),
            }),
        ))
    }

    /// ```text
    /// lapse = "stopped" , "(" , ident , [ "where" , or_expr ] , "for" , duration ,
    ///         "within" , duration , ")"
    ///       | "restarted" , "(" , ident , [ "where" , or_expr ] , "within" , duration ,
    ///         "after" , duration , ")" ;
    /// ```
    fn lapse(
        &self,
        i: &'a str,
        kind: LapseKind,
        installation_scope: bool,
        start: usize,
    ) -> Res<'a, Operand> {
        let name = match kind {
            LapseKind::Stopped => "stopped",
            LapseKind::Restarted => "restarted",
        };
        let (mut rest, event) = match self.ident(i) {
            Err(nom::Err::Error(_)) => {
                let t = self.ws(i);
                return self.fail(
                    t,
                    Code::BadName,
                    format!("expected an event name in {name}(…), found {}", describe(t)),
                );
            }
            other => other?,
        };
        let mut filter = None;
        if let Some(r) = self.kw(rest, "where") {
            self.enter(r)?;
            let (r, p) = self.nested(|| self.required(r, "where", |s, i| s.or_expr(i)))?;
            self.leave();
            filter = Some(Box::new(p));
            rest = r;
        }
        let (first, second, hint) = match kind {
            LapseKind::Stopped => (
                "for",
                "within",
                "stopped(AppLaunch for 30d within 90d): did it in the last 90 days, not in the last 30",
            ),
            LapseKind::Restarted => (
                "within",
                "after",
                "restarted(AppLaunch within 7d after 30d): did it in the last 7 days after a 30-day break, and before the break",
            ),
        };
        let Some(r) = self.kw(rest, first) else {
            let at = self.ws(rest);
            return self.fail_hint(
                at,
                Code::IncompletePhrase,
                format!("expected `{first}` in {name}(…), found {}", describe(at)),
                hint,
            );
        };
        let (r, recent) = self.value_after(r, first)?;
        let Some(r) = self.kw(r, second) else {
            let at = self.ws(r);
            return self.fail_hint(
                at,
                Code::IncompletePhrase,
                format!("expected `{second}` in {name}(…), found {}", describe(at)),
                hint,
            );
        };
        let (r, other) = self.value_after(r, second)?;
        let Some(r) = self.punct(r, ")") else {
            let at = self.ws(r);
            return self.fail_hint(
                at,
                Code::Unclosed,
                format!("expected `)` to close {name}(…), found {}", describe(at)),
                hint,
            );
        };
        Ok((
            r,
            Operand::Lapse(Lapse {
                installation_scope,
                kind,
                event,
                filter,
                recent,
                other,
                span: Span::new(start, self.pos(r)),
            }),
        ))
    }

    /// `window = "within" , duration | "since" , time | "between" , time , "and" , time ;`
    fn window(&self, i: &'a str) -> Res<'a, Option<Window>> {
        if let Some(r) = self.kw(i, "within") {
            let (r, d) = self.value_after(r, "within")?;
            return Ok((r, Some(Window::Within(d))));
        }
        if let Some(r) = self.kw(i, "since") {
            let (r, t) = self.value_after(r, "since")?;
            return Ok((r, Some(Window::Since(t))));
        }
        if let Some(r) = self.kw(i, "between") {
            let (r, (a, b)) = self.between(r)?;
            return Ok((r, Some(Window::Between(a, b))));
        }
        Ok((i, None))
    }

    /// `literal , "and" , literal`, after `between`.
    fn between(&self, i: &'a str) -> Res<'a, (Literal, Literal)> {
        let (r, a) = self.value_after(i, "between")?;
        let Some(r) = self.kw(r, "and") else {
            return self.fail(
                self.ws(r),
                Code::IncompletePhrase,
                "expected `and` in `between … and …`",
            );
        };
        let (r, b) = self.value_after(r, "and")?;
        Ok((r, (a, b)))
    }

    fn value_after(&self, i: &'a str, after: &str) -> Res<'a, Literal> {
        match self.literal(i) {
            Err(nom::Err::Error(_)) => {
                let t = self.ws(i);
                self.fail(
                    t,
                    Code::ExpectedValue,
                    format!("expected a value after `{after}`, found {}", describe(t)),
                )
            }
            other => other,
        }
    }

    /// `list = "(" , literal , { "," , literal } , ")" ;`
    fn list(&self, i: &'a str, after: &str) -> Res<'a, Vec<Literal>> {
        let Some(mut rest) = self.punct(i, "(") else {
            let t = self.ws(i);
            return self.fail_hint(
                t,
                Code::BadList,
                format!("expected `(` after `{after}`, found {}", describe(t)),
                format!("write {after} (\"a\", \"b\")"),
            );
        };
        let mut values = Vec::new();
        loop {
            let (r, v) = self.value_after(rest, if values.is_empty() { "(" } else { "," })?;
            values.push(v);
            if let Some(r) = self.punct(r, ",") {
                rest = r;
            } else if let Some(r) = self.punct(r, ")") {
                return Ok((r, values));
            } else {
                let t = self.ws(r);
                return self.fail(
                    t,
                    Code::BadList,
                    format!("expected `,` or `)` in the list, found {}", describe(t)),
                );
            }
        }
    }

    /// ```text
    /// test = cmp_op , literal | [ "not" ] , "in" , list | "between" , literal , "and" , literal
    ///      | "is" , [ "not" ] , "set" | "contains" , literal | "starts" , "with" , literal
    ///      | "ends" , "with" , literal | "matches" , literal
    ///      | "has" , ( "any" , list | "all" , list | literal )
    ///      | "within" , literal | "before" , literal | "after" , literal ;
    /// cmp_op = "=" | "!=" | "<" | "<=" | ">" | ">=" ;
    /// ```
    fn test(&self, i: &'a str) -> Res<'a, Option<Test>> {
        let t = self.ws(i);
        for (sym, op) in [
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("==", CmpOp::Eq),
            ("=", CmpOp::Eq),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if let Some(r) = t.strip_prefix(sym) {
                let (r, v) = self.value_after(r, sym)?;
                if let Some(per) = self.kw(r, "per") {
                    let (r, reg) = self.regularity(per, op, v)?;
                    return Ok((r, Some(Test::Regular(Box::new(reg)))));
                }
                return Ok((r, Some(Test::Cmp(op, v))));
            }
        }
        if let Some(r) = self.kw(t, "not").and_then(|r| self.kw(r, "in")) {
            let (r, values) = self.list(r, "not in")?;
            return Ok((
                r,
                Some(Test::In {
                    values,
                    negated: true,
                }),
            ));
        }
        if let Some(r) = self.kw(t, "in") {
            let (r, values) = self.list(r, "in")?;
            return Ok((
                r,
                Some(Test::In {
                    values,
                    negated: false,
                }),
            ));
        }
        if let Some(r) = self.kw(t, "between") {
            let (r, (a, b)) = self.between(r)?;
            return Ok((r, Some(Test::Between(a, b))));
        }
        if let Some(r) = self.kw(t, "is") {
            let (r, negated) = match self.kw(r, "not") {
                Some(r) => (r, true),
                None => (r, false),
            };
            let Some(r) = self.kw(r, "set") else {
                let at = self.ws(r);
                return self.fail_hint(
                    at,
                    Code::IncompletePhrase,
                    format!("expected `set` after `is`, found {}", describe(at)),
                    "write `is set` or `is not set`",
                );
            };
            return Ok((r, Some(Test::IsSet { negated })));
        }
        let matchers: [(&[&str], MatchOp); 4] = [
            (&["contains"], MatchOp::Contains),
            (&["starts", "with"], MatchOp::StartsWith),
            (&["ends", "with"], MatchOp::EndsWith),
            (&["matches"], MatchOp::Matches),
        ];
        for (words, op) in matchers {
            if let Some(mut r) = self.kw(t, words[0]) {
                if words.len() == 2 {
                    match self.kw(r, words[1]) {
                        Some(after) => r = after,
                        None => {
                            return self.fail(
                                self.ws(r),
                                Code::IncompletePhrase,
                                format!("expected `{}` after `{}`", words[1], words[0]),
                            )
                        }
                    }
                }
                let (r, v) = self.value_after(r, &words.join(" "))?;
                return Ok((r, Some(Test::Match(op, v))));
            }
        }
        if let Some(r) = self.kw(t, "has") {
            if let Some(r2) = self.kw(r, "any") {
                let (r2, v) = self.list(r2, "has any")?;
                return Ok((r2, Some(Test::Has(HasOp::Any, v))));
            }
            if let Some(r2) = self.kw(r, "all") {
                let (r2, v) = self.list(r2, "has all")?;
                return Ok((r2, Some(Test::Has(HasOp::All, v))));
            }
            let (r, v) = self.value_after(r, "has")?;
            return Ok((r, Some(Test::Has(HasOp::Has, vec![v]))));
        }
        if let Some(r) = self.kw(t, "within").and_then(|r| self.kw(r, "next")) {
            let (r, v) = self.value_after(r, "within next")?;
            return Ok((r, Some(Test::WithinNext(v))));
        }
        for (word, make) in [
            ("within", Test::Within as fn(Literal) -> Test),
            ("before", Test::Before),
            ("after", Test::After),
        ] {
            if let Some(r) = self.kw(t, word) {
                let (r, v) = self.value_after(r, word)?;
                return Ok((r, Some(make(v))));
            }
        }
        Ok((i, None))
    }

    /// A period word: `day`, `week`, `month`, or their plurals.
    fn period_unit(&self, i: &'a str) -> Option<(&'a str, PeriodUnit)> {
        [
            ("days", PeriodUnit::Day),
            ("day", PeriodUnit::Day),
            ("weeks", PeriodUnit::Week),
            ("week", PeriodUnit::Week),
            ("months", PeriodUnit::Month),
            ("month", PeriodUnit::Month),
        ]
        .into_iter()
        .find_map(|(w, u)| self.kw(i, w).map(|r| (r, u)))
    }

    /// `regularity = cmp_op , number , "per" , unit , "in" , number , "of" , [ "the" ] , "last" ,
    /// number , unit ;` (after `per`)
    fn regularity(&self, i: &'a str, op: CmpOp, times: Literal) -> Res<'a, Regularity> {
        const HINT: &str = "e.g. count(AppLaunch) >= 3 per week in 4 of the last 6 weeks";
        let Some((r, unit)) = self.period_unit(i) else {
            let at = self.ws(i);
            return self.fail_hint(
                at,
                Code::BadRegularity,
                format!(
                    "expected `day`, `week` or `month` after `per`, found {}",
                    describe(at)
                ),
                HINT,
            );
        };
        let Some(r) = self.kw(r, "in") else {
            let at = self.ws(r);
            return self.fail_hint(
                at,
                Code::BadRegularity,
                format!(
                    "expected `in` (… in 4 of the last 6 {}s), found {}",
                    unit.name(),
                    describe(at)
                ),
                HINT,
            );
        };
        let (r, at_least) = self.value_after(r, "in")?;
        let Some(r) = self.kw(r, "of") else {
            let at = self.ws(r);
            return self.fail_hint(
                at,
                Code::BadRegularity,
                format!("expected `of`, found {}", describe(at)),
                HINT,
            );
        };
        let r = self.kw(r, "the").unwrap_or(r);
        let Some(r) = self.kw(r, "last") else {
            let at = self.ws(r);
            return self.fail_hint(
                at,
                Code::BadRegularity,
                format!("expected `last`, found {}", describe(at)),
                HINT,
            );
        };
        // Digits alone: `6 weeks` would otherwise read as a spelled-out duration.
        let t = self.ws(r);
        let digits: &str = &t[..t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())];
        if digits.is_empty() {
            return self.fail_hint(
                t,
                Code::BadRegularity,
                format!(
                    "expected how many periods after `last`, found {}",
                    describe(t)
                ),
                HINT,
            );
        }
        let r = &t[digits.len()..];
        let of_last = Literal {
            value: LitValue::Number(digits.parse().unwrap_or(f64::MAX), digits.to_string()),
            span: Span::new(self.pos(t), self.pos(r)),
        };
        match self.period_unit(r) {
            Some((r, u)) if u == unit => Ok((
                r,
                Regularity {
                    op,
                    times,
                    unit,
                    at_least,
                    of_last,
                },
            )),
            _ => {
                let at = self.ws(r);
                self.fail_hint(
                    at,
                    Code::BadRegularity,
                    format!("expected `{}s` (the periods are counted in the unit of `per {}`), found {}", unit.name(), unit.name(), describe(at)),
                    HINT,
                )
            }
        }
    }

    /// ```text
    /// literal = string | timestamp | date | duration , [ "ago" ] | number | "true" | "false" ;
    /// date = digit4 , "-" , digit2 , "-" , digit2 ;
    /// timestamp = date , "T" , digit2 , ":" , digit2 , [ ":" , digit2 , [ "." , digits ] ] , ( "Z" | offset ) ;
    /// duration = { digits , ( "w" | "d" | "h" | "m" | "s" ) }- ;
    /// number = [ "-" ] , digits , [ "." , digits ] ;
    /// ```
    fn literal(&self, i: &'a str) -> Res<'a, Literal> {
        let t = self.ws(i);
        let start = self.pos(t);
        let done = |rest: &'a str, value: LitValue| {
            Ok((
                rest,
                Literal {
                    value,
                    span: Span::new(start, self.src.len() - rest.len()),
                },
            ))
        };
        if t.starts_with('"') {
            let (rest, s) = self.string(t)?;
            return done(rest, LitValue::String(s));
        }
        if let Some(r) = self.kw(t, "true") {
            return done(r, LitValue::Bool(true));
        }
        if let Some(r) = self.kw(t, "false") {
            return done(r, LitValue::Bool(false));
        }
        if let Some((rest, value)) = self.date_or_timestamp(t)? {
            return done(rest, value);
        }
        if let Some((rest, period, text)) = self.duration(t)? {
            if let Some(r) = self.kw(rest, "ago") {
                return done(r, LitValue::Ago(period, text));
            }
            return done(rest, LitValue::Duration(period, text));
        }
        let number: Res<'a, &'a str> =
            recognize((opt(char('-')), digit1, opt((char('.'), digit1)))).parse(t);
        if let Ok((rest, text)) = number {
            if rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                let word: String = t
                    .chars()
                    .take_while(|c| is_ident_char(*c) || *c == '-' || *c == '.')
                    .collect();
                let is_duration_shaped = word
                    .split(|c: char| "ywdhmsoYWDHMSO".contains(c))
                    .all(|n| n.bytes().all(|b| b.is_ascii_digit()))
                    && word.ends_with(|c: char| "ywdhmsoYWDHMSO".contains(c));
                let (code, message, hint) = if is_duration_shaped {
                    (
                        Code::BadDuration,
                        format!("the duration `{word}` is too large"),
                        "durations must fit in about 290,000 years",
                    )
                } else {
                    (
                        Code::BadNumber,
                        format!("`{word}` is not a number, date or duration"),
                        "durations are whole numbers with y, mo, w, d, h, m or s (`30d`, `3mo`, \
                         `1d12h`) or spelled out (`30 days`); dates are written 2026-01-01",
                    )
                };
                return Err(nom::Err::Failure(PErr {
                    remaining: t.len(),
                    end: Some(self.pos(t) + word.len()),
                    code,
                    message: Some(message),
                    hint: Some(hint.into()),
                }));
            }
            let value: f64 = text.parse().map_err(|_| {
                nom::Err::Failure(PErr {
                    remaining: t.len(),
                    end: None,
                    code: Code::BadNumber,
                    message: Some("invalid number".into()),
                    hint: None,
                })
            })?;
            if !value.is_finite() {
                return self.fail(t, Code::BadNumber, "number out of range");
            }
            return done(rest, LitValue::Number(value, text.to_string()));
        }
        self.backtrack(t)
    }

    /// `string = '"' , { character | escape } , '"' ;` escapes: \" \\ \n \t \r \u{hex}
    fn string(&self, i: &'a str) -> Res<'a, String> {
        let (body, _) = tag("\"").parse(i)?;
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => return Ok((&body[k + 1..], out)),
                '\\' => {
                    let Some((k2, e)) = chars.next() else { break };
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'u' => {
                            let rest = &body[k2 + 1..];
                            let code = rest
                                .strip_prefix('{')
                                .and_then(|r| r.find('}').map(|e| &r[..e]))
                                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                                .and_then(char::from_u32);
                            match code {
                                Some(ch) => {
                                    out.push(ch);
                                    let len = rest.find('}').expect("checked") + 1;
                                    for _ in 0..rest[..len].chars().count() {
                                        chars.next();
                                    }
                                }
                                None => {
                                    return self.fail(
                                        &body[k..],
                                        Code::BadString,
                                        "invalid \\u escape: write \\u{hex}",
                                    )
                                }
                            }
                        }
                        other => {
                            let at = &body[k..];
                            return Err(nom::Err::Failure(PErr {
                                remaining: at.len(),
                                end: Some(self.pos(at) + 1 + other.len_utf8()),
                                code: Code::BadString,
                                message: Some(format!("unknown escape `\\{other}` in string")),
                                hint: Some("escapes are \\\" \\\\ \\n \\t \\r and \\u{hex}".into()),
                            }));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        self.fail(
            i,
            Code::BadString,
            "unterminated string: expected a closing `\"`",
        )
    }

    fn date_or_timestamp(&self, t: &'a str) -> Result<Option<(&'a str, LitValue)>, nom::Err<PErr>> {
        let b = t.as_bytes();
        let shaped = b.len() >= 10
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'-'
            && b[8..10].iter().all(u8::is_ascii_digit);
        if !shaped {
            // `10000-01-01`: a date with a year of more than four digits, not a subtraction.
            let year_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let rest = &b[year_digits..];
            if year_digits > 4
                && rest.len() >= 6
                && rest[0] == b'-'
                && rest[1..3].iter().all(u8::is_ascii_digit)
                && rest[3] == b'-'
                && rest[4..6].iter().all(u8::is_ascii_digit)
            {
                let end = year_digits + 6;
                return Err(nom::Err::Failure(PErr {
                    remaining: t.len(),
                    end: Some(self.pos(t) + end),
                    code: Code::BadTime,
                    message: Some(format!("`{}`: the year is out of range", &t[..end])),
                    hint: Some("dates are written YYYY-MM-DD, years 0000 to 9999".into()),
                }));
            }
            return Ok(None);
        }
        if b.len() > 10 && (b[10] == b'T' || b[10] == b't') {
            let end = t[10..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-')))
                .map_or(t.len(), |e| e + 10);
            let text = &t[..end];
            // RFC 3339 requires seconds; `2026-01-01T10:00Z` means :00 (the grammar allows it).
            let parsed = DateTime::parse_from_rfc3339(text).or_else(|e| {
                let b = text.as_bytes();
                if b.len() > 16 && b[13] == b':' && b[16] != b':' {
                    DateTime::parse_from_rfc3339(&format!("{}:00{}", &text[..16], &text[16..]))
                } else {
                    Err(e)
                }
            });
            return match parsed {
                Ok(ts) => Ok(Some((
                    &t[end..],
                    LitValue::Timestamp(ts.with_timezone(&Utc)),
                ))),
                Err(_) => Err(nom::Err::Failure(PErr {
                    remaining: t.len(),
                    end: Some(self.pos(t) + end),
                    code: Code::BadTime,
                    message: Some(format!("`{text}` is not a valid timestamp")),
                    hint: Some(
                        "write timestamps as 2026-01-01T10:00:00Z (with a time zone)".into(),
                    ),
                })),
            };
        }
        if b.len() > 10 && is_ident_char(b[10] as char) {
            return Ok(None);
        }
        match NaiveDate::parse_from_str(&t[..10], "%Y-%m-%d") {
            Ok(d) => Ok(Some((&t[10..], LitValue::Date(d)))),
            Err(_) => Err(nom::Err::Failure(PErr {
                remaining: t.len(),
                end: Some(self.pos(t) + 10),
                code: Code::BadTime,
                message: Some(format!("`{}` is not a valid date", &t[..10])),
                hint: Some("dates are written YYYY-MM-DD".into()),
            })),
        }
    }

    /// ```text
    /// duration = { digits , unit }- | digits , unit_word ;
    /// unit = "y" | "mo" | "w" | "d" | "h" | "m" | "s" ;      (* case-insensitive, but not "M" *)
    /// unit_word = "year(s)" | "month(s)" | "week(s)" | "day(s)" | "hour(s)" | "minute(s)"
    ///           | "second(s)" ;
    /// ```
    /// `30d`, `12h`, `90m`, `2w`, `45s`, `3mo`, `1y` and combinations such as `1d12h`, or one
    /// spelled-out length (`30 days`, `3 months`). Years and months are calendar months. `M`
    /// alone is refused: it reads as months to some and as minutes to the parser.
    fn duration(&self, t: &'a str) -> Result<Option<(&'a str, Period, String)>, nom::Err<PErr>> {
        if let Some(found) = self.spelled_duration(t) {
            return Ok(Some(found));
        }
        let mut rest = t;
        let mut period = Period::default();
        loop {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                break;
            }
            let unit_text: String = rest[digits..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let (unit, len) = match unit_text.as_str() {
                u if u.eq_ignore_ascii_case("mo") => (Unit::Months(1), 2),
                "M" => {
                    let at = self.pos(t);
                    return Err(nom::Err::Failure(PErr {
                        remaining: t.len(),
                        end: Some(at + (t.len() - rest.len()) + digits + 1),
                        code: Code::BadDuration,
                        message: Some(format!(
                            "`{}M` could mean minutes or months",
                            &rest[..digits]
                        )),
                        hint: Some(format!(
                            "write {n}m for minutes or {n}mo for months",
                            n = &rest[..digits]
                        )),
                    }));
                }
                u => match u.chars().next().map(|c| c.to_ascii_lowercase()) {
                    Some('y') => (Unit::Months(12), 1),
                    Some('w') => (Unit::Micros(MICROS_PER_WEEK), 1),
                    Some('d') => (Unit::Micros(MICROS_PER_DAY), 1),
                    Some('h') => (Unit::Micros(MICROS_PER_HOUR), 1),
                    Some('m') => (Unit::Micros(MICROS_PER_MINUTE), 1),
                    Some('s') => (Unit::Micros(MICROS_PER_SEC), 1),
                    _ => break,
                },
            };
            let after = &rest[digits + len..];
            if after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                return Ok(None);
            }
            let n: i64 = match rest[..digits].parse() {
                Ok(n) => n,
                Err(_) => return Ok(None),
            };
            let added = match unit {
                Unit::Months(m) => u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_mul(m))
                    .and_then(|m| period.months.checked_add(m))
                    .map(|months| Period { months, ..period }),
                Unit::Micros(us) => n
                    .checked_mul(us)
                    .and_then(|us| period.micros.checked_add(us))
                    .map(|micros| Period { micros, ..period }),
            };
            let Some(added) = added else {
                return Ok(None);
            };
            period = added;
            rest = after;
        }
        if rest.len() == t.len() || rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return Ok(None);
        }
        Ok(Some((
            rest,
            period,
            t[..t.len() - rest.len()].to_ascii_lowercase(),
        )))
    }

    /// `30 days`, `1 month`, `2 weeks`: digits, a space, a unit word.
    fn spelled_duration(&self, t: &'a str) -> Option<(&'a str, Period, String)> {
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits == 0 || !t[digits..].starts_with(' ') {
            return None;
        }
        let n: i64 = t[..digits].parse().ok()?;
        let after_space = t[digits..].trim_start_matches(' ');
        const WORDS: [(&str, Unit); 7] = [
            ("year", Unit::Months(12)),
            ("month", Unit::Months(1)),
            ("week", Unit::Micros(MICROS_PER_WEEK)),
            ("day", Unit::Micros(MICROS_PER_DAY)),
            ("hour", Unit::Micros(MICROS_PER_HOUR)),
            ("minute", Unit::Micros(MICROS_PER_MINUTE)),
            ("second", Unit::Micros(MICROS_PER_SEC)),
        ];
        for (word, unit) in WORDS {
            for form in [format!("{word}s"), word.to_string()] {
                let Some(rest) = self.kw(after_space, &form) else {
                    continue;
                };
                let period = match unit {
                    Unit::Months(m) => Period {
                        months: u32::try_from(n).ok()?.checked_mul(m)?,
                        micros: 0,
                    },
                    Unit::Micros(us) => Period::exact(n.checked_mul(us)?),
                };
                let text = format!("{n} {}", form.to_ascii_lowercase());
                return Some((rest, period, text));
            }
        }
        None
    }
}

/// A duration unit: calendar months, or an exact number of microseconds.
#[derive(Clone, Copy)]
enum Unit {
    Months(u32),
    Micros(i64),
}

/// Parses a segment. Errors carry the byte span of the problem.
pub fn parse(src: &str) -> Result<Segment, Diagnostics> {
    if src.len() > MAX_SEGMENT_BYTES {
        return Err(Diagnostics::one(Diagnostic::error(
            Code::TooLarge,
            Span::new(0, 0),
            format!(
                "the segment is {} bytes; at most {MAX_SEGMENT_BYTES} are accepted",
                src.len()
            ),
        )));
    }
    let p = P {
        src,
        depth: Cell::new(0),
    };
    match p.segment(src) {
        Ok((_, seg)) => Ok(seg),
        Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => {
            let start = src.len() - e.remaining;
            let end = e.end.unwrap_or_else(|| token_end(src, start));
            let mut d = Diagnostic::error(
                e.code,
                Span::new(start, end),
                e.message.unwrap_or_else(|| "syntax error".into()),
            );
            d.hint = e.hint;
            Err(Diagnostics::one(d))
        }
        Err(nom::Err::Incomplete(_)) => Err(Diagnostics::one(Diagnostic::error(
            Code::Unexpected,
            Span::new(src.len(), src.len()),
            "unexpected end of the segment",
        ))),
    }
}

/// The end of the token starting at `start`, for underlining it.
fn token_end(src: &str, start: usize) -> usize {
    let rest = &src[start..];
    match rest.chars().next() {
        None => start,
        Some(c) if is_ident_char(c) => {
            start + rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len())
        }
        Some(c) => start + c.len_utf8(),
    }
}

/// A point in time written as segments write one: a date (`2026-11-01`, midnight UTC) or a
/// timestamp (`2026-10-01T12:00Z`, `2026-10-01T12:00:00+02:00`). For options such as `--as-of`,
/// so they accept exactly what the language does.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let p = P {
        src: t,
        depth: Cell::new(0),
    };
    let invalid = || format!("`{t}` is not a date (2026-11-01) or a timestamp (2026-11-01T10:00Z)");
    match p.date_or_timestamp(t) {
        Ok(Some(("", LitValue::Date(d)))) => {
            Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        }
        Ok(Some(("", LitValue::Timestamp(ts)))) => Ok(ts),
        Err(nom::Err::Failure(e) | nom::Err::Error(e)) => Err(e
            .message
            .map_or_else(invalid, |m| format!("{m} ({})", invalid()))),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use insta::assert_snapshot;

    fn parsed(src: &str) -> String {
        match parse(src) {
            Ok(seg) => seg.to_string(),
            Err(d) => d.brief(),
        }
    }

    #[test]
    fn the_canonical_form_keeps_precedence_with_few_parentheses() {
        assert_snapshot!(parsed("a OR b AND (c or d) and not (e and f)"), @"a or b and (c or d) and not (e and f)");
        assert_snapshot!(parsed("((a))  and   NOT   not b"), @"a and not not b");
        assert_snapshot!(parsed("x == 1 and y <> \"q\\\"uote\" # comment\n and z"), @r#"x = 1 and y != "q\"uote" and z"#);
    }

    #[test]
    fn keywords_are_matched_whole() {
        assert_snapshot!(parsed("andromeda and oracle or notable"), @"andromeda and oracle or notable");
        assert_snapshot!(parsed("`and` = 1"), @"`and` = 1");
    }

    #[test]
    fn literals_parse_with_their_text() {
        assert_snapshot!(parsed("t within 1D12H and d after 2026-02-28 and ts before 2026-01-01T10:00Z and n = -1.50"), @"t within 1d12h and d after 2026-02-28 and ts before 2026-01-01T10:00:00Z and n = -1.50");
    }

    #[test]
    fn failures_point_at_the_token_and_say_what_was_expected() {
        assert_snapshot!(parsed("(a and b"), @"E004 8..8 expected `)` to close the `(` opened at 1:1, found the end of the segment (every `(` needs a matching `)`)");
        assert_snapshot!(parsed("a b"), @"E002 2..3 unexpected `b`: expected `and`, `or` or the end of the segment");
        assert_snapshot!(parsed("a and"), @"E003 5..5 expected a condition (an attribute, an event function such as count(…), or `(`), found the end of the segment");
        assert_snapshot!(parsed("name = \"x\\q\""), @r#"E009 9..11 unknown escape `\q` in string (escapes are \" \\ \n \t \r and \u{hex})"#);
        assert_snapshot!(parsed("count(AppLaunch within 30d >= 3"), @"E004 27..28 expected `)` to close count(…), found `>` (inside an event function: the event, then `where …`, then a window (`within 30d`, `since 2026-01-01`, `between … and …`); a sequence: did(A then B within 1h))");
        assert_snapshot!(parsed("x between 1 2"), @"E007 12..13 expected `and` in `between … and …`");
        assert_snapshot!(parsed("färg = 1"), @"E008 0..5 `färg` must be quoted: bare names are ASCII (quote it with backticks: `färg`)");
        assert_snapshot!(parsed("d = 2026-13-01"), @"E011 4..14 `2026-13-01` is not a valid date (dates are written YYYY-MM-DD)");
        assert_snapshot!(parsed("d < 10000-01-01"), @"E011 4..15 `10000-01-01`: the year is out of range (dates are written YYYY-MM-DD, years 0000 to 9999)");
        assert_snapshot!(parsed("t within 99999999999999999d"), @"E012 9..27 the duration `99999999999999999d` is too large (durations must fit in about 290,000 years)");
        assert_snapshot!(parsed(""), @"E001 0..0 the segment is empty: expected a condition");
    }

    #[test]
    fn times_for_options_read_like_literals() {
        assert_eq!(
            parse_time("2026-10-01T12:00Z").unwrap().to_rfc3339(),
            "2026-10-01T12:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-10-01").unwrap().to_rfc3339(),
            "2026-10-01T00:00:00+00:00"
        );
        assert!(parse_time("yesterday").unwrap_err().contains("not a date"));
        assert!(parse_time("2026-02-30")
            .unwrap_err()
            .contains("not a valid date"));
    }
}
