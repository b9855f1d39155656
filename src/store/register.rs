//! Registers a snapshot's tables in a DataFusion session, so planning only has to build plans.

use super::manifest::Manifest;
use super::table::ManifestTable;
use super::{schema, summary, Snapshot};
use crate::catalog::{self, EVENT_PARTITION};
use crate::error::Result;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::logical_expr::SortExpr;
use datafusion::prelude::{col, SessionContext};
use std::path::PathBuf;
use std::sync::Arc;

pub const PERSONS_TABLE: &str = "persons";
pub const INSTALLATIONS_TABLE: &str = "installations";
/// All events with the columns they share, partitioned by `event` and `day`.
pub const EVENTS_TABLE: &str = "events";

/// A second copy of every event table whose scans filter rows inside the Parquet reader
/// (DataFusion's `pushdown_filters`), which sessions leave off. The planner picks it for scans
/// that only a join's dynamic filter narrows: the reader then skips the rows of keys the join's
/// build side lacks, before they are decoded and aggregated (benches/HISTORY.md, "reader
/// filters").
pub const ROW_FILTERED_SCHEMA: &str = "row_filtered";

/// The table holding one event definition's history, partitioned by `day`.
pub fn event_table(event: &str) -> String {
    format!("event_{event}")
}

/// How tables find their files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFiles {
    /// From the manifest (`store::table`): no directory listing, and statistics of the
    /// scanned columns only, at planning.
    Manifest,
    /// By listing files and event directories (ListingTable), which a Ballista cluster can
    /// serialize and plan on its scheduler.
    Listed,
}

/// Registers the tables of `m`, whose store-relative paths `resolve` maps to local paths (the
/// published snapshot, or its staging directory while the writer still builds the summary).
pub(super) async fn register(
    m: &Manifest,
    resolve: &(dyn Fn(&str) -> PathBuf + Sync),
    ctx: &SessionContext,
    table_files: TableFiles,
    verified: Arc<super::verified::Verified>,
    history: Arc<super::history::HistoryCheck>,
) -> Result<()> {
    let cat = &m.catalog;
    let sorted = |cols: &[&str]| {
        vec![cols
            .iter()
            .map(|c| col(*c).sort(true, false))
            .collect::<Vec<SortExpr>>()]
    };
    // The files of a table that is not partitioned (persons, installations, the summary).
    let files_table = |files: &[super::manifest::DataFile],
                       schema: SchemaRef,
                       order: Vec<Vec<SortExpr>>|
     -> Result<Arc<dyn TableProvider>> {
        Ok(match table_files {
            TableFiles::Manifest => Arc::new(ManifestTable::new(
                schema,
                files,
                resolve,
                order,
                parquet_format(false, false),
                verified.clone(),
            )),
            TableFiles::Listed => {
                let urls = files
                    .iter()
                    .map(|f| url(resolve(&f.path), false))
                    .collect::<Result<Vec<_>>>()?;
                listing(false, false, urls, schema, vec![], order)?
            }
        })
    };
    ctx.register_table(
        PERSONS_TABLE,
        files_table(&m.persons, persons_schema(m), sorted(&[catalog::PERSON_ID]))?,
    )?;
    ctx.register_table(
        INSTALLATIONS_TABLE,
        files_table(
            &m.installations,
            schema::installations_schema(cat),
            sorted(&[catalog::PERSON_ID, catalog::INSTALLATION_ID]),
        )?,
    )?;
    if let Some(file) = &m.person_activity {
        let activity = files_table(
            std::slice::from_ref(file),
            summary::schema(cat, &m.activity_columns),
            vec![],
        )?;
        ctx.register_table(summary::ACTIVITY_TABLE, activity)?;
    }
    if let Some(d) = &m.activity_days {
        let days = files_table(
            std::slice::from_ref(&d.file),
            super::activity_days::schema(&d.events, d.days),
            sorted(&[catalog::PERSON_ID]),
        )?;
        ctx.register_table(super::activity_days::DAYS_TABLE, days)?;
    }

    let row_filtered = Arc::new(MemorySchemaProvider::new());
    let default_catalog = ctx.state().config_options().catalog.default_catalog.clone();
    ctx.catalog(&default_catalog)
        .expect("a session has its default catalog")
        .register_schema(ROW_FILTERED_SCHEMA, row_filtered.clone())?;
    let event_order = sorted(&[catalog::PERSON_ID, catalog::EVENT_TIME]);
    let day = (m.partitioning.column().to_string(), DataType::Date32);
    for def in &cat.events {
        let roots = m
            .event_roots
            .iter()
            .map(|r| {
                url(
                    resolve(&format!("{r}/{EVENT_PARTITION}={}", def.name)),
                    true,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let files: Vec<&super::manifest::EventFile> =
            m.events.iter().filter(|e| e.event == def.name).collect();
        let table = |row_filter| -> Result<Arc<dyn TableProvider>> {
            Ok(match table_files {
                TableFiles::Manifest => Arc::new(ManifestTable::history(
                    schema::event_schema(def),
                    &day.0,
                    &files,
                    resolve,
                    parquet_format(row_filter, true),
                    verified.clone(),
                )),
                TableFiles::Listed => listing(
                    row_filter,
                    true,
                    roots.clone(),
                    schema::event_schema(def),
                    vec![day.clone()],
                    event_order.clone(),
                )?,
            })
        };
        ctx.register_table(event_table(&def.name).as_str(), table(false)?)?;
        row_filtered.register_table(event_table(&def.name), table(true)?)?;
    }
    let roots = m
        .event_roots
        .iter()
        .map(|r| url(resolve(r), true))
        .collect::<Result<Vec<_>>>()?;
    let all = listing(
        false,
        true,
        roots,
        schema::common_event_schema(),
        vec![(EVENT_PARTITION.to_string(), DataType::Utf8), day],
        vec![],
    )?;
    // It lists the event directories, where a stray file would join the history.
    ctx.register_table(
        EVENTS_TABLE,
        Arc::new(super::history::Checked::new(all, history)),
    )?;
    Ok(())
}

/// The persons table's schema: the catalog's attributes, then the activity summary's columns
/// when the snapshot stores them in the persons file.
pub(super) fn persons_schema(m: &Manifest) -> SchemaRef {
    if m.activity_in_persons() {
        summary::persons_with_activity_schema(&m.catalog, &m.activity_columns)
    } else {
        schema::persons_schema(&m.catalog)
    }
}

/// `table` as DataFusion reports it: names are registered through SQL identifier
/// normalization, so `event_AppLaunch` scans as `event_applaunch`.
pub(super) fn rows_of(snapshot: &Snapshot, table: &str) -> u64 {
    let m = &snapshot.manifest;
    let files = |f: &[super::manifest::DataFile]| f.iter().map(|f| f.rows).sum();
    match table.to_ascii_lowercase().as_str() {
        PERSONS_TABLE => files(&m.persons),
        summary::ACTIVITY_TABLE => m.person_activity.iter().map(|f| f.rows).sum(),
        super::activity_days::DAYS_TABLE => m.activity_days.iter().map(|d| d.file.rows).sum(),
        INSTALLATIONS_TABLE => files(&m.installations),
        EVENTS_TABLE => m.events.iter().map(|e| e.file.rows).sum(),
        t => m
            .events
            .iter()
            .filter(|e| event_table(&e.event).eq_ignore_ascii_case(t))
            .map(|e| e.file.rows)
            .sum(),
    }
}

fn url(path: PathBuf, dir: bool) -> Result<ListingTableUrl> {
    let mut path = path.to_string_lossy().into_owned();
    if dir && !path.ends_with('/') {
        path.push('/');
    }
    Ok(ListingTableUrl::parse(path)?)
}

/// A Parquet listing table; `row_filter` turns on filtering inside the reader for its scans
/// (the table's own option, which DataFusion ORs with the session's; it travels with the
/// plan to a cluster), `page_index` as in [`parquet_format`].
fn listing(
    row_filter: bool,
    page_index: bool,
    urls: Vec<ListingTableUrl>,
    file_schema: SchemaRef,
    partitions: Vec<(String, DataType)>,
    order: Vec<Vec<SortExpr>>,
) -> Result<Arc<ListingTable>> {
    let file_schema = plain_strings(&file_schema);
    let options = ListingOptions::new(Arc::new(parquet_format(row_filter, page_index)))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partitions)
        .with_file_sort_order(order);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(file_schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// `schema` with its dictionary-encoded strings declared as plain strings (the scan casts them).
///
/// Listed tables serve clusters, and Ballista 55 loses dictionaries on the wire: a shuffle input
/// with an output ordering (DataFusion derives one from the files' recorded sort order even
/// when none is declared) is read by `RangeShuffleReaderExec`, which fetches remote partitions
/// over Arrow Flight, and Flight's encoder hydrates dictionaries into plain strings; the merge
/// then rebuilds batches with the declared schema and fails ("expected Dictionary(Int32, Utf8)
/// but found Utf8"). With no dictionary in the plan nothing is lost in transit. Comparisons then
/// run per row rather than per distinct value, on clusters only.
fn plain_strings(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) if **values == DataType::Utf8 => {
                f.as_ref().clone().with_data_type(DataType::Utf8)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// The Parquet format of a table; `row_filter` turns on filtering inside the reader, and
/// `page_index` lets scans load the page index to prune pages.
///
/// Persons and installations scans never load it. Their only column index is on the sort key
/// (`publish::ParquetFile`), and the only key predicates their scans get are join dynamic
/// filters, whose bounds span nearly the whole id range. Yet a scan with any predicate loads
/// the file's whole page index, once per partition: for the persons file an offset index for
/// each of its hundreds of columns in every row group (benches/HISTORY.md, "page index").
/// Event tables keep it.
///
/// Scans do not look for bloom filters: the writer writes none (`publish::ParquetFile`), yet
/// DataFusion checks every row group for one per predicate column, which a scan of many small
/// files pays per file (benches/HISTORY.md, "bloom filters"). These are the table's own
/// options: DataFusion reads them, not the session's, for tables with a format of their own.
fn parquet_format(row_filter: bool, page_index: bool) -> ParquetFormat {
    let mut parquet = TableParquetOptions::default();
    parquet.global.enable_page_index = page_index;
    parquet.global.pushdown_filters = row_filter;
    parquet.global.reorder_filters = row_filter;
    parquet.global.bloom_filter_on_read = false;
    ParquetFormat::default().with_options(parquet)
}
