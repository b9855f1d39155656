//! Writing a snapshot atomically.
//!
//! Everything is written under `<store>/.staging/<id>/`, each file fsynced; the manifest is written
//! last; then the directory is renamed to `<store>/snapshots/<id>/` and the parent fsynced. Readers
//! only look in `snapshots/`, so a crash at any moment leaves either no new snapshot or a whole one,
//! and earlier snapshots are never touched.

use super::manifest::{DataFile, Manifest, MANIFEST_FILE};
use super::{SNAPSHOTS_DIR, STAGING_DIR};
use crate::error::{Error, IoContext, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per row group: small enough that person_id and time statistics prune, large enough that
/// metadata stays a small fraction of the file.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The file in a staging directory naming the process that writes it.
pub const WRITER_FILE: &str = ".writer";

pub struct Staging {
    store: PathBuf,
    id: String,
    dir: PathBuf,
    /// Leftovers of dead writers that beginning this one removed.
    swept: Vec<super::gc::Leftover>,
}

impl Staging {
    /// Creates the store (if new) and a fresh staging directory for a snapshot created at `now`.
    pub fn begin(store: &Path, now: DateTime<Utc>) -> Result<Staging> {
        // Tables read staged files through an object store, which takes absolute paths only.
        let store = &std::path::absolute(store).at(store)?;
        for sub in [SNAPSHOTS_DIR, STAGING_DIR] {
            let p = store.join(sub);
            std::fs::create_dir_all(&p).at(&p)?;
        }
        let swept = super::gc::remove(super::gc::staging_leftovers(store)?)?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), &suffix[..8]);
        let dir = store.join(STAGING_DIR).join(&id);
        std::fs::create_dir(&dir).at(&dir)?;
        // Who is writing: `audience gc` and later writers remove the directory once this
        // process is gone.
        let writer = dir.join(WRITER_FILE);
        std::fs::write(&writer, crate::base::process::stamp()).at(&writer)?;
        Ok(Staging {
            store: store.to_path_buf(),
            id,
            dir,
            swept,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Leftovers of dead writers that beginning this write removed.
    pub fn swept(&self) -> &[super::gc::Leftover] {
        &self.swept
    }

    /// Where `rel` is written now.
    pub fn local_path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// How the manifest names `rel` once published (relative to the store root).
    pub fn store_path(&self, rel: &str) -> String {
        format!("{SNAPSHOTS_DIR}/{}/{rel}", self.id)
    }

    /// The local path of a store-relative path a manifest names: this snapshot's files are still
    /// in staging, earlier snapshots' (shared event roots) are published.
    pub fn resolve(&self, store_rel: &str) -> PathBuf {
        let own = format!("{SNAPSHOTS_DIR}/{}/", self.id);
        match store_rel.strip_prefix(&own) {
            Some(rel) => self.local_path(rel),
            None if store_rel == own.trim_end_matches('/') => self.dir.clone(),
            None => self.store.join(store_rel),
        }
    }

    /// Opens a Parquet writer for `rel` inside the snapshot.
    pub fn parquet_writer(
        &self,
        rel: &str,
        schema: SchemaRef,
        sorted_by: &[usize],
    ) -> Result<ParquetFile> {
        ParquetFile::create(
            self.local_path(rel),
            self.store_path(rel),
            schema,
            sorted_by,
        )
    }

    /// Writes the manifest, syncs the tree and publishes it with one rename. Publishing holds
    /// the store's lock, so concurrent writers get distinct publish numbers and the latest
    /// snapshot is always the one published last.
    pub fn publish(self, manifest: &mut Manifest) -> Result<PathBuf> {
        let _lock = super::lock::StoreLock::acquire(&self.store)?;
        self.publish_locked(manifest)
    }

    /// [`Staging::publish`] for a writer that holds the store's lock already (an import that
    /// built on the latest snapshot and must publish right after it).
    pub fn publish_locked(self, manifest: &mut Manifest) -> Result<PathBuf> {
        if manifest.snapshot_id != self.id {
            return Err(Error::Internal(format!(
                "manifest of snapshot {} published as {}",
                manifest.snapshot_id, self.id
            )));
        }
        manifest.published_seq = Some(super::Store::at(&self.store).next_publish_seq()?);
        manifest
            .validate()
            .map_err(|m| Error::data(&self.dir, format!("refusing to publish: {m}")))?;
        let path = self.dir.join(MANIFEST_FILE);
        std::fs::write(&path, manifest.to_json()).at(&path)?;
        File::open(&path).and_then(|f| f.sync_all()).at(&path)?;
        let _ = std::fs::remove_file(self.dir.join(WRITER_FILE));
        sync_dirs(&self.dir)?;
        let target = self.store.join(SNAPSHOTS_DIR).join(&self.id);
        std::fs::rename(&self.dir, &target).at(&target)?;
        sync_dir(&self.store.join(SNAPSHOTS_DIR))?;
        sync_dir(&self.store.join(STAGING_DIR))?;
        Ok(target)
    }

    /// Removes the staging directory of a write that failed.
    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fsyncs every directory below (and including) `dir`, so renames and new entries are durable.
fn sync_dirs(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if entry.file_type().at(entry.path())?.is_dir() {
            sync_dirs(&entry.path())?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// 64-bit integers are keys, times and counts: sorted (keys, and times within a person) or small
/// (counts). Written `DELTA_BINARY_PACKED` and uncompressed, their deltas pack into a few bits
/// and decode without decompressing, about ten times faster than plain pages under snappy, and
/// event files shrink (benches/HISTORY.md, "delta encoding"). (A dictionary fills up on keys
/// and times and falls back to plain pages.) Other columns get dictionary pages where their values repeat, snappy-compressed.
fn delta_encoded(field: &arrow::datatypes::Field) -> bool {
    use arrow::datatypes::DataType;
    matches!(field.data_type(), DataType::Int64 | DataType::Timestamp(..))
}

/// One Parquet file being written: snappy pages, bounded row groups, and the sort order recorded
/// in the footer. Every column has row-group statistics and an offset index, none a bloom filter
/// (keys are joined, not looked up); only the sort columns have page statistics (the column
/// index). Their pages hold narrow key ranges a join's key filter can skip, while any other
/// column's pages span unordered values: their minima and maxima prune nothing, yet a scan whose
/// predicate names the column parses the whole file's page index (a 90-day Purchase scan did,
/// for `amount >= 50`, in each of its files; benches/HISTORY.md, "page statistics").
pub struct ParquetFile {
    local: PathBuf,
    store_path: String,
    writer: ArrowWriter<File>,
    /// A second handle on the same file, to fsync it after the writer closes it.
    sync: File,
}

impl ParquetFile {
    fn create(
        local: PathBuf,
        store_path: String,
        schema: SchemaRef,
        sorted_by: &[usize],
    ) -> Result<ParquetFile> {
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        let file = File::create(&local).at(&local)?;
        let sync = file.try_clone().at(&local)?;
        let sorting = sorted_by
            .iter()
            .map(|&i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: false,
            })
            .collect::<Vec<_>>();
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_sorting_columns((!sorting.is_empty()).then_some(sorting))
            .set_created_by(format!("audience {}", env!("CARGO_PKG_VERSION")));
        for (i, field) in schema.fields().iter().enumerate() {
            if sorted_by.contains(&i) {
                props = props.set_column_statistics_enabled(
                    ColumnPath::from(field.name().as_str()),
                    EnabledStatistics::Page,
                );
            }
            if delta_encoded(field) {
                let column = ColumnPath::from(field.name().as_str());
                props = props
                    .set_column_dictionary_enabled(column.clone(), false)
                    .set_column_encoding(column.clone(), Encoding::DELTA_BINARY_PACKED)
                    .set_column_compression(column, Compression::UNCOMPRESSED);
            }
        }
        let writer = ArrowWriter::try_new(file, schema, Some(props.build()))?;
        Ok(ParquetFile {
            local,
            store_path,
            writer,
            sync,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer
            .write(batch)
            .map_err(|e| Error::data(&self.local, e.to_string()))
    }

    /// Finishes the footer and fsyncs the file.
    pub fn finish(self) -> Result<DataFile> {
        let meta = self
            .writer
            .close()
            .map_err(|e| Error::data(&self.local, e.to_string()))?;
        self.sync.sync_all().at(&self.local)?;
        let bytes = self.sync.metadata().at(&self.local)?.len();
        let rows = meta.file_metadata().num_rows() as u64;
        Ok(DataFile {
            path: self.store_path,
            rows,
            bytes,
            checksums: Some(super::checksum::compute(&self.local)?),
        })
    }
}
