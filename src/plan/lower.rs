//! Lowers a typed segment to a DataFusion LogicalPlan: a pure function of (typed segment, table
//! schemas, as-of time, target). No SQL text is assembled; only built-in functions are used.

use super::assemble::{assemble, assemble_each, installation_col, person_col, Needs, Target};
use super::derived::{born_by, random_bucket, version_compare};
use super::events::{AggRequest, EventAggregates, Scope, TimeRange};
use super::optional_side::optional_side;
use super::patterns::{
    distinct_plan, distinct_points_plan, edge_value_plan, edge_value_points_plan, points_value,
    regularity_plan, sequence_plan, step_rows, union_of, zero_holds, PlannedStep,
};
use super::predicates::{is_set, list_has, not, regex_match, string_match, ListMatch, StringMatch};
use super::sources::TableSources;
use crate::base::exprs::{date_lit, ts_lit};
use crate::base::time::{date_of, micros_of_date, MICROS_PER_DAY as DAY_US};
use crate::catalog::{Entity, ValueType, INSTALLATION_ID, PERSON_ID};
use crate::check::typed::*;
use crate::store::{derived, version_key};
use crate::syntax::ast::{CmpOp, HasOp, MatchOp};
use arrow::datatypes::DataType;
use chrono::{DateTime, Utc};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{cast, coalesce, col, lit};

/// A column of the output: an attribute of the person or of the installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub entity: Entity,
    pub column: String,
    /// The name in the output (the segment language's name).
    pub name: String,
    /// A field computed from the person rather than stored (`column` is then empty).
    pub derived: Option<DerivedColumn>,
}

/// Output columns computed from the person: `age` at the as-of time, `randomBucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedColumn {
    Age,
    RandomBucket,
}

impl OutputColumn {
    /// The target's id column: `installationId` or `personId`.
    pub fn key(target: Target) -> OutputColumn {
        match target {
            Target::Installations => OutputColumn {
                entity: Entity::Installation,
                column: "installation_id".into(),
                name: "installationId".into(),
                derived: None,
            },
            Target::Persons => OutputColumn {
                entity: Entity::Person,
                column: "person_id".into(),
                name: "personId".into(),
                derived: None,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub as_of: DateTime<Utc>,
    pub target: Target,
    pub columns: Vec<OutputColumn>,
    /// Extra conditions (export channels), and-ed to the segment.
    pub extra: Option<TPred>,
    /// Render list columns as `a;b` text (CSV cannot hold lists).
    pub lists_as_text: bool,
}

impl PlanOptions {
    /// The target's key column only, nothing added: what counting, explaining and comparing
    /// audiences need.
    pub fn keys(as_of: DateTime<Utc>, target: Target) -> PlanOptions {
        PlanOptions {
            as_of,
            target,
            columns: vec![OutputColumn::key(target)],
            extra: None,
            lists_as_text: false,
        }
    }
}

/// Plans a typed segment over the snapshot's tables.
pub fn plan_segment(
    seg: &TypedSegment,
    sources: &TableSources,
    opts: &PlanOptions,
) -> Result<LogicalPlan> {
    let mut l = Lowering::new(sources, opts);
    let predicate = l.segment(seg, opts)?;
    let output = l.output(opts)?;
    assemble(sources, opts.target, l.needs, &l.aggs, predicate, output)
}

/// The rows of the target's keys `keys` (a page of an audience already known) with the
/// options' columns; `persons` are the keys' persons (for installations: their owners), so
/// that a join reads only their rows. Output columns are attributes, never event aggregates, so
/// only the keys' rows of persons and installations are read.
pub fn plan_keys(
    keys: &[i64],
    persons: &[i64],
    sources: &TableSources,
    opts: &PlanOptions,
) -> Result<LogicalPlan> {
    let mut l = Lowering::new(sources, opts);
    // The bounds besides the list: DataFusion prunes row groups by an IN list of at most 20
    // values only, and by a range at any length.
    let among = |key: Expr, ids: &[i64]| {
        let list = key
            .clone()
            .in_list(ids.iter().map(|k| lit(*k)).collect(), false);
        match (ids.iter().min(), ids.iter().max()) {
            (Some(lo), Some(hi)) => key.between(lit(*lo), lit(*hi)).and(list),
            _ => list,
        }
    };
    let output = l.output(opts)?;
    let predicate = match opts.target {
        Target::Installations if l.needs.person => among(installation_col(INSTALLATION_ID), keys)
            .and(among(person_col(PERSON_ID), persons)),
        Target::Installations => among(installation_col(INSTALLATION_ID), keys),
        Target::Persons => among(person_col(PERSON_ID), keys),
    };
    assemble(sources, opts.target, l.needs, &l.aggs, predicate, output)
}

/// Whether a segment reads the installation side of its pairs (an installation column or a
/// per-installation aggregate). When it does not, it holds for all of a person's pairs or for
/// none of them.
pub fn reads_installations(
    seg: &TypedSegment,
    sources: &TableSources,
    as_of: DateTime<Utc>,
) -> Result<bool> {
    let opts = PlanOptions::keys(as_of, Target::Persons);
    let mut l = Lowering::new(sources, &opts);
    l.segment(seg, &opts)?;
    Ok(l.needs.installation || l.aggs.any_per_installation())
}

/// Plans the segments of one job as a single query over shared scans: the output columns, then
/// segment `k`'s flag column ([`super::segment_flag`]), true where it matches. Event aggregates are
/// fused across segments, so each event's history is read once for the whole job.
pub fn plan_segments(
    segs: &[&TypedSegment],
    sources: &TableSources,
    opts: &PlanOptions,
) -> Result<LogicalPlan> {
    let mut l = Lowering::new(sources, opts);
    let predicates = segs
        .iter()
        .map(|seg| l.segment(seg, opts))
        .collect::<Result<Vec<_>>>()?;
    let output = l.output(opts)?;
    assemble_each(sources, opts.target, l.needs, &l.aggs, predicates, output)
}

/// Plans one segment at several as-of times as a single query (a trend): the segment is lowered
/// once per point into flag column `k` ([`super::segment_flag`]) for `points[k]`, and the event
/// aggregates of every point are fused as the segments of a job are, so each event's history
/// is read once, over the union of the points' windows, with a FILTER per point's window.
/// Output columns are evaluated at `opts.as_of`.
pub fn plan_points(
    seg: &TypedSegment,
    sources: &TableSources,
    opts: &PlanOptions,
    points: &[DateTime<Utc>],
) -> Result<LogicalPlan> {
    let mut l = Lowering::new(sources, opts);
    let as_ofs: Vec<i64> = points.iter().map(|p| p.timestamp_micros()).collect();
    let predicates = (0..points.len())
        .map(|at| {
            l.as_of = as_ofs[at];
            l.trend = Some(TrendPoints {
                as_ofs: as_ofs.clone(),
                at,
            });
            l.segment(seg, opts)
        })
        .collect::<Result<Vec<_>>>()?;
    l.trend = None;
    l.as_of = opts.as_of.timestamp_micros();
    let output = l.output(opts)?;
    assemble_each(sources, opts.target, l.needs, &l.aggs, predicates, output)
}

struct Lowering<'a> {
    sources: &'a TableSources,
    as_of: i64,
    needs: Needs,
    aggs: EventAggregates,
    /// While lowering a trend ([`plan_points`]): every point, and the one `as_of` is.
    trend: Option<TrendPoints>,
}

/// The as-of times of a trend's points, and the index of the one being lowered.
#[derive(Debug, Clone)]
struct TrendPoints {
    as_ofs: Vec<i64>,
    at: usize,
}

/// Whole years from `birth` (a Date32 column) to `as_of`, null without a birth date: the year
/// difference, less one when the birthday is still ahead in the as-of's year (`age_on`).
fn age_at(birth: Expr, as_of: chrono::NaiveDate) -> Expr {
    use chrono::Datelike;
    use datafusion::functions::datetime::expr_fn::date_part;
    use datafusion::prelude::when;
    let part = |p: &str| cast(date_part(lit(p), birth.clone()), DataType::Int64);
    let birthday = part("month") * lit(100i64) + part("day");
    let today = (as_of.month() * 100 + as_of.day()) as i64;
    let ahead = when(birthday.gt(lit(today)), lit(1i64))
        .otherwise(lit(0i64))
        .unwrap_or(lit(0i64));
    lit(as_of.year() as i64) - part("year") - ahead
}

fn cmp(a: Expr, op: CmpOp, b: Expr) -> Expr {
    match op {
        CmpOp::Eq => a.eq(b),
        CmpOp::Ne => not(a.eq(b)),
        CmpOp::Lt => a.lt(b),
        CmpOp::Le => a.lt_eq(b),
        CmpOp::Gt => a.gt(b),
        CmpOp::Ge => a.gt_eq(b),
    }
}

impl<'a> Lowering<'a> {
    fn new(sources: &'a TableSources, opts: &PlanOptions) -> Lowering<'a> {
        Lowering {
            sources,
            as_of: opts.as_of.timestamp_micros(),
            needs: Needs::default(),
            aggs: EventAggregates::default(),
            trend: None,
        }
    }

    /// The segment's predicate, with the options' extra conditions.
    fn segment(&mut self, seg: &TypedSegment, opts: &PlanOptions) -> Result<Expr> {
        let mut predicate = self.pred(&seg.root, None)?;
        if let Some(extra) = &opts.extra {
            predicate = predicate.and(self.pred(extra, None)?);
        }
        Ok(predicate)
    }

    /// The output columns, qualified with the assembled plan's aliases.
    fn output(&mut self, opts: &PlanOptions) -> Result<Vec<Expr>> {
        let mut output = Vec::new();
        for c in &opts.columns {
            if let Some(d) = c.derived {
                self.needs.person = true;
                let e = match d {
                    DerivedColumn::Age => age_at(person_col("birth_date"), date_of(self.as_of)),
                    DerivedColumn::RandomBucket => random_bucket(person_col(PERSON_ID)),
                };
                output.push(e.alias(&c.name));
                continue;
            }
            let e = match c.entity {
                Entity::Person => {
                    self.needs.person = true;
                    person_col(&c.column)
                }
                Entity::Installation => installation_col(&c.column),
            };
            let is_list = self.sources.is_list_column(c.entity, &c.column);
            let e = if opts.lists_as_text && is_list {
                datafusion::functions_nested::expr_fn::array_to_string(e, lit(";"))
            } else if self.sources.is_dictionary_column(c.entity, &c.column) {
                // Exports and previews show plain strings, whatever the storage.
                cast(e, DataType::Utf8)
            } else {
                e
            };
            output.push(e.alias(&c.name));
        }
        Ok(output)
    }

    fn bound_micros(&self, b: TimeBound) -> i64 {
        match b {
            TimeBound::Date(d) => micros_of_date(d),
            TimeBound::Timestamp(t) => t,
            TimeBound::Ago(us) => self.before_as_of(us),
        }
    }

    /// A time test on the first or last event that some event in a narrower range decides, as a
    /// windowed `did`: `last(E) within D` and `last(E) after T` hold exactly when some E is that
    /// recent, `first(E) before T` when some E is that old. Raw events then need only that
    /// range's files, not the whole window. The summary holds first and last times at its own
    /// as-of, which beats either, so this is for other as-of times and summary-less stores.
    fn time_test_as_did(&mut self, f: &Field, t: &TimeTest) -> Result<Option<Expr>> {
        let Field::Agg(a) = f else { return Ok(None) };
        if self.summary_at_as_of() {
            return Ok(None);
        }
        let range = self.range_of(a);
        if let (AggKind::Last, TimeTest::Before(b), None) = (a.kind, *t, range.from) {
            // The last E is before T exactly when some E is and none is from T on. The summary's
            // first times answer the first part at any as-of, so only [T, as-of) is read.
            let t = self.bound_micros(b).min(range.to);
            if self.summary_has_first_before(a, t) {
                let before = self.some_event(a, TimeRange { from: None, to: t })?;
                let since = TimeRange {
                    from: Some(t),
                    to: range.to,
                };
                let after = self.some_event(a, since)?;
                return Ok(Some(before.and(not(after))));
            }
        }
        let clipped = match (a.kind, *t) {
            (AggKind::Last, TimeTest::Within(d)) => TimeRange {
                from: Some(range.from.unwrap_or(i64::MIN).max(self.before_as_of(d))),
                to: range.to,
            },
            (AggKind::Last, TimeTest::After(b)) => {
                // After a day means from the next midnight on; after an instant, strictly.
                let from = match b {
                    TimeBound::Date(d) => micros_of_date(d) + DAY_US,
                    other => self.bound_micros(other).saturating_add(1),
                };
                TimeRange {
                    from: Some(range.from.unwrap_or(i64::MIN).max(from)),
                    to: range.to,
                }
            }
            (AggKind::First, TimeTest::Before(b)) => TimeRange {
                from: range.from,
                to: range.to.min(self.bound_micros(b)),
            },
            _ => return Ok(None),
        };
        if clipped.from.is_some_and(|from| from >= clipped.to) {
            return Ok(Some(lit(false)));
        }
        Ok(Some(self.some_event(a, clipped)?))
    }

    /// Whether some E of `a` (its event, scope and `where`) falls in `range`, two-valued: the
    /// first E before the range's end when the range has no start and the activity summary's
    /// first times answer it, else a count of the range's events.
    fn some_event(&mut self, a: &EventAgg, range: TimeRange) -> Result<Expr> {
        if range.from.is_none() && self.summary_has_first_before(a, range.to) {
            let first = EventAgg {
                kind: AggKind::First,
                property: None,
                ..a.clone()
            };
            return Ok(self.request(&first, range)?.is_not_null());
        }
        let count = EventAgg {
            kind: AggKind::Count,
            property: None,
            ..a.clone()
        };
        Ok(self.request(&count, range)?.gt(lit(0i64)))
    }

    /// Whether the activity summary holds the first E of `a` before `to`: person scope, no
    /// `where`, and `to` no later than the summary's as-of (no later event moves a first time).
    fn summary_has_first_before(&self, a: &EventAgg, to: i64) -> bool {
        !a.installation_scope
            && a.filter.is_none()
            && self.sources.activity_as_of.is_some_and(|s| to <= s)
    }

    /// `did(E)` over all history (a count compared so that only whether it is 0 matters) at an
    /// as-of the summary's counts do not answer: whether the summary's first E is before it.
    fn existence_test(&mut self, f: &Field, op: CmpOp, v: &Value) -> Result<Option<Expr>> {
        let (Field::Agg(a), Value::Number(n)) = (f, v) else {
            return Ok(None);
        };
        if a.kind != AggKind::Count || self.summary_at_as_of() {
            return Ok(None);
        }
        if n.fract() != 0.0 {
            return Ok(None);
        }
        let some = match (op, *n as i64) {
            (CmpOp::Gt | CmpOp::Ne, 0) | (CmpOp::Ge, 1) => true,
            (CmpOp::Eq | CmpOp::Le, 0) | (CmpOp::Lt, 1) => false,
            _ => return Ok(None),
        };
        let range = self.range_of(a);
        if range.from.is_some() || !self.summary_has_first_before(a, range.to) {
            return Ok(None);
        }
        let e = self.some_event(a, range)?;
        Ok(Some(if some { e } else { not(e) }))
    }

    /// Whether the person activity summary answers aggregates at this plan's as-of time.
    fn summary_at_as_of(&self) -> bool {
        self.sources.activity_as_of == Some(self.as_of)
    }

    /// `p` before the as-of time, no earlier than the first representable instant: a window
    /// reaching further back holds every event there is (`within 96500000d` is all history).
    fn before_as_of(&self, p: Period) -> i64 {
        p.before(self.as_of)
    }

    /// The expression reading a field; `event` is set inside an aggregate's `where`.
    fn field(&mut self, f: &Field, event: Option<&str>) -> Result<Expr> {
        Ok(match f {
            Field::Attribute {
                entity: Entity::Person,
                column,
                ..
            } => {
                self.needs.person = true;
                person_col(column)
            }
            Field::Attribute {
                entity: Entity::Installation,
                column,
                ..
            } => {
                self.needs.installation = true;
                installation_col(column)
            }
            Field::Property { column, .. } => {
                debug_assert!(event.is_some(), "properties only inside where");
                col(column.as_str())
            }
            Field::RandomBucket => {
                self.needs.person = true;
                random_bucket(person_col(PERSON_ID))
            }
            Field::Age => {
                return Err(DataFusionError::Internal(
                    "age is lowered by compare_age".into(),
                ));
            }
            Field::Agg(a) => self.agg(a)?,
            Field::Anniversary(_) => {
                return Err(DataFusionError::Internal(
                    "anniversaries are lowered by their time test".into(),
                ));
            }
        })
    }

    fn agg(&mut self, a: &EventAgg) -> Result<Expr> {
        if let Some(e) = self.count_as_difference(a)? {
            return Ok(e);
        }
        let range = self.range_of(a);
        self.request(a, range)
    }

    /// A person-scoped count over `[as-of − x, as-of − y)` (what `restarted(…)` expands to) as
    /// the count within x less the count within y, when the activity summary holds both.
    fn count_as_difference(&mut self, a: &EventAgg) -> Result<Option<Expr>> {
        let Window::Range(TimeBound::Ago(x), TimeBound::Ago(y)) = a.window else {
            return Ok(None);
        };
        if a.kind != AggKind::Count || a.installation_scope || !self.summary_at_as_of() {
            return Ok(None);
        }
        let within = |p: Period| {
            let from = p.before(self.as_of);
            if from <= crate::base::time::representable().0 {
                Window::All
            } else {
                Window::Within(p)
            }
        };
        let (outer, inner) = (within(x), within(y));
        let held = |l: &Self, w: Window| {
            let r = l.range_of(&EventAgg {
                window: w,
                ..a.clone()
            });
            super::summary::window_of(r.from, r.to, self.as_of).is_some()
        };
        if !held(self, outer) || !held(self, inner) {
            return Ok(None);
        }
        let count = |w: Window| EventAgg {
            window: w,
            ..a.clone()
        };
        let hi = self.agg(&count(outer))?;
        let lo = self.agg(&count(inner))?;
        Ok(Some(hi - lo))
    }

    /// The events an aggregate reads: its window, up to the as-of time.
    fn range_of(&self, a: &EventAgg) -> TimeRange {
        let to = self.as_of;
        match a.window {
            Window::All => TimeRange { from: None, to },
            Window::Within(us) => TimeRange {
                from: Some(self.before_as_of(us)),
                to,
            },
            Window::Since(b) => TimeRange {
                from: Some(self.bound_micros(b)),
                to,
            },
            Window::Range(b1, b2) => TimeRange {
                from: Some(self.bound_micros(b1)),
                to: self.bound_micros(b2).min(to),
            },
            Window::Between(b1, b2) => {
                // Inclusive: a date end covers its whole day.
                let end = match b2 {
                    TimeBound::Date(d) => micros_of_date(d) + DAY_US,
                    other => self.bound_micros(other) + 1,
                };
                TimeRange {
                    from: Some(self.bound_micros(b1)),
                    to: end.min(to),
                }
            }
        }
    }

    /// The aggregate `a` over the events of `range`.
    fn request(&mut self, a: &EventAgg, range: TimeRange) -> Result<Expr> {
        // A count over a range that holds no events is 0 without a scan. Besides saving the
        // scan, Ballista 55 never finishes a persons plan that ORs an installation attribute
        // with an aggregate over such a range (tests/cluster_props.rs found it).
        let empty = range.from.is_some_and(|from| from >= range.to)
            || self
                .sources
                .event_rows_between(&a.event, range.from, range.to)
                == Some(0);
        if matches!(a.kind, AggKind::Count | AggKind::CountDistinct) && empty {
            return Ok(lit(0i64));
        }
        let filter = match &a.filter {
            Some(p) => Some(self.pred(p, Some(&a.event))?),
            None => None,
        };
        let scope = if a.installation_scope {
            Scope::Installation
        } else {
            Scope::Person
        };
        if let (
            AggKind::CountDistinct | AggKind::FirstValue | AggKind::LastValue,
            Some((column, ty)),
        ) = (a.kind, &a.property)
        {
            let property = (column.as_str(), *ty);
            let last = a.kind == AggKind::LastValue;
            // In a trend, one plan answers every point and each point reads its own column.
            let (plan, column) = match self.trend.clone() {
                Some(trend) => {
                    let ranges: Vec<TimeRange> = trend
                        .as_ofs
                        .iter()
                        .map(|&as_of| {
                            self.as_of = as_of;
                            self.range_of(a)
                        })
                        .collect();
                    self.as_of = trend.as_ofs[trend.at];
                    let (e, f, s) = (&a.event, filter.as_ref(), self.sources);
                    let plan = match a.kind {
                        AggKind::CountDistinct => {
                            distinct_points_plan(scope, e, f, property, &ranges, s)?
                        }
                        _ => edge_value_points_plan(scope, e, f, property, &ranges, last, s)?,
                    };
                    (plan, Some(points_value(trend.at)))
                }
                None => {
                    let (e, f, s) = (&a.event, filter.as_ref(), self.sources);
                    let plan = match a.kind {
                        AggKind::CountDistinct => distinct_plan(scope, e, f, property, &range, s)?,
                        _ => edge_value_plan(scope, e, f, property, &range, last, s)?,
                    };
                    (plan, None)
                }
            };
            let v = match (self.aggs.request_pattern(scope, plan)?, column) {
                (Expr::Column(c), Some(name)) => {
                    Expr::Column(datafusion::common::Column::new(c.relation, name))
                }
                (v, _) => v,
            };
            // A key without events has no distinct values (0) and no first or last one.
            return Ok(match a.kind {
                AggKind::CountDistinct => coalesce(vec![v, lit(0i64)]),
                _ => v,
            });
        }
        Ok(self.aggs.request(AggRequest {
            scope,
            event: a.event.clone(),
            kind: a.kind,
            property: a.property.as_ref().map(|p| p.0.clone()),
            filter,
            values: a.filter.as_deref().and_then(string_values),
            range,
        }))
    }

    /// The literal a field is compared with, in the field's physical type.
    fn value(&self, field_ty: ValueType, v: &Value) -> Expr {
        match (field_ty, v) {
            (_, Value::String(s)) | (_, Value::Version(s)) => lit(s.as_str()),
            (_, Value::Number(n)) => lit(*n),
            (_, Value::Bool(b)) => lit(*b),
            (ValueType::Date, Value::Date(d)) => date_lit(*d),
            (ValueType::Date, Value::Time(b)) => date_lit(match b {
                TimeBound::Date(d) => *d,
                other => date_of(self.bound_micros(*other)),
            }),
            (_, Value::Date(d)) => ts_lit(micros_of_date(*d)),
            (_, Value::Time(b)) => ts_lit(self.bound_micros(*b)),
        }
    }

    fn compare(&mut self, f: &Field, op: CmpOp, v: &Value, event: Option<&str>) -> Result<Expr> {
        if let Field::Age = f {
            return self.compare_age(op, v);
        }
        if let Some(e) = self.existence_test(f, op, v)? {
            return Ok(e);
        }
        if f.ty() == ValueType::Version {
            if let Value::Version(text) = v {
                let column = self.field(f, event)?;
                let key = self.version_key(f);
                return Ok(match op {
                    CmpOp::Ne => not(version_compare(column, key, CmpOp::Eq, text)),
                    _ => version_compare(column, key, op, text),
                });
            }
        }
        let column = self.field(f, event)?;
        // A count is an integer: comparing it with a whole number as Int64 keeps the column
        // uncast (cheaper, and statistics can estimate it) instead of casting every count to
        // Float64 for the number literal.
        if let (Field::Agg(a), Value::Number(n)) = (f, v) {
            if matches!(a.kind, AggKind::Count | AggKind::CountDistinct)
                && n.fract() == 0.0
                && n.abs() < 1e15
            {
                return Ok(cmp(column, op, lit(*n as i64)));
            }
        }
        Ok(cmp(column, op, self.value(f.ty(), v)))
    }

    /// The sort key the snapshot stores beside version attribute `f`, and its layout.
    fn version_key(&self, f: &Field) -> Option<(Expr, version_key::VersionKey)> {
        let Field::Attribute { entity, column, .. } = f else {
            return None;
        };
        let key_type = self
            .sources
            .column_type(*entity, &version_key::column(column))
            .and_then(|t| version_key::layout_of(&t))?;
        Some((self.stored_beside(f, version_key::column)?, key_type))
    }

    /// A column the snapshot stores beside attribute `f` (see `store::derived`), named by
    /// `beside` from the attribute's column, when the snapshot has one: a version's sort key,
    /// a list's length.
    fn stored_beside(&self, f: &Field, beside: impl Fn(&str) -> String) -> Option<Expr> {
        let Field::Attribute { entity, column, .. } = f else {
            return None;
        };
        let stored = beside(column);
        self.sources
            .has_column(*entity, &stored)
            .then(|| match entity {
                Entity::Person => person_col(&stored),
                Entity::Installation => installation_col(&stored),
            })
    }

    /// `age <op> n` as a comparison on birth_date (prunes and pushes down, exact on birthdays).
    fn compare_age(&mut self, op: CmpOp, v: &Value) -> Result<Expr> {
        let Value::Number(n) = v else {
            return Err(DataFusionError::Internal(
                "age compared with a non-number".into(),
            ));
        };
        self.needs.person = true;
        let birth = person_col("birth_date");
        let as_of = date_of(self.as_of);
        let at_least = |k: f64| -> Expr {
            // age >= k
            let k = k.ceil();
            if k <= 0.0 {
                birth.clone().is_not_null()
            } else if k > 200.0 {
                lit(false)
            } else {
                birth.clone().lt_eq(date_lit(born_by(as_of, k as u32)))
            }
        };
        let below = |k: f64| -> Expr {
            // age < k; null for a missing birth date, which filters and `not` treat as false.
            let k = k.ceil();
            if k <= 0.0 {
                lit(false)
            } else if k > 200.0 {
                birth.clone().is_not_null()
            } else {
                birth.clone().gt(date_lit(born_by(as_of, k as u32)))
            }
        };
        Ok(match op {
            CmpOp::Ge => at_least(*n),
            CmpOp::Gt => at_least(n.floor() + 1.0),
            CmpOp::Lt => below(*n),
            CmpOp::Le => below(n.floor() + 1.0),
            CmpOp::Eq if n.fract() != 0.0 => lit(false),
            CmpOp::Eq => at_least(*n).and(below(n + 1.0)),
            CmpOp::Ne if n.fract() != 0.0 => lit(true),
            CmpOp::Ne => not(at_least(*n).and(below(n + 1.0))),
        })
    }

    fn time_test(&mut self, f: &Field, t: &TimeTest, event: Option<&str>) -> Result<Expr> {
        if let Some(e) = self.time_test_as_did(f, t)? {
            return Ok(e);
        }
        if let Field::Anniversary(inner) = f {
            let column = self.field(inner, event)?;
            let column = if inner.ty() == ValueType::Date {
                column
            } else {
                cast(column, DataType::Date32)
            };
            let (from, to) = match *t {
                TimeTest::Within(p) => (date_of(self.before_as_of(p)), date_of(self.as_of)),
                TimeTest::WithinNext(p) => (date_of(self.as_of), date_of(p.after(self.as_of))),
                _ => {
                    return Err(DataFusionError::Internal(
                        "an anniversary takes within [next] only".into(),
                    ))
                }
            };
            return anniversary_between(column, from, to);
        }
        let column = self.field(f, event)?;
        let is_date = f.ty() == ValueType::Date;
        Ok(match *t {
            TimeTest::Within(us) => {
                let from = self.before_as_of(us);
                if is_date {
                    column
                        .clone()
                        .gt_eq(date_lit(date_of(from)))
                        .and(column.lt_eq(date_lit(date_of(self.as_of))))
                } else {
                    column
                        .clone()
                        .gt_eq(ts_lit(from))
                        .and(column.lt_eq(ts_lit(self.as_of)))
                }
            }
            TimeTest::WithinNext(p) => {
                let to = p.after(self.as_of);
                if is_date {
                    column
                        .clone()
                        .gt_eq(date_lit(date_of(self.as_of)))
                        .and(column.lt_eq(date_lit(date_of(to))))
                } else {
                    column
                        .clone()
                        .gt_eq(ts_lit(self.as_of))
                        .and(column.lt_eq(ts_lit(to)))
                }
            }
            TimeTest::Before(b) => match (is_date, b) {
                (true, TimeBound::Date(d)) => column.lt(date_lit(d)),
                (true, other) => column.lt(date_lit(date_of(self.bound_micros(other)))),
                (false, other) => column.lt(ts_lit(self.bound_micros(other))),
            },
            TimeTest::After(b) => match (is_date, b) {
                (true, TimeBound::Date(d)) => column.gt(date_lit(d)),
                (true, other) => column.gt(date_lit(date_of(self.bound_micros(other)))),
                // After a day means from the next midnight on.
                (false, TimeBound::Date(d)) => column.gt_eq(ts_lit(micros_of_date(d) + DAY_US)),
                (false, other) => column.gt(ts_lit(self.bound_micros(other))),
            },
        })
    }

    fn pred(&mut self, p: &TPred, event: Option<&str>) -> Result<Expr> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.pred_inner(p, event))
    }

    fn pred_inner(&mut self, p: &TPred, event: Option<&str>) -> Result<Expr> {
        Ok(match p {
            TPred::Const(b) => lit(*b),
            TPred::And(items) => self.all(items, event, Expr::and)?,
            TPred::Or(items) => self.all(items, event, Expr::or)?,
            TPred::Not(inner) => not(self.pred(inner, event)?),
            TPred::Saved { body, .. } | TPred::Sugar { body, .. } => self.pred(body, event)?,
            TPred::Sequence(seq) => self.sequence(seq)?,
            TPred::Regular(r) => self.regularity(r)?,
            TPred::IsTrue(f) => self.field(f, event)?,
            TPred::Compare { field, op, value } => self.compare(field, *op, value, event)?,
            TPred::In { field, values } => {
                if field.ty() == ValueType::Version || matches!(field, Field::Age) {
                    let parts = values
                        .iter()
                        .map(|v| self.compare(field, CmpOp::Eq, v, event))
                        .collect::<Result<Vec<_>>>()?;
                    parts.into_iter().reduce(Expr::or).unwrap_or(lit(false))
                } else {
                    let column = self.field(field, event)?;
                    let list = values.iter().map(|v| self.value(field.ty(), v)).collect();
                    column.in_list(list, false)
                }
            }
            TPred::Between { field, low, high } => self
                .compare(field, CmpOp::Ge, low, event)?
                .and(self.compare(field, CmpOp::Le, high, event)?),
            TPred::IsSet(f) => match f {
                Field::Age => {
                    self.needs.person = true;
                    person_col("birth_date").is_not_null()
                }
                Field::RandomBucket => lit(true),
                other => {
                    let column = self.field(other, event)?;
                    // A stored list length answers without decoding the lists.
                    match self.stored_beside(other, derived::length_column) {
                        Some(length) => length.gt(lit(0i32)),
                        None => is_set(column, other.ty() == ValueType::StringList),
                    }
                }
            },
            TPred::Match { field, op, pattern } => {
                let column = self.field(field, event)?;
                match op {
                    MatchOp::Contains => string_match(column, StringMatch::Contains, pattern),
                    MatchOp::StartsWith => string_match(column, StringMatch::StartsWith, pattern),
                    MatchOp::EndsWith => string_match(column, StringMatch::EndsWith, pattern),
                    MatchOp::Matches => regex_match(column, pattern),
                }
            }
            TPred::Has { field, op, values } => {
                let column = self.field(field, event)?;
                let kind = match op {
                    HasOp::Has => ListMatch::Has,
                    HasOp::Any => ListMatch::Any,
                    HasOp::All => ListMatch::All,
                };
                list_has(column, kind, values)
            }
            TPred::Time { field, test } => self.time_test(field, test, event)?,
        })
    }

    fn all(
        &mut self,
        items: &[TPred],
        event: Option<&str>,
        join: fn(Expr, Expr) -> Expr,
    ) -> Result<Expr> {
        let mut out: Option<Expr> = None;
        for p in items {
            let e = self.pred(p, event)?;
            out = Some(match out {
                None => e,
                Some(acc) => join(acc, e),
            });
        }
        Ok(out.unwrap_or(lit(true)))
    }
}

/// Regularity tests over at most this many periods count each period in the event's grouped
/// scan; longer ones group by period first (one aggregate a period would grow the scan's
/// state with M).
const FUSED_PERIODS: u32 = 32;

impl Lowering<'_> {
    fn scope(installation: bool) -> Scope {
        if installation {
            Scope::Installation
        } else {
            Scope::Person
        }
    }

    /// A sequence's positive steps and its `then not` step, with their filters lowered.
    fn steps_of(&mut self, seq: &Sequence) -> Result<(Vec<PlannedStep>, Option<PlannedStep>)> {
        let mut lower = |s: &Step| -> Result<PlannedStep> {
            Ok(PlannedStep {
                event: s.event.clone(),
                filter: match &s.filter {
                    Some(p) => Some(self.pred(p, Some(&s.event))?),
                    None => None,
                },
                gap: s.gap,
            })
        };
        let steps = seq
            .steps
            .iter()
            .map(&mut lower)
            .collect::<Result<Vec<_>>>()?;
        let absent = seq.absent.as_ref().map(lower).transpose()?;
        Ok((steps, absent))
    }

    fn sequence(&mut self, seq: &Sequence) -> Result<Expr> {
        if let Some(v) = self.sequence_at_points(seq)? {
            return Ok(v);
        }
        let (steps, absent) = self.steps_of(seq)?;
        let window = self.range_of(&EventAgg {
            installation_scope: seq.installation_scope,
            event: String::new(),
            kind: AggKind::Count,
            property: None,
            filter: None,
            window: seq.window,
        });
        if window.from.is_some_and(|from| from >= window.to) {
            return Ok(lit(false));
        }
        let scope = Self::scope(seq.installation_scope);
        let plan = sequence_plan(
            scope,
            &steps,
            absent.as_ref(),
            window,
            self.as_of,
            self.sources,
        )?;
        let v = self.aggs.request_pattern(scope, plan)?;
        Ok(coalesce(vec![v, lit(false)]))
    }

    fn regularity(&mut self, r: &Regularity) -> Result<Expr> {
        let filter = match &r.filter {
            Some(p) => Some(self.pred(p, Some(&r.event))?),
            None => None,
        };
        let bounds: Vec<i64> = (0..=r.of_last)
            .map(|k| r.period.times(k).before(self.as_of))
            .collect();
        if r.of_last <= FUSED_PERIODS {
            // One count a period, fused with the event's other aggregates in its grouped scan
            // (and pruned on the partition column when the periods start at midnights).
            let count = EventAgg {
                installation_scope: r.installation_scope,
                event: r.event.clone(),
                kind: AggKind::Count,
                property: None,
                filter: r.filter.clone(),
                window: Window::All,
            };
            let mut held: Option<Expr> = None;
            for k in 1..bounds.len() {
                let n = self.request(
                    &count,
                    TimeRange {
                        from: Some(bounds[k]),
                        to: bounds[k - 1],
                    },
                )?;
                let times = if r.times.fract() == 0.0 {
                    lit(r.times as i64)
                } else {
                    lit(r.times)
                };
                let one = datafusion::prelude::when(cmp(n, r.op, times), lit(1i64))
                    .otherwise(lit(0i64))?;
                held = Some(match held {
                    None => one,
                    Some(h) => h + one,
                });
            }
            return Ok(held.unwrap_or(lit(0i64)).gt_eq(lit(r.at_least as i64)));
        }
        let exact = (r.period.months == 0).then_some(r.period.micros);
        let scope = Self::scope(r.installation_scope);
        let plan = regularity_plan(
            scope,
            &r.event,
            filter,
            &bounds,
            exact,
            r.op,
            r.times,
            self.sources,
        )?;
        let v = self.aggs.request_pattern(scope, plan)?;
        let default = if zero_holds(r.op, r.times) {
            r.of_last as i64
        } else {
            0
        };
        Ok(coalesce(vec![v, lit(default)]).gt_eq(lit(r.at_least as i64)))
    }
}

/// Whether the yearly recurrence of a date (`birth`, Date32) falls in the days `[from, to]`: for
/// each year Y the range touches, the date's month and day in Y (29 February is 1 March in other
/// years) lies in the range's part of Y, and Y is after the date's own year.
fn anniversary_between(date: Expr, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<Expr> {
    use chrono::{Datelike, NaiveDate};
    use datafusion::functions::datetime::expr_fn::date_part;
    const MAX_YEARS: i32 = 400;
    if to < from {
        return Ok(lit(false));
    }
    if to.year() - from.year() > MAX_YEARS {
        return Err(DataFusionError::Plan(format!(
            "an anniversary window spans more than {MAX_YEARS} years"
        )));
    }
    let part = |p: &str| cast(date_part(lit(p), date.clone()), DataType::Int64);
    let md = part("month") * lit(100i64) + part("day");
    let year = part("year");
    let mut any: Option<Expr> = None;
    for y in from.year()..=to.year() {
        let start = from.max(NaiveDate::from_ymd_opt(y, 1, 1).expect("a valid date"));
        let end = to.min(NaiveDate::from_ymd_opt(y, 12, 31).expect("a valid date"));
        let key = |d: NaiveDate| (d.month() * 100 + d.day()) as i64;
        let leap = NaiveDate::from_ymd_opt(y, 2, 29).is_some();
        let (lo, hi) = (key(start), key(end));
        let mut in_year = md.clone().between(lit(lo), lit(hi));
        // In other years 29 February is 1 March: it adds to a range holding 1 March (a range
        // holding 29 February holds 1 March too, it being no day of such a year).
        if !leap && (lo..=hi).contains(&301) && lo > 229 {
            in_year = in_year.or(md.clone().eq(lit(229i64)));
        }
        let holds = in_year.and(year.clone().lt(lit(y as i64)));
        any = Some(match any {
            None => holds,
            Some(a) => a.or(holds),
        });
    }
    Ok(any.unwrap_or(lit(false)))
}

/// `(column, values)` when `p` is only `property = "v"` or `property in ("v", …)` on one string
/// property of the event.
fn string_values(p: &TPred) -> Option<(String, Vec<String>)> {
    let string_property = |f: &Field| match f {
        Field::Property {
            column,
            ty: ValueType::String,
            ..
        } => Some(column.clone()),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    match p {
        TPred::Compare {
            field,
            op: CmpOp::Eq,
            value,
        } => Some((string_property(field)?, vec![text(value)?])),
        TPred::In { field, values } => Some((
            string_property(field)?,
            values.iter().map(text).collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

impl Lowering<'_> {
    /// A sequence at one point of a trend, when one plan can answer it at every point (see
    /// [`sequence_points_plan`]): that plan, read at this point's column. Every point lowers to
    /// the same plan, which is joined once. `None` outside a trend, or when each point needs
    /// its own plan.
    fn sequence_at_points(&mut self, seq: &Sequence) -> Result<Option<Expr>> {
        let Some(trend) = self.trend.take() else {
            return Ok(None);
        };
        let planned = self.sequence_points(seq, &trend);
        let at = trend.at;
        self.as_of = trend.as_ofs[at];
        self.trend = Some(trend);
        Ok(planned?.map(|v| {
            let v = match v {
                Expr::Column(c) => Expr::Column(datafusion::common::Column::new(
                    c.relation,
                    points_value(at),
                )),
                other => other,
            };
            coalesce(vec![v, lit(false)])
        }))
    }

    fn sequence_points(&mut self, seq: &Sequence, trend: &TrendPoints) -> Result<Option<Expr>> {
        let (steps, absent) = self.steps_of(seq)?;
        let windows = trend
            .as_ofs
            .iter()
            .map(|&as_of| {
                self.as_of = as_of;
                self.range_of(&EventAgg {
                    installation_scope: seq.installation_scope,
                    event: String::new(),
                    kind: AggKind::Count,
                    property: None,
                    filter: None,
                    window: seq.window,
                })
            })
            .collect::<Vec<_>>();
        let scope = Self::scope(seq.installation_scope);
        let Some(plan) = sequence_points_plan(
            scope,
            &steps,
            absent.as_ref(),
            &windows,
            &trend.as_ofs,
            self.sources,
        )?
        else {
            return Ok(None);
        };
        Ok(Some(self.aggs.request_pattern(scope, plan)?))
    }
}

/// A sequence at several as-of points at once: one row per key with a boolean column
/// [`points_value`] per point, true where the sequence happened by that point; `None` when the
/// points' windows are not of one kind (each point then keeps its own plan).
///
/// The steps' events are read once, over the union of the points' windows. Each event of
/// step k carries the latest start (time of the step-1 event) of a chain of steps 1…k ending
/// at it: the latest start among the step k−1 events strictly before it and within its gap (an
/// inner join on the key whose filter compares the times, then a `max` per event; a step
/// without a gap is bounded by the longest window, which a chain cannot exceed). A chain
/// ending at an event of the last step lies in point j's window `[from_j, to_j)` exactly when
/// that event is before `to_j` and its latest start is at or after `from_j` (windows over all
/// history have no start: the one-point plan's semi joins answer every point). `then not Z within
/// h`: the first Z within h after the event, which point j must not see (h passed by its as-of
/// and the Z, if any, at or after it); without h, the latest Z each point sees, which must not
/// follow the event.
fn sequence_points_plan(
    scope: Scope,
    steps: &[PlannedStep],
    absent: Option<&PlannedStep>,
    windows: &[TimeRange],
    as_ofs: &[i64],
    sources: &TableSources,
) -> Result<Option<LogicalPlan>> {
    use datafusion::common::{Column, JoinType};
    use datafusion::functions_aggregate::expr_fn::{bool_or, max, min};
    use datafusion::logical_expr::ExprFunctionExt;
    const T: &str = "t";
    const S: &str = "s";
    let key = scope.key();
    let longest = windows
        .iter()
        .map(|w| w.from.map(|from| w.to.saturating_sub(from)))
        .try_fold(0i64, |acc, d| d.map(|d| acc.max(d)));
    let mixed = longest.is_none() && windows.iter().any(|w| w.from.is_some());
    if mixed && steps.iter().skip(1).any(|s| s.gap.is_none()) {
        return Ok(None);
    }
    let positive = union_of(windows);
    let earliest = positive.from;
    let rows = |step: &PlannedStep, range: &TimeRange| step_rows(scope, step, range, sources);
    let of = |alias: &str, name: &str| Expr::Column(Column::new(Some(alias), name));
    let on = |a: &str, b: &str| {
        (
            vec![Column::new(Some(a), key)],
            vec![Column::new(Some(b), key)],
        )
    };
    // (key, t, s): the events reaching step k and the latest start of a chain ending there.
    let mut reached =
        rows(&steps[0], &positive)?.project(vec![col(key), col(T), col(T).alias(S)])?;
    // Windows over all history have no start to check: the one-point plan's semi joins then
    // answer every point (the events reaching each step do not depend on the point).
    let unbounded = windows.iter().all(|w| w.from.is_none());
    for step in &steps[1..] {
        let cur = rows(step, &positive)?.alias("cur")?;
        let earlier = of("prev", T).lt(of("cur", T));
        reached = if unbounded {
            let (previous, condition) = match step.gap {
                Some(gap) => (
                    reached,
                    earlier.and((of("cur", T) - of("prev", T)).lt_eq(lit(gap))),
                ),
                None => (
                    reached.aggregate(vec![col(key)], vec![min(col(T)).alias(T)])?,
                    earlier,
                ),
            };
            cur.join(
                previous.alias("prev")?.build()?,
                JoinType::LeftSemi,
                on("cur", "prev"),
                Some(condition),
            )?
            .project(vec![
                of("cur", key).alias(key),
                of("cur", T).alias(T),
                of("cur", T).alias(S),
            ])?
        } else {
            let bound = step.gap.or(longest).unwrap_or(i64::MAX);
            cur.join(
                reached.alias("prev")?.build()?,
                JoinType::Inner,
                on("cur", "prev"),
                Some(earlier.and((of("cur", T) - of("prev", T)).lt_eq(lit(bound)))),
            )?
            .aggregate(
                vec![of("cur", key).alias(key), of("cur", T).alias(T)],
                vec![max(of("prev", S)).alias(S)],
            )?
        };
    }
    let mut holds: Vec<Expr> = windows
        .iter()
        .map(|w| {
            let mut h = col(T).lt(lit(w.to));
            if let Some(from) = w.from {
                h = h.and(col(S).gt_eq(lit(from)));
            }
            if w.from.is_some_and(|from| from >= w.to) {
                h = lit(false);
            }
            h
        })
        .collect();
    if let Some(z) = absent {
        let after = TimeRange {
            from: earliest,
            to: as_ofs.iter().copied().max().unwrap_or(i64::MIN),
        };
        let zs = rows(z, &after)?.alias("z")?;
        match z.gap {
            Some(gap) => {
                // The first Z within the gap after each event.
                reached = reached
                    .filter((col(T) + lit(gap)).lt_eq(lit(after.to)))?
                    .alias("last")?
                    .join(
                        optional_side(sources, zs.build()?, key)?,
                        JoinType::Left,
                        on("last", "z"),
                        Some(
                            of("z", T)
                                .gt(of("last", T))
                                .and(of("z", T).lt_eq(of("last", T) + lit(gap))),
                        ),
                    )?
                    .aggregate(
                        vec![
                            of("last", key).alias(key),
                            of("last", T).alias(T),
                            of("last", S).alias(S),
                        ],
                        vec![min(of("z", T)).alias("z")],
                    )?;
                for (h, &as_of) in holds.iter_mut().zip(as_ofs) {
                    let unseen = col("z").is_null().or(col("z").gt_eq(lit(as_of)));
                    *h = h
                        .clone()
                        .and((col(T) + lit(gap)).lt_eq(lit(as_of)))
                        .and(unseen);
                }
            }
            None => {
                // The latest Z each point sees.
                let latest = as_ofs
                    .iter()
                    .enumerate()
                    .map(|(j, &as_of)| {
                        Ok(max(col(T))
                            .filter(col(T).lt(lit(as_of)))
                            .build()?
                            .alias(format!("z{j}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let zs = zs.aggregate(vec![of("z", key).alias(key)], latest)?;
                reached = reached.alias("last")?.join(
                    optional_side(sources, zs.alias("z")?.build()?, key)?,
                    JoinType::Left,
                    on("last", "z"),
                    None,
                )?;
                for (j, h) in holds.iter_mut().enumerate() {
                    let latest = of("z", &format!("z{j}"));
                    *h = h
                        .clone()
                        .and(latest.clone().is_null().or(latest.lt_eq(of("last", T))));
                }
                let qualified = |e: Expr| {
                    use datafusion::common::tree_node::{Transformed, TreeNode};
                    e.transform(|x| {
                        Ok(match &x {
                            Expr::Column(c) if c.relation.is_none() => {
                                Transformed::yes(of("last", &c.name))
                            }
                            _ => Transformed::no(x),
                        })
                    })
                    .map(|t| t.data)
                };
                holds = holds.into_iter().map(qualified).collect::<Result<_>>()?;
                let values = holds
                    .into_iter()
                    .enumerate()
                    .map(|(j, h)| bool_or(h).alias(points_value(j)))
                    .collect::<Vec<_>>();
                return Ok(Some(
                    reached
                        .aggregate(vec![of("last", key).alias(key)], values)?
                        .build()?,
                ));
            }
        }
    }
    let values = holds
        .into_iter()
        .enumerate()
        .map(|(j, h)| bool_or(h).alias(points_value(j)))
        .collect::<Vec<_>>();
    Ok(Some(reached.aggregate(vec![col(key)], values)?.build()?))
}
