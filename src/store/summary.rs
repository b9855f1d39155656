//! The person activity summary's column contract: which columns a snapshot's summary has, what
//! each holds, and its schema. The summary is one row per person with the event aggregates
//! segments use most (counts, sums, min/max/avg of number properties, first/last times) over
//! fixed windows ending at the snapshot's as-of time; counts per value of few-valued string
//! properties over the same windows; and counts per calendar month. It is written with the
//! snapshot as columns of the persons file (snapshots written before that have a
//! `person_activity.parquet` of its own; both are read), and the manifest records which value
//! and month columns it has. [`super::summarize`] builds it; the planner decides when a segment
//! reads it (`plan::summary`).
//!
//! Why this and not daily rollups: on the benchmark store a person-day holds about 1.6
//! AppLaunch events, so a daily rollup would shrink the scan little, while a per-person row
//! turns a 30-day count from aggregating millions of events into reading one column of one row
//! a person (benches/HISTORY.md has the figures). Its windows end at the snapshot's as-of; the
//! day counts of dense events (`super::activity_days`) answer whole-day windows at earlier ones.

use crate::base::time::{date_of, micros_of_date};
use crate::catalog::{Catalog, ValueType, PERSON_ID};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::Datelike;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const ACTIVITY_TABLE: &str = "person_activity";
/// The persons file with the summary's columns, replacing the writer's persons file.
pub const PERSONS_FILE: &str = "persons_with_activity.parquet";

/// Window lengths in days ending at the as-of time; `None` is all history.
pub const WINDOWS: [Option<i64>; 6] = [Some(7), Some(30), Some(90), Some(180), Some(365), None];

/// What a summary column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// Time of the first event (all history only).
    First,
    /// Time of the last event (all history only).
    Last,
}

impl Stat {
    fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Avg => "avg",
            Stat::First => "first",
            Stat::Last => "last",
        }
    }
}

fn window_name(days: Option<i64>) -> String {
    days.map_or("all".into(), |d| format!("{d}d"))
}

/// The column for `stat` of `event` (of number `property` for sum/min/max/avg) over `days`.
pub fn column(event: &str, stat: Stat, property: Option<&str>, days: Option<i64>) -> String {
    let event = event.to_ascii_lowercase();
    match property {
        Some(p) => format!("{event}__{}_{p}_{}", stat.name(), window_name(days)),
        None => format!("{event}__{}_{}", stat.name(), window_name(days)),
    }
}

/// The count column of `event` over `days` restricted to the `index`th summarized value of
/// string property `property` (see [`SummaryValues`]).
pub fn value_column(event: &str, property: &str, index: usize, days: Option<i64>) -> String {
    format!(
        "{}__count_{}__{property}_{index}",
        event.to_ascii_lowercase(),
        window_name(days)
    )
}

/// Per event and string property, the values the summary counts events of, sorted: every value
/// the property took in the history, for properties of at most [`MAX_VALUES`] values. A value
/// missing from a list never occurred, so its counts are 0.
pub type SummaryValues = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// What a snapshot's summary holds beyond the columns its catalog alone implies; recorded in the
/// manifest, so that snapshots written before these columns existed are not read as if they had
/// them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SummaryColumns {
    /// Counts per value of few-valued string properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: SummaryValues,
    /// Counts per calendar month, months 0 to `months` (see [`month_bounds`]); 0: none.
    #[serde(default)]
    pub months: u32,
}

impl SummaryColumns {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.months == 0
    }
}

/// Properties with more values than this (AddToCart's 20K skus) get no value columns: 6 windows
/// a value is already 96 columns at this bound.
pub const MAX_VALUES: usize = 16;

/// Calendar months (UTC) the summary counts each event in, before the as-of's own month.
pub const MONTHS: u32 = 12;

/// The count column of `event` in month `k` (see [`month_bounds`]).
pub fn month_column(event: &str, k: u32) -> String {
    format!("{}__count_month_{k}", event.to_ascii_lowercase())
}

/// `[from, to)` of month `k` of a summary made at `as_of`: 0 is the as-of's month up to the
/// as-of, `k` ≥ 1 the `k`th whole calendar month before it.
pub fn month_bounds(as_of: i64, k: u32) -> (i64, i64) {
    let m0 = date_of(as_of).with_day(1).expect("every month has a 1st");
    if k == 0 {
        return (micros_of_date(m0), as_of);
    }
    let start = m0 - chrono::Months::new(k);
    let end = m0 - chrono::Months::new(k - 1);
    (micros_of_date(start), micros_of_date(end))
}

/// Every summary column: (name, type, what computes it).
pub(super) struct Col {
    pub(super) name: String,
    pub(super) ty: DataType,
    pub(super) event: String,
    pub(super) stat: Stat,
    pub(super) property: Option<String>,
    pub(super) days: Option<i64>,
    /// Counts only events whose string property (column) has this value.
    pub(super) value: Option<(String, String)>,
    /// Counts only the events of this calendar month (see [`month_bounds`]); `days` is None.
    pub(super) month: Option<u32>,
}

pub(super) fn columns(catalog: &Catalog, extra: &SummaryColumns) -> Vec<Col> {
    let mut out = Vec::new();
    for e in &catalog.events {
        let col = |stat: Stat, property: Option<&str>, days: Option<i64>, ty: DataType| Col {
            name: column(&e.name, stat, property, days),
            ty,
            event: e.name.clone(),
            stat,
            property: property.map(str::to_string),
            days,
            value: None,
            month: None,
        };
        for days in WINDOWS {
            out.push(col(Stat::Count, None, days, DataType::Int64));
        }
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        out.push(col(Stat::First, None, None, ts.clone()));
        out.push(col(Stat::Last, None, None, ts));
        for p in e.properties.iter().filter(|p| p.ty == ValueType::Number) {
            for stat in [Stat::Sum, Stat::Min, Stat::Max, Stat::Avg] {
                for days in WINDOWS {
                    out.push(col(stat, Some(&p.column), days, DataType::Float64));
                }
            }
        }
        for k in (0..=extra.months).filter(|_| extra.months > 0) {
            out.push(Col {
                name: month_column(&e.name, k),
                month: Some(k),
                ..col(Stat::Count, None, None, DataType::Int64)
            });
        }
        for (property, list) in extra.values.get(&e.name).into_iter().flatten() {
            for (i, v) in list.iter().enumerate() {
                for days in WINDOWS {
                    out.push(Col {
                        name: value_column(&e.name, property, i, days),
                        value: Some((property.clone(), v.clone())),
                        ..col(Stat::Count, None, days, DataType::Int64)
                    });
                }
            }
        }
    }
    out
}

/// The summary's schema, from the catalog and the manifest's record of its extra columns (so
/// planning needs no file).
pub fn schema(catalog: &Catalog, extra: &SummaryColumns) -> SchemaRef {
    let mut fields = vec![Field::new(PERSON_ID, DataType::Int64, false)];
    fields.extend(
        columns(catalog, extra)
            .into_iter()
            // Counts are 0 without events, never null, so a count's `coalesce(c, 0)`
            // simplifies away.
            .map(|c| Field::new(c.name, c.ty, c.stat != Stat::Count)),
    );
    Arc::new(Schema::new(fields))
}

/// The persons table of a snapshot that stores its summary beside the persons' attributes: the
/// attributes, then every summary column.
pub fn persons_with_activity_schema(catalog: &Catalog, extra: &SummaryColumns) -> SchemaRef {
    let persons = super::schema::persons_schema(catalog);
    let summary = schema(catalog, extra);
    let fields = persons
        .fields()
        .iter()
        .chain(summary.fields().iter().filter(|f| f.name() != PERSON_ID))
        .cloned()
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_are_calendar_months_before_the_as_of() {
        let us = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        let as_of = us("2026-11-01T00:00:00Z");
        assert_eq!(
            month_bounds(as_of, 1),
            (us("2026-10-01T00:00:00Z"), us("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            month_bounds(as_of, 12),
            (us("2025-11-01T00:00:00Z"), us("2025-12-01T00:00:00Z"))
        );
        let mid = us("2026-11-15T12:00:00Z");
        assert_eq!(month_bounds(mid, 0), (us("2026-11-01T00:00:00Z"), mid));
    }

    #[test]
    fn schema_covers_every_event() {
        let s = schema(&Catalog::sample(), &SummaryColumns::default());
        assert!(s.field_with_name("applaunch__count_30d").is_ok());
        assert!(s.field_with_name("applaunch__last_all").is_ok());
        assert!(s.field_with_name("purchase__sum_amount_all").is_ok());
    }
}
