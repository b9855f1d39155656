//! The person activity summary: one row per person with the event aggregates segments use most
//! (counts, sums, min/max/avg of number properties, first/last times) over fixed windows ending
//! at the snapshot's as-of time; counts per value of few-valued string properties over the same
//! windows; and counts per calendar month. It is written with the snapshot as columns of the
//! persons file (snapshots written before that have a `person_activity.parquet` of its own;
//! both are read), and the manifest records which value and month columns it has.
//!
//! Why this and not daily rollups: on the benchmark store a person-day holds 1.58 AppLaunch
//! events on average (53.4M events, 33.9M person-days), so a daily rollup saves little, while a
//! per-person row turns "count(AppLaunch within 30d)" from aggregating 4.7M events into reading
//! one column of 1M rows, and an all-history `last(AppLaunch)` from 53M events into the same.
//! The planner reads it for person-scoped aggregates over one of [`WINDOWS`] ending at the
//! snapshot's as-of (without `where`, or counts whose `where` picks values of one summarized
//! property) and for counts over whole calendar months; otherwise it reads raw events.

use crate::catalog::{Catalog, ValueType, EVENT_TIME, PERSON_ID};
use crate::error::{IoContext, Result};
use arrow::array::Array;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::Datelike;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const ACTIVITY_TABLE: &str = "person_activity";
/// The persons file with the summary's columns, replacing the writer's persons file.
pub const PERSONS_FILE: &str = "persons_with_activity.parquet";

/// Window lengths in days ending at the as-of time; `None` is all history.
pub const WINDOWS: [Option<i64>; 6] = [Some(7), Some(30), Some(90), Some(180), Some(365), None];

const MICROS_PER_DAY: i64 = 86_400_000_000;

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
    use crate::plan::lower::{date_of, micros_of_date};
    let m0 = date_of(as_of).with_day(1).expect("every month has a 1st");
    if k == 0 {
        return (micros_of_date(m0), as_of);
    }
    let start = m0 - chrono::Months::new(k);
    let end = m0 - chrono::Months::new(k - 1);
    (micros_of_date(start), micros_of_date(end))
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

/// Every summary column: (name, type, what computes it).
struct Col {
    name: String,
    ty: DataType,
    event: String,
    stat: Stat,
    property: Option<String>,
    days: Option<i64>,
    /// Counts only events whose string property (column) has this value.
    value: Option<(String, String)>,
    /// Counts only the events of this calendar month (see [`month_bounds`]); `days` is None.
    month: Option<u32>,
}

fn columns(catalog: &Catalog, extra: &SummaryColumns) -> Vec<Col> {
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

/// The plan that computes the persons table with the summary beside it, for the persons with
/// ids in `persons` (`[from, to)`), from a session holding the snapshot's `persons` and
/// `event_<Name>` tables: per event one grouped pass with a FILTER per window, left-joined to
/// every person, in person order.
pub async fn plan(
    ctx: &datafusion::prelude::SessionContext,
    catalog: &Catalog,
    extra: &SummaryColumns,
    as_of: i64,
    persons: (i64, i64),
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use crate::plan::events::{to_decimal, ts_lit};
    use crate::store::{event_table, PERSONS_TABLE};
    use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
    use datafusion::logical_expr::{col, lit, Expr, ExprFunctionExt, JoinType};
    use datafusion::prelude::{cast, coalesce};
    {
        let cols = columns(catalog, extra);
        let in_range = || {
            col(PERSON_ID)
                .gt_eq(lit(persons.0))
                .and(col(PERSON_ID).lt(lit(persons.1)))
        };
        let mut df = ctx.table(PERSONS_TABLE).await?.filter(in_range())?;
        let mut outputs: Vec<Expr> = super::schema::persons_schema(catalog)
            .fields()
            .iter()
            .map(|f| col(f.name()))
            .collect();
        for (i, e) in catalog.events.iter().enumerate() {
            let mut aggs = Vec::new();
            for c in cols.iter().filter(|c| c.event == e.name) {
                let value = || col(c.property.clone().expect("property stat"));
                let agg = match c.stat {
                    Stat::Count => count(lit(1)),
                    Stat::Sum => sum(to_decimal(value())),
                    Stat::Min => min(value()),
                    Stat::Max => max(value()),
                    Stat::Avg => avg(to_decimal(value())),
                    Stat::First => min(col(EVENT_TIME)),
                    Stat::Last => max(col(EVENT_TIME)),
                };
                let window = match (c.days, c.month) {
                    (Some(d), _) => Some(col(EVENT_TIME).gt_eq(ts_lit(as_of - d * MICROS_PER_DAY))),
                    (None, Some(k)) => {
                        let (from, to) = month_bounds(as_of, k);
                        Some(
                            col(EVENT_TIME)
                                .gt_eq(ts_lit(from))
                                .and(col(EVENT_TIME).lt(ts_lit(to))),
                        )
                    }
                    (None, None) => None,
                };
                let value = c
                    .value
                    .as_ref()
                    .map(|(property, v)| col(property.as_str()).eq(lit(v.as_str())));
                let agg = match window.into_iter().chain(value).reduce(Expr::and) {
                    Some(condition) => agg.filter(condition).build()?,
                    None => agg,
                };
                aggs.push(agg.alias(&c.name));
                let out = match c.stat {
                    Stat::Count => coalesce(vec![col(&c.name), lit(0i64)]),
                    _ => col(&c.name),
                };
                outputs.push(cast(out, c.ty.clone()).alias(&c.name));
            }
            let key = format!("k{i}");
            let events = ctx
                .table(event_table(&e.name).as_str())
                .await?
                .filter(col(EVENT_TIME).lt(ts_lit(as_of)).and(in_range()))?
                .aggregate(vec![col(PERSON_ID).alias(&key)], aggs)?;
            df = df.join(events, JoinType::Left, &[PERSON_ID], &[&key], None)?;
        }
        Ok(df
            .select(outputs)?
            .sort(vec![col(PERSON_ID).sort(true, false)])?
            .into_unoptimized_plan())
    }
}

/// Persons a range when the summary is built in ranges of person ids: each range is joined and
/// sorted in memory, about 340 columns a person on the benchmark catalog (all at once, the 1M
/// store peaked at 5.1 GB with 240 columns; DataFusion's hash joins cannot spill).
const PERSONS_PER_RANGE: u64 = 250_000;

/// Ranges `[from, to)` of person ids, in order, that split the persons into parts of about
/// [`PERSONS_PER_RANGE`] (ids evenly spread between the least and the greatest).
async fn person_ranges(
    ctx: &datafusion::prelude::SessionContext,
    persons: u64,
) -> Result<Vec<(i64, i64)>> {
    use crate::store::PERSONS_TABLE;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use datafusion::functions_aggregate::expr_fn::{max, min};
    use datafusion::logical_expr::col;
    let batches = ctx
        .table(PERSONS_TABLE)
        .await?
        .aggregate(vec![], vec![min(col(PERSON_ID)), max(col(PERSON_ID))])?
        .collect()
        .await?;
    let (lo, hi) = match batches.first().filter(|b| b.num_rows() == 1) {
        Some(b) if b.column(0).is_valid(0) => (
            b.column(0).as_primitive::<Int64Type>().value(0),
            b.column(1).as_primitive::<Int64Type>().value(0),
        ),
        // No persons: one empty range writes an empty file with the schema.
        _ => return Ok(vec![(0, 0)]),
    };
    Ok(split_ids(
        lo,
        hi,
        persons.div_ceil(PERSONS_PER_RANGE).max(1) as i64,
    ))
}

/// `parts` ranges `[from, to)` of equal width, in order, covering the ids `lo..=hi`.
fn split_ids(lo: i64, hi: i64, parts: i64) -> Vec<(i64, i64)> {
    let width = ((hi - lo + 1) / parts).max(1);
    let mut ranges: Vec<(i64, i64)> = (0..parts)
        .map(|k| (lo + k * width, lo + (k + 1) * width))
        .take_while(|(from, _)| *from <= hi)
        .collect();
    ranges.last_mut().expect("lo <= hi").1 = hi + 1;
    ranges
}

/// The values the summary counts events of (see [`SummaryValues`]), from the history before
/// `as_of` in a session holding the snapshot's event tables.
pub async fn values(
    ctx: &datafusion::prelude::SessionContext,
    catalog: &Catalog,
    as_of: i64,
) -> Result<SummaryValues> {
    use crate::plan::events::ts_lit;
    use crate::store::event_table;
    use arrow::array::AsArray;
    use datafusion::logical_expr::col;
    use datafusion::prelude::cast;
    let mut out = SummaryValues::new();
    for e in &catalog.events {
        for p in e.properties.iter().filter(|p| p.ty == ValueType::String) {
            let batches = ctx
                .table(event_table(&e.name).as_str())
                .await?
                .filter(
                    col(EVENT_TIME)
                        .lt(ts_lit(as_of))
                        .and(col(p.column.as_str()).is_not_null()),
                )?
                .aggregate(
                    vec![cast(col(p.column.as_str()), DataType::Utf8).alias("v")],
                    vec![],
                )?
                .limit(0, Some(MAX_VALUES + 1))?
                .collect()
                .await?;
            let mut list: Vec<String> = batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            if !list.is_empty() && list.len() <= MAX_VALUES {
                list.sort();
                out.entry(e.name.clone())
                    .or_default()
                    .insert(p.column.clone(), list);
            }
        }
    }
    Ok(out)
}

/// Computes the summary of the snapshot being written (its tables read from staging) and
/// rewrites the persons file with the summary's columns beside the attributes, so segments
/// over persons read both in one scan instead of joining a million summary rows to a million
/// persons (1M-person store: segment 16 129 → 27 ms, 12 100 → 49 ms, 15 105 → 66 ms). Records
/// the new file in `manifest` as both, with the extra columns it has; the staged persons files
/// it replaces are removed.
///
/// Runs DataFusion on a runtime of its own thread, so writers may call it from sync code or from
/// inside another runtime.
pub fn build(
    staging: &super::publish::Staging,
    manifest: &mut super::manifest::Manifest,
    threads: usize,
) -> Result<()> {
    use datafusion::prelude::{SessionConfig, SessionContext};
    use futures::StreamExt;
    let work = || -> Result<(super::manifest::DataFile, SummaryColumns)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| crate::error::Error::io(staging.local_path(PERSONS_FILE), e))?;
        rt.block_on(async {
            // Reader-side filters: each range decodes the key column of every event file,
            // and the other columns only of its own persons' rows.
            let mut config = SessionConfig::new().with_target_partitions(threads.max(1));
            config.options_mut().execution.parquet.pushdown_filters = true;
            let ctx = SessionContext::new_with_config(config);
            super::register::register(
                manifest,
                &|rel| staging.resolve(rel),
                &ctx,
                super::TableFiles::Manifest,
            )
            .await?;
            let as_of = manifest.as_of.timestamp_micros();
            let extra = SummaryColumns {
                values: values(&ctx, &manifest.catalog, as_of).await?,
                months: MONTHS,
            };
            let schema = persons_with_activity_schema(&manifest.catalog, &extra);
            let key = schema.index_of(PERSON_ID)?;
            let mut file = staging.parquet_writer(PERSONS_FILE, schema.clone(), &[key])?;
            for range in person_ranges(&ctx, manifest.row_counts.persons).await? {
                let plan = plan(&ctx, &manifest.catalog, &extra, as_of, range).await?;
                let mut stream = ctx
                    .execute_logical_plan(plan)
                    .await?
                    .execute_stream()
                    .await?;
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    file.write(&arrow::array::RecordBatch::try_new(
                        schema.clone(),
                        batch.columns().to_vec(),
                    )?)?;
                }
            }
            Ok((file.finish()?, extra))
        })
    };
    let (file, extra) = std::thread::scope(|s| s.spawn(work).join())
        .map_err(|_| crate::error::Error::Usage("the activity summary build panicked".into()))??;
    for old in std::mem::replace(&mut manifest.persons, vec![file.clone()]) {
        let path = staging.resolve(&old.path);
        std::fs::remove_file(&path).at(&path)?;
    }
    manifest.person_activity = Some(file);
    manifest.activity_columns = extra;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            month_bounds(as_of, 1),
            (us("2026-10-01T00:00:00Z"), us("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            month_bounds(as_of, 12),
            (us("2025-11-01T00:00:00Z"), us("2025-12-01T00:00:00Z"))
        );
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

    #[test]
    fn person_ranges_cover_every_id_once_in_order() {
        for (lo, hi, parts) in [
            (1, 1_000_000, 4),
            (0, 10, 3),
            (5, 7, 10),
            (3, 3, 1),
            (-4, 9, 2),
        ] {
            let ranges = split_ids(lo, hi, parts);
            assert!(ranges.len() as i64 <= parts, "{ranges:?}");
            assert_eq!(ranges[0].0, lo);
            assert_eq!(ranges.last().unwrap().1, hi + 1);
            for w in ranges.windows(2) {
                assert_eq!(w[0].1, w[1].0, "{ranges:?}");
            }
            assert!(ranges.iter().all(|(f, t)| f < t), "{ranges:?}");
        }
        assert_eq!(
            split_ids(1, 1_000_000, 4),
            [
                (1, 250_001),
                (250_001, 500_001),
                (500_001, 750_001),
                (750_001, 1_000_001)
            ]
        );
    }

    #[test]
    fn schema_covers_every_event() {
        let s = schema(&Catalog::sample(), &SummaryColumns::default());
        assert!(s.field_with_name("applaunch__count_30d").is_ok());
        assert!(s.field_with_name("applaunch__last_all").is_ok());
        assert!(s.field_with_name("purchase__sum_amount_all").is_ok());
    }
}
