//! A deliberately simple reference evaluator: the snapshot loaded into plain Rust values and the
//! typed segment interpreted row by row, straight from the documented semantics. The engine's
//! audiences must equal its audiences.
#![allow(dead_code)]

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use audience::base::version::compare as compare_versions;
use audience::catalog::Catalog;
use audience::check::typed::*;
use audience::plan::derived::{age_on, random_bucket_of};
use audience::syntax::ast::{CmpOp, HasOp, MatchOp};
use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    Date(i32),
    Ts(i64),
    List(Vec<String>),
}

type Row = HashMap<String, V>;

pub struct Event {
    pub time: i64,
    pub person: i64,
    pub installation: Option<i64>,
    pub props: Row,
}

pub struct Reference {
    pub persons: Vec<Row>,
    pub installations: Vec<Row>,
    /// event name → events
    pub events: HashMap<String, Vec<Event>>,
}

fn values(batch: &RecordBatch, i: usize) -> Row {
    let mut row = Row::new();
    for (c, field) in batch.schema().fields().iter().enumerate() {
        // Sort keys and list lengths are the engine's shortcuts; the reference reads the source.
        if audience::store::derived::is_derived(field.name()) {
            continue;
        }
        let a = batch.column(c);
        let v = if a.is_null(i) {
            V::Null
        } else {
            match field.data_type() {
                DataType::Utf8 => V::Str(a.as_string::<i32>().value(i).to_string()),
                DataType::Dictionary(..) => {
                    let text = arrow::compute::cast(&a.slice(i, 1), &DataType::Utf8).unwrap();
                    V::Str(text.as_string::<i32>().value(0).to_string())
                }
                DataType::Int64 => V::Num(a.as_primitive::<Int64Type>().value(i) as f64),
                DataType::Float64 => V::Num(a.as_primitive::<Float64Type>().value(i)),
                DataType::Boolean => V::Bool(a.as_boolean().value(i)),
                DataType::Date32 => V::Date(a.as_primitive::<Date32Type>().value(i)),
                DataType::Timestamp(..) => {
                    V::Ts(a.as_primitive::<TimestampMicrosecondType>().value(i))
                }
                DataType::List(_) => {
                    let l = a.as_list::<i32>().value(i);
                    V::List(
                        (0..l.len())
                            .map(|k| l.as_string::<i32>().value(k).to_string())
                            .collect(),
                    )
                }
                other => panic!("unexpected type {other}"),
            }
        };
        row.insert(field.name().clone(), v);
    }
    row
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Row> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |i| values(b, i)))
        .collect()
}

fn num(r: &Row, k: &str) -> i64 {
    match r.get(k) {
        Some(V::Num(n)) => *n as i64,
        other => panic!("{k}: {other:?}"),
    }
}

impl Reference {
    pub async fn load(ctx: &SessionContext, catalog: &Catalog) -> Reference {
        let persons = rows(ctx, "select * from persons").await;
        let installations = rows(ctx, "select * from installations").await;
        let mut events = HashMap::new();
        for def in &catalog.events {
            let list = rows(ctx, &format!("select * from event_{}", def.name))
                .await
                .into_iter()
                .map(|r| Event {
                    time: match r["event_time"] {
                        V::Ts(t) => t,
                        _ => unreachable!(),
                    },
                    person: num(&r, "person_id"),
                    installation: match r["installation_id"] {
                        V::Num(n) => Some(n as i64),
                        _ => None,
                    },
                    props: r,
                })
                .collect();
            events.insert(def.name.clone(), list);
        }
        Reference {
            persons,
            installations,
            events,
        }
    }

    /// The audience: installation ids or person ids.
    pub fn audience(&self, seg: &TypedSegment, as_of: i64, persons_target: bool) -> BTreeSet<i64> {
        let by_id: HashMap<i64, &Row> = self
            .persons
            .iter()
            .map(|p| (num(p, "person_id"), p))
            .collect();
        let mut out = BTreeSet::new();
        let mut has_device: BTreeSet<i64> = BTreeSet::new();
        for i in &self.installations {
            let pid = num(i, "person_id");
            has_device.insert(pid);
            let pair = Pair {
                person: by_id[&pid],
                installation: Some(i),
                as_of,
                r: self,
            };
            if pair.eval(&seg.root, None) {
                out.insert(if persons_target {
                    pid
                } else {
                    num(i, "installation_id")
                });
            }
        }
        if persons_target {
            for p in &self.persons {
                let pid = num(p, "person_id");
                if !has_device.contains(&pid)
                    && (Pair {
                        person: p,
                        installation: None,
                        as_of,
                        r: self,
                    })
                    .eval(&seg.root, None)
                {
                    out.insert(pid);
                }
            }
        }
        out
    }
}

struct Pair<'a> {
    person: &'a Row,
    installation: Option<&'a Row>,
    as_of: i64,
    r: &'a Reference,
}

fn date_of(us: i64) -> i32 {
    us.div_euclid(DAY_US) as i32
}

fn naive(d: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d as i64)
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

impl<'a> Pair<'a> {
    fn bound(&self, b: TimeBound) -> i64 {
        match b {
            TimeBound::Date(d) => days(d) as i64 * DAY_US,
            TimeBound::Timestamp(t) => t,
            TimeBound::Ago(p) => p.before(self.as_of),
        }
    }

    fn field(&self, f: &Field, event: Option<&Event>) -> V {
        match f {
            Field::Attribute { entity, column, .. } => {
                let row = match entity {
                    audience::catalog::Entity::Person => Some(self.person),
                    audience::catalog::Entity::Installation => self.installation,
                };
                row.and_then(|r| r.get(column)).cloned().unwrap_or(V::Null)
            }
            Field::Property { column, .. } => event
                .and_then(|e| e.props.get(column))
                .cloned()
                .unwrap_or(V::Null),
            Field::RandomBucket => V::Num(random_bucket_of(num(self.person, "person_id")) as f64),
            Field::Age => match self.person.get("birth_date") {
                Some(V::Date(d)) => {
                    let birth = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                        + chrono::Duration::days(*d as i64);
                    let as_of = chrono::DateTime::from_timestamp_micros(self.as_of)
                        .unwrap()
                        .date_naive();
                    V::Num(age_on(birth, as_of) as f64)
                }
                _ => V::Null,
            },
            Field::Agg(a) => self.agg(a),
            Field::Anniversary(_) => panic!("an anniversary is no value: {f}"),
        }
    }

    /// The half-open range `[from, to)` of event times a window reads.
    fn range(&self, w: Window) -> (i64, i64) {
        match w {
            Window::All => (i64::MIN, self.as_of),
            Window::Within(p) => (p.before(self.as_of), self.as_of),
            Window::Since(b) => (self.bound(b), self.as_of),
            Window::Between(b1, b2) => {
                let end = match b2 {
                    TimeBound::Date(d) => days(d) as i64 * DAY_US + DAY_US,
                    other => self.bound(other) + 1,
                };
                (self.bound(b1), end.min(self.as_of))
            }
            Window::Range(b1, b2) => (self.bound(b1), self.bound(b2).min(self.as_of)),
        }
    }

    /// The events of `event` in scope (the person's, or the installation's; none for a pair
    /// without installation at installation scope), in `[from, to)`, matching `filter`.
    fn events(
        &self,
        installation_scope: bool,
        event: &str,
        filter: Option<&TPred>,
        (from, to): (i64, i64),
    ) -> Vec<&'a Event> {
        let pid = num(self.person, "person_id");
        let iid = self.installation.map(|i| num(i, "installation_id"));
        if installation_scope && iid.is_none() {
            return vec![];
        }
        self.r.events[event]
            .iter()
            .filter(|e| {
                if installation_scope {
                    e.installation == iid
                } else {
                    e.person == pid
                }
            })
            .filter(|e| e.time >= from && e.time < to)
            .filter(|e| filter.is_none_or(|p| self.eval(p, Some(e))))
            .collect()
    }

    fn agg(&self, a: &EventAgg) -> V {
        if a.installation_scope && self.installation.is_none() {
            return match a.kind {
                AggKind::Count | AggKind::Sum | AggKind::CountDistinct => V::Num(0.0),
                _ => V::Null,
            };
        }
        let matching = self.events(
            a.installation_scope,
            &a.event,
            a.filter.as_deref(),
            self.range(a.window),
        );
        let values: Vec<f64> = match &a.property {
            Some((col, _)) => matching
                .iter()
                .filter_map(|e| {
                    if let Some(V::Num(n)) = e.props.get(col) {
                        Some(*n)
                    } else {
                        None
                    }
                })
                .collect(),
            None => vec![],
        };
        match a.kind {
            AggKind::Count => V::Num(matching.len() as f64),
            AggKind::Sum => V::Num(exact_sum(&values)),
            AggKind::Avg if values.is_empty() => V::Null,
            AggKind::Avg => V::Num(exact_sum(&values) / values.len() as f64),
            AggKind::Min => values
                .iter()
                .cloned()
                .reduce(f64::min)
                .map_or(V::Null, V::Num),
            AggKind::Max => values
                .iter()
                .cloned()
                .reduce(f64::max)
                .map_or(V::Null, V::Num),
            AggKind::First => matching.iter().map(|e| e.time).min().map_or(V::Null, V::Ts),
            AggKind::Last => matching.iter().map(|e| e.time).max().map_or(V::Null, V::Ts),
            AggKind::CountDistinct => {
                let col = &a
                    .property
                    .as_ref()
                    .expect("count distinct has a property")
                    .0;
                let mut seen: Vec<&V> = vec![];
                for e in &matching {
                    match e.props.get(col) {
                        None | Some(V::Null) => {}
                        Some(v) if seen.contains(&v) => {}
                        Some(v) => seen.push(v),
                    }
                }
                V::Num(seen.len() as f64)
            }
            AggKind::FirstValue | AggKind::LastValue => {
                let first = a.kind == AggKind::FirstValue;
                let col = &a
                    .property
                    .as_ref()
                    .expect("first/last value has a property")
                    .0;
                let f = Field::Agg(a.clone());
                let Some(at) = (if first {
                    matching.iter().map(|e| e.time).min()
                } else {
                    matching.iter().map(|e| e.time).max()
                }) else {
                    return V::Null;
                };
                // The events at that instant: a set value wins over a missing one; among set
                // values the first takes the smallest, the last the largest.
                let mut best = V::Null;
                for e in matching.iter().filter(|e| e.time == at) {
                    let v = e.props.get(col).cloned().unwrap_or(V::Null);
                    if v == V::Null {
                        continue;
                    }
                    let better = match self.order(&f, &v, &best) {
                        None => best == V::Null,
                        Some(o) => (first && o.is_lt()) || (!first && o.is_gt()),
                    };
                    if better {
                        best = v;
                    }
                }
                best
            }
        }
    }

    /// `did(steps… [then not absent] window)`: step by step, the events that can be the i-th
    /// of a chain (one of the step's events strictly after, and within the gap of, one that can
    /// be the (i−1)-th); then, with `absent`, a last event that no absent event follows.
    fn sequence(&self, s: &Sequence) -> bool {
        if s.installation_scope && self.installation.is_none() {
            return false;
        }
        let (from, to) = self.range(s.window);
        if from >= to {
            return false;
        }
        let mut reached: Vec<&Event> = vec![];
        for (i, step) in s.steps.iter().enumerate() {
            let candidates = self.events(
                s.installation_scope,
                &step.event,
                step.filter.as_deref(),
                (from, to),
            );
            reached = if i == 0 {
                candidates
            } else {
                candidates
                    .into_iter()
                    .filter(|e| {
                        reached.iter().any(|p| {
                            p.time < e.time && step.gap.is_none_or(|g| e.time - p.time <= g)
                        })
                    })
                    .collect()
            };
        }
        let Some(z) = &s.absent else {
            return !reached.is_empty();
        };
        let absent = self.events(
            s.installation_scope,
            &z.event,
            z.filter.as_deref(),
            (i64::MIN, self.as_of),
        );
        reached.iter().any(|last| match z.gap {
            Some(h) => {
                last.time + h <= self.as_of
                    && !absent
                        .iter()
                        .any(|e| e.time > last.time && e.time <= last.time + h)
            }
            None => !absent.iter().any(|e| e.time > last.time),
        })
    }

    /// `count(E) op N per period in K of the last M periods`.
    fn regular(&self, r: &Regularity) -> bool {
        let bound = |k: u32| r.period.times(k).before(self.as_of);
        let mut holding = 0;
        for k in 1..=r.of_last {
            let n = self
                .events(
                    r.installation_scope,
                    &r.event,
                    r.filter.as_deref(),
                    (bound(k), bound(k - 1)),
                )
                .len() as f64;
            let holds = match r.op {
                CmpOp::Eq => n == r.times,
                CmpOp::Ne => n != r.times,
                CmpOp::Lt => n < r.times,
                CmpOp::Le => n <= r.times,
                CmpOp::Gt => n > r.times,
                CmpOp::Ge => n >= r.times,
            };
            holding += u32::from(holds);
        }
        holding >= r.at_least
    }

    /// `anniversary of F within [next] D`: some yearly recurrence of F's date, after its year,
    /// in the days of the window (inclusive); 29 February falls on 1 March in other years.
    fn anniversary(&self, inner: &Field, test: &TimeTest, event: Option<&Event>) -> bool {
        let orig = match self.field(inner, event) {
            V::Date(d) => d,
            V::Ts(t) => date_of(t),
            _ => return false,
        };
        let (from, to) = match test {
            TimeTest::Within(p) => (date_of(p.before(self.as_of)), date_of(self.as_of)),
            TimeTest::WithinNext(p) => (date_of(self.as_of), date_of(p.after(self.as_of))),
            other => panic!("an anniversary is tested with within [next], not {other:?}"),
        };
        let (orig, from, to) = (naive(orig), naive(from), naive(to));
        (from.year()..=to.year())
            .filter(|&y| y > orig.year())
            .any(|y| {
                let day = NaiveDate::from_ymd_opt(y, orig.month(), orig.day())
                    .unwrap_or_else(|| NaiveDate::from_ymd_opt(y, 3, 1).unwrap());
                from <= day && day <= to
            })
    }

    /// The literal as a value comparable with a field of this kind.
    fn literal(&self, f: &Field, v: &Value) -> V {
        match v {
            Value::String(s) | Value::Version(s) => V::Str(s.clone()),
            Value::Number(n) => V::Num(*n),
            Value::Bool(b) => V::Bool(*b),
            Value::Date(d) => V::Date(days(*d)),
            Value::Time(b) => {
                if f.ty() == audience::catalog::ValueType::Date {
                    match b {
                        TimeBound::Date(d) => V::Date(days(*d)),
                        other => V::Date(date_of(self.bound(*other))),
                    }
                } else {
                    V::Ts(self.bound(*b))
                }
            }
        }
    }

    fn order(&self, f: &Field, a: &V, b: &V) -> Option<Ordering> {
        match (a, b) {
            (V::Str(x), V::Str(y)) if f.ty() == audience::catalog::ValueType::Version => {
                Some(compare_versions(x, y))
            }
            (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
            (V::Num(x), V::Num(y)) => x.partial_cmp(y),
            (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
            (V::Date(x), V::Date(y)) => Some(x.cmp(y)),
            (V::Ts(x), V::Ts(y)) => Some(x.cmp(y)),
            _ => None,
        }
    }

    fn compare(&self, f: &Field, op: CmpOp, v: &Value, event: Option<&Event>) -> bool {
        if op == CmpOp::Ne {
            return !self.compare(f, CmpOp::Eq, v, event);
        }
        let Some(o) = self.order(f, &self.field(f, event), &self.literal(f, v)) else {
            return false;
        };
        match op {
            CmpOp::Eq => o.is_eq(),
            CmpOp::Lt => o.is_lt(),
            CmpOp::Le => o.is_le(),
            CmpOp::Gt => o.is_gt(),
            CmpOp::Ge => o.is_ge(),
            CmpOp::Ne => unreachable!(),
        }
    }

    fn eval(&self, p: &TPred, event: Option<&Event>) -> bool {
        match p {
            TPred::Const(b) => *b,
            TPred::And(v) => v.iter().all(|p| self.eval(p, event)),
            TPred::Or(v) => v.iter().any(|p| self.eval(p, event)),
            TPred::Not(p) => !self.eval(p, event),
            TPred::Saved { body, .. } => self.eval(body, event),
            TPred::IsTrue(f) => self.field(f, event) == V::Bool(true),
            TPred::Compare { field, op, value } => self.compare(field, *op, value, event),
            TPred::In { field, values } => values
                .iter()
                .any(|v| self.compare(field, CmpOp::Eq, v, event)),
            TPred::Between { field, low, high } => {
                self.compare(field, CmpOp::Ge, low, event)
                    && self.compare(field, CmpOp::Le, high, event)
            }
            TPred::IsSet(f) => match (f, self.field(f, event)) {
                (Field::RandomBucket, _) => true,
                (_, V::Null) => false,
                (_, V::List(l)) => !l.is_empty(),
                _ => true,
            },
            TPred::Match { field, op, pattern } => match self.field(field, event) {
                V::Str(s) => {
                    let (s2, p2) = (s.to_lowercase(), pattern.to_lowercase());
                    match op {
                        MatchOp::Contains => s2.contains(&p2),
                        MatchOp::StartsWith => s2.starts_with(&p2),
                        MatchOp::EndsWith => s2.ends_with(&p2),
                        MatchOp::Matches => regex::Regex::new(pattern).unwrap().is_match(&s),
                    }
                }
                _ => false,
            },
            TPred::Has { field, op, values } => match self.field(field, event) {
                V::List(l) => match op {
                    HasOp::Has => l.contains(&values[0]),
                    HasOp::Any => values.iter().any(|v| l.contains(v)),
                    HasOp::All => values.iter().all(|v| l.contains(v)),
                },
                _ => false,
            },
            TPred::Sequence(s) => self.sequence(s),
            TPred::Regular(r) => self.regular(r),
            TPred::Sugar { body, .. } => self.eval(body, event),
            TPred::Time {
                field: Field::Anniversary(inner),
                test,
            } => self.anniversary(inner, test, event),
            TPred::Time { field, test } => {
                let is_date = field.ty() == audience::catalog::ValueType::Date;
                match (self.field(field, event), test) {
                    (V::Ts(t), TimeTest::Within(p)) => t >= p.before(self.as_of) && t <= self.as_of,
                    (V::Ts(t), TimeTest::WithinNext(p)) => {
                        t >= self.as_of && t <= p.after(self.as_of)
                    }
                    (V::Ts(t), TimeTest::Before(b)) => t < self.bound(*b),
                    (V::Ts(t), TimeTest::After(TimeBound::Date(d))) => {
                        t >= days(*d) as i64 * DAY_US + DAY_US
                    }
                    (V::Ts(t), TimeTest::After(b)) => t > self.bound(*b),
                    (V::Date(d), TimeTest::Within(p)) if is_date => {
                        d >= date_of(p.before(self.as_of)) && d <= date_of(self.as_of)
                    }
                    (V::Date(d), TimeTest::WithinNext(p)) if is_date => {
                        d >= date_of(self.as_of) && d <= date_of(p.after(self.as_of))
                    }
                    (V::Date(d), TimeTest::Before(TimeBound::Date(x))) => d < days(*x),
                    (V::Date(d), TimeTest::Before(b)) => d < date_of(self.bound(*b)),
                    (V::Date(d), TimeTest::After(TimeBound::Date(x))) => d > days(*x),
                    (V::Date(d), TimeTest::After(b)) => d > date_of(self.bound(*b)),
                    _ => false,
                }
            }
        }
    }
}

/// The engine sums number properties in decimal with 10 fractional digits (exact for amounts
/// in cents); so does the reference, in integers of 1e-10.
fn exact_sum(values: &[f64]) -> f64 {
    let scaled: i128 = values.iter().map(|v| (v * 1e10).round() as i128).sum();
    scaled as f64 / 1e10
}
