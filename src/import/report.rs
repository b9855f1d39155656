//! The import report: what was accepted, rejected, de-duplicated, merged and throttled, written
//! as `report.json` with every rejected record, whole, in `rejects.jsonl` beside it, under
//! `<store>/imports/<snapshot id>/` (`failed-<time>/` when nothing was published,
//! `unchanged-<time>/` when the sources held nothing new).

use super::profile::{Reject, Report};
use super::source::{self, SourceFile};
use crate::error::{IoContext, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const REPORTS_DIR: &str = "imports";
pub const REPORT_FILE: &str = "report.json";
pub const REJECTS_FILE: &str = "rejects.jsonl";

/// Rejects the report itself lists (all of them are in the rejects file).
const LISTED_REJECTS: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub file: String,
    pub kind: String,
    /// Records read (lines, rows).
    pub records: u64,
    /// Records that could not be read as a call.
    pub rejected_reading: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub snapshot: Option<String>,
    pub parent: Option<String>,
    pub as_of: Option<DateTime<Utc>>,
    pub sources: Vec<SourceReport>,
    pub accepted: u64,
    pub deduplicated: u64,
    pub merged_on_personalize: u64,
    pub merged_by_alias: u64,
    pub merged_on_conflict: u64,
    /// AppLaunch records within 30 s of the installation's previous recorded one.
    pub throttled: u64,
    pub personalized: u64,
    pub depersonalized: u64,
    pub events_added: u64,
    /// Event files of earlier imports rewritten because their persons were merged away.
    pub rewritten_files: u64,
    /// Catalog entries the data added (`person.custom.x: number`, `event Purchase`, ...).
    pub catalog_added: Vec<String>,
    pub elapsed_ms: u64,
    /// The first rejects, as `file:line: reason`.
    pub first_rejects: Vec<String>,
    #[serde(skip)]
    rejects: Vec<Reject>,
}

impl ImportReport {
    pub fn new(sources: Vec<SourceReport>, mut rejects: Vec<Reject>, replay: &Report) -> Self {
        rejects.extend(replay.rejects.iter().cloned());
        // In source order: a file's rejects by line, files as they were read (reading rejects
        // and replay rejects are found in different passes).
        let order: std::collections::HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.file.as_str(), i))
            .collect();
        rejects.sort_by_key(|r| (order.get(&*r.origin.file).copied(), r.origin.line));
        let mut catalog_added = Vec::new();
        let learned = &replay.new_catalog;
        for (name, ty) in &learned.person {
            catalog_added.push(format!("person.custom.{name}: {ty}"));
        }
        for (name, ty) in &learned.installation {
            catalog_added.push(format!("installation.custom.{name}: {ty}"));
        }
        for (event, props) in &learned.events {
            if props.is_empty() {
                catalog_added.push(format!("event {event}"));
            }
            for (name, ty) in props {
                catalog_added.push(format!("{event}.{name}: {ty}"));
            }
        }
        ImportReport {
            snapshot: None,
            parent: None,
            as_of: None,
            sources,
            accepted: replay.accepted,
            deduplicated: replay.deduplicated,
            merged_on_personalize: replay.merged.personalize,
            merged_by_alias: replay.merged.alias,
            merged_on_conflict: replay.merged.conflict,
            throttled: replay.throttled,
            personalized: replay.personalized,
            depersonalized: replay.depersonalized,
            events_added: 0,
            rewritten_files: 0,
            catalog_added,
            elapsed_ms: 0,
            first_rejects: rejects
                .iter()
                .take(LISTED_REJECTS)
                .map(|r| r.to_string())
                .collect(),
            rejects,
        }
    }

    pub fn rejected(&self) -> u64 {
        self.rejects.len() as u64
    }

    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }
}

#[derive(Serialize)]
struct RejectLine<'a> {
    file: &'a str,
    line: u64,
    reason: &'a str,
    /// The record as the source had it (a CSV row re-quoted, a Parquet row as JSON); null
    /// when it could not be read back (a line longer than the line limit).
    record: Option<String>,
}

/// Writes `report` and its rejects into `<base>/<name>/` and returns that directory.
pub fn write(
    base: &Path,
    name: &str,
    report: &ImportReport,
    files: &[SourceFile],
) -> Result<PathBuf> {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let path = dir.join(REPORT_FILE);
    let text = serde_json::to_string_pretty(report).expect("a report serializes");
    std::fs::write(&path, text + "\n").at(&path)?;

    let path = dir.join(REJECTS_FILE);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).at(&path)?);
    let mut by_file: BTreeMap<&str, Vec<&Reject>> = BTreeMap::new();
    for r in &report.rejects {
        by_file.entry(&r.origin.file).or_default().push(r);
    }
    for (name, rejects) in by_file {
        let mut lines: Vec<u64> = rejects.iter().map(|r| r.origin.line).collect();
        lines.sort_unstable();
        lines.dedup();
        let records: BTreeMap<u64, String> = match files.iter().find(|f| &*f.name == name) {
            Some(file) => source::records_at(file, &lines)?.into_iter().collect(),
            None => BTreeMap::new(),
        };
        for r in rejects {
            let line = RejectLine {
                file: name,
                line: r.origin.line,
                reason: &r.reason,
                record: records.get(&r.origin.line).cloned(),
            };
            let text = serde_json::to_string(&line).expect("a reject serializes");
            writeln!(out, "{text}").at(&path)?;
        }
    }
    out.flush().at(&path)?;
    Ok(dir)
}
