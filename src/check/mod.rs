//! Stage 2, check: resolve names against the catalog, type-check every test, function and
//! window, inline saved segments. Reports every error it finds, each with its span.

pub mod names;
pub mod saved;
pub mod typed;

use crate::catalog::{AttributeDef, Catalog, Entity, EventDef, ValueType};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::syntax::ast::{
    self, AggFunc, CmpOp, LitValue, Literal, MatchOp, Name, Operand, Pred, Span, Test,
};
use names::{same, suggest};
pub use saved::{NoSavedSegments, SavedMap, SavedSegments, SegmentDir};
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
        stack: vec![],
        expansions: 0,
        graph_error: None,
    };
    let root = c.pred(&seg.root, None);
    if c.errors.is_empty() {
        Ok(TypedSegment { root })
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
    /// Saved segments being checked, for cycle detection.
    stack: Vec<String>,
    /// Saved segments inlined so far: a bound, because references that fan out (`a` uses `b`
    /// twice, `b` uses `c` twice, …) would otherwise inline exponentially many copies.
    expansions: usize,
    /// A cycle or too many expansions, found in a saved segment: reported as it is at each
    /// reference on the way out, not wrapped in "saved segment `x` has errors: …" per level.
    graph_error: Option<Diagnostic>,
}

/// At most this many saved-segment references are inlined into one segment.
pub const MAX_SAVED_EXPANSIONS: usize = 256;

/// Inside `where`, names are the event's properties.
type Ctx<'e> = Option<&'e EventDef>;

const DERIVED: [&str; 2] = ["age", "randomBucket"];

fn describe_type(ty: ValueType) -> &'static str {
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

/// At most `VERSION_PARTS` (4) dot-separated unsigned integers: "17", "17.2", "5.10.1".
fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn describe_literal(v: &LitValue) -> &'static str {
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
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(Diagnostic::error(span, message));
    }

    fn error_hint(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(span, message).with_hint(hint));
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
                        ValueType::Date | ValueType::Timestamp => {
                            format!("test it: `{o} within 30d` or `{o} is set`")
                        }
                        _ => format!("compare it (`{o} = \"…\"`) or test it (`{o} is set`)"),
                    };
                    self.error_hint(
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

    fn saved_segment(&mut self, name: &str, span: Span, ctx: Ctx) -> TPred {
        if ctx.is_some() {
            self.error(span, "segment(…) cannot be used inside `where`");
            return TPred::Const(false);
        }
        if let Some(pos) = self.stack.iter().position(|n| n == name) {
            let mut cycle = self.stack[pos..].to_vec();
            cycle.push(name.to_string());
            let message = format!(
                "saved segments refer to each other in a cycle: {}",
                cycle.join(" → ")
            );
            return self.graph_failure(Diagnostic::error(span, message));
        }
        if self.expansions >= MAX_SAVED_EXPANSIONS {
            let d = Diagnostic::error(
                span,
                format!("saved segments expand to more than {MAX_SAVED_EXPANSIONS} references"),
            )
            .with_hint(
                "saved segments that use other saved segments several times multiply; \
                 simplify them",
            );
            return self.graph_failure(d);
        }
        self.expansions += 1;
        let text = match self.saved.load(name) {
            None => {
                let names = self.saved.names();
                let msg = format!("there is no saved segment named `{name}`");
                let close = (!name.is_empty())
                    .then(|| suggest(name, names.iter().map(String::as_str)))
                    .flatten();
                match close {
                    Some(s) => {
                        self.error_hint(span, msg, format!("did you mean segment(\"{s}\")?"))
                    }
                    None if names.is_empty() => self.error_hint(
                        span,
                        msg,
                        "saved segments are .seg files in the --segments directory",
                    ),
                    None => {
                        self.error_hint(span, msg, format!("saved segments: {}", names.join(", ")))
                    }
                }
                return TPred::Const(false);
            }
            Some(Err(e)) => {
                self.error(span, format!("cannot read saved segment `{name}`: {e}"));
                return TPred::Const(false);
            }
            Some(Ok(text)) => text,
        };
        let mut graph_error = None;
        let inner = crate::syntax::parse(&text).and_then(|seg| {
            let mut sub = Checker {
                catalog: self.catalog,
                saved: self.saved,
                errors: vec![],
                stack: self.stack.clone(),
                expansions: self.expansions,
                graph_error: None,
            };
            sub.stack.push(name.to_string());
            let root = sub.pred(&seg.root, None);
            self.expansions = sub.expansions;
            graph_error = sub.graph_error.take();
            if sub.errors.is_empty() {
                Ok(root)
            } else {
                Err(Diagnostics(sub.errors))
            }
        });
        match inner {
            Ok(body) => TPred::Saved {
                name: name.to_string(),
                body: Box::new(body),
            },
            Err(_) if graph_error.is_some() => {
                let mut d = graph_error.expect("checked");
                d.span = span;
                self.graph_failure(d)
            }
            Err(d) => {
                let first = &d.0[0];
                let (line, col) = Diagnostics::line_col(&text, first.span.start);
                let more = if d.0.len() > 1 {
                    format!(" (and {} more)", d.0.len() - 1)
                } else {
                    String::new()
                };
                self.error(
                    span,
                    format!(
                        "saved segment `{name}` has errors: {name}.seg:{line}:{col}: {}{more}",
                        first.message
                    ),
                );
                TPred::Const(false)
            }
        }
    }

    fn graph_failure(&mut self, d: Diagnostic) -> TPred {
        self.errors.push(d.clone());
        self.graph_error = Some(d);
        TPred::Const(false)
    }

    fn operand(&mut self, o: &Operand, ctx: Ctx) -> Option<Field> {
        match o {
            Operand::Name(n) => self.name(n, ctx),
            Operand::Agg(a) if a.func == AggFunc::Did => {
                self.error_hint(
                    a.span,
                    "did(…) is a condition on its own and cannot be compared",
                    "use count(…) to compare how often: count(AddToCart within 7d) >= 2",
                );
                None
            }
            Operand::Agg(a) => self.agg(a, ctx),
            Operand::Segment { span, .. } => {
                self.error(
                    *span,
                    "segment(…) is a condition on its own and cannot be compared",
                );
                None
            }
        }
    }

    /// Standard or custom attribute named by `n` (no errors reported).
    fn resolve_attribute(&self, n: &Name) -> Option<Field> {
        let parts: Vec<&str> = n.parts.iter().map(|p| p.text.as_str()).collect();
        let find = |entity: Entity, name: &str, custom: bool| -> Option<&AttributeDef> {
            self.catalog.attributes(entity).iter().find(|a| {
                a.custom == custom
                    && (same(&a.name, name) || a.aliases.iter().any(|x| same(x, name)))
            })
        };
        let field = |entity: Entity, a: &AttributeDef| Field::Attribute {
            entity,
            name: a.name.clone(),
            column: a.column.clone(),
            ty: a.ty,
        };
        let ns = |s: &str, word: &str| s.eq_ignore_ascii_case(word);
        match parts.as_slice() {
            [p, x] if ns(p, "person") => {
                find(Entity::Person, x, false).map(|a| field(Entity::Person, a))
            }
            [p, c, x] if ns(p, "person") && ns(c, "custom") => {
                find(Entity::Person, x, true).map(|a| field(Entity::Person, a))
            }
            [p, x] if ns(p, "installation") => {
                find(Entity::Installation, x, false).map(|a| field(Entity::Installation, a))
            }
            [p, c, x] if ns(p, "installation") && ns(c, "custom") => {
                find(Entity::Installation, x, true).map(|a| field(Entity::Installation, a))
            }
            [c, x] if ns(c, "custom") => {
                match (
                    find(Entity::Person, x, true),
                    find(Entity::Installation, x, true),
                ) {
                    (Some(a), None) => Some(field(Entity::Person, a)),
                    (None, Some(a)) => Some(field(Entity::Installation, a)),
                    _ => None,
                }
            }
            [x] if same(x, "age") => Some(Field::Age),
            [x] if same(x, "randomBucket") => Some(Field::RandomBucket),
            [x] => match (
                find(Entity::Installation, x, false),
                find(Entity::Person, x, false),
            ) {
                (Some(a), None) => Some(field(Entity::Installation, a)),
                (None, Some(a)) => Some(field(Entity::Person, a)),
                _ => None,
            },
            _ => None,
        }
    }

    fn name(&mut self, n: &Name, ctx: Ctx) -> Option<Field> {
        if let Some(event) = ctx {
            return self.property(n, event);
        }
        if let Some(f) = self.resolve_attribute(n) {
            return Some(f);
        }
        // Explain why not, precisely.
        let parts: Vec<&str> = n.parts.iter().map(|p| p.text.as_str()).collect();
        let cat = self.catalog;
        let std_names = |e: Entity| {
            cat.attributes(e)
                .iter()
                .filter(|a| !a.custom)
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
        };
        let custom_names = |e: Entity| {
            cat.attributes(e)
                .iter()
                .filter(|a| a.custom)
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
        };
        let ns = |s: &str, word: &str| s.eq_ignore_ascii_case(word);
        let (message, candidates, prefix): (String, Vec<&str>, String) = match parts.as_slice() {
            [p, x] if ns(p, "person") => (
                format!("persons have no attribute `{x}`"),
                std_names(Entity::Person),
                "person.".into(),
            ),
            [p, c, x] if ns(p, "person") && ns(c, "custom") => (
                format!("persons have no custom attribute `{x}`"),
                custom_names(Entity::Person),
                "person.custom.".into(),
            ),
            [p, x] if ns(p, "installation") => (
                format!("installations have no attribute `{x}`"),
                std_names(Entity::Installation),
                "installation.".into(),
            ),
            [p, c, x] if ns(p, "installation") && ns(c, "custom") => (
                format!("installations have no custom attribute `{x}`"),
                custom_names(Entity::Installation),
                "installation.custom.".into(),
            ),
            [c, x] if ns(c, "custom") => {
                let on_person = cat.attribute(Entity::Person, x, true).is_some()
                    || custom_names(Entity::Person).iter().any(|a| same(a, x));
                let on_inst = custom_names(Entity::Installation)
                    .iter()
                    .any(|a| same(a, x));
                if on_person && on_inst {
                    self.error_hint(
                        n.span,
                        format!(
                            "`custom.{x}` is a custom attribute of both persons and installations"
                        ),
                        format!("write person.custom.{x} or installation.custom.{x}"),
                    );
                    return None;
                }
                let mut all = custom_names(Entity::Person);
                all.extend(custom_names(Entity::Installation));
                (
                    format!("there is no custom attribute `{x}`"),
                    all,
                    "custom.".into(),
                )
            }
            [x] => {
                let on_inst = std_names(Entity::Installation).iter().any(|a| same(a, x));
                let on_person = std_names(Entity::Person).iter().any(|a| same(a, x));
                if on_inst && on_person {
                    self.error_hint(
                        n.span,
                        format!("`{x}` is an attribute of both persons and installations"),
                        format!("write person.{x} or installation.{x}"),
                    );
                    return None;
                }
                if let Some(a) = cat
                    .person
                    .iter()
                    .chain(&cat.installation)
                    .find(|a| a.custom && same(&a.name, x))
                {
                    let entity = if cat.person.iter().any(|p| std::ptr::eq(p, a)) {
                        "person"
                    } else {
                        "installation"
                    };
                    self.error_hint(
                        n.span,
                        format!("`{x}` is a custom attribute"),
                        format!("write {entity}.custom.{} (or custom.{})", a.name, a.name),
                    );
                    return None;
                }
                let mut all = std_names(Entity::Installation);
                all.extend(std_names(Entity::Person));
                all.extend(DERIVED);
                (format!("unknown attribute `{x}`"), all, String::new())
            }
            [e, p] if cat.events.iter().any(|d| same(&d.name, e)) => {
                self.error_hint(n.span, format!("`{e}.{p}` is an event property: it can only be used inside an event function"), format!("e.g. sum({e}.{p}) > 100, or count({e} where {p} = …) >= 1"));
                return None;
            }
            _ => (format!("unknown name `{n}`"), vec![], String::new()),
        };
        let last = parts.last().copied().unwrap_or_default();
        match suggest(last, candidates.iter().copied()) {
            Some(s) => self.error_hint(n.span, message, format!("did you mean `{prefix}{s}`?")),
            None => self.error_hint(n.span, message, "`audience info` lists every attribute"),
        }
        None
    }

    fn property(&mut self, n: &Name, event: &EventDef) -> Option<Field> {
        let parts: Vec<&str> = n.parts.iter().map(|p| p.text.as_str()).collect();
        let prop = match parts.as_slice() {
            [p] => *p,
            [e, p] if same(e, &event.name) => *p,
            _ => {
                self.error(
                    n.span,
                    format!("inside `where`, names are properties of {}", event.name),
                );
                return None;
            }
        };
        match event.properties.iter().find(|p| same(&p.name, prop)) {
            Some(p) => Some(Field::Property {
                event: event.name.clone(),
                name: p.name.clone(),
                column: p.column.clone(),
                ty: p.ty,
            }),
            None => {
                let names: Vec<&str> = event.properties.iter().map(|p| p.name.as_str()).collect();
                let msg = format!("{} has no property `{prop}`", event.name);
                match suggest(prop, names.iter().copied()) {
                    Some(s) => self.error_hint(n.span, msg, format!("did you mean `{s}`?")),
                    None if names.is_empty() => {
                        self.error_hint(n.span, msg, format!("{} has no properties", event.name))
                    }
                    None => self.error_hint(
                        n.span,
                        msg,
                        format!("its properties: {}", names.join(", ")),
                    ),
                }
                None
            }
        }
    }

    fn event(&mut self, id: &ast::Ident) -> Option<&'a EventDef> {
        let catalog: &'a Catalog = self.catalog;
        if let Some(e) = catalog.events.iter().find(|e| same(&e.name, &id.text)) {
            return Some(e);
        }
        let msg = format!("unknown event `{}`", id.text);
        match suggest(&id.text, catalog.events.iter().map(|e| e.name.as_str())) {
            Some(s) => self.error_hint(id.span, msg, format!("did you mean `{s}`?")),
            None => self.error_hint(
                id.span,
                msg,
                format!(
                    "events: {}",
                    catalog
                        .events
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
        None
    }

    fn agg(&mut self, a: &ast::Agg, ctx: Ctx) -> Option<Field> {
        if ctx.is_some() {
            self.error(a.span, "event functions cannot be nested inside `where`");
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
    fn time_bound(&mut self, l: &Literal) -> Option<TimeBound> {
        match &l.value {
            LitValue::Date(d) => Some(TimeBound::Date(*d)),
            LitValue::Timestamp(t) => Some(TimeBound::Timestamp(t.timestamp_micros())),
            LitValue::Ago(us, _) => Some(TimeBound::Ago(*us)),
            LitValue::Duration(_, text) => {
                self.error_hint(
                    l.span,
                    "a duration where a point in time belongs",
                    format!("write `{text} ago`, or use `within {text}`"),
                );
                None
            }
            other => {
                self.error_hint(
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

    /// A literal compared with a field of type `ty`.
    fn value(&mut self, field: &Field, subject: &Operand, l: &Literal) -> Option<Value> {
        let ty = field.ty();
        let v = match (ty, &l.value) {
            (ValueType::Number, LitValue::Number(n, _)) => Value::Number(*n),
            (ValueType::String, LitValue::String(s)) => Value::String(s.clone()),
            (ValueType::Boolean, LitValue::Bool(b)) => Value::Bool(*b),
            (ValueType::Version, LitValue::String(s) | LitValue::Number(_, s)) => {
                // The planner orders versions by their numeric parts; anything else would
                // silently compare as 0.
                if !is_version(s) {
                    self.error_hint(
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

    fn test(&mut self, field: Field, subject: &Operand, test: &Test) -> TPred {
        let ty = field.ty();
        let span = subject.span();
        let result = match test {
            Test::Cmp(op, l) => {
                if ty == ValueType::Boolean && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    self.error(
                        l.span,
                        format!("`{subject}` is a boolean: only = and != compare it"),
                    );
                    return TPred::Const(false);
                }
                self.value(&field, subject, l).map(|value| TPred::Compare {
                    field: field.clone(),
                    op: *op,
                    value,
                })
            }
            Test::In { values, negated } => {
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
            Test::Within(l) | Test::Before(l) | Test::After(l) => {
                if !matches!(ty, ValueType::Date | ValueType::Timestamp) {
                    let word = match test {
                        Test::Within(_) => "within",
                        Test::Before(_) => "before",
                        _ => "after",
                    };
                    self.error_hint(
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
                    Test::Within(l) => match l.value {
                        LitValue::Duration(us, _) => Some(TPred::Time {
                            field: field.clone(),
                            test: TimeTest::Within(us),
                        }),
                        ref other => {
                            self.error_hint(
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
}
