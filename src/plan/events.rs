//! Event conditions, fused: every aggregate over the same event definition and scope is computed
//! in one grouped pass over that event's table, as conditional aggregates (`agg(x) FILTER (WHERE
//! window AND where)`). The scan is restricted to the union of the windows, on the time partition
//! column (partition pruning) and on event_time (row-group pruning).

use super::sources::TableSources;
use crate::catalog::{EVENT_TIME, INSTALLATION_ID, PERSON_ID};
use crate::store::event_table;
use chrono::DateTime;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
use datafusion::logical_expr::{Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{coalesce, col, lit};

/// Whose events an aggregate reads: all of the person's installations, or one installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Person,
    Installation,
}

impl Scope {
    pub fn key(self) -> &'static str {
        match self {
            Scope::Person => PERSON_ID,
            Scope::Installation => INSTALLATION_ID,
        }
    }
}

pub use crate::check::typed::AggKind;

/// Event times `[from, to)` in microseconds UTC; `to` is at most the as-of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: i64,
}

#[derive(Debug, Clone)]
pub struct AggRequest {
    pub scope: Scope,
    /// Canonical event name.
    pub event: String,
    pub kind: AggKind,
    /// Property column for sum/avg/min/max.
    pub property: Option<String>,
    /// The `where` predicate over the event's columns.
    pub filter: Option<Expr>,
    pub range: TimeRange,
}

struct Group {
    scope: Scope,
    event: String,
    alias: String,
    items: Vec<(AggRequest, String)>,
}

/// Collects the aggregates a segment needs, then builds one plan per (event, scope).
#[derive(Default)]
pub struct EventAggregates {
    groups: Vec<Group>,
}

pub fn ts_lit(micros: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some("UTC".into()),
    ))
}

fn date_lit(micros: i64, partitioning: crate::store::manifest::Partitioning) -> Expr {
    let date = DateTime::from_timestamp_micros(micros)
        .expect("time in range")
        .date_naive();
    let start = partitioning.period_start(date);
    let days =
        (start - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
    lit(ScalarValue::Date32(Some(days)))
}

impl EventAggregates {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Registers an aggregate and returns the expression that reads it in the joined plan
    /// (count and sum of no events are 0; the others are missing).
    pub fn request(&mut self, req: AggRequest) -> Expr {
        let gi = match self
            .groups
            .iter()
            .position(|g| g.scope == req.scope && g.event == req.event)
        {
            Some(i) => i,
            None => {
                let alias = format!("ev{}", self.groups.len());
                self.groups.push(Group {
                    scope: req.scope,
                    event: req.event.clone(),
                    alias,
                    items: vec![],
                });
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[gi];
        let same = |(r, _): &&(AggRequest, String)| {
            r.kind == req.kind
                && r.property == req.property
                && r.filter == req.filter
                && r.range == req.range
        };
        let name = match group.items.iter().find(same) {
            Some((_, name)) => name.clone(),
            None => {
                let name = format!("a{}", group.items.len());
                group.items.push((req.clone(), name.clone()));
                name
            }
        };
        let column = Expr::Column(Column::new(Some(group.alias.clone()), name));
        match req.kind {
            AggKind::Count => coalesce(vec![column, lit(0i64)]),
            AggKind::Sum => coalesce(vec![column, lit(0.0f64)]),
            _ => column,
        }
    }

    /// `(scope, alias, plan)` for each group: one row per key with a column per aggregate.
    pub fn plans(&self, sources: &TableSources) -> Result<Vec<(Scope, String, LogicalPlan)>> {
        self.groups
            .iter()
            .map(|g| Ok((g.scope, g.alias.clone(), group_plan(g, sources)?)))
            .collect()
    }
}

fn range_condition(r: &TimeRange) -> Expr {
    let upper = col(EVENT_TIME).lt(ts_lit(r.to));
    match r.from {
        Some(from) => col(EVENT_TIME).gt_eq(ts_lit(from)).and(upper),
        None => upper,
    }
}

fn group_plan(g: &Group, sources: &TableSources) -> Result<LogicalPlan> {
    let table = event_table(&g.event);
    // The scan covers the union of the windows: from the earliest start (if every aggregate has
    // one) to the latest end.
    let to = g
        .items
        .iter()
        .map(|(r, _)| r.range.to)
        .max()
        .expect("a group has items");
    let from = g
        .items
        .iter()
        .map(|(r, _)| r.range.from)
        .try_fold(i64::MAX, |acc, f| f.map(|f| acc.min(f)));
    let period = col(sources.period_column);
    let mut scan_filter = col(EVENT_TIME)
        .lt(ts_lit(to))
        .and(period.clone().lt_eq(date_lit(to - 1, sources.partitioning)));
    if let Some(from) = from {
        scan_filter = scan_filter
            .and(col(EVENT_TIME).gt_eq(ts_lit(from)))
            .and(period.gt_eq(date_lit(from, sources.partitioning)));
    }
    if g.scope == Scope::Installation {
        scan_filter = scan_filter.and(col(INSTALLATION_ID).is_not_null());
    }
    // When every aggregate shares one condition, it moves into the scan filter (pushed down and
    // pruned) and the aggregates need no FILTER clause.
    let conditions: Vec<Expr> = g
        .items
        .iter()
        .map(|(r, _)| match &r.filter {
            Some(f) => range_condition(&r.range).and(f.clone()),
            None => range_condition(&r.range),
        })
        .collect();
    let shared = conditions.iter().all(|c| *c == conditions[0]);
    if shared {
        scan_filter = scan_filter.and(conditions[0].clone());
    }
    let mut aggs = Vec::new();
    for ((r, name), cond) in g.items.iter().zip(conditions) {
        let value = || {
            col(r
                .property
                .clone()
                .expect("value aggregates name a property"))
        };
        let agg = match r.kind {
            AggKind::Count => count(lit(1)),
            AggKind::Sum => sum(value()),
            AggKind::Avg => avg(value()),
            AggKind::Min => min(value()),
            AggKind::Max => max(value()),
            AggKind::First => min(col(EVENT_TIME)),
            AggKind::Last => max(col(EVENT_TIME)),
        };
        let agg = if shared {
            agg
        } else {
            agg.filter(cond).build()?
        };
        aggs.push(agg.alias(name));
    }
    LogicalPlanBuilder::scan(table, sources.get(&event_table(&g.event))?, None)?
        .filter(scan_filter)?
        .aggregate(vec![col(g.scope.key())], aggs)?
        .alias(g.alias.as_str())?
        .build()
}
