//! The planner's rule for reading the person activity summary (`store::summary`) instead of raw
//! events: a person-scoped aggregate over one of the summary's windows ending at its as-of,
//! without `where` or with a `where` that only picks values of a summarized string property;
//! a count over whole calendar months; the first event before any time up to its as-of (which
//! no later event changes, so it holds at every earlier as-of too); and only when reading the
//! summary is cheaper than aggregating the window's raw events.

use super::events::{scan_range, AggKind, AggRequest, Group, Scope};
use super::sources::TableSources;
use crate::base::exprs::ts_lit;
use crate::base::time::MICROS_PER_DAY;
use crate::store::summary::{self, month_bounds, Stat, WINDOWS};
use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{lit, when};

/// How summary columns answer an aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The sum of these columns (one column alone; none is a count of 0).
    Sum(Vec<String>),
    /// The first event before `before`: the all-history first time when it is earlier, else
    /// none.
    FirstBefore { column: String, before: i64 },
    /// A count over whole days back from the as-of, from the day counts table
    /// (`store::activity_days`): the events of the last `hi` days less those of the last `lo`.
    Days { hi: String, lo: Option<String> },
}

impl Answer {
    /// The expression reading the answer from the summary's columns, of `relation` if given.
    pub fn expr(&self, relation: Option<&str>) -> datafusion::error::Result<Expr> {
        let column = |c: &str| Expr::Column(Column::new(relation, c));
        Ok(match self {
            Answer::Sum(columns) => columns
                .iter()
                .map(|c| column(c))
                .reduce(|a, b| a + b)
                .unwrap_or(lit(0i64)),
            Answer::FirstBefore { column: c, before } => {
                when(column(c).lt(ts_lit(*before)), column(c)).end()?
            }
            Answer::Days { hi, lo: None } => column(hi),
            Answer::Days { hi, lo: Some(lo) } => column(hi) - column(lo),
        })
    }
}

/// The months (see [`month_bounds`]) whose union is exactly `[from, to)`, if there are such:
/// both ends on month starts (or `to` at the as-of) within the summary's `counted` months.
pub fn months_of(from: Option<i64>, to: i64, as_of: i64, counted: u32) -> Option<Vec<u32>> {
    let from = from?;
    let months: Vec<u32> = (0..=counted)
        .filter(|_| counted > 0)
        .filter(|k| {
            let (start, end) = month_bounds(as_of, *k);
            start < end && start >= from && end <= to
        })
        .collect();
    let first = months.iter().map(|k| month_bounds(as_of, *k).0).min()?;
    let last = months.iter().map(|k| month_bounds(as_of, *k).1).max()?;
    (first == from && last == to).then_some(months)
}

/// The window (in days) a time range `[from, to)` is, if it is one of [`WINDOWS`] ending at
/// `as_of`.
pub fn window_of(from: Option<i64>, to: i64, as_of: i64) -> Option<Option<i64>> {
    if to != as_of {
        return None;
    }
    WINDOWS.into_iter().find(|w| match (w, from) {
        (None, None) => true,
        (Some(d), Some(f)) => f == as_of - d * MICROS_PER_DAY,
        _ => false,
    })
}

/// How the snapshot's person activity summary answers `r`, if it does: a person-scoped
/// aggregate over one of the summary's windows ending at its as-of, without `where`, or a count
/// whose `where` only picks values of one summarized string property (one column a value; a
/// value the history never had adds nothing), or a count without `where` over whole calendar
/// months (one column a month), or the first event over all history before a time no later than
/// its as-of (at a backtest's or a trend point's as-of too).
///
/// With `prefer_days`, the day counts answer what they can before the summary's own columns: a
/// plan that joins the day counts anyway (a trend's earlier points) then reads its snapshot-as-of
/// windows from the same join instead of joining the summary too.
pub(super) fn summary_answer(
    r: &AggRequest,
    sources: &TableSources,
    prefer_days: bool,
) -> Option<Answer> {
    match prefer_days {
        true => days_answer(r, sources).or_else(|| fixed_answer(r, sources)),
        false => fixed_answer(r, sources).or_else(|| days_answer(r, sources)),
    }
}

/// A person-scoped count without `where` over whole days back from the summary's as-of, within
/// the day counts' horizon: `[as-of − x days, as-of − y days)` is column x less column y, at the
/// snapshot's as-of and at every earlier one a whole number of days before it.
fn days_answer(r: &AggRequest, sources: &TableSources) -> Option<Answer> {
    let as_of = sources.activity_as_of?;
    let (events, horizon) = sources.activity_days.as_ref()?;
    if r.scope != Scope::Person || r.kind != AggKind::Count || r.filter.is_some() {
        return None;
    }
    if !events.contains(&r.event) {
        return None;
    }
    let back = |t: i64| {
        let d = as_of.checked_sub(t)?;
        (d >= 0 && d % MICROS_PER_DAY == 0).then_some(d / MICROS_PER_DAY)
    };
    let (x, y) = (back(r.range.from?)?, back(r.range.to)?);
    if x <= y || x > i64::from(*horizon) {
        return None;
    }
    let column = |k: i64| crate::store::activity_days::column(&r.event, k as u32);
    Some(Answer::Days {
        hi: column(x),
        lo: (y > 0).then(|| column(y)),
    })
}

/// The answers of the summary's own columns (see [`summary_answer`]).
fn fixed_answer(r: &AggRequest, sources: &TableSources) -> Option<Answer> {
    let as_of = sources.activity_as_of?;
    if r.scope != Scope::Person {
        return None;
    }
    if r.kind == AggKind::First && r.filter.is_none() && r.range.from.is_none() {
        if r.range.to > as_of {
            return None;
        }
        let column = summary::column(&r.event, Stat::First, None, None);
        return Some(match r.range.to == as_of {
            true => Answer::Sum(vec![column]),
            false => Answer::FirstBefore {
                column,
                before: r.range.to,
            },
        });
    }
    let Some(days) = window_of(r.range.from, r.range.to, as_of) else {
        // Counts over whole calendar months (`between 2026-01-01 and 2026-06-30`).
        if r.kind != AggKind::Count || r.filter.is_some() {
            return None;
        }
        let months = months_of(
            r.range.from,
            r.range.to,
            as_of,
            sources.activity_columns.months,
        )?;
        return Some(Answer::Sum(
            months
                .into_iter()
                .map(|k| summary::month_column(&r.event, k))
                .collect(),
        ));
    };
    if r.filter.is_some() {
        let (property, wanted) = r.values.as_ref().filter(|_| r.kind == AggKind::Count)?;
        let summarized = sources
            .activity_columns
            .values
            .get(&r.event)?
            .get(property)?;
        let mut indexes: Vec<usize> = wanted
            .iter()
            .filter_map(|v| summarized.iter().position(|s| s == v))
            .collect();
        indexes.sort();
        indexes.dedup();
        return Some(Answer::Sum(
            indexes
                .into_iter()
                .map(|i| summary::value_column(&r.event, property, i, days))
                .collect(),
        ));
    }
    let (stat, property) = match r.kind {
        AggKind::Count => (Stat::Count, None),
        AggKind::Sum => (Stat::Sum, r.property.as_deref()),
        AggKind::Avg => (Stat::Avg, r.property.as_deref()),
        AggKind::Min => (Stat::Min, r.property.as_deref()),
        AggKind::Max => (Stat::Max, r.property.as_deref()),
        AggKind::First if days.is_none() => (Stat::First, None),
        AggKind::Last if days.is_none() => (Stat::Last, None),
        AggKind::First | AggKind::Last => return None,
        AggKind::CountDistinct | AggKind::FirstValue | AggKind::LastValue => return None,
    };
    Some(Answer::Sum(vec![summary::column(
        &r.event, stat, property, days,
    )]))
}

/// Whether the groups the summary can answer should read it rather than raw events. The summary
/// costs one scan of one row per person, shared by all of them; each raw group costs its rows
/// plus a scan, an aggregate and a join, which measure like half a summary scan
/// (benches/HISTORY.md, "when the summary pays off"). So two groups or more always read the
/// summary, a single one when it has at least half as many rows as there are persons. Without row counts (schema-only sources), the summary.
pub(super) fn summary_pays_off(groups: &[&Group], sources: &TableSources) -> bool {
    let mut raw: u64 = 0;
    for g in groups {
        let (from, to) = scan_range(g);
        match sources.event_rows_between(&g.event, from, to) {
            Some(rows) => raw += rows + sources.activity_rows / 2,
            None => return true,
        }
    }
    raw >= sources.activity_rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::summary::MONTHS;

    #[test]
    fn windows_are_recognised_only_when_they_end_at_the_as_of() {
        let as_of = 1_000 * MICROS_PER_DAY;
        assert_eq!(
            window_of(Some(as_of - 30 * MICROS_PER_DAY), as_of, as_of),
            Some(Some(30))
        );
        assert_eq!(window_of(None, as_of, as_of), Some(None));
        assert_eq!(
            window_of(Some(as_of - 14 * MICROS_PER_DAY), as_of, as_of),
            None
        );
        assert_eq!(window_of(None, as_of - 1, as_of), None);
    }

    #[test]
    fn calendar_months_answer_windows_that_are_whole_months() {
        let us = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        let as_of = us("2026-11-01T00:00:00Z");
        // January to June: months 10 down to 5; the as-of's month is empty and left out.
        let h1 = months_of(
            Some(us("2026-01-01T00:00:00Z")),
            us("2026-07-01T00:00:00Z"),
            as_of,
            MONTHS,
        );
        assert_eq!(h1, Some(vec![5, 6, 7, 8, 9, 10]));
        assert_eq!(
            months_of(Some(us("2026-03-01T00:00:00Z")), as_of, as_of, MONTHS),
            Some((1..=8).collect())
        );
        // Not month starts, before the summary's months, or all history: raw events.
        assert_eq!(
            months_of(Some(us("2026-01-02T00:00:00Z")), as_of, as_of, MONTHS),
            None
        );
        assert_eq!(
            months_of(Some(us("2025-10-01T00:00:00Z")), as_of, as_of, MONTHS),
            None
        );
        assert_eq!(months_of(None, as_of, as_of, MONTHS), None);
        // A summary without month counts (written before them) answers no month window.
        assert_eq!(
            months_of(Some(us("2026-03-01T00:00:00Z")), as_of, as_of, 0),
            None
        );
        // An as-of in mid-month: `since` its month's 1st is month 0 alone.
        let mid = us("2026-11-15T12:00:00Z");
        assert_eq!(
            months_of(Some(us("2026-11-01T00:00:00Z")), mid, mid, MONTHS),
            Some(vec![0])
        );
        assert_eq!(
            months_of(Some(us("2026-10-01T00:00:00Z")), mid, mid, MONTHS),
            Some(vec![0, 1])
        );
    }
}
