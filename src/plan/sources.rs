//! Where the planner gets its tables from. Planning is a pure function of the typed segment and
//! the table *schemas*: tests plan against schema-only sources built from the catalog, commands
//! against the snapshot's registered ListingTables.

use crate::catalog::{Catalog, EVENT_PARTITION};
use crate::error::Result;
use crate::store::manifest::{Manifest, Partitioning};
use crate::store::summary::{self, ACTIVITY_TABLE};
use crate::store::{
    event_table, schema, EVENTS_TABLE, INSTALLATIONS_TABLE, PERSONS_TABLE, ROW_FILTERED_SCHEMA,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use datafusion::common::TableReference;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::builder::LogicalTableSource;
use datafusion::logical_expr::TableSource;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

/// The tables of one snapshot, by name (`persons`, `installations`, `event_<Name>`, `events`).
#[derive(Clone)]
pub struct TableSources {
    tables: HashMap<String, Arc<dyn TableSource>>,
    /// Event tables whose scans filter rows inside the Parquet reader (see
    /// `store::ROW_FILTERED_SCHEMA`); absent for schema-only sources.
    row_filtered: HashMap<String, Arc<dyn TableSource>>,
    /// The time partition column of event tables (`day` or `month`).
    pub period_column: &'static str,
    pub partitioning: Partitioning,
    /// The as-of time (µs) of the person activity summary, when the snapshot has one.
    pub activity_as_of: Option<i64>,
    /// Rows of the activity summary (one per person).
    pub activity_rows: u64,
    /// Whether the summary's columns are in the persons table (read without a join).
    pub activity_in_persons: bool,
    /// The summary's value and month counts.
    pub activity_columns: summary::SummaryColumns,
    /// The events with day counts (`store::activity_days`) and how many days back they reach.
    pub activity_days: Option<(Vec<String>, u32)>,
    /// Rows per (event, period start), from the manifest; empty for schema-only sources.
    pub event_rows: HashMap<String, Vec<(NaiveDate, u64)>>,
    /// Plans run on a Ballista cluster (see `optional_side`); set by whoever opened the session.
    pub on_cluster: bool,
}

impl std::fmt::Debug for TableSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSources")
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn all_table_names(catalog: &Catalog) -> Vec<String> {
    let mut names = vec![
        PERSONS_TABLE.to_string(),
        INSTALLATIONS_TABLE.to_string(),
        EVENTS_TABLE.to_string(),
    ];
    names.extend(catalog.events.iter().map(|e| event_table(&e.name)));
    names
}

impl TableSources {
    /// The snapshot's tables as registered in `ctx`.
    pub async fn from_session(ctx: &SessionContext, manifest: &Manifest) -> Result<TableSources> {
        let mut names = all_table_names(&manifest.catalog);
        if manifest.person_activity.is_some() {
            names.push(ACTIVITY_TABLE.to_string());
        }
        if manifest.activity_days.is_some() {
            names.push(crate::store::activity_days::DAYS_TABLE.to_string());
        }
        let mut tables = HashMap::new();
        for name in names {
            let provider = ctx.table_provider(name.as_str()).await?;
            tables.insert(name, provider_as_source(provider));
        }
        let mut row_filtered = HashMap::new();
        for def in &manifest.catalog.events {
            let name = event_table(&def.name);
            let reference = TableReference::partial(ROW_FILTERED_SCHEMA, name.as_str());
            let provider = ctx.table_provider(reference).await?;
            row_filtered.insert(name, provider_as_source(provider));
        }
        Ok(TableSources {
            tables,
            row_filtered,
            period_column: manifest.partitioning.column(),
            partitioning: manifest.partitioning,
            activity_as_of: manifest
                .person_activity
                .as_ref()
                .map(|_| manifest.as_of.timestamp_micros()),
            activity_rows: manifest.person_activity.as_ref().map_or(0, |f| f.rows),
            activity_in_persons: manifest.activity_in_persons(),
            activity_columns: manifest.activity_columns.clone(),
            activity_days: manifest
                .activity_days
                .as_ref()
                .map(|d| (d.events.clone(), d.days)),
            event_rows: manifest.events.iter().fold(HashMap::new(), |mut m, e| {
                m.entry(e.event.clone())
                    .or_insert_with(Vec::new)
                    .push((e.period, e.file.rows));
                m
            }),
            on_cluster: false,
        })
    }

    /// Schema-only tables derived from the catalog: for planning without data (plan tests).
    pub fn from_catalog(catalog: &Catalog, partitioning: Partitioning) -> TableSources {
        let period = partitioning.column();
        let with_partitions = |file: SchemaRef, extra: &[(&str, DataType)]| -> SchemaRef {
            let mut fields: Vec<Field> = file.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(extra.iter().map(|(n, t)| Field::new(*n, t.clone(), false)));
            Arc::new(Schema::new(fields))
        };
        let source =
            |s: SchemaRef| -> Arc<dyn TableSource> { Arc::new(LogicalTableSource::new(s)) };
        let mut tables = HashMap::new();
        tables.insert(
            PERSONS_TABLE.to_string(),
            source(schema::persons_schema(catalog)),
        );
        tables.insert(
            INSTALLATIONS_TABLE.to_string(),
            source(schema::installations_schema(catalog)),
        );
        for def in &catalog.events {
            let s = with_partitions(schema::event_schema(def), &[(period, DataType::Date32)]);
            tables.insert(event_table(&def.name), source(s));
        }
        let all = with_partitions(
            schema::common_event_schema(),
            &[
                (EVENT_PARTITION, DataType::Utf8),
                (period, DataType::Date32),
            ],
        );
        tables.insert(EVENTS_TABLE.to_string(), source(all));
        TableSources {
            tables,
            row_filtered: HashMap::new(),
            period_column: period,
            partitioning,
            activity_as_of: None,
            activity_rows: 0,
            activity_in_persons: false,
            activity_columns: Default::default(),
            activity_days: None,
            event_rows: HashMap::new(),
            on_cluster: false,
        }
    }

    /// Rows of `event` in the periods a scan of `[from, to)` (µs) reads, if the manifest is
    /// known.
    pub fn event_rows_between(&self, event: &str, from: Option<i64>, to: i64) -> Option<u64> {
        let files = self.event_rows.get(event)?;
        let date = |t: i64| {
            self.partitioning
                .period_start(crate::base::time::date_of(t))
        };
        let last = date(to - 1);
        let first = from.map(date);
        Some(
            files
                .iter()
                .filter(|(p, _)| *p <= last && first.is_none_or(|f| *p >= f))
                .map(|(_, rows)| rows)
                .sum(),
        )
    }

    /// Adds a schema-only person activity summary made at `as_of`, with the `extra` columns
    /// (plan tests).
    pub fn with_activity(
        mut self,
        catalog: &Catalog,
        as_of: i64,
        extra: &summary::SummaryColumns,
    ) -> TableSources {
        self.tables.insert(
            ACTIVITY_TABLE.to_string(),
            Arc::new(LogicalTableSource::new(summary::schema(catalog, extra))),
        );
        self.activity_as_of = Some(as_of);
        self.activity_columns = extra.clone();
        self
    }

    /// Like [`TableSources::with_activity`], with the summary's columns stored in the persons
    /// table as well (as snapshots write it).
    pub fn with_activity_in_persons(
        self,
        catalog: &Catalog,
        as_of: i64,
        extra: &summary::SummaryColumns,
    ) -> TableSources {
        let mut sources = self.with_activity(catalog, as_of, extra);
        sources.tables.insert(
            PERSONS_TABLE.to_string(),
            Arc::new(LogicalTableSource::new(
                summary::persons_with_activity_schema(catalog, extra),
            )),
        );
        sources.activity_in_persons = true;
        sources
    }

    /// Adds schema-only day counts (`store::activity_days`) of `events`, `days` back from the
    /// summary's as-of (plan tests; after [`TableSources::with_activity`]).
    pub fn with_activity_days(mut self, events: &[String], days: u32) -> TableSources {
        self.tables.insert(
            crate::store::activity_days::DAYS_TABLE.to_string(),
            Arc::new(LogicalTableSource::new(
                crate::store::activity_days::schema(events, days),
            )),
        );
        self.activity_days = Some((events.to_vec(), days));
        self
    }

    /// Whether an attribute column is a list (from the table schema).
    pub fn is_list_column(&self, entity: crate::catalog::Entity, column: &str) -> bool {
        self.column_type(entity, column)
            .is_some_and(|t| matches!(t, DataType::List(_)))
    }

    /// Whether an attribute column is stored as a dictionary of strings.
    pub fn is_dictionary_column(&self, entity: crate::catalog::Entity, column: &str) -> bool {
        self.column_type(entity, column)
            .is_some_and(|t| matches!(t, DataType::Dictionary(..)))
    }

    /// Whether the person or installation table stores `column` (e.g. a version sort key).
    pub fn has_column(&self, entity: crate::catalog::Entity, column: &str) -> bool {
        self.column_type(entity, column).is_some()
    }

    /// The type of `column` in the person or installation table, if it stores one.
    pub fn column_type(&self, entity: crate::catalog::Entity, column: &str) -> Option<DataType> {
        let table = match entity {
            crate::catalog::Entity::Person => PERSONS_TABLE,
            crate::catalog::Entity::Installation => INSTALLATIONS_TABLE,
        };
        let schema = self.tables.get(table)?.schema();
        let field = schema.field_with_name(column).ok()?;
        Some(field.data_type().clone())
    }

    /// The event table `name` whose scans filter rows inside the Parquet reader, where the
    /// snapshot has one (else the plain table: schema-only sources plan the same shapes).
    pub fn get_row_filtered(&self, name: &str) -> datafusion::error::Result<Arc<dyn TableSource>> {
        match self.row_filtered.get(name) {
            Some(source) => Ok(source.clone()),
            None => self.get(name),
        }
    }

    /// The same tables with `name` read from `source` (same columns, other rows).
    pub fn with_table(mut self, name: &str, source: Arc<dyn TableSource>) -> TableSources {
        self.tables.insert(name.to_string(), source);
        self
    }

    pub fn get(&self, name: &str) -> datafusion::error::Result<Arc<dyn TableSource>> {
        self.tables.get(name).cloned().ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(format!(
                "internal error: no table `{name}` registered"
            ))
        })
    }
}
