//! Builds the person activity summary of a snapshot being written (see [`super::summary`] for
//! what it holds): per event one grouped pass with a FILTER per column, left-joined to every
//! person, in ranges of person ids, written into the persons file beside the attributes.

use super::summary::{
    columns, month_bounds, persons_with_activity_schema, Stat, SummaryColumns, SummaryValues,
    MAX_VALUES, MONTHS, PERSONS_FILE,
};
use crate::base::exprs::{to_decimal, ts_lit};
use crate::base::time::MICROS_PER_DAY;
use crate::catalog::{Catalog, ValueType, EVENT_TIME, PERSON_ID};
use crate::error::{IoContext, Result};
use arrow::array::Array;
use arrow::datatypes::DataType;

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
/// sorted in memory, hundreds of columns a person, and DataFusion's hash joins cannot spill, so
/// building all persons at once multiplies peak memory (benches/HISTORY.md, "summary build").
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
/// persons (benches/HISTORY.md, "summary in the persons file"). Records
/// the new file in `manifest` as both, with the extra columns it has; the staged persons files
/// it replaces are removed.
///
pub fn build(
    staging: &super::publish::Staging,
    manifest: &mut super::manifest::Manifest,
    threads: usize,
) -> Result<()> {
    use futures::StreamExt;
    // Reader-side filters: each range decodes the key column of every event file, and the
    // other columns only of its own persons' rows.
    let m: &super::manifest::Manifest = manifest;
    let (file, extra, days) = super::staged::with_session(staging, m, threads, true, |ctx| {
        Box::pin(async move {
            let (ctx, manifest) = (&ctx, m);
            let as_of = manifest.as_of.timestamp_micros();
            let extra = SummaryColumns {
                values: values(ctx, &manifest.catalog, as_of).await?,
                months: MONTHS,
            };
            let schema = persons_with_activity_schema(&manifest.catalog, &extra);
            let key = schema.index_of(PERSON_ID)?;
            let mut file = staging.parquet_writer(PERSONS_FILE, schema.clone(), &[key])?;
            let ranges = person_ranges(ctx, manifest.row_counts.persons).await?;
            for &range in &ranges {
                let plan = plan(ctx, &manifest.catalog, &extra, as_of, range).await?;
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
            let file = file.finish()?;
            let days = super::activity_days::build(ctx, staging, manifest, &ranges).await?;
            Ok((file, extra, days))
        })
    })?;
    for old in std::mem::replace(&mut manifest.persons, vec![file.clone()]) {
        let path = staging.resolve(&old.path);
        std::fs::remove_file(&path).at(&path)?;
    }
    manifest.person_activity = Some(file);
    manifest.activity_columns = extra;
    manifest.activity_days = days;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
