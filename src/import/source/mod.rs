//! Reading import sources: which files, which kind, and their records as [`Call`]s.
//!
//! Every source ends as calls of the replay (`profile`), so the profiling rules are applied in
//! one place whatever the data came from. A record that cannot become a call is a [`Reject`]
//! naming `file:line`; nothing is skipped silently.

pub mod infobip;
pub mod lines;
pub mod mapping;
pub mod segment;
pub mod table;

use super::profile::{Call, Origin, Reject};
use crate::error::{Error, IoContext, Result};
use lines::Lines;
use mapping::Mapping;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a source file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Segment-spec calls (Segment, RudderStack), one JSON object a line.
    Segment,
    /// Infobip People export: one person a line in the People API shape.
    InfobipPeople,
    /// Infobip People events export: `{definitionId, occurredTime, identifier, properties}`.
    InfobipEvents,
    /// A plain table of persons (CSV or Parquet), one person a row.
    Persons,
    /// A plain table of installations, one device a row.
    Installations,
    /// A plain table of events, one event a row; with person attributes, a clickstream.
    Events,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Segment,
        Kind::InfobipPeople,
        Kind::InfobipEvents,
        Kind::Persons,
        Kind::Installations,
        Kind::Events,
    ];

    /// The name `--kind` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::InfobipPeople => "infobip-people",
            Kind::InfobipEvents => "infobip-events",
            Kind::Persons => "persons",
            Kind::Installations => "installations",
            Kind::Events => "events",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn is_table(self) -> bool {
        matches!(self, Kind::Persons | Kind::Installations | Kind::Events)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
    Parquet,
}

/// One file to read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// How rejects name it: the path as given (or below the directory given).
    pub name: Arc<str>,
    pub format: Format,
    /// Gzip-compressed (`.gz`).
    pub gzip: bool,
}

impl SourceFile {
    fn of(path: PathBuf) -> Result<SourceFile> {
        let name: Arc<str> = path.display().to_string().into();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let (stem, gzip) = match file_name.strip_suffix(".gz") {
            Some(stem) => (stem.to_string(), true),
            None => (file_name.clone(), false),
        };
        let format = match stem.rsplit('.').next() {
            Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
            Some("csv") => Format::Csv,
            Some("parquet") if !gzip => Format::Parquet,
            _ => {
                return Err(Error::Invalid(format!(
                    "{name}: cannot tell the format from the name (expected .jsonl, .ndjson, \
                     .json, .csv or .parquet, optionally .gz except for Parquet)"
                )))
            }
        };
        Ok(SourceFile {
            path,
            name,
            format,
            gzip,
        })
    }
}

/// The files `paths` name: files as they are, directories by their files (recursively, in name
/// order, hidden ones left out), so an import of the same directory reads the same sequence.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<SourceFile>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).at(path)?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            if files.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: the directory holds no files to import",
                    path.display()
                )));
            }
            for f in files {
                out.push(SourceFile::of(f)?);
            }
        } else {
            out.push(SourceFile::of(path.clone())?);
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid("no source to import".into()));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .at(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .at(dir)?;
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Receives what a source yields, in source order.
pub trait Sink {
    fn call(&mut self, call: Call);
    fn reject(&mut self, reject: Reject);
    /// Bytes of the source read so far, for progress.
    fn progress(&mut self, _bytes: u64) {}
}

/// A record that cannot become a call.
pub fn reject(origin: Origin, reason: impl Into<String>) -> Reject {
    Reject {
        origin,
        reason: reason.into(),
    }
}

/// The kind of `file`, told from its content: the first non-blank line of JSON lines, the
/// header of a table (with the mapping's column names). An error when the content does not say.
pub fn detect(file: &SourceFile, mapping: &Mapping) -> Result<Kind> {
    let unclear = |what: &str| {
        Error::Invalid(format!(
            "{}: cannot tell what the file holds ({what}); name it with --kind ({})",
            file.name,
            Kind::ALL.map(Kind::name).join(", ")
        ))
    };
    match file.format {
        Format::JsonLines => {
            let mut lines = Lines::open(file)?;
            let first = match lines.next_line()? {
                None => return Err(unclear("it is empty")),
                Some(line) => line.text.map_err(|reason| unclear(&reason))?.to_string(),
            };
            segment::detect(first.as_bytes()).ok_or_else(|| {
                unclear(
                    "its first line is neither a Segment call (`type`), an Infobip person \
                     (`externalId`, `contactInformation`) nor an Infobip event (`definitionId`)",
                )
            })
        }
        Format::Csv | Format::Parquet => {
            let headers = table::headers(file)?;
            // Columns the mapping names come first: they are what the user said.
            let has = |c: &Option<String>| c.as_ref().is_some_and(|c| headers.contains(c));
            let named = if has(&mapping.event) {
                Some(Kind::Events)
            } else if has(&mapping.device_id) || has(&mapping.push_token) {
                Some(Kind::Installations)
            } else if has(&mapping.person_id) {
                Some(Kind::Persons)
            } else {
                None
            };
            named.or_else(|| table::detect(&headers)).ok_or_else(|| {
                unclear(
                    "its header has no event column, no device or push registration id and no \
                     person id",
                )
            })
        }
    }
}

/// Reads `file` as `kind` into `sink`, in file order. `default_time` is the time of records
/// that carry none (a People export's profiles).
pub fn read(
    file: &SourceFile,
    kind: Kind,
    mapping: &Mapping,
    default_time: i64,
    sink: &mut impl Sink,
) -> Result<()> {
    if kind.is_table() {
        return table::read(file, kind, mapping, sink);
    }
    if file.format != Format::JsonLines {
        return Err(Error::Invalid(format!(
            "{}: {kind} sources are JSON lines, not {}",
            file.name,
            match file.format {
                Format::Csv => "CSV",
                _ => "Parquet",
            }
        )));
    }
    let mut lines = Lines::open(file)?;
    let mut n = 0u64;
    while let Some(line) = lines.next_line()? {
        let call = line.text.and_then(|text| match kind {
            Kind::Segment => segment::parse(&line.origin, text.as_bytes()),
            Kind::InfobipPeople => {
                infobip::parse_person(&line.origin, text.as_bytes(), default_time)
            }
            _ => infobip::parse_event(&line.origin, text.as_bytes()),
        });
        match call {
            Ok(call) => sink.call(call),
            Err(reason) => sink.reject(reject(line.origin, reason)),
        }
        n += 1;
        if n.is_multiple_of(8192) {
            sink.progress(lines.bytes_read());
        }
    }
    sink.progress(lines.bytes_read());
    Ok(())
}

/// The whole records at the given lines of `file` (as rejects name them), for the rejects file.
pub fn records_at(file: &SourceFile, lines: &[u64]) -> Result<Vec<(u64, String)>> {
    match file.format {
        Format::JsonLines => Ok(lines::read_lines_at(file, lines)?
            .into_iter()
            .map(|(line, bytes)| (line, String::from_utf8_lossy(&bytes).into_owned()))
            .collect()),
        Format::Csv | Format::Parquet => table::read_rows_at(file, lines),
    }
}
