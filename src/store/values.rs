//! The value sets a snapshot records in its catalog: for every few-valued string (attributes
//! and event properties stored as dictionaries), its values with their row counts, most frequent
//! first, at most [`Values::MAX`]. Completion, `info`, and the checker's warnings about values
//! the data never has read them from the manifest, without touching the data.

use super::manifest::Manifest;
use super::publish::Staging;
use crate::catalog::{Entity, ValueType, Values};
use crate::error::Result;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{cast, col, lit, SessionContext};

/// Fills in the value sets of `manifest`'s catalog from the snapshot being written.
pub fn collect(staging: &Staging, manifest: &mut Manifest, threads: usize) -> Result<()> {
    let m: &Manifest = manifest;
    let found = super::staged::with_session(staging, m, threads, false, |ctx| {
        Box::pin(async move {
            let mut found = Vec::new();
            for entity in [Entity::Person, Entity::Installation] {
                let table = match entity {
                    Entity::Person => super::PERSONS_TABLE,
                    Entity::Installation => super::INSTALLATIONS_TABLE,
                };
                for a in m.catalog.attributes(entity) {
                    if a.ty == ValueType::String && a.dictionary {
                        let v = values_of(&ctx, table, &a.column).await?;
                        found.push((Some(entity), a.name.clone(), v));
                    }
                }
            }
            for e in &m.catalog.events {
                for p in &e.properties {
                    if p.ty == ValueType::String && p.dictionary {
                        let table = super::event_table(&e.name);
                        let v = values_of(&ctx, &table, &p.column).await?;
                        found.push((None, format!("{}.{}", e.name, p.name), v));
                    }
                }
            }
            Ok(found)
        })
    })?;
    for (entity, name, values) in found {
        match entity {
            Some(entity) => {
                let attrs = match entity {
                    Entity::Person => &mut manifest.catalog.person,
                    Entity::Installation => &mut manifest.catalog.installation,
                };
                if let Some(a) = attrs.iter_mut().find(|a| a.name == name) {
                    a.values = Some(values);
                }
            }
            None => {
                let (event, property) = name.split_once('.').unwrap_or_default();
                let def = manifest.catalog.events.iter_mut().find(|e| e.name == event);
                if let Some(p) =
                    def.and_then(|d| d.properties.iter_mut().find(|p| p.name == property))
                {
                    p.values = Some(values);
                }
            }
        }
    }
    Ok(())
}

/// The non-null values of `column` in `table` with their counts, most frequent first (ties by
/// value), at most [`Values::MAX`].
async fn values_of(ctx: &SessionContext, table: &str, column: &str) -> Result<Values> {
    let batches = ctx
        .table(table)
        .await?
        .filter(col(column).is_not_null())?
        .aggregate(
            vec![cast(col(column), DataType::Utf8).alias("v")],
            vec![count(lit(1)).alias("n")],
        )?
        .sort(vec![
            col("n").sort(false, false),
            col("v").sort(true, false),
        ])?
        .limit(0, Some(Values::MAX + 1))?
        .collect()
        .await?;
    let mut top = Vec::new();
    for b in &batches {
        let (v, n) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            if v.is_valid(i) {
                top.push((v.value(i).to_string(), n.value(i) as u64));
            }
        }
    }
    let complete = top.len() <= Values::MAX;
    top.truncate(Values::MAX);
    Ok(Values { complete, top })
}
