//! Plans of event patterns that one grouped pass cannot answer: sequences and regularity. Each
//! is a plan of one row per key (person or installation) with a value column, joined to the
//! pairs like an aggregate group.
//!
//! A sequence is a chain of semi joins on the key, one a step (see [`sequence_plan`]): no sort
//! and no window over each key's events, which measured 3–8× slower (benches/HISTORY.md,
//! "sequences as joins").

use super::events::{scan_condition, Scope, TimeRange, PATTERN_VALUE};
use super::optional_side::optional_side;
use super::sources::TableSources;
use crate::base::exprs::ts_lit;
use crate::catalog::{ValueType, EVENT_TIME, INSTALLATION_ID};
use crate::store::event_table;
use crate::syntax::ast::CmpOp;
use arrow::datatypes::DataType;
use datafusion::common::{Column, JoinType};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{cast, coalesce, col, lit, when};

/// A sequence step, lowered: its event and its condition over the event's columns.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub event: String,
    pub filter: Option<Expr>,
    pub gap: Option<i64>,
}

/// The time column of a step's rows: event_time as microseconds.
const T: &str = "t";

/// The rows `(key, t)` of one step: its event's rows in `range` matching its filter.
pub(super) fn step_rows(
    scope: Scope,
    step: &PlannedStep,
    range: &TimeRange,
    sources: &TableSources,
) -> Result<LogicalPlanBuilder> {
    let mut filter = scan_condition(range, sources);
    if let Some(f) = &step.filter {
        filter = filter.and(f.clone());
    }
    if scope == Scope::Installation {
        filter = filter.and(col(INSTALLATION_ID).is_not_null());
    }
    let table = event_table(&step.event);
    LogicalPlanBuilder::scan(&table, sources.get(&table)?, None)?
        .filter(filter)?
        .project(vec![
            col(scope.key()),
            cast(col(EVENT_TIME), DataType::Int64).alias(T),
        ])
}

/// `[installation.]did(steps… [then not absent])` over `window` (the positive steps) up to
/// `as_of`: one row per key where the sequence happened, with `v` true.
///
/// The events reaching step k are step k's events with an event reaching step k−1 strictly
/// before them and within the gap: a semi join on the key whose filter compares the times.
/// Without a gap only the earliest event reaching step k−1 matters, so that side is first
/// reduced to one row per key. `then not Z within h` keeps the events reaching the last step
/// whose h has passed and that no Z follows within h (an anti join); without h, that no Z
/// follows at all (against the latest Z per key).
pub fn sequence_plan(
    scope: Scope,
    steps: &[PlannedStep],
    absent: Option<&PlannedStep>,
    window: TimeRange,
    as_of: i64,
    sources: &TableSources,
) -> Result<LogicalPlan> {
    let key = scope.key();
    let side = |alias: &str, plan: LogicalPlanBuilder| plan.alias(alias);
    let both = |a: &str, b: &str| {
        (
            vec![Column::new(Some(a), key)],
            vec![Column::new(Some(b), key)],
        )
    };
    let t_of = |alias: &str| Expr::Column(Column::new(Some(alias), T));
    let mut reached = step_rows(scope, &steps[0], &window, sources)?;
    for step in &steps[1..] {
        let rows = side("cur", step_rows(scope, step, &window, sources)?)?;
        let (previous, condition) = match step.gap {
            Some(gap) => (
                reached,
                t_of("prev")
                    .lt(t_of("cur"))
                    .and((t_of("cur") - t_of("prev")).lt_eq(lit(gap))),
            ),
            None => (
                reached.aggregate(vec![col(key)], vec![min(col(T)).alias(T)])?,
                t_of("prev").lt(t_of("cur")),
            ),
        };
        reached = rows
            .join(
                side("prev", previous)?.build()?,
                JoinType::LeftSemi,
                both("cur", "prev"),
                Some(condition),
            )?
            .project(vec![
                Expr::Column(Column::new(Some("cur"), key)),
                t_of("cur"),
            ])?;
    }
    if let Some(z) = absent {
        let after = TimeRange {
            from: window.from,
            to: as_of,
        };
        let zs = step_rows(scope, z, &after, sources)?;
        let (zs, condition) = match z.gap {
            Some(gap) => {
                reached = reached.filter((col(T) + lit(gap)).lt_eq(lit(as_of)))?;
                (
                    zs,
                    t_of("z")
                        .gt(t_of("last"))
                        .and(t_of("z").lt_eq(t_of("last") + lit(gap))),
                )
            }
            None => (
                zs.aggregate(vec![col(key)], vec![max(col(T)).alias(T)])?,
                t_of("z").gt(t_of("last")),
            ),
        };
        reached = side("last", reached)?.join(
            optional_side(sources, side("z", zs)?.build()?, key)?,
            JoinType::LeftAnti,
            both("last", "z"),
            Some(condition),
        )?;
    }
    reached
        .aggregate(vec![col(key)], Vec::<Expr>::new())?
        .project(vec![col(key), lit(true).alias(PATTERN_VALUE)])?
        .build()
}

/// The periods of a regularity test: `bounds[k]` is the start of period k+1 (counted back from
/// the as-of time), `bounds[0]` the as-of time.
#[allow(clippy::too_many_arguments)] // the test's parts, each used once
pub fn regularity_plan(
    scope: Scope,
    event: &str,
    filter: Option<Expr>,
    bounds: &[i64],
    exact_period: Option<i64>,
    op: CmpOp,
    times: f64,
    sources: &TableSources,
) -> Result<LogicalPlan> {
    let key = scope.key();
    let as_of = bounds[0];
    let m = bounds.len() - 1;
    let range = TimeRange {
        from: Some(bounds[m]),
        to: as_of,
    };
    let mut condition = scan_condition(&range, sources);
    if let Some(f) = filter {
        condition = condition.and(f);
    }
    if scope == Scope::Installation {
        condition = condition.and(col(INSTALLATION_ID).is_not_null());
    }
    let t = cast(col(EVENT_TIME), DataType::Int64);
    let index = match exact_period {
        Some(p) => (lit(as_of - 1) - t) / lit(p),
        None => {
            let mut case = when(t.clone().gt_eq(lit(bounds[1])), lit(0i64));
            for (k, b) in bounds.iter().enumerate().skip(2) {
                case = case.when(t.clone().gt_eq(lit(*b)), lit((k - 1) as i64));
            }
            case.otherwise(lit((m - 1) as i64))?
        }
    };
    let n = col("n");
    let times_lit = if times.fract() == 0.0 {
        lit(times as i64)
    } else {
        lit(times)
    };
    let holds = match op {
        CmpOp::Eq => n.eq(times_lit),
        CmpOp::Ne => n.not_eq(times_lit),
        CmpOp::Lt => n.lt(times_lit),
        CmpOp::Le => n.lt_eq(times_lit),
        CmpOp::Gt => n.gt(times_lit),
        CmpOp::Ge => n.gt_eq(times_lit),
    };
    let table = event_table(event);
    let counted = LogicalPlanBuilder::scan(&table, sources.get(&table)?, None)?
        .filter(condition)?
        .project(vec![col(key), index.alias("k")])?
        .aggregate(vec![col(key), col("k")], vec![count(lit(1)).alias("n")])?
        .project(vec![
            col(key),
            when(holds, lit(1i64)).otherwise(lit(0i64))?.alias("s"),
        ])?
        .aggregate(
            vec![col(key)],
            vec![sum(col("s")).alias("s"), count(lit(1)).alias("present")],
        )?;
    let value = if zero_holds(op, times) {
        // Periods without events hold too.
        col("s") + lit(m as i64) - col("present")
    } else {
        col("s")
    };
    counted
        .project(vec![
            col(key),
            coalesce(vec![value, lit(0i64)]).alias(PATTERN_VALUE),
        ])?
        .build()
}

/// Whether a period without events (a count of 0) holds `0 op times`.
pub fn zero_holds(op: CmpOp, times: f64) -> bool {
    match op {
        CmpOp::Eq => times == 0.0,
        CmpOp::Ne => times != 0.0,
        CmpOp::Lt => 0.0 < times,
        CmpOp::Le => 0.0 <= times,
        CmpOp::Gt => 0.0 > times,
        CmpOp::Ge => 0.0 >= times,
    }
}

/// The rows of `event` in `range` matching `filter` (in `scope`).
fn matching_rows(
    scope: Scope,
    event: &str,
    filter: Option<&Expr>,
    range: &TimeRange,
    sources: &TableSources,
) -> Result<LogicalPlanBuilder> {
    let mut condition = scan_condition(range, sources);
    if let Some(f) = filter {
        condition = condition.and(f.clone());
    }
    if scope == Scope::Installation {
        condition = condition.and(col(INSTALLATION_ID).is_not_null());
    }
    let table = event_table(event);
    LogicalPlanBuilder::scan(&table, sources.get(&table)?, None)?.filter(condition)
}

/// A property read as a value to aggregate: strings as plain text (dictionary-encoded columns
/// have no fast grouped min/max).
fn value_of(property: &str, ty: ValueType) -> Expr {
    match ty {
        ValueType::String => cast(col(property), DataType::Utf8),
        _ => col(property),
    }
}

/// `count distinct(E.p …)`: the distinct (key, value) pairs first, then a count per key, the
/// shape DataFusion gives a single distinct aggregate (its general distinct accumulator over a
/// dictionary column measured 10× slower).
pub fn distinct_plan(
    scope: Scope,
    event: &str,
    filter: Option<&Expr>,
    (property, ty): (&str, ValueType),
    range: &TimeRange,
    sources: &TableSources,
) -> Result<LogicalPlan> {
    let key = scope.key();
    matching_rows(scope, event, filter, range, sources)?
        .filter(col(property).is_not_null())?
        .project(vec![col(key), value_of(property, ty).alias("x")])?
        .aggregate(vec![col(key), col("x")], Vec::<Expr>::new())?
        .aggregate(vec![col(key)], vec![count(lit(1)).alias(PATTERN_VALUE)])?
        .build()
}

/// `first(E …).p` / `last(E …).p` at several as-of points at once (a trend): one row per key
/// with a column [`points_value`]`(j)` per point, as [`edge_value_plan`] gives at point j.
///
/// The events are read twice over the union of the points' ranges, as for one point: once for
/// every point's edge time per key (one FILTER aggregate a point), once for the events at any of
/// those times (an inner join on the key whose filter tests the times), whose values are then
/// picked per point by the same rule (a set value wins, then the smallest or largest).
pub fn edge_value_points_plan(
    scope: Scope,
    event: &str,
    filter: Option<&Expr>,
    (property, ty): (&str, ValueType),
    ranges: &[TimeRange],
    last: bool,
    sources: &TableSources,
) -> Result<LogicalPlan> {
    use datafusion::logical_expr::ExprFunctionExt;
    let key = scope.key();
    let pick = |e: Expr| if last { max(e) } else { min(e) };
    let union = union_of(ranges);
    let t = || col(EVENT_TIME);
    let edges = ranges
        .iter()
        .enumerate()
        .map(|(j, r)| Ok(pick(t()).filter(inside(r)).build()?.alias(edge_time(j))))
        .collect::<Result<Vec<_>>>()?;
    let edges = matching_rows(scope, event, filter, &union, sources)?
        .aggregate(vec![col(key)], edges)?
        .alias("edge")?
        .build()?;
    let e_time = || Expr::Column(Column::new(Some("e"), EVENT_TIME));
    let at_edge = |j: usize| e_time().eq(Expr::Column(Column::new(Some("edge"), edge_time(j))));
    let at_any = (1..ranges.len()).fold(at_edge(0), |any, j| any.or(at_edge(j)));
    let values = (0..ranges.len())
        .map(|j| {
            Ok(pick(col("x"))
                .filter(at_edge(j))
                .build()?
                .alias(points_value(j)))
        })
        .collect::<Result<Vec<_>>>()?;
    matching_rows(scope, event, filter, &union, sources)?
        .project(vec![col(key), t(), value_of(property, ty).alias("x")])?
        .alias("e")?
        .join(
            edges,
            JoinType::Inner,
            (
                vec![Column::new(Some("e"), key)],
                vec![Column::new(Some("edge"), key)],
            ),
            Some(at_any),
        )?
        .aggregate(vec![Expr::Column(Column::new(Some("e"), key))], values)?
        .build()
}

/// `count distinct(E.p …)` at several as-of points at once (a trend): the distinct (key, value)
/// pairs over the union of the points' ranges, each with whether point j's range saw it, then a
/// count a point per key ([`points_value`]`(j)`), as [`distinct_plan`] gives at point j.
pub fn distinct_points_plan(
    scope: Scope,
    event: &str,
    filter: Option<&Expr>,
    (property, ty): (&str, ValueType),
    ranges: &[TimeRange],
    sources: &TableSources,
) -> Result<LogicalPlan> {
    use datafusion::functions_aggregate::expr_fn::bool_or;
    use datafusion::logical_expr::ExprFunctionExt;
    let key = scope.key();
    let seen = |j: usize| format!("s{j}");
    let seen_by = ranges
        .iter()
        .enumerate()
        .map(|(j, r)| bool_or(inside(r)).alias(seen(j)))
        .collect::<Vec<_>>();
    let counts = (0..ranges.len())
        .map(|j| {
            Ok(count(lit(1))
                .filter(col(seen(j)))
                .build()?
                .alias(points_value(j)))
        })
        .collect::<Result<Vec<_>>>()?;
    matching_rows(scope, event, filter, &union_of(ranges), sources)?
        .filter(col(property).is_not_null())?
        .project(vec![
            col(key),
            value_of(property, ty).alias("x"),
            col(EVENT_TIME),
        ])?
        .aggregate(vec![col(key), col("x")], seen_by)?
        .aggregate(vec![col(key)], counts)?
        .build()
}

/// The smallest range holding every one of `ranges`.
pub(super) fn union_of(ranges: &[TimeRange]) -> TimeRange {
    TimeRange {
        from: ranges
            .iter()
            .map(|r| r.from)
            .collect::<Option<Vec<_>>>()
            .and_then(|f| f.into_iter().min()),
        to: ranges.iter().map(|r| r.to).max().unwrap_or(i64::MIN),
    }
}

/// Whether an event's time is in `r`.
fn inside(r: &TimeRange) -> Expr {
    let before_end = col(EVENT_TIME).lt(ts_lit(r.to));
    match r.from {
        Some(from) => col(EVENT_TIME).gt_eq(ts_lit(from)).and(before_end),
        None => before_end,
    }
}

/// Point j's edge time in [`edge_value_points_plan`].
fn edge_time(j: usize) -> String {
    format!("t{j}")
}

/// Point j's value column in the plans of several as-of points at once.
pub fn points_value(j: usize) -> String {
    format!("v{j}")
}

/// `first(E …).p` / `last(E …).p`: the first / last time per key, then the events at that time,
/// of which a set value wins and among set values the smallest (first) / largest (last). Two
/// plain aggregates and a join instead of `first_value` / `last_value`, which DataFusion 55
/// computes row by row on dictionary columns (benches/HISTORY.md, "first and last values").
pub fn edge_value_plan(
    scope: Scope,
    event: &str,
    filter: Option<&Expr>,
    (property, ty): (&str, ValueType),
    range: &TimeRange,
    last: bool,
    sources: &TableSources,
) -> Result<LogicalPlan> {
    let key = scope.key();
    let pick = |e: Expr| if last { max(e) } else { min(e) };
    let times = matching_rows(scope, event, filter, range, sources)?
        .aggregate(vec![col(key)], vec![pick(col(EVENT_TIME)).alias("edge")])?
        .alias("edge")?
        .build()?;
    matching_rows(scope, event, filter, range, sources)?
        .project(vec![
            col(key),
            col(EVENT_TIME),
            value_of(property, ty).alias("x"),
        ])?
        .alias("e")?
        .join(
            times,
            JoinType::Inner,
            (
                vec![
                    Column::new(Some("e"), key),
                    Column::new(Some("e"), EVENT_TIME),
                ],
                vec![
                    Column::new(Some("edge"), key),
                    Column::new(Some("edge"), "edge"),
                ],
            ),
            None,
        )?
        .aggregate(
            vec![Expr::Column(Column::new(Some("e"), key))],
            vec![pick(col("x")).alias(PATTERN_VALUE)],
        )?
        .build()
}
