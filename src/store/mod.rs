//! The snapshot store: immutable point-in-time snapshots of persons, installations and events.
//!
//! ```text
//! <store>/snapshots/<id>/manifest.json            the truth about the snapshot
//! <store>/snapshots/<id>/persons_with_activity.parquet   sorted by person_id, with the activity
//!                                                  summary's columns (persons.parquet without)
//! <store>/snapshots/<id>/installations.parquet    sorted by person_id, installation_id
//! <store>/snapshots/<id>/events/event=<E>/day=<YYYY-MM-DD>/part-0.parquet   (or month=<YYYY-MM-01>)
//! <store>/.staging/<id>/                           snapshots being written (never read)
//! ```
//! Event files are sorted by (person_id, event_time). A later snapshot may list event roots of an
//! earlier one in its manifest instead of copying that history.

pub mod derived;
pub mod manifest;
pub mod publish;
mod register;
pub mod schema;
pub mod summarize;
pub mod summary;
mod table;
pub mod version_key;

use crate::error::{Error, IoContext, Result};
use manifest::{Manifest, MANIFEST_FILE};
use parquet::file::metadata::ParquetMetaData;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use register::{
    event_table, TableFiles, EVENTS_TABLE, INSTALLATIONS_TABLE, PERSONS_TABLE, ROW_FILTERED_SCHEMA,
};

pub const SNAPSHOTS_DIR: &str = "snapshots";
pub const STAGING_DIR: &str = ".staging";

/// A store directory holding snapshots.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens an existing store; a missing directory or one without `snapshots/` is an error.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(Error::data(root, "store directory does not exist"));
        }
        if !root.join(SNAPSHOTS_DIR).is_dir() {
            return Err(Error::data(
                root,
                "not an audience store (it has no snapshots/ directory)",
            ));
        }
        let root = root.canonicalize().at(root)?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Published snapshot ids, oldest first (ids start with their creation time).
    pub fn snapshot_ids(&self) -> Result<Vec<String>> {
        let dir = self.root.join(SNAPSHOTS_DIR);
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().is_dir() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Opens one snapshot (`None`: the latest) and checks it against its manifest.
    pub fn snapshot(&self, id: Option<&str>) -> Result<Snapshot> {
        let ids = self.snapshot_ids()?;
        let id = match id {
            Some(id) if ids.iter().any(|x| x == id) => id.to_string(),
            Some(id) => {
                let known = if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                };
                return Err(Error::data(
                    &self.root,
                    format!("no snapshot `{id}` in this store (snapshots: {known})"),
                ));
            }
            None => ids
                .last()
                .cloned()
                .ok_or_else(|| Error::data(&self.root, "the store has no snapshots"))?,
        };
        Snapshot::load(self, &id)
    }
}

/// A published snapshot whose files were found as its manifest says.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub store: PathBuf,
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The footers the open-time schema check parsed (persons, installations), by file: a
    /// session starts with them cached, so planning does not parse them again (the persons
    /// file's hundreds of columns are the slowest footer to parse).
    footers: Vec<(manifest::DataFile, Arc<ParquetMetaData>)>,
}

impl Snapshot {
    fn load(store: &Store, id: &str) -> Result<Snapshot> {
        let dir = store.root.join(SNAPSHOTS_DIR).join(id);
        let manifest = Manifest::read(&dir.join(MANIFEST_FILE))?;
        if manifest.snapshot_id != id {
            return Err(Error::data(
                dir.join(MANIFEST_FILE),
                format!(
                    "manifest names snapshot `{}` but lives in directory `{id}`",
                    manifest.snapshot_id
                ),
            ));
        }
        let mut snapshot = Snapshot {
            store: store.root.clone(),
            dir,
            manifest,
            footers: Vec::new(),
        };
        snapshot.check_files()?;
        snapshot.footers = snapshot.check_table_schemas()?;
        Ok(snapshot)
    }

    pub fn id(&self) -> &str {
        &self.manifest.snapshot_id
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.store.join(rel)
    }

    /// The snapshot's directory (its manifest and own files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The rows the manifest lists for one of the registered tables (0 for other names).
    pub fn rows_of(&self, table: &str) -> u64 {
        register::rows_of(self, table)
    }

    /// Every listed file exists with its recorded size, and the event roots hold nothing else
    /// (the tables list those directories, so a stray file would silently join the history).
    /// A day-partitioned year is thousands of files and directories, so the stats and directory
    /// reads are spread over a few threads.
    fn check_files(&self) -> Result<()> {
        let m = &self.manifest;
        let files: Vec<&manifest::DataFile> = m
            .persons
            .iter()
            .chain(&m.installations)
            .chain(&m.person_activity)
            .chain(m.events.iter().map(|e| &e.file))
            .collect();
        let listed: HashSet<PathBuf> = files.iter().map(|f| self.path(&f.path)).collect();
        // The walk starts one level down (one directory per event), to split it.
        let mut dirs = Vec::new();
        for root in &m.event_roots {
            let root = self.path(root);
            if root.exists() {
                for entry in std::fs::read_dir(&root).at(&root)? {
                    let path = entry.at(&root)?.path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else if !listed.contains(&path) {
                        return Err(stray(&path));
                    }
                }
            }
        }
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        std::thread::scope(|scope| {
            let listed = &listed;
            let mut running = Vec::new();
            for part in files.chunks(files.len().div_ceil(workers).max(1)) {
                running.push(scope.spawn(move || part.iter().try_for_each(|f| self.check_size(f))));
            }
            for part in dirs.chunks(dirs.len().div_ceil(workers).max(1)) {
                running.push(
                    scope.spawn(move || part.iter().try_for_each(|d| check_no_strays(d, listed))),
                );
            }
            running
                .into_iter()
                .try_for_each(|t| t.join().expect("a file check panicked"))
        })
    }

    fn check_size(&self, f: &manifest::DataFile) -> Result<()> {
        let path = self.path(&f.path);
        let meta = std::fs::metadata(&path).map_err(|e| {
            Error::data(
                &path,
                format!("file named by the manifest is unreadable: {e}"),
            )
        })?;
        if meta.len() != f.bytes {
            return Err(Error::data(
                &path,
                format!("has {} bytes, the manifest says {}", meta.len(), f.bytes),
            ));
        }
        Ok(())
    }

    /// Persons and installations files must match the catalog; event files are checked by
    /// [`Snapshot::verify_event_files`] because reading thousands of footers costs time.
    /// Returns the footers it read.
    fn check_table_schemas(&self) -> Result<Vec<(manifest::DataFile, Arc<ParquetMetaData>)>> {
        let m = &self.manifest;
        let mut footers = Vec::new();
        for (files, schema) in [
            (&m.persons, register::persons_schema(m)),
            (&m.installations, schema::installations_schema(&m.catalog)),
        ] {
            for f in files {
                footers.push((f.clone(), self.check_file_schema(&f.path, &schema)?));
            }
        }
        // A summary of its own (snapshots written before it moved into persons).
        if let Some(f) = m
            .person_activity
            .as_ref()
            .filter(|_| !m.activity_in_persons())
        {
            let summary = summary::schema(&m.catalog, &m.activity_columns);
            self.check_file_schema(&f.path, &summary)?;
        }
        Ok(footers)
    }

    /// Reads every event file's footer and checks its schema against the catalog.
    pub fn verify_event_files(&self) -> Result<()> {
        for e in &self.manifest.events {
            let def = self
                .manifest
                .catalog
                .event(&e.event)
                .expect("manifest validated");
            self.check_file_schema(&e.file.path, &schema::event_schema(def))?;
        }
        Ok(())
    }

    /// The file's footer, once its schema is found to have `expected`'s columns.
    fn check_file_schema(
        &self,
        rel: &str,
        expected: &arrow::datatypes::Schema,
    ) -> Result<Arc<ParquetMetaData>> {
        let path = self.path(rel);
        let file = std::fs::File::open(&path).at(&path)?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::data(&path, format!("not a readable Parquet file: {e}")))?;
        schema::check_compatible(expected, builder.schema())
            .map_err(|m| Error::data(&path, format!("schema disagrees with the catalog: {m}")))?;
        Ok(builder.metadata().clone())
    }

    /// Registers `persons`, `installations`, `events` and one `event_<Name>` table per event
    /// definition in the session; `table_files` says how tables find their files
    /// (clusters need listed ones).
    pub async fn register(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        table_files: TableFiles,
    ) -> Result<()> {
        if table_files == TableFiles::Manifest {
            self.cache_footers(ctx);
        }
        register::register(&self.manifest, &|rel| self.path(rel), ctx, table_files).await
    }

    /// Puts the footers read at open into the session's metadata cache, under the object
    /// metadata manifest tables scan files with (path, the manifest's size, no modification
    /// time), so that planning finds them there.
    fn cache_footers(&self, ctx: &datafusion::prelude::SessionContext) {
        use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
        use datafusion::execution::cache::cache_manager::CachedFileMetadataEntry;
        let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
        for (f, footer) in &self.footers {
            let location = table::local_path(&self.path(&f.path));
            let meta = datafusion::datasource::listing::PartitionedFile::new(location, f.bytes)
                .object_meta;
            cache.put(
                &meta.location.clone(),
                CachedFileMetadataEntry::new(
                    meta,
                    Arc::new(CachedParquetMetaData::new(footer.clone())),
                ),
            );
        }
    }
}

fn check_no_strays(dir: &Path, listed: &HashSet<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let path = entry.path();
        if entry.file_type().at(&path)?.is_dir() {
            check_no_strays(&path, listed)?;
        } else if !listed.contains(&path) {
            return Err(stray(&path));
        }
    }
    Ok(())
}

fn stray(path: &Path) -> Error {
    Error::data(
        path,
        "file in the event history is not listed in the manifest",
    )
}
