//! Event conditions, fused: every aggregate over the same event definition and scope is computed
//! in one grouped pass over that event's table, as conditional aggregates (`agg(x) FILTER (WHERE
//! window AND where)`). The scan is restricted to the union of the windows, on the time partition
//! column (partition pruning) and on event_time (row-group pruning). Person-scoped aggregates the
//! snapshot's activity summary holds are read from it instead (one row per person).

use super::sources::TableSources;
use super::summary::{summary_answer, summary_pays_off, Answer};
use crate::base::exprs::{date_lit, to_decimal, ts_lit};
use crate::base::time::{date_of, datetime_of};
use crate::catalog::{EVENT_TIME, INSTALLATION_ID, PERSON_ID};
use crate::store::activity_days::DAYS_TABLE;
use crate::store::event_table;
use crate::store::manifest::Partitioning;
use crate::store::summary::ACTIVITY_TABLE;
use arrow::datatypes::DataType;
use chrono::NaiveTime;
use datafusion::common::Column;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{
    avg, count, count_distinct, first_value, last_value, max, min, sum,
};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{cast, coalesce, col, lit};

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
    /// When `where` is only `property = v` or `property in (v, …)` on a string property: the
    /// property column and the values (the summary may have counts of them).
    pub values: Option<(String, Vec<String>)>,
    pub range: TimeRange,
}

#[derive(Clone)]
pub(super) struct Group {
    pub(super) scope: Scope,
    pub(super) event: String,
    alias: String,
    pub(super) items: Vec<(AggRequest, String)>,
}

impl Group {
    /// The same group without items.
    fn part(&self) -> Group {
        Group {
            items: vec![],
            ..self.clone()
        }
    }
}

/// Whether the scan of `part`'s aggregates reads fewer rows than that of all of `whole`'s.
fn reads_less(part: &Group, whole: &Group, sources: &TableSources) -> bool {
    let rows = |g: &Group| {
        let (from, to) = scan_range(g);
        sources.event_rows_between(&g.event, from, to)
    };
    matches!((rows(part), rows(whole)), (Some(p), Some(w)) if p < w)
}

/// Collects the aggregates a segment needs, then builds one plan per (event, scope).
#[derive(Default)]
pub struct EventAggregates {
    groups: Vec<Group>,
    /// Plans of one row per key built elsewhere (sequences, regularity): scope, alias, plan
    /// with columns `key` and [`PATTERN_VALUE`].
    patterns: Vec<(Scope, String, LogicalPlan)>,
}

/// The value column of a pattern plan.
pub const PATTERN_VALUE: &str = "v";

/// The Date32 literal of the first day of the period holding `micros`.
fn period_lit(micros: i64, partitioning: Partitioning) -> Expr {
    date_lit(partitioning.period_start(date_of(micros)))
}

impl EventAggregates {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.patterns.is_empty()
    }

    /// Whether some aggregate is per installation (it joins the installation side of pairs).
    pub fn any_per_installation(&self) -> bool {
        self.groups.iter().any(|g| g.scope == Scope::Installation)
            || self
                .patterns
                .iter()
                .any(|(s, ..)| *s == Scope::Installation)
    }

    /// Registers a plan of one row per key of `scope` with a column [`PATTERN_VALUE`], and
    /// returns the expression reading that column in the joined plan (null for keys it lacks).
    /// An identical plan is joined once.
    pub fn request_pattern(&mut self, scope: Scope, plan: LogicalPlan) -> Result<Expr> {
        let alias = match self
            .patterns
            .iter()
            .find(|(s, _, p)| *s == scope && p.inputs() == [&plan])
        {
            Some((_, alias, _)) => alias.clone(),
            None => {
                let alias = format!("pt{}", self.patterns.len());
                let aliased = LogicalPlanBuilder::from(plan)
                    .alias(alias.as_str())?
                    .build()?;
                self.patterns.push((scope, alias.clone(), aliased));
                alias
            }
        };
        Ok(Expr::Column(Column::new(Some(alias), PATTERN_VALUE)))
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
            AggKind::Count | AggKind::CountDistinct => coalesce(vec![column, lit(0i64)]),
            AggKind::Sum => coalesce(vec![column, lit(0.0f64)]),
            _ => column,
        }
    }

    /// `(scope, alias, plan)` for each group: one row per key with a column per aggregate. The
    /// groups the activity summary answers read it instead, and `renames` maps their columns:
    /// to the persons scan `persons` of the segment's pairs when it has the summary's columns
    /// (no join at all), else to one shared scan of the summary under [`SUMMARY_ALIAS`] (one
    /// join, not one per event); day-count answers to one scan of them under [`DAYS_ALIAS`].
    pub fn plans(&self, sources: &TableSources, persons: Option<&str>) -> Result<AggPlans> {
        let in_persons = persons.filter(|_| sources.activity_in_persons);
        let mut out = AggPlans::default();
        let mut summary = vec![col(PERSON_ID)];
        let mut days = vec![col(PERSON_ID)];
        // Each group's items the summary answers, and the rest, read raw. A group is split only
        // when the rest's scan reads fewer rows than the whole group's would.
        let split_with = |prefer_days: bool| -> Vec<(Group, Vec<Answer>, Group)> {
            self.groups
                .iter()
                .map(|g| {
                    let (mut answered, mut answers, mut raw) = (g.part(), vec![], g.part());
                    for item in &g.items {
                        match summary_answer(&item.0, sources, prefer_days) {
                            Some(a) => {
                                answered.items.push(item.clone());
                                answers.push(a);
                            }
                            None => raw.items.push(item.clone()),
                        }
                    }
                    if !answered.items.is_empty()
                        && !raw.items.is_empty()
                        && !reads_less(&raw, g, sources)
                    {
                        return (g.part(), vec![], g.clone());
                    }
                    (answered, answers, raw)
                })
                .collect()
        };
        // The items each kind of answer would read instead of raw events, as groups for the
        // cost rule.
        let candidates = |split: &[(Group, Vec<Answer>, Group)], days: bool| -> Vec<Group> {
            split
                .iter()
                .map(|(answered, answers, _)| {
                    let mut part = answered.part();
                    part.items = answered
                        .items
                        .iter()
                        .zip(answers)
                        .filter(|(_, a)| matches!(a, Answer::Days { .. }) == days)
                        .map(|(item, _)| item.clone())
                        .collect();
                    part
                })
                .filter(|g| !g.items.is_empty())
                .collect()
        };
        let pays_off =
            |groups: Vec<Group>| summary_pays_off(&groups.iter().collect::<Vec<_>>(), sources);
        let mut split = split_with(false);
        if !candidates(&split, true).is_empty() {
            let preferred = split_with(true);
            if pays_off(candidates(&preferred, true)) {
                split = preferred;
            }
        }
        // Columns of a scan the segment makes anyway cost nothing to read beside it; the day
        // counts are always a join.
        let use_summary = in_persons.is_some() || pays_off(candidates(&split, false));
        let use_days = pays_off(candidates(&split, true));
        for (answered, answers, mut raw) in split {
            for (answer, item) in answers.into_iter().zip(&answered.items) {
                let name = &item.1;
                let from = Column::new(Some(answered.alias.clone()), name);
                let fused = format!("{}_{name}", answered.alias);
                match answer {
                    Answer::Days { .. } if use_days => {
                        out.renames
                            .insert(from, Expr::Column(Column::new(Some(DAYS_ALIAS), &fused)));
                        days.push(answer.expr(None)?.alias(fused));
                    }
                    Answer::Days { .. } => raw.items.push(item.clone()),
                    _ if !use_summary => raw.items.push(item.clone()),
                    _ => match in_persons {
                        Some(persons) => {
                            out.renames.insert(from, answer.expr(Some(persons))?);
                        }
                        None => {
                            out.renames.insert(
                                from,
                                Expr::Column(Column::new(Some(SUMMARY_ALIAS), &fused)),
                            );
                            summary.push(answer.expr(None)?.alias(fused));
                        }
                    },
                }
            }
            if !raw.items.is_empty() {
                out.plans
                    .push((raw.scope, raw.alias.clone(), group_plan(&raw, sources)?));
            }
        }
        out.plans.extend(self.patterns.iter().cloned());
        if days.len() > 1 {
            let plan = LogicalPlanBuilder::scan(DAYS_TABLE, sources.get(DAYS_TABLE)?, None)?
                .project(days)?
                .alias(DAYS_ALIAS)?
                .build()?;
            out.plans
                .push((Scope::Person, DAYS_ALIAS.to_string(), plan));
        }
        if summary.len() > 1 {
            let plan =
                LogicalPlanBuilder::scan(ACTIVITY_TABLE, sources.get(ACTIVITY_TABLE)?, None)?
                    .project(summary)?
                    .alias(SUMMARY_ALIAS)?
                    .build()?;
            // First: its filters are usually the most selective and cheapest, and DataFusion
            // keeps the join order it is given.
            out.plans
                .insert(0, (Scope::Person, SUMMARY_ALIAS.to_string(), plan));
        }
        Ok(out)
    }
}

/// The alias of the one scan of the activity summary in an assembled plan.
pub const SUMMARY_ALIAS: &str = "act";

/// The alias of the one scan of the day counts (`store::activity_days`) in an assembled plan.
pub const DAYS_ALIAS: &str = "days";

/// The event aggregate plans of a segment, and what reads the aggregates of summary-answered
/// groups instead.
#[derive(Default)]
pub struct AggPlans {
    pub plans: Vec<(Scope, String, LogicalPlan)>,
    pub renames: std::collections::HashMap<Column, Expr>,
}

pub(super) fn range_condition(r: &TimeRange, sources: &TableSources) -> Expr {
    let p = sources.partitioning;
    if is_exact(r, p) {
        let period = col(sources.period_column);
        let upper = period.clone().lt(period_lit(r.to, p));
        return match r.from {
            Some(from) => period.gt_eq(period_lit(from, p)).and(upper),
            None => upper,
        };
    }
    let upper = col(EVENT_TIME).lt(ts_lit(r.to));
    match r.from {
        Some(from) => col(EVENT_TIME).gt_eq(ts_lit(from)).and(upper),
        None => upper,
    }
}

/// Whether the partition periods decide window `r` exactly: both ends fall on the first instant
/// of a period (midnight for day partitions, the 1st for month partitions). Partition values are
/// constant per file, so such a window needs no event_time comparison, and a scan that needs
/// event_time for nothing else does not read the column at all.
fn is_exact(r: &TimeRange, p: Partitioning) -> bool {
    let boundary = |t: i64| {
        datetime_of(t).is_some_and(|dt| {
            let day = dt.date_naive();
            dt.time() == NaiveTime::MIN && p.period_start(day) == day
        })
    };
    boundary(r.to) && r.from.is_none_or(boundary)
}

/// The union of a group's windows: from the earliest start (if every aggregate has one) to the
/// latest end.
pub(super) fn scan_range(g: &Group) -> (Option<i64>, i64) {
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
    (from, to)
}

/// The scan filter of window `window`: unless its periods decide it exactly, also the periods it
/// touches (partition pruning) before the event_time comparison.
pub(super) fn scan_condition(window: &TimeRange, sources: &TableSources) -> Expr {
    let mut scan_filter = range_condition(window, sources);
    if !is_exact(window, sources.partitioning) {
        let period = col(sources.period_column);
        let mut periods = period
            .clone()
            .lt_eq(period_lit(window.to - 1, sources.partitioning));
        if let Some(from) = window.from {
            periods = periods.and(period.gt_eq(period_lit(from, sources.partitioning)));
        }
        scan_filter = periods.and(scan_filter);
    }
    scan_filter
}

fn group_plan(g: &Group, sources: &TableSources) -> Result<LogicalPlan> {
    let table = event_table(&g.event);
    let (from, to) = scan_range(g);
    // The window; unless its periods decide it exactly, also the periods it touches (partition
    // pruning) before the event_time comparison.
    let window = TimeRange { from, to };
    let mut scan_filter = scan_condition(&window, sources);
    if g.scope == Scope::Installation {
        scan_filter = scan_filter.and(col(INSTALLATION_ID).is_not_null());
    }
    // When every aggregate shares one condition, it moves into the scan filter (pushed down and
    // pruned) and the aggregates need no FILTER clause.
    let conditions: Vec<Expr> = g
        .items
        .iter()
        .map(|(r, _)| match &r.filter {
            Some(f) => range_condition(&r.range, sources).and(f.clone()),
            None => range_condition(&r.range, sources),
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
            AggKind::Sum => sum(to_decimal(value())),
            AggKind::Avg => avg(to_decimal(value())),
            AggKind::Min => min(value()),
            AggKind::Max => max(value()),
            AggKind::First => min(col(EVENT_TIME)),
            AggKind::Last => max(col(EVENT_TIME)),
            AggKind::CountDistinct => count_distinct(value()),
            // At one instant a set value wins over a missing one; then the smallest is first and
            // the largest last (a deterministic rule the reference evaluator shares).
            AggKind::FirstValue => first_value(
                value(),
                vec![col(EVENT_TIME).sort(true, false), value().sort(true, false)],
            ),
            AggKind::LastValue => last_value(
                value(),
                vec![col(EVENT_TIME).sort(true, false), value().sort(true, true)],
            ),
        };
        let agg = match agg {
            // Set on the aggregate itself: DataFusion's `.filter(…).build()` resets DISTINCT and
            // ORDER BY, which made `count distinct` a plain count and `first(E).p` unordered
            // whenever a group's aggregates had different windows (several points of a trend).
            Expr::AggregateFunction(mut f) if !shared => {
                f.params.filter = Some(Box::new(cond));
                Expr::AggregateFunction(f)
            }
            agg => agg,
        };
        aggs.push(agg.alias(name));
    }
    let mut outputs = vec![col(g.scope.key())];
    outputs.extend(g.items.iter().map(|(r, name)| match r.kind {
        AggKind::Sum | AggKind::Avg => cast(col(name), DataType::Float64).alias(name),
        _ => col(name),
    }));
    // Property and event-time predicates are cheaper in a FilterExec over decoded batches than
    // inside the Parquet reader. A scan left with partition predicates only is narrowed by
    // nothing but the join's dynamic filter, and that one pays off in the reader: rows of keys
    // the other side lacks are never decoded or aggregated (benches/HISTORY.md, "reader
    // filters").
    let row_filtered =
        is_exact(&window, sources.partitioning) && g.items.iter().all(|(r, _)| r.filter.is_none());
    let source = if row_filtered {
        sources.get_row_filtered(&table)?
    } else {
        sources.get(&table)?
    };
    LogicalPlanBuilder::scan(table, source, None)?
        .filter(scan_filter)?
        .aggregate(vec![col(g.scope.key())], aggs)?
        .project(outputs)?
        .alias(g.alias.as_str())?
        .build()
}
