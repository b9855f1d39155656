//! Day counts: per person, for each dense event and each `k` in `1..=days`, how many of the
//! person's events fall in the last `k` days before the snapshot's as-of (`[as_of − k days,
//! as_of)`). Unlike the activity summary's fixed windows, these compose: a count over
//! `[as_of − x days, as_of − y days)` is column `x` less column `y`, so every window of whole
//! days ending at any day-aligned as-of in the horizon (a backtest, every point of a trend) is
//! two columns of one row a person instead of a scan of the window's events.
//!
//! Which events: the dense ones, whose horizon holds at least [`DENSE_PER_PERSON`] events a
//! person (AppLaunch, ViewProduct in the benchmark store). A raw window of those reads millions
//! of rows; sparse events (Purchase) are cheaper to read raw than to join. The file has one row
//! per person with any such event in the horizon (a person without a row counts 0), sorted by
//! person, and is written with every snapshot that has an activity summary, so an incremental
//! import rebuilds it too. What they bought: benches/HISTORY.md, "day counts".

use super::manifest::{DataFile, Manifest};
use crate::base::time::MICROS_PER_DAY;
use crate::catalog::{EVENT_TIME, PERSON_ID};
use crate::error::Result;
use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const DAYS_TABLE: &str = "activity_days";
pub const DAYS_FILE: &str = "activity_days.parquet";

/// How many days back the counts reach: a 90-day window 30 days back, or a trend of 30 daily
/// points over 90-day windows.
pub const HORIZON_DAYS: u32 = 120;

/// Events a person over the horizon for an event to get day counts.
pub const DENSE_PER_PERSON: u64 = 5;

/// Persons a pass: the counts of a pass are `persons × days` integers an event in memory.
const PERSONS_PER_PASS: i64 = 125_000;

/// Persons a written batch: its columns are `persons × days` integers an event.
const PERSONS_PER_BATCH: usize = 8_192;

/// What a snapshot's day counts hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityDays {
    pub file: DataFile,
    /// Columns `1..=days` of each event.
    pub days: u32,
    /// The events counted, in column order.
    pub events: Vec<String>,
}

/// The column of `event`'s events in the last `k` days.
pub fn column(event: &str, k: u32) -> String {
    format!("{}__last_{k}d", event.to_ascii_lowercase())
}

/// The file's schema: the person, then each event's columns `1..=days`.
pub fn schema(events: &[String], days: u32) -> SchemaRef {
    let mut fields = vec![Field::new(PERSON_ID, DataType::Int64, false)];
    for e in events {
        fields.extend((1..=days).map(|k| Field::new(column(e, k), DataType::Int64, false)));
    }
    Arc::new(Schema::new(fields))
}

/// The dense events of `m`: those whose files in the horizon hold at least
/// [`DENSE_PER_PERSON`] rows a person.
pub fn dense_events(m: &Manifest) -> Vec<String> {
    let from = crate::base::time::date_of(
        m.as_of.timestamp_micros() - i64::from(HORIZON_DAYS) * MICROS_PER_DAY,
    );
    let persons = m.row_counts.persons.max(1);
    m.catalog
        .events
        .iter()
        .map(|e| e.name.clone())
        .filter(|name| {
            let rows: u64 = m
                .events
                .iter()
                .filter(|f| &f.event == name && m.partitioning.period_start(from) <= f.period)
                .map(|f| f.file.rows)
                .sum();
            rows >= DENSE_PER_PERSON * persons
        })
        .collect()
}

/// Writes the day counts of the snapshot being written, from a session over its staged tables,
/// and returns what the manifest records (`None` without dense events).
pub async fn build(
    ctx: &datafusion::prelude::SessionContext,
    staging: &super::publish::Staging,
    m: &Manifest,
    persons: &[(i64, i64)],
) -> Result<Option<ActivityDays>> {
    use datafusion::logical_expr::{col, lit};
    let events = dense_events(m);
    if events.is_empty() {
        return Ok(None);
    }
    let days = HORIZON_DAYS;
    let as_of = m.as_of.timestamp_micros();
    let from = as_of - i64::from(days) * MICROS_PER_DAY;
    let schema = schema(&events, days);
    let mut file = staging.parquet_writer(DAYS_FILE, schema.clone(), &[0])?;
    for (lo, hi) in persons.iter().flat_map(|r| passes(*r)) {
        let width = (hi - lo) as usize;
        // counts[e][person][d]: events of day d back (0: the last day before the as-of).
        let mut counts = vec![vec![0u32; width * days as usize]; events.len()];
        for (e, name) in events.iter().enumerate() {
            let mut stream = ctx
                .table(super::event_table(name).as_str())
                .await?
                .filter(
                    col(EVENT_TIME)
                        .gt_eq(crate::base::exprs::ts_lit(from))
                        .and(col(EVENT_TIME).lt(crate::base::exprs::ts_lit(as_of)))
                        .and(col(PERSON_ID).gt_eq(lit(lo)))
                        .and(col(PERSON_ID).lt(lit(hi))),
                )?
                .select(vec![col(PERSON_ID), col(EVENT_TIME)])?
                .execute_stream()
                .await?;
            use futures::StreamExt;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let ids = batch.column(0).as_primitive::<Int64Type>();
                let times = batch.column(1).as_primitive::<TimestampMicrosecondType>();
                for (id, t) in ids.iter().zip(times.iter()) {
                    let (Some(id), Some(t)) = (id, t) else {
                        continue;
                    };
                    let back = ((as_of - 1 - t) / MICROS_PER_DAY) as usize;
                    counts[e][(id - lo) as usize * days as usize + back] += 1;
                }
            }
        }
        for start in (0..width).step_by(PERSONS_PER_BATCH) {
            let persons = start..(start + PERSONS_PER_BATCH).min(width);
            if let Some(batch) = pass_batch(&schema, &counts, lo, persons, days as usize)? {
                file.write(&batch)?;
            }
        }
    }
    Ok(Some(ActivityDays {
        file: file.finish()?,
        days,
        events,
    }))
}

/// `range` split into passes of at most [`PERSONS_PER_PASS`] ids.
fn passes((lo, hi): (i64, i64)) -> Vec<(i64, i64)> {
    (0..)
        .map(|i| lo + i * PERSONS_PER_PASS)
        .take_while(|from| *from < hi)
        .map(|from| (from, (from + PERSONS_PER_PASS).min(hi)))
        .collect()
}

/// The rows of `persons` (indexes into a pass starting at id `lo`): each person with any event
/// counted, the running sums of its days.
fn pass_batch(
    schema: &SchemaRef,
    counts: &[Vec<u32>],
    lo: i64,
    persons: std::ops::Range<usize>,
    days: usize,
) -> Result<Option<RecordBatch>> {
    let day_counts = |e: usize, p: usize| &counts[e][p * days..(p + 1) * days];
    let active: Vec<usize> = persons
        .filter(|&p| (0..counts.len()).any(|e| day_counts(e, p).iter().any(|n| *n > 0)))
        .collect();
    if active.is_empty() {
        return Ok(None);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
        active.iter().map(|p| lo + *p as i64),
    ))];
    for e in 0..counts.len() {
        let mut running: Vec<i64> = vec![0; active.len()];
        for k in 0..days {
            for (r, p) in running.iter_mut().zip(&active) {
                *r += i64::from(day_counts(e, *p)[k]);
            }
            columns.push(Arc::new(Int64Array::from(running.clone())));
        }
    }
    Ok(Some(RecordBatch::try_new(schema.clone(), columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_k_sums_the_last_k_days() {
        let schema = schema(&["AppLaunch".to_string()], 3);
        // Two persons (ids 10, 11) and one without events (12); days back 0, 1, 2.
        let counts = vec![vec![1, 0, 2, 0, 0, 0, 0, 3, 0]];
        let batch = pass_batch(&schema, &counts, 10, 0..3, 3).unwrap().unwrap();
        let col = |i: usize| -> Vec<i64> {
            batch
                .column(i)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        };
        assert_eq!(col(0), [10, 12]);
        assert_eq!(col(1), [1, 0], "last 1 day");
        assert_eq!(col(2), [1, 3], "last 2 days");
        assert_eq!(col(3), [3, 3], "last 3 days");
    }

    #[test]
    fn passes_split_a_range() {
        assert_eq!(passes((0, 10)), [(0, 10)]);
        assert_eq!(
            passes((5, 300_000)),
            [(5, 125_005), (125_005, 250_005), (250_005, 300_000)]
        );
    }
}
