//! `audience import`: the path from the data mobile teams have to a snapshot.
//!
//! 1. `source` finds the files, tells their kind, and turns every record into a [`Call`] of the
//!    replay, or a reject naming `file:line`;
//! 2. the calls are sorted by time and replayed by `profile`, which applies the profiling rules
//!    (install → personalize → depersonalize, merges, identity uniqueness, the 30-second
//!    AppLaunch rule, primary devices) starting from the latest snapshot (`state`);
//! 3. `write` writes the result as a new snapshot through the store's staging and publishes it
//!    atomically, holding the store's lock from reading the parent to publishing, so two imports
//!    never build on the same parent;
//! 4. `report` writes the import report and the rejected records, whole, beside it.
//!
//! Nothing is published when more records are rejected than `--max-rejects` allows, and a
//! failed or killed import leaves the previous snapshot the latest.

pub mod profile;
mod report;
pub mod source;
mod state;
pub mod time_text;
mod write;

use crate::base::progress::Progress;
use crate::error::{Error, Result};
use crate::store::lock::StoreLock;
use crate::store::manifest::{Manifest, Partitioning, RowCounts, FORMAT_VERSION};
use crate::store::publish::Staging;
use crate::store::{Store, SNAPSHOTS_DIR};
use chrono::{DateTime, Utc};
use profile::{Call, ConflictPolicy, Reject, Replay, SeenKeys};
use source::Kind;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use report::{ImportReport, SourceReport};
pub use source::mapping::Mapping;

/// Rejects a stream import tolerates by default: CDP exports carry the odd broken line.
pub const STREAM_MAX_REJECTS: u64 = 100;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Forces the kind of every source (else told from each file's content).
    pub kind: Option<Kind>,
    /// Which columns of a plain table mean what.
    pub mapping: Mapping,
    pub on_conflict: ConflictPolicy,
    /// More rejects than this fail the import before publishing (default: 0 when any source
    /// is a plain table, [`STREAM_MAX_REJECTS`] otherwise).
    pub max_rejects: Option<u64>,
    /// The snapshot's as-of time; records at or after it are rejected. Default: just after
    /// the newest record imported (and never before the parent's as-of).
    pub as_of: Option<DateTime<Utc>>,
    /// Make the as-of time now instead of the newest record's.
    pub as_of_now: bool,
    /// Time partitioning of a new store's event files (a store keeps its own).
    pub partitioning: Partitioning,
    pub activity_summary: bool,
    pub threads: usize,
    pub progress: Progress,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            kind: None,
            mapping: Mapping::default(),
            on_conflict: ConflictPolicy::Reject,
            max_rejects: None,
            as_of: None,
            as_of_now: false,
            partitioning: Partitioning::Day,
            activity_summary: true,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress: Progress::default(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The snapshot published; `None` when the sources held nothing new (a re-import).
    pub snapshot_id: Option<String>,
    pub report: ImportReport,
    /// Where the report and the rejected records were written.
    pub report_dir: PathBuf,
}

/// The de-duplication keys of earlier imports, and the ones this import saw first.
struct Keys {
    earlier: HashSet<u64>,
    new: HashSet<u64>,
}

impl SeenKeys for Keys {
    fn seen(&mut self, key: u64) -> bool {
        self.earlier.contains(&key) || !self.new.insert(key)
    }
}

/// Collects what the sources yield.
#[derive(Default)]
struct Collected {
    calls: Vec<Call>,
    rejects: Vec<Reject>,
    records: u64,
    progress: Progress,
    /// Bytes of the current file reported so far.
    last: u64,
}

impl source::Sink for Collected {
    fn call(&mut self, call: Call) {
        self.records += 1;
        self.calls.push(call);
    }

    fn reject(&mut self, reject: Reject) {
        self.records += 1;
        self.rejects.push(reject);
    }

    fn progress(&mut self, bytes: u64) {
        self.progress.add(bytes.saturating_sub(self.last));
        self.last = self.last.max(bytes);
    }
}

/// Imports `sources` into the store at `store_dir` (created if missing).
pub fn import(store_dir: &Path, sources: &[PathBuf], opts: &ImportOptions) -> Result<Imported> {
    let started = std::time::Instant::now();
    let now = Utc::now();
    let files = source::expand(sources)?;
    let kinds = files
        .iter()
        .map(|f| match opts.kind {
            Some(k) => Ok(k),
            None => source::detect(f, &opts.mapping),
        })
        .collect::<Result<Vec<Kind>>>()?;
    let max_rejects = opts
        .max_rejects
        .unwrap_or(if kinds.iter().any(|k| k.is_table()) {
            0
        } else {
            STREAM_MAX_REJECTS
        });

    let lock = StoreLock::acquire(store_dir)?;
    let store_dir = &std::path::absolute(store_dir).map_err(|e| Error::io(store_dir, e))?;
    let parent = latest(store_dir)?;
    let (existing, earlier) = match &parent {
        Some(m) => state::load(store_dir, m)?,
        None => Default::default(),
    };

    // 1. Sources to calls.
    let bar = &opts.progress;
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len()))
        .sum();
    bar.restart("reading sources (bytes)", total_bytes);
    let default_time = opts.as_of.unwrap_or(now).timestamp_micros() - 1;
    // Person and installation rows without a time of their own are as of just before the as-of.
    let mapping = Mapping {
        default_time: Some(default_time),
        ..opts.mapping.clone()
    };
    let mut collected = Collected {
        progress: bar.clone(),
        ..Collected::default()
    };
    let mut per_file = Vec::with_capacity(files.len());
    for (file, kind) in files.iter().zip(&kinds) {
        let before = (collected.records, collected.rejects.len());
        collected.last = 0;
        source::read(file, *kind, &mapping, default_time, &mut collected)?;
        per_file.push(SourceReport {
            file: file.name.to_string(),
            kind: kind.name().to_string(),
            records: collected.records - before.0,
            rejected_reading: (collected.rejects.len() - before.1) as u64,
        });
    }
    let Collected {
        mut calls,
        rejects: mut read_rejects,
        ..
    } = collected;

    // 2. Replay in time order; a stable sort keeps a source's order among equal times.
    calls.sort_by_key(|c| c.time);
    if let Some(as_of) = opts.as_of {
        let limit = as_of.timestamp_micros();
        calls.retain(|c| match c.time {
            Some(t) if t >= limit => {
                read_rejects.push(Reject {
                    origin: c.origin.clone(),
                    reason: format!(
                        "at {} it is not before the import's --as-of {}",
                        describe(t),
                        as_of.to_rfc3339()
                    ),
                });
                false
            }
            _ => true,
        });
    }
    let types = parent
        .as_ref()
        .map(|m| state::types_of(&m.catalog))
        .unwrap_or_default();
    let mut replay = Replay::new(existing, opts.on_conflict, types).map_err(|e| {
        Error::data(
            store_dir,
            format!("the latest snapshot cannot be imported into: {e}"),
        )
    })?;
    let mut keys = Keys {
        earlier,
        new: HashSet::new(),
    };
    bar.restart("replaying records", calls.len() as u64);
    for (i, call) in calls.into_iter().enumerate() {
        // A reject is recorded in the replay's report.
        let _ = replay.apply(call, &mut keys);
        if i % 65_536 == 65_535 {
            bar.add(65_536);
        }
    }
    let profiles = replay.finish();
    let mut report = ImportReport::new(per_file, read_rejects, &profiles.report);
    report.parent = parent.as_ref().map(|m| m.snapshot_id.clone());

    let rejected = report.rejected();
    let report_base = store_dir.join(report::REPORTS_DIR);
    if rejected > max_rejects {
        let dir = report::write(
            &report_base,
            &format!("failed-{}", stamp(now)),
            &report,
            &files,
        )?;
        return Err(Error::Invalid(format!(
            "{rejected} records were rejected, more than --max-rejects {max_rejects} allows; \
             nothing was published (the rejects are in {})",
            dir.display()
        )));
    }
    if profiles.report.accepted == 0 {
        if parent.is_none() {
            let dir = report::write(
                &report_base,
                &format!("failed-{}", stamp(now)),
                &report,
                &files,
            )?;
            return Err(Error::Invalid(format!(
                "the sources hold no record to import (report in {})",
                dir.display()
            )));
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        let dir = report::write(
            &report_base,
            &format!("unchanged-{}", stamp(now)),
            &report,
            &files,
        )?;
        return Ok(Imported {
            snapshot_id: None,
            report,
            report_dir: dir,
        });
    }

    // 3. The snapshot.
    let as_of = as_of_time(opts, now, parent.as_ref(), profiles.report.last_time)?;
    let staging = Staging::begin(store_dir, now)?;
    let written = write_snapshot(
        store_dir,
        &staging,
        parent.as_ref(),
        &profiles,
        &keys.new,
        as_of,
        opts,
        &mut report,
    );
    let mut manifest = match written {
        Ok(m) => m,
        Err(e) => {
            staging.abandon();
            return Err(e);
        }
    };
    let id = manifest.snapshot_id.clone();
    staging.publish_locked(&mut manifest)?;
    drop(lock);
    report.snapshot = Some(id.clone());
    report.as_of = Some(as_of);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    let dir = report::write(&report_base, &id, &report, &files)?;
    Ok(Imported {
        snapshot_id: Some(id),
        report,
        report_dir: dir,
    })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%S%3fZ").to_string()
}

fn describe(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros).map_or_else(|| micros.to_string(), |t| t.to_rfc3339())
}

/// The latest snapshot's manifest, if the store has one.
fn latest(store_dir: &Path) -> Result<Option<Manifest>> {
    if !store_dir.join(SNAPSHOTS_DIR).is_dir() {
        return Ok(None);
    }
    let store = Store::open(store_dir)?;
    if store.snapshot_ids().is_empty() {
        return Ok(None);
    }
    Ok(Some(store.snapshot(None)?.manifest))
}

/// The as-of time: as given; else now (`--as-of-now`); else the end of the second of the newest
/// record (events lie before the as-of time). Never before the parent's.
fn as_of_time(
    opts: &ImportOptions,
    now: DateTime<Utc>,
    parent: Option<&Manifest>,
    last: Option<i64>,
) -> Result<DateTime<Utc>> {
    let computed = match (opts.as_of, opts.as_of_now) {
        (Some(t), _) => t,
        (None, true) => now,
        (None, false) => {
            let last = last.unwrap_or_else(|| now.timestamp_micros());
            let next_second = (last.div_euclid(1_000_000) + 1) * 1_000_000;
            DateTime::from_timestamp_micros(next_second)
                .ok_or_else(|| Error::Invalid("the newest record's time is out of range".into()))?
        }
    };
    match parent {
        Some(p) if p.as_of > computed => {
            if opts.as_of.is_some() {
                Err(Error::Invalid(format!(
                    "--as-of {} is before the latest snapshot's as-of {}: a snapshot never \
                     goes back in time",
                    computed.to_rfc3339(),
                    p.as_of.to_rfc3339()
                )))
            } else {
                Ok(p.as_of)
            }
        }
        _ => Ok(computed),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_snapshot(
    store_dir: &Path,
    staging: &Staging,
    parent: Option<&Manifest>,
    profiles: &profile::Profiles,
    new_keys: &HashSet<u64>,
    as_of: DateTime<Utc>,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Manifest> {
    let bar = &opts.progress;
    bar.restart("writing the snapshot", 0);
    let catalog = write::grow_catalog(parent.map(|m| &m.catalog), profiles);
    let partitioning = parent.map_or(opts.partitioning, |m| m.partitioning);
    let persons = write::write_persons(staging, &catalog, &profiles.persons)?;
    let installations = write::write_installations(staging, &catalog, &profiles.installations)?;
    let mut events = write::write_events(staging, &catalog, partitioning, &profiles.events)?;
    report.events_added = events.iter().map(|e| e.file.rows).sum();
    if let Some(p) = parent {
        let (carried, rewritten) =
            write::carry_history(store_dir, staging, p, &profiles.merged_into)?;
        report.rewritten_files = rewritten as u64;
        events.extend(carried);
    }
    events.sort_by(|a, b| {
        (&a.event, a.period, &a.file.path).cmp(&(&b.event, b.period, &b.file.path))
    });
    let parent_seen = match parent.and_then(|p| p.import_state.as_ref()) {
        Some(s) => s
            .seen
            .iter()
            .enumerate()
            .map(|(i, f)| {
                write::link(
                    &store_dir.join(&f.path),
                    staging,
                    &format!("import/seen-{i:04}.parquet"),
                    f,
                )
            })
            .collect::<Result<Vec<_>>>()?,
        None => vec![],
    };
    let new_keys: Vec<u64> = new_keys.iter().copied().collect();
    let import_state = state::save(
        staging,
        &profiles.persons,
        &profiles.installations,
        &new_keys,
        &parent_seen,
    )?;
    let first_event = profiles
        .events
        .iter()
        .flat_map(|t| t.rows.iter().map(|r| r.event_time))
        .min();
    let history_start = [
        parent.map(|p| p.history_start.timestamp_micros()),
        first_event,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(as_of.timestamp_micros())
    .min(as_of.timestamp_micros());
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        snapshot_id: staging.id().to_string(),
        published_seq: None,
        parent: parent.map(|p| p.snapshot_id.clone()),
        as_of,
        history_start: DateTime::from_timestamp_micros(history_start).expect("checked range"),
        created_at: Utc::now(),
        row_counts: RowCounts {
            persons: persons.rows,
            installations: installations.rows,
            events: events.iter().map(|e| e.file.rows).sum(),
        },
        catalog,
        persons: vec![persons],
        installations: vec![installations],
        event_roots: vec![staging.store_path("events")],
        partitioning,
        events,
        person_activity: None,
        activity_columns: Default::default(),
        activity_days: None,
        provenance: Some(serde_json::json!({
            "importer": "audience import",
            "sources": report.sources.iter().map(|s| &s.file).collect::<Vec<_>>(),
            "accepted": report.accepted,
        })),
        import_state: Some(import_state),
    };
    let summary = opts.activity_summary || parent.is_some_and(|p| p.person_activity.is_some());
    if summary {
        bar.restart("summarizing activity", 0);
        crate::store::summarize::build(staging, &mut manifest, opts.threads)?;
    }
    crate::store::values::collect(staging, &mut manifest, opts.threads)?;
    Ok(manifest)
}
