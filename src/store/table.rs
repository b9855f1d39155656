//! A snapshot table whose files come from the manifest, not from listing directories: one event
//! definition's history (with its period column), or the persons or installations file.
//!
//! A ListingTable over `event=<Name>/day=*/` lists the partition directories each time a query
//! is planned: a 90-day window is 90 directory reads, ten months 300. The manifest already names
//! every file with its period, rows and size, so this table prunes periods from it and lists
//! nothing, and plans get the exact row count from it. Footers are read at planning, concurrently,
//! into the session's metadata cache, so the scan's one-at-a-time file opens do not read them
//! again. Column statistics (min, max, nulls: joins are ordered by the rows filters are estimated
//! to keep, and without them some joins build on the wrong side) are derived for the scanned
//! columns only; a ListingTable derives them for every column, hundreds in a persons file with
//! the activity summary (benches/HISTORY.md, "manifest tables").
//!
//! Filters on the period column are exact (files are pruned by evaluating them on each file's
//! period); the others are left to a FilterExec that DataFusion pushes into the Parquet scan
//! (row-group and page pruning, and reader-side row filters where the format options ask).
//! A Ballista cluster cannot serialize this table, so cluster sessions register listed ones.

use super::manifest::{DataFile, EventFile};
use super::verified::{FileCheck, Verified, VerifyingReaderFactory};
use crate::base::time::days_since_epoch;
use arrow::array::{Array, AsArray, Date32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, ScalarValue, Statistics};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, SortExpr, TableProviderFilterPushDown};
use datafusion::physical_expr::create_ordering;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use parquet::file::metadata::PageIndexPolicy;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One file of the table: its local path, time period (event histories), size, and what its
/// reads are verified against.
#[derive(Debug, Clone)]
struct TableFile {
    path: String,
    /// Days since the epoch of the period's first day.
    period: Option<i32>,
    rows: u64,
    bytes: u64,
    check: Option<Arc<FileCheck>>,
}

impl TableFile {
    fn of(
        f: &DataFile,
        resolve: &(dyn Fn(&str) -> PathBuf + Sync),
        period: Option<i32>,
    ) -> TableFile {
        let local = resolve(&f.path);
        TableFile {
            path: local_path(&local),
            period,
            rows: f.rows,
            bytes: f.bytes,
            check: f
                .checksums
                .as_ref()
                .and_then(|c| c.expected())
                .map(|expected| {
                    Arc::new(FileCheck {
                        path: local,
                        expected,
                    })
                }),
        }
    }
}

#[derive(Debug)]
pub struct ManifestTable {
    file_schema: SchemaRef,
    /// The file schema, then the period column if there is one.
    schema: SchemaRef,
    period_column: Option<String>,
    files: Vec<TableFile>,
    /// How each file's rows are sorted.
    order: Vec<Vec<SortExpr>>,
    format: ParquetFormat,
    /// The footers this process verified already (shared by a snapshot's tables).
    verified: Arc<Verified>,
}

impl ManifestTable {
    /// A table of `files` (paths mapped to local files by `resolve`), each sorted by `order`,
    /// read with `format`.
    pub fn new(
        file_schema: SchemaRef,
        files: &[DataFile],
        resolve: &(dyn Fn(&str) -> PathBuf + Sync),
        order: Vec<Vec<SortExpr>>,
        format: ParquetFormat,
        verified: Arc<Verified>,
    ) -> ManifestTable {
        let files = files
            .iter()
            .map(|f| TableFile::of(f, resolve, None))
            .collect();
        ManifestTable {
            schema: file_schema.clone(),
            file_schema,
            period_column: None,
            files,
            order,
            format,
            verified,
        }
    }

    /// The history of the event whose manifest entries are `files`: the table of their files,
    /// with the period column after the file columns.
    pub fn history(
        file_schema: SchemaRef,
        period_column: &str,
        files: &[&EventFile],
        resolve: &(dyn Fn(&str) -> PathBuf + Sync),
        format: ParquetFormat,
        verified: Arc<Verified>,
    ) -> ManifestTable {
        let mut fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(period_column, DataType::Date32, false));
        let files = files
            .iter()
            .map(|f| TableFile::of(&f.file, resolve, Some(days_since_epoch(f.period))))
            .collect();
        ManifestTable {
            file_schema,
            schema: Arc::new(Schema::new(fields)),
            period_column: Some(period_column.to_string()),
            files,
            order: vec![],
            format,
            verified,
        }
    }

    fn only_period(&self, e: &Expr) -> bool {
        let Some(period) = &self.period_column else {
            return false;
        };
        let refs = e.column_refs();
        !refs.is_empty() && refs.iter().all(|c| &c.name == period)
    }

    /// The files whose period satisfies every period-only filter.
    fn prune(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<&TableFile>> {
        let period_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| self.only_period(f))
            .map(|f| unnormalize_col(f.clone()))
            .collect();
        let (Some(predicate), Some(period)) = (conjunction(period_filters), &self.period_column)
        else {
            return Ok(self.files.iter().collect());
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            period,
            DataType::Date32,
            false,
        )]));
        let physical =
            state.create_physical_expr(predicate, &DFSchema::try_from(schema.clone())?)?;
        let periods = Date32Array::from_iter_values(
            self.files
                .iter()
                .map(|f| f.period.expect("history files have periods")),
        );
        let batch = RecordBatch::try_new(schema, vec![Arc::new(periods)])?;
        let keep = physical.evaluate(&batch)?.into_array(batch.num_rows())?;
        let keep = keep.as_boolean();
        Ok(self
            .files
            .iter()
            .enumerate()
            .filter(|(i, _)| keep.is_valid(*i) && keep.value(*i))
            .map(|(_, f)| f)
            .collect())
    }
}

/// The object-store path of a local file: absolute, without the leading slash.
pub(super) fn local_path(path: &Path) -> String {
    path.to_string_lossy().trim_start_matches('/').to_string()
}

#[async_trait]
impl TableProvider for ManifestTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.only_period(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.prune(state, filters)?;
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let rows = files.iter().map(|f| f.rows as usize).sum();
        let bytes = files.iter().map(|f| f.bytes as usize).sum();
        let store = state
            .runtime_env()
            .object_store(ObjectStoreUrl::local_filesystem())?;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let concurrency = state
            .config_options()
            .execution
            .meta_fetch_concurrency
            .get();
        // Statistics of the projected file columns only: the persons file has ~400 columns.
        let file_columns = self.file_schema.fields().len();
        let projected: Vec<usize> = match projection {
            Some(p) => p.iter().copied().filter(|&i| i < file_columns).collect(),
            None => (0..file_columns).collect(),
        };
        let projected_schema = Arc::new(self.file_schema.project(&projected)?);
        let reads: Vec<_> = files
            .into_iter()
            .map(|f| {
                let mut file = PartitionedFile::new(f.path.clone(), f.bytes);
                if let Some(period) = f.period {
                    file.partition_values = vec![ScalarValue::Date32(Some(period))];
                }
                if let Some(check) = &f.check {
                    file = file.with_extension(check.clone());
                }
                let (store, cache) = (store.clone(), cache.clone());
                let (projected, projected_schema) = (&projected, &projected_schema);
                let verified = &self.verified;
                async move {
                    // A footer is verified before it is trusted for statistics and pruning.
                    if let Some(check) = &f.check {
                        verified.footer(check)?;
                    }
                    // Statistics need the footer only. Given a cache, DataFusion would also
                    // load the page index here, whether or not the scan's predicates can use
                    // it; scans load it themselves when they can (benches/HISTORY.md, "page
                    // index").
                    let metadata = DFParquetMetadata::new(store.as_ref(), &file.object_meta)
                        .with_file_metadata_cache(Some(cache))
                        .with_page_index_policy(Some(PageIndexPolicy::Skip))
                        .fetch_metadata()
                        .await?;
                    if metadata.file_metadata().num_rows() as u64 != f.rows {
                        return Err(datafusion::error::DataFusionError::External(Box::new(
                            crate::error::Error::data(
                                format!("/{}", f.path),
                                format!(
                                    "holds {} rows, the manifest says {}",
                                    metadata.file_metadata().num_rows(),
                                    f.rows
                                ),
                            ),
                        )));
                    }
                    let some = DFParquetMetadata::statistics_from_parquet_metadata(
                        &metadata,
                        projected_schema,
                    )?;
                    let mut statistics = Statistics::new_unknown(&self.schema);
                    statistics.num_rows = some.num_rows;
                    for (column, &i) in some.column_statistics.into_iter().zip(projected) {
                        statistics.column_statistics[i] = column;
                    }
                    Ok::<_, datafusion::error::DataFusionError>((file, statistics))
                }
            })
            .collect();
        let read: Vec<(PartitionedFile, Statistics)> = futures::stream::iter(reads)
            .buffered(concurrency)
            .try_collect()
            .await?;
        let statistics = Statistics::try_merge_iter(read.iter().map(|(_, s)| s), &self.schema)?
            .with_num_rows(Precision::Exact(rows))
            .with_total_byte_size(Precision::Inexact(bytes));
        let files: Vec<PartitionedFile> = read.into_iter().map(|(f, _)| f).collect();
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let mut table_schema = TableSchemaBuilder::new(self.file_schema.clone());
        if self.period_column.is_some() {
            let period = self.schema.field(self.schema.fields().len() - 1).clone();
            table_schema = table_schema.with_table_partition_cols(vec![Arc::new(period)]);
        }
        // The format's own physical plan, with a reader that verifies what it reads: the
        // format would install DataFusion's cached reader (which this one wraps) itself.
        let factory = VerifyingReaderFactory::new(
            CachedParquetFileReaderFactory::new(store, cache),
            self.verified.clone(),
        );
        let mut source = ParquetSource::new(table_schema.build())
            .with_table_parquet_options(self.format.options().clone())
            .with_parquet_file_reader_factory(Arc::new(factory));
        if let Some(hint) = self.format.metadata_size_hint() {
            source = source.with_metadata_size_hint(hint);
        }
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(groups)
                .with_statistics(statistics)
                .with_output_ordering(create_ordering(&self.schema, &self.order)?)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
