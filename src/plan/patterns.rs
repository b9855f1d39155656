//! Plans of event patterns that one grouped pass cannot answer: sequences and regularity. Each
//! is a plan of one row per key (person or installation) with a value column, joined to the
//! pairs like an aggregate group.
//!
//! A sequence reads the events of its steps in one union, each row flagged with the steps it
//! matches, and walks the steps with window functions over each key's events in time order:
//! step k holds at an event of step k that has an event holding step k−1 strictly before it and
//! within the gap. The latest such earlier event is the best one (gaps only bound how long ago
//! it was), so `max(time of rows holding k−1) over (earlier rows)` decides each step, and `then
//! not` asks for the next event of its step: `min(time) over (later rows)`.

use super::events::{range_condition, scan_condition, Scope, TimeRange, PATTERN_VALUE};
use super::sources::TableSources;
use crate::catalog::{EVENT_TIME, INSTALLATION_ID};
use crate::store::event_table;
use crate::syntax::ast::CmpOp;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, WindowFrame, WindowFrameBound,
    WindowFrameUnits,
};
use datafusion::prelude::{cast, coalesce, col, lit, when};

/// A sequence step, lowered: its event and its condition over the event's columns.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub event: String,
    pub filter: Option<Expr>,
    pub gap: Option<i64>,
}

/// The time column of a sequence's rows: event_time as microseconds.
const T: &str = "t";

fn flag(k: usize) -> String {
    format!("m{k}")
}

fn reached(k: usize) -> String {
    format!("r{k}")
}

/// `[installation.]did(steps… [then not absent])` over `window` (the positive steps) up to
/// `as_of`: one row per key where the sequence happened, with `v` true.
pub fn sequence_plan(
    scope: Scope,
    steps: &[PlannedStep],
    absent: Option<&PlannedStep>,
    window: TimeRange,
    as_of: i64,
    sources: &TableSources,
) -> Result<LogicalPlan> {
    let key = scope.key();
    let all: Vec<(&PlannedStep, TimeRange)> = steps
        .iter()
        .map(|s| (s, window))
        .chain(absent.map(|a| {
            // The absent step is looked for after the last step, wherever that fell.
            (
                a,
                TimeRange {
                    from: window.from,
                    to: as_of,
                },
            )
        }))
        .collect();
    // One scan per event table, each row flagged with the steps it matches.
    let mut events: Vec<&str> = all.iter().map(|(s, _)| s.event.as_str()).collect();
    events.dedup();
    events.sort();
    events.dedup();
    let mut union: Option<LogicalPlanBuilder> = None;
    for event in events {
        let mine: Vec<usize> = (0..all.len())
            .filter(|&k| all[k].0.event == event)
            .collect();
        let conditions: Vec<Expr> = all
            .iter()
            .map(|(s, range)| {
                let c = range_condition(range, sources);
                match &s.filter {
                    Some(f) => c.and(f.clone()),
                    None => c,
                }
            })
            .collect();
        let scan_range = TimeRange {
            from: mine
                .iter()
                .map(|&k| all[k].1.from)
                .try_fold(i64::MAX, |acc, f| f.map(|f| acc.min(f))),
            to: mine.iter().map(|&k| all[k].1.to).max().unwrap_or(as_of),
        };
        let mut filter = scan_condition(&scan_range, sources).and(
            mine.iter()
                .map(|&k| conditions[k].clone())
                .reduce(Expr::or)
                .expect("an event of the sequence has a step"),
        );
        if scope == Scope::Installation {
            filter = filter.and(col(INSTALLATION_ID).is_not_null());
        }
        let mut columns = vec![col(key), cast(col(EVENT_TIME), DataType::Int64).alias(T)];
        for (k, c) in conditions.iter().enumerate() {
            let m = if mine.contains(&k) {
                when(c.clone(), lit(true)).otherwise(lit(false))?
            } else {
                lit(false)
            };
            columns.push(m.alias(flag(k)));
        }
        let table = event_table(event);
        let plan = LogicalPlanBuilder::scan(&table, sources.get(&table)?, None)?
            .filter(filter)?
            .project(columns)?
            .build()?;
        union = Some(match union {
            None => LogicalPlanBuilder::from(plan),
            Some(u) => u.union(plan)?,
        });
    }
    let mut plan = union.expect("a sequence has steps");
    let n = steps.len();
    // The columns the steps after step k still need.
    let passed = |k: usize| -> Vec<Expr> {
        let mut keep = vec![col(key), col(T)];
        keep.extend((k + 1..all.len()).map(|j| col(flag(j))));
        keep
    };
    // Step 1 holds at its own events.
    let mut first = passed(0);
    first.push(col(flag(0)).alias(reached(0)));
    plan = plan.project(first)?;
    for k in 1..n {
        let previous = when(col(reached(k - 1)), col(T)).end()?;
        let before = over(max_udaf(), previous, key, frame_before())?.alias("p");
        plan = plan.window(vec![before])?;
        let mut holds = col(flag(k)).and(col("p").is_not_null());
        if let Some(gap) = steps[k].gap {
            holds = holds.and((col(T) - col("p")).lt_eq(lit(gap)));
        }
        let mut next = passed(k);
        next.push(
            when(holds, lit(true))
                .otherwise(lit(false))?
                .alias(reached(k)),
        );
        plan = plan.project(next)?;
    }
    let mut last = col(reached(n - 1));
    if let Some(a) = absent {
        let later = when(col(flag(n)), col(T)).end()?;
        let after = over(min_udaf(), later, key, frame_after())?.alias("q");
        plan = plan.window(vec![after])?;
        last = match a.gap {
            Some(gap) => last
                .and((col(T) + lit(gap)).lt_eq(lit(as_of)))
                .and(col("q").is_null().or(col("q").gt(col(T) + lit(gap)))),
            None => last.and(col("q").is_null()),
        };
    }
    plan.filter(last)?
        .aggregate(vec![col(key)], Vec::<Expr>::new())?
        .project(vec![col(key), lit(true).alias(PATTERN_VALUE)])?
        .build()
}

/// `agg(arg) over (partition by key order by t frame)`.
fn over(
    udaf: std::sync::Arc<datafusion::logical_expr::AggregateUDF>,
    arg: Expr,
    key: &str,
    frame: WindowFrame,
) -> Result<Expr> {
    Expr::from(WindowFunction::new(udaf, vec![arg]))
        .partition_by(vec![col(key)])
        .order_by(vec![col(T).sort(true, false)])
        .window_frame(frame)
        .build()
}

/// The rows strictly earlier in time (`range between unbounded preceding and 1 preceding`):
/// events at the same instant do not precede each other.
fn frame_before() -> WindowFrame {
    WindowFrame::new_bounds(
        WindowFrameUnits::Range,
        WindowFrameBound::Preceding(ScalarValue::Int64(None)),
        WindowFrameBound::Preceding(ScalarValue::Int64(Some(1))),
    )
}

/// The rows strictly later in time.
fn frame_after() -> WindowFrame {
    WindowFrame::new_bounds(
        WindowFrameUnits::Range,
        WindowFrameBound::Following(ScalarValue::Int64(Some(1))),
        WindowFrameBound::Following(ScalarValue::Int64(None)),
    )
}

/// The periods of a regularity test: `bounds[k]` is the start of period k+1 (counted back from
/// the as-of time), `bounds[0]` the as-of time.
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
