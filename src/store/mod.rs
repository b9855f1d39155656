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

pub mod activity_days;
pub mod checksum;
pub mod derived;
pub mod gc;
mod history;
pub mod lock;
pub mod manifest;
pub mod publish;
mod register;
pub mod schema;
mod staged;
pub mod summarize;
pub mod summary;
mod table;
pub mod values;
pub mod verified;
pub mod version_key;

use crate::error::{Error, IoContext, Result};
use chrono::{DateTime, Utc};
use manifest::{Manifest, MANIFEST_FILE};
use parquet::file::metadata::ParquetMetaData;
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
    /// Published snapshot ids, in the order they were published.
    ids: Vec<String>,
    /// What opening the store noticed and skipped (a directory in `snapshots/` that is no
    /// snapshot), for the front ends to show.
    warnings: Vec<String>,
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
        let mut store = Store::at(&root.canonicalize().at(root)?);
        let (ids, warnings) = store.list()?;
        store.ids = ids.into_iter().map(|(id, _)| id).collect();
        store.warnings = warnings;
        Ok(store)
    }

    /// The store at `root`, not yet listed (for writers).
    pub(crate) fn at(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            ids: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Published snapshot ids, in the order they were published (the latest last).
    pub fn snapshot_ids(&self) -> &[String] {
        &self.ids
    }

    /// What opening the store skipped, as sentences naming the paths.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every published snapshot with its publish number, oldest first, and warnings about
    /// directories that are no snapshot. A directory without a manifest cannot be a snapshot
    /// (publishing writes the manifest before the directory appears), so it is skipped.
    /// Snapshots published before publish numbers existed count as 0 and keep their id order.
    fn list(&self) -> Result<Listing> {
        let dir = self.root.join(SNAPSHOTS_DIR);
        let mut found = Vec::new();
        let mut warnings = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let manifest = entry.path().join(MANIFEST_FILE);
            match publish_seq(&manifest) {
                Some(seq) => found.push((name, seq)),
                None => warnings.push(format!(
                    "{}: no {MANIFEST_FILE}, so not a snapshot; skipped",
                    entry.path().display()
                )),
            }
        }
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok((found, warnings))
    }

    /// The number the next published snapshot gets (call it under the store's lock).
    pub(crate) fn next_publish_seq(&self) -> Result<u64> {
        let (found, _) = self.list()?;
        Ok(found.iter().map(|(_, seq)| *seq).max().unwrap_or(0) + 1)
    }

    /// The id of the snapshot published last.
    pub fn latest_id(&self) -> Result<&str> {
        self.ids
            .last()
            .map(String::as_str)
            .ok_or_else(|| Error::data(&self.root, "the store has no snapshots"))
    }

    /// Opens one snapshot (`None`: the latest) and checks it against its manifest.
    pub fn snapshot(&self, id: Option<&str>) -> Result<Snapshot> {
        let id = match id {
            Some(id) if self.ids.iter().any(|x| x == id) => id.to_string(),
            Some(id) => {
                let known = if self.ids.is_empty() {
                    "none".to_string()
                } else {
                    self.ids.join(", ")
                };
                return Err(Error::data(
                    &self.root,
                    format!("no snapshot `{id}` in this store (snapshots: {known})"),
                ));
            }
            None => self.latest_id()?.to_string(),
        };
        Snapshot::load(self, &id)
    }

    /// Each published snapshot's id and as-of time, in the order they were published (read
    /// from the manifests' heads; the snapshots themselves are not opened).
    pub fn snapshot_times(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        #[derive(serde::Deserialize)]
        struct Head {
            as_of: DateTime<Utc>,
        }
        self.ids
            .iter()
            .map(|id| {
                let path = self.root.join(SNAPSHOTS_DIR).join(id).join(MANIFEST_FILE);
                let file = std::fs::File::open(&path).at(&path)?;
                let head: Head = serde_json::from_reader(std::io::BufReader::new(file))
                    .map_err(|e| Error::data(&path, format!("corrupt manifest: {e}")))?;
                Ok((id.clone(), head.as_of))
            })
            .collect()
    }

    /// The id of the snapshot that serves as-of time `at`: the newest at or before it (see
    /// [`serving`]).
    pub fn serving_id(&self, at: DateTime<Utc>) -> Result<String> {
        let times = self.snapshot_times()?;
        serving(&times, at)
            .map(|i| times[i].0.clone())
            .ok_or_else(|| Error::data(&self.root, "the store has no snapshots"))
    }
}

/// Which of `snapshots` (id and as-of, in publish order) serves as-of time `at`: the one with
/// the latest as-of at or before `at`, so attributes are the newest values known by then; when
/// every snapshot is later, the earliest. Between snapshots of one as-of, the one published
/// last. `None` when there are none.
pub fn serving<T>(snapshots: &[(T, DateTime<Utc>)], at: DateTime<Utc>) -> Option<usize> {
    let best = |candidates: &mut dyn Iterator<Item = usize>, later: bool| {
        candidates.reduce(|a, b| {
            let (ta, tb) = (snapshots[a].1, snapshots[b].1);
            // Ties go to the later index: the one published last.
            if (later && tb >= ta) || (!later && tb <= ta) {
                b
            } else {
                a
            }
        })
    };
    let mut at_or_before = (0..snapshots.len()).filter(|&i| snapshots[i].1 <= at);
    best(&mut at_or_before, true).or_else(|| best(&mut (0..snapshots.len()), false))
}

/// Published snapshots (id, publish number) oldest first, and warnings about what was skipped.
type Listing = (Vec<(String, u64)>, Vec<String>);

/// The publish number a manifest records, read from its head (the field comes third, so a
/// store with many large manifests lists fast); `Some(0)` for a manifest written before publish
/// numbers, `None` when there is no manifest.
fn publish_seq(manifest: &Path) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut file = std::fs::File::open(manifest).ok()?;
    let n = file.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let key = "\"published_seq\":";
    let Some(at) = text.find(key) else {
        return Some(0);
    };
    let digits: String = text[at + key.len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some(digits.parse().unwrap_or(0))
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
    /// The footers and page indexes this process verified (shared with the session's tables).
    verified: Arc<verified::Verified>,
    /// Whether the event history's files were found as the manifest says (checked once, when
    /// something first depends on it: see [`Snapshot::check_history`]).
    history_checked: Arc<std::sync::atomic::AtomicBool>,
}

/// What [`Snapshot::verify`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: u64,
    pub bytes: u64,
    pub rows: u64,
    /// Files whose whole content matched their checksums.
    pub checksummed: u64,
    /// Files written before checksums (footer, schema and rows checked only).
    pub unchecksummed: u64,
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
            verified: Arc::default(),
            history_checked: Arc::default(),
        };
        snapshot.check_tables()?;
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

    /// The persons, installations and activity summary files exist with their recorded sizes.
    fn check_tables(&self) -> Result<()> {
        let m = &self.manifest;
        m.persons
            .iter()
            .chain(&m.installations)
            .chain(&m.person_activity)
            .chain(m.activity_days.iter().map(|d| &d.file))
            .try_for_each(|f| self.check_size(f))
    }

    /// Every event file the manifest lists exists with its recorded size, and the event roots
    /// hold nothing else ([`history::HistoryCheck`]); once per opened snapshot.
    pub fn check_history(&self) -> Result<()> {
        self.history().run()
    }

    /// The check of the event history's files, to run when something first depends on it.
    pub(crate) fn history(&self) -> Arc<history::HistoryCheck> {
        let m = &self.manifest;
        Arc::new(history::HistoryCheck::new(
            m.events
                .iter()
                .map(|e| (self.path(&e.file.path), e.file.bytes))
                .collect(),
            m.event_roots.iter().map(|r| self.path(r)).collect(),
            self.history_checked.clone(),
        ))
    }

    fn check_size(&self, f: &manifest::DataFile) -> Result<()> {
        history::check_size(&self.path(&f.path), f.bytes)
    }

    /// Persons and installations files must match the catalog, their footers their checksums
    /// and their row counts the manifest; event files are checked when first planned, and all
    /// of every file by [`Snapshot::verify`]. Returns the footers it read.
    fn check_table_schemas(&self) -> Result<Vec<(manifest::DataFile, Arc<ParquetMetaData>)>> {
        let m = &self.manifest;
        let mut footers = Vec::new();
        for (files, schema) in [
            (&m.persons, register::persons_schema(m)),
            (&m.installations, schema::installations_schema(&m.catalog)),
        ] {
            for f in files {
                footers.push((f.clone(), self.check_file(f, &schema, false)?));
            }
        }
        // A summary of its own (snapshots written before it moved into persons).
        if let Some(f) = m
            .person_activity
            .as_ref()
            .filter(|_| !m.activity_in_persons())
        {
            let summary = summary::schema(&m.catalog, &m.activity_columns);
            self.check_file(f, &summary, false)?;
        }
        Ok(footers)
    }

    /// Checks every file of the snapshot: its whole content against its checksum (files
    /// written before checksums: their footer only), its footer's schema against the catalog
    /// and its row count against the manifest.
    pub fn verify(&self) -> Result<VerifyReport> {
        let m = &self.manifest;
        let mut report = VerifyReport::default();
        let mut check = |f: &manifest::DataFile,
                         schema: &arrow::datatypes::Schema,
                         events: bool|
         -> Result<()> {
            let path = self.path(&f.path);
            match &f.checksums {
                Some(sums) => {
                    checksum::verify(&path, sums)?;
                    report.checksummed += 1;
                }
                None => report.unchecksummed += 1,
            }
            self.check_file(f, schema, events)?;
            report.files += 1;
            report.bytes += f.bytes;
            report.rows += f.rows;
            Ok(())
        };
        for f in &m.persons {
            check(f, &register::persons_schema(m), false)?;
        }
        for f in &m.installations {
            check(f, &schema::installations_schema(&m.catalog), false)?;
        }
        if let Some(f) = m
            .person_activity
            .as_ref()
            .filter(|_| !m.activity_in_persons())
        {
            check(f, &summary::schema(&m.catalog, &m.activity_columns), false)?;
        }
        if let Some(d) = &m.activity_days {
            check(&d.file, &activity_days::schema(&d.events, d.days), false)?;
        }
        for e in &m.events {
            let def = m.catalog.event(&e.event).ok_or_else(|| {
                Error::Internal(format!("validated manifest lacks event {}", e.event))
            })?;
            check(&e.file, &schema::event_schema(def), true)?;
        }
        Ok(report)
    }

    /// The file's footer, verified against its checksum, once its schema is found to have
    /// `expected`'s columns and its row count the manifest's.
    fn check_file(
        &self,
        f: &manifest::DataFile,
        expected: &arrow::datatypes::Schema,
        events: bool,
    ) -> Result<Arc<ParquetMetaData>> {
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
        let path = self.path(&f.path);
        let sums = f.checksums.as_ref().and_then(|c| c.expected());
        let (metadata, _) = checksum::read_footer(&path, sums.as_ref().map(|e| e.footer))?;
        let metadata = Arc::new(metadata);
        let arrow = ArrowReaderMetadata::try_new(metadata.clone(), ArrowReaderOptions::new())
            .map_err(|e| Error::data(&path, format!("not a readable Parquet file: {e}")))?;
        schema::check_compatible(expected, arrow.schema(), events)
            .map_err(|m| Error::data(&path, format!("schema disagrees with the catalog: {m}")))?;
        let rows = metadata.file_metadata().num_rows() as u64;
        if rows != f.rows {
            return Err(Error::data(
                &path,
                format!("holds {rows} rows, the manifest says {}", f.rows),
            ));
        }
        if let Some(expected) = sums {
            self.verified.mark(&verified::FileCheck { path, expected });
        }
        Ok(metadata)
    }

    /// Registers `persons`, `installations`, `events` and one `event_<Name>` table per event
    /// definition in the session; `table_files` says how tables find their files
    /// (clusters need listed ones).
    pub async fn register(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        table_files: TableFiles,
    ) -> Result<()> {
        let history = self.history();
        match table_files {
            TableFiles::Manifest => self.cache_footers(ctx),
            // Every table lists directories: check them all before any is read.
            TableFiles::Listed => history.run()?,
        }
        register::register(
            &self.manifest,
            &|rel| self.path(rel),
            ctx,
            table_files,
            self.verified.clone(),
            history,
        )
        .await
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

#[cfg(test)]
mod tests {
    use super::serving;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        format!("{s}T00:00:00Z").parse().unwrap()
    }

    #[test]
    fn the_newest_snapshot_at_or_before_serves_else_the_earliest() {
        let snaps = [
            ("a", t("2026-10-01")),
            ("b", t("2026-10-08")),
            ("c", t("2026-10-15")),
        ];
        let at = |s: &str| serving(&snaps, t(s)).map(|i| snaps[i].0);
        assert_eq!(
            at("2026-09-01"),
            Some("a"),
            "before every snapshot: the earliest"
        );
        assert_eq!(
            at("2026-10-01"),
            Some("a"),
            "at a snapshot's as-of: that one"
        );
        assert_eq!(at("2026-10-07"), Some("a"));
        assert_eq!(at("2026-10-08"), Some("b"));
        assert_eq!(
            at("2026-12-01"),
            Some("c"),
            "after every snapshot: the latest"
        );
        assert_eq!(serving::<&str>(&[], t("2026-10-01")), None);
    }

    #[test]
    fn as_of_decides_not_publish_order_and_ties_go_to_the_one_published_last() {
        // An import with an earlier --as-of, published after a later one.
        let snaps = [("late", t("2026-10-15")), ("early", t("2026-10-01"))];
        let at = |s: &str| serving(&snaps, t(s)).map(|i| snaps[i].0);
        assert_eq!(at("2026-10-10"), Some("early"));
        assert_eq!(at("2026-10-20"), Some("late"));
        assert_eq!(at("2026-09-01"), Some("early"));
        let tied = [("first", t("2026-10-01")), ("again", t("2026-10-01"))];
        assert_eq!(serving(&tied, t("2026-10-02")), Some(1));
        assert_eq!(serving(&tied, t("2026-09-02")), Some(1));
    }
}
