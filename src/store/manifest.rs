//! The snapshot manifest: the only truth about what a snapshot contains.

use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped whenever the layout changes in a way old readers would misread.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub snapshot_id: String,
    /// The order of publishing: 1 for a store's first snapshot, one more for each after it
    /// (assigned under the store's lock when the snapshot is published). The latest snapshot is
    /// the one published last, whatever its id says. Snapshots written before this lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_seq: Option<u64>,
    /// The snapshot this one was built from (an incremental import's parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The point in time the snapshot describes; events are in `[history_start, as_of)`.
    pub as_of: DateTime<Utc>,
    pub history_start: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub row_counts: RowCounts,
    pub catalog: Catalog,
    pub persons: Vec<DataFile>,
    pub installations: Vec<DataFile>,
    /// Roots of the event history this snapshot includes (relative to the store), each laid out
    /// as `<root>/event=<Name>/day=<YYYY-MM-DD>/*.parquet`. Snapshots may share roots.
    pub event_roots: Vec<String>,
    /// How event files are partitioned in time (`day=` or `month=` directories).
    #[serde(default)]
    pub partitioning: Partitioning,
    pub events: Vec<EventFile>,
    /// The person activity summary (see `store::summary`), when the writer made one. When it
    /// names the persons file itself, the summary's columns are stored beside each person's
    /// attributes (see [`Manifest::activity_in_persons`]); older snapshots have a file of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_activity: Option<DataFile>,
    /// The activity summary's columns beyond those its catalog implies (value and month counts).
    #[serde(
        default,
        skip_serializing_if = "crate::store::summary::SummaryColumns::is_empty"
    )]
    pub activity_columns: crate::store::summary::SummaryColumns,
    /// Per-person event counts of the last 1, 2, … days of dense events, written beside the
    /// activity summary (see `store::activity_days`); older snapshots have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_days: Option<crate::store::activity_days::ActivityDays>,
    /// How the snapshot was made (generator parameters), for reproducing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<serde_json::Value>,
    /// What the next incremental import needs beyond the tables, in snapshots an import wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_state: Option<ImportState>,
}

/// The replay state `audience import` keeps beside the tables (see `import::state`): persons'
/// public ids and anonymousIds, devices' ids and tokens, and the de-duplication keys of every
/// record imported so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportState {
    pub persons: DataFile,
    pub installations: DataFile,
    #[serde(default)]
    pub seen: Vec<DataFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    pub persons: u64,
    pub installations: u64,
    pub events: u64,
}

/// A Parquet file of the snapshot, relative to the store root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// Checksums of the file and its parts (files written before checksums have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksums: Option<super::checksum::Checksums>,
}

/// The time period of one event file. Day partitions suit long, large histories (a window reads
/// only its days); month partitions keep small stores from becoming thousands of tiny files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioning {
    #[default]
    Day,
    Month,
}

impl Partitioning {
    /// The hive partition column; its value is the first day of the period (a Date32).
    pub fn column(self) -> &'static str {
        match self {
            Partitioning::Day => "day",
            Partitioning::Month => "month",
        }
    }

    /// The first day of the period containing `date`.
    pub fn period_start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Partitioning::Day => date,
            Partitioning::Month => date.with_day(1).expect("day 1 exists"),
        }
    }

    /// The first day of the next period.
    pub fn next_period(self, start: NaiveDate) -> NaiveDate {
        match self {
            Partitioning::Day => start + chrono::Days::new(1),
            Partitioning::Month => start + chrono::Months::new(1),
        }
    }
}

/// One file of event history: one event definition, one period (see [`Partitioning`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFile {
    pub event: String,
    /// First day of the file's period; every event in it falls inside that period.
    pub period: NaiveDate,
    #[serde(flatten)]
    pub file: DataFile,
}

impl Manifest {
    /// Reads and validates a manifest; every problem names the file.
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).at(path)?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("corrupt manifest: {e}")))?;
        manifest.validate().map_err(|m| Error::data(path, m))?;
        Ok(manifest)
    }

    /// Whether the activity summary's columns are in the persons file, so a plan that scans
    /// persons reads them without a join.
    pub fn activity_in_persons(&self) -> bool {
        self.person_activity
            .as_ref()
            .is_some_and(|a| self.persons.len() == 1 && self.persons[0] == *a)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serializes")
    }

    /// Internal consistency: version, catalog, counts and paths.
    pub fn validate(&self) -> Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.history_start > self.as_of {
            return Err("history_start is after as_of".into());
        }
        self.catalog
            .validate()
            .map_err(|e| format!("invalid catalog: {e}"))?;
        let sum = |files: &[DataFile]| files.iter().map(|f| f.rows).sum::<u64>();
        let event_rows: u64 = self.events.iter().map(|e| e.file.rows).sum();
        for (what, declared, actual) in [
            ("persons", self.row_counts.persons, sum(&self.persons)),
            (
                "installations",
                self.row_counts.installations,
                sum(&self.installations),
            ),
            ("events", self.row_counts.events, event_rows),
        ] {
            if declared != actual {
                return Err(format!(
                    "row_counts.{what} is {declared} but its files hold {actual} rows"
                ));
            }
        }
        let all = self
            .persons
            .iter()
            .chain(&self.installations)
            .chain(&self.person_activity)
            .chain(self.activity_days.iter().map(|d| &d.file))
            .chain(self.events.iter().map(|e| &e.file))
            .chain(self.import_state.iter().flat_map(|s| {
                [&s.persons, &s.installations]
                    .into_iter()
                    .chain(s.seen.iter())
            }));
        for file in all {
            check_relative(&file.path)?;
        }
        for root in &self.event_roots {
            check_relative(root)?;
        }
        if let Some(a) = &self.person_activity {
            if self.persons.iter().any(|p| p.path == a.path) && !self.activity_in_persons() {
                return Err(format!(
                    "person_activity names persons file {} but is not that single file as listed",
                    a.path
                ));
            }
        }
        for e in &self.events {
            if self.catalog.event(&e.event).is_none() {
                return Err(format!(
                    "file {} holds event `{}`, which the catalog does not declare",
                    e.file.path, e.event
                ));
            }
            let column = self.partitioning.column();
            if self.partitioning.period_start(e.period) != e.period {
                return Err(format!(
                    "event file {} starts its {column} period on {}, not on a period start",
                    e.file.path, e.period
                ));
            }
            let suffix = format!("/event={}/{column}={}/", e.event, e.period);
            let in_root = self
                .event_roots
                .iter()
                .any(|r| e.file.path.starts_with(&format!("{r}{suffix}")));
            if !in_root {
                return Err(format!(
                    "event file {} is not under an event root as event={}/{column}={}",
                    e.file.path, e.event, e.period
                ));
            }
        }
        Ok(())
    }
}

/// Manifest paths stay inside the store: relative, no `..`, forward slashes.
fn check_relative(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        Err(format!(
            "path `{path}` must be relative to the store, without `..`"
        ))
    } else {
        Ok(())
    }
}
