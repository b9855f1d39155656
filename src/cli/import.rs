//! `audience import`: brings CDP event streams, Infobip People exports and plain tables into a
//! store as a new snapshot (see `import`).

use super::output::print;
use super::{absolute_path, parse_time};
use crate::error::{Error, Result};
use crate::import::profile::ConflictPolicy;
use crate::import::source::mapping::ColumnSpec;
use crate::import::source::Kind;
use crate::import::{import, ImportOptions, Mapping};
use crate::store::manifest::Partitioning;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store directory to import into (created if missing); an existing store's latest
    /// snapshot is the starting point.
    #[arg(long, value_parser = absolute_path)]
    store: PathBuf,
    /// Files or directories to import (.jsonl, .ndjson, .json, .csv, .parquet; .gz too).
    #[arg(required = true, value_parser = absolute_path)]
    sources: Vec<PathBuf>,
    /// What every source holds (default: told from each file's content).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<Kind>,
    /// When a record gives a person an email or phone that another person holds: `reject` the
    /// record, or `merge` the two profiles.
    #[arg(long, value_enum, default_value_t = OnConflict::Reject)]
    on_conflict: OnConflict,
    /// Fail without publishing when more records than this are rejected (default: 0 for plain
    /// tables, 100 for event streams).
    #[arg(long)]
    max_rejects: Option<u64>,
    /// The snapshot's as-of time; records at or after it are rejected (default: just after the
    /// newest record).
    #[arg(long, value_parser = parse_time, conflicts_with = "as_of_now")]
    as_of: Option<DateTime<Utc>>,
    /// Make the snapshot's as-of time now rather than the newest record's.
    #[arg(long)]
    as_of_now: bool,
    /// Time partitioning of a new store's event files (an existing store keeps its own).
    #[arg(long, value_enum, default_value_t = PartitionArg::Day)]
    partition: PartitionArg,
    /// Skip the person activity summary of a new store.
    #[arg(long)]
    no_activity_summary: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    mapping: MappingArgs,
}

/// Which columns of a plain table mean what (tables in the snapshot schema need none).
#[derive(Debug, Clone, clap::Args)]
pub struct MappingArgs {
    /// A JSON mapping file (the flags below override it).
    #[arg(long, value_parser = absolute_path)]
    mapping: Option<PathBuf>,
    /// Column holding the person's id (the externalUserId).
    #[arg(long, value_name = "COLUMN")]
    person_id: Option<String>,
    /// Column holding the device's (installation's) id.
    #[arg(long, value_name = "COLUMN")]
    device_id: Option<String>,
    /// Column holding the device's push token.
    #[arg(long, value_name = "COLUMN")]
    push_token: Option<String>,
    /// Column holding the event name.
    #[arg(long, value_name = "COLUMN")]
    event: Option<String>,
    /// Column holding the event time.
    #[arg(long, value_name = "COLUMN")]
    time: Option<String>,
    /// Column holding a record id that de-duplicates re-imports.
    #[arg(long, value_name = "COLUMN")]
    message_id: Option<String>,
    /// Columns that are person attributes: `col`, `col=name`, `col:type` or `col=name:type`
    /// (types: string, number, boolean, date, timestamp, list).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    person_columns: Vec<String>,
    /// Columns that are installation attributes (same forms).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    installation_columns: Vec<String>,
    /// Columns that are event properties (same forms; in an events table, every column not
    /// mapped otherwise is one).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    property_columns: Vec<String>,
    /// Columns to leave out.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    ignore_columns: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OnConflict {
    Reject,
    Merge,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PartitionArg {
    Day,
    Month,
}

fn parse_kind(s: &str) -> std::result::Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind `{s}` (kinds: {})", names.join(", "))
    })
}

impl MappingArgs {
    fn mapping(&self) -> Result<Mapping> {
        let mut m = match &self.mapping {
            Some(path) => Mapping::load(path)?,
            None => Mapping::default(),
        };
        let specs = |flag: &str, list: &[String]| -> Result<Vec<ColumnSpec>> {
            list.iter()
                .map(|s| {
                    s.parse::<ColumnSpec>()
                        .map_err(|e| Error::Invalid(format!("--{flag} `{s}`: {e}")))
                })
                .collect()
        };
        m.merge(Mapping {
            person_id: self.person_id.clone(),
            device_id: self.device_id.clone(),
            push_token: self.push_token.clone(),
            event: self.event.clone(),
            time: self.time.clone(),
            message_id: self.message_id.clone(),
            person_columns: specs("person-columns", &self.person_columns)?,
            installation_columns: specs("installation-columns", &self.installation_columns)?,
            property_columns: specs("property-columns", &self.property_columns)?,
            ignore_columns: self.ignore_columns.clone(),
            ..Mapping::default()
        });
        Ok(m)
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.threads == Some(0) {
        return Err(Error::Invalid("--threads must be at least 1".into()));
    }
    let opts = ImportOptions {
        kind: args.kind,
        mapping: args.mapping.mapping()?,
        on_conflict: match args.on_conflict {
            OnConflict::Reject => ConflictPolicy::Reject,
            OnConflict::Merge => ConflictPolicy::Merge,
        },
        max_rejects: args.max_rejects,
        as_of: args.as_of,
        as_of_now: args.as_of_now,
        partitioning: match args.partition {
            PartitionArg::Day => Partitioning::Day,
            PartitionArg::Month => Partitioning::Month,
        },
        activity_summary: !args.no_activity_summary,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        ..ImportOptions::default()
    };
    let shown = super::progress::show(&opts.progress);
    let imported = import(&args.store, &args.sources, &opts);
    drop(shown);
    let imported = imported?;
    let r = &imported.report;
    for reject in &r.first_rejects {
        eprintln!("rejected {reject}");
    }
    if r.rejected() > r.first_rejects.len() as u64 {
        eprintln!(
            "... and {} more rejects",
            r.rejected() - r.first_rejects.len() as u64
        );
    }
    eprintln!(
        "{} accepted, {} rejected, {} de-duplicated, {} merged ({} on personalize, {} by \
         alias, {} on conflict), {} AppLaunch throttled (30-s rule); {} events added in {:.1}s",
        r.accepted,
        r.rejected(),
        r.deduplicated,
        r.merged_on_personalize + r.merged_by_alias + r.merged_on_conflict,
        r.merged_on_personalize,
        r.merged_by_alias,
        r.merged_on_conflict,
        r.throttled,
        r.events_added,
        r.elapsed_ms as f64 / 1000.0
    );
    for added in &r.catalog_added {
        eprintln!("catalog: added {added}");
    }
    eprintln!("report: {}", imported.report_dir.display());
    match &imported.snapshot_id {
        Some(id) => {
            eprintln!("published snapshot {id}");
            print(format!("{id}\n").as_bytes())
        }
        None => {
            eprintln!("nothing new: the latest snapshot is unchanged");
            Ok(())
        }
    }
}
