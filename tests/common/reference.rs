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
use chrono::NaiveDate;
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
        }
    }

    fn agg(&self, a: &EventAgg) -> V {
        let (from, to) = match a.window {
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
        };
        let pid = num(self.person, "person_id");
        let iid = self.installation.map(|i| num(i, "installation_id"));
        if a.installation_scope && iid.is_none() {
            return match a.kind {
                AggKind::Count | AggKind::Sum => V::Num(0.0),
                _ => V::Null,
            };
        }
        let matching: Vec<&Event> = self.r.events[&a.event]
            .iter()
            .filter(|e| {
                if a.installation_scope {
                    e.installation == iid
                } else {
                    e.person == pid
                }
            })
            .filter(|e| e.time >= from && e.time < to)
            .filter(|e| a.filter.as_ref().is_none_or(|p| self.eval(p, Some(e))))
            .collect();
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
        }
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
            TPred::Time { field, test } => {
                let is_date = field.ty() == audience::catalog::ValueType::Date;
                match (self.field(field, event), test) {
                    (V::Ts(t), TimeTest::Within(p)) => t >= p.before(self.as_of) && t <= self.as_of,
                    (V::Ts(t), TimeTest::Before(b)) => t < self.bound(*b),
                    (V::Ts(t), TimeTest::After(TimeBound::Date(d))) => {
                        t >= days(*d) as i64 * DAY_US + DAY_US
                    }
                    (V::Ts(t), TimeTest::After(b)) => t > self.bound(*b),
                    (V::Date(d), TimeTest::Within(p)) if is_date => {
                        d >= date_of(p.before(self.as_of)) && d <= date_of(self.as_of)
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
