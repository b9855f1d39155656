//! The commands that answer segments: count, query, export, explain. Each parses its
//! arguments, opens a workspace (`app`), runs the job and prints what comes back.

use super::output::{self, print};
use super::values::{ChannelArg, FileFormatArg, OutputFormat, RowsFormatArg, TargetArg};
use super::{absolute_path, parse_time, tokio_runtime, Cli};
use crate::app::workspace::{export_target, ExportSpec};
use crate::app::{SegmentSource, Segments, Workspace};
use crate::error::{Error, Result};
use crate::exec::{parse_size, Cluster, ClusterUrl, SessionOptions};
use crate::export::Format;
use crate::plan::Target;
use chrono::{DateTime, Utc};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

/// Options shared by every command that runs a segment.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Evaluate as of this time (default: the snapshot's as-of). Relative windows and `D ago` are
    /// measured from it; later events are ignored.
    #[arg(long, value_parser = parse_time)]
    as_of: Option<DateTime<Utc>>,
    /// What the segment returns.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    /// Directory of saved segments (`name.seg`) for segment("name") and SEGMENT names
    /// (default: the store's segments/).
    #[arg(long, value_parser = absolute_path)]
    segments: Option<PathBuf>,
    /// DataFusion memory pool (e.g. 512MiB); operators spill to disk past it where they can.
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run on an Apache DataFusion Ballista cluster: its scheduler's df://HOST:PORT (builds with
    /// the `cluster` feature). Every node must see the store at the same path.
    #[arg(long, value_parser = ClusterUrl::parse, env = "AUDIENCE_CLUSTER")]
    cluster: Option<ClusterUrl>,
}

impl RunArgs {
    fn target(&self) -> Target {
        self.target.map_or(Target::Installations, Target::from)
    }

    fn session(&self) -> Result<SessionOptions> {
        if self.threads == Some(0) {
            return Err(Error::Invalid("--threads must be at least 1".into()));
        }
        Ok(SessionOptions {
            threads: self.threads,
            memory_limit: self.memory_limit,
            cluster: self.cluster.clone().map_or(Cluster::Local, Cluster::Remote),
            runtime: None,
        })
    }

    fn segments(&self, cli: &Cli) -> Result<Segments> {
        Ok(match &self.segments {
            Some(dir) => Segments::at(dir.clone()),
            None => Segments::of_store(&cli.store_dir()?),
        })
    }
}

/// The workspace of the store and snapshot the command names, its warnings shown.
async fn open(cli: &Cli, run: &RunArgs) -> Result<Workspace> {
    let w = Workspace::open(&cli.store_dir()?, cli.snapshot.as_deref(), &run.session()?).await?;
    output::warnings(w.warnings());
    Ok(w)
}

#[derive(Debug, clap::Args)]
pub struct CountArgs {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: String,
    #[command(flatten)]
    run: RunArgs,
    /// `json` adds the count of both targets, timing, snapshot id and as-of.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// Print on stderr where the time went: opening the snapshot, checking, and the query
    /// (benchmarks compare it with other engines' query times): planning the segment,
    /// DataFusion's optimizer, physical planning and running the plan.
    #[arg(long)]
    timings: bool,
}

pub fn count(cli: &Cli, args: &CountArgs) -> Result<()> {
    let segments = args.run.segments(cli)?;
    let src = segments.read_arg(&args.segment)?;
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let w = open(cli, &args.run).await?;
        let opened = Instant::now();
        let typed = w.compile(&src, &segments.saved())?;
        let checked = Instant::now();
        let q = w.query(args.run.as_of, args.run.target());
        let (n, t) = w.count_timed(&typed, q).await?;
        if args.timings {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            let d = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            eprintln!(
                "timings: open_ms={:.1} check_ms={:.1} query_ms={:.1} (plan_ms={:.1} \
                 optimize_ms={:.1} physical_ms={:.1} execute_ms={:.1})",
                ms(started, opened),
                ms(opened, checked),
                ms(checked, Instant::now()),
                d(t.plan),
                d(t.optimize),
                d(t.physical),
                d(t.execute),
            );
        }
        if args.format == OutputFormat::Json {
            let other = q.target.other();
            let m = w.count(&typed, w.query(args.run.as_of, other)).await?;
            let (installations, persons) = match q.target {
                Target::Installations => (n, m),
                Target::Persons => (m, n),
            };
            let out = serde_json::json!({
                "count": n,
                "target": q.target,
                "counts": { "installations": installations, "persons": persons },
                "snapshot_id": w.snapshot().id(),
                "as_of": q.as_of,
                "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
            });
            print(format!("{out}\n").as_bytes())
        } else {
            print(format!("{n}\n").as_bytes())
        }
    })
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: String,
    #[command(flatten)]
    run: RunArgs,
    /// Rows to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Comma-separated attribute names (default: ids, push registration, platform, externalUserId).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Output format (default: table on a terminal, CSV otherwise).
    #[arg(long, value_enum)]
    format: Option<RowsFormatArg>,
}

pub fn query(cli: &Cli, args: &QueryArgs) -> Result<()> {
    let segments = args.run.segments(cli)?;
    let src = segments.read_arg(&args.segment)?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        RowsFormatArg::Table
    } else {
        RowsFormatArg::Csv
    });
    tokio_runtime()?.block_on(async {
        let w = open(cli, &args.run).await?;
        let typed = w.compile(&src, &segments.saved())?;
        let q = w.query(args.run.as_of, args.run.target());
        let lists_as_text = format == RowsFormatArg::Csv;
        let batches = w
            .preview(&typed, q, &args.columns, 0, Some(args.limit), lists_as_text)
            .await?;
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => return Ok(()),
        };
        output::rows(&batches, schema, format)
    })
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The segment (omit with --out-dir to export every saved segment).
    segment: Option<String>,
    #[command(flatten)]
    run: RunArgs,
    /// The file to write (written to a temporary file and renamed when complete).
    #[arg(long, required_unless_present = "out_dir", value_parser = absolute_path)]
    out: Option<PathBuf>,
    /// Export every saved segment into this directory, one file each.
    #[arg(long, conflicts_with = "out", value_parser = absolute_path)]
    out_dir: Option<PathBuf>,
    /// File format (default: from the file extension, else CSV).
    #[arg(long, value_enum)]
    format: Option<FileFormatArg>,
    /// Comma-separated attribute names (default: the target's or channel's columns).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Export for a channel: its reachability condition and columns.
    #[arg(long, value_enum)]
    channel: Option<ChannelArg>,
}

pub fn export(cli: &Cli, args: &ExportArgs) -> Result<()> {
    let segments = args.run.segments(cli)?;
    // (segment, output file) pairs: one segment, or every saved segment.
    let mut sources: Vec<(SegmentSource, PathBuf)> = Vec::new();
    let explicit = args.format.map(Format::from);
    let format = match (&args.out_dir, &args.segment, &args.out) {
        (Some(dir), None, _) => {
            let saved = segments.list()?;
            if saved.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: no saved segments (.seg files) to export",
                    segments.dir().display()
                )));
            }
            if !dir.is_dir() {
                return Err(Error::data(dir, "output directory does not exist"));
            }
            let format = explicit.unwrap_or(Format::Csv);
            for s in saved {
                let out = dir.join(format!("{}.{}", s.name, format.extension()));
                let name = segments.dir().join(format!("{}.seg", s.name));
                sources.push((
                    SegmentSource {
                        name: name.display().to_string(),
                        text: s.text,
                    },
                    out,
                ));
            }
            format
        }
        (Some(_), Some(_), _) => {
            return Err(Error::Invalid(
                "give either a SEGMENT with --out, or --out-dir for every saved segment".into(),
            ))
        }
        (None, Some(seg), Some(out)) => {
            sources.push((segments.read_arg(seg)?, out.clone()));
            explicit
                .or_else(|| Format::from_path(out))
                .unwrap_or(Format::Csv)
        }
        (None, _, _) => {
            return Err(Error::Invalid(
                "give a SEGMENT and --out FILE (or --out-dir for every saved segment)".into(),
            ))
        }
    };
    let channel = args.channel.map(Into::into);
    let target = export_target(args.run.target.map(Into::into), channel)?;
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let w = open(cli, &args.run).await?;
        // Check every segment before writing anything, so a bad one fails the job up front.
        let mut jobs = Vec::new();
        for (src, out) in sources {
            jobs.push((w.compile(&src, &segments.saved())?, out));
        }
        let spec = ExportSpec {
            as_of: w.query(args.run.as_of, target).as_of,
            target,
            channel,
            columns: args.columns.clone(),
            format,
        };
        let summaries = tokio::select! {
            done = w.export(&jobs, &spec, None) => done?,
            _ = tokio::signal::ctrl_c() => {
                return Err(Error::Cancelled("export interrupted; nothing was written".into()));
            }
        };
        for s in &summaries {
            for leftover in &s.removed_leftovers {
                eprintln!("removed {}, left by a killed export", leftover.display());
            }
            eprintln!(
                "wrote {} rows, {} bytes to {}",
                s.rows,
                s.bytes,
                s.path.display()
            );
        }
        let rows: u64 = summaries.iter().map(|s| s.rows).sum();
        eprintln!(
            "exported {} file(s), {rows} rows in {:.2}s (snapshot {}, as of {})",
            summaries.len(),
            started.elapsed().as_secs_f64(),
            w.snapshot().id(),
            spec.as_of.to_rfc3339()
        );
        Ok(())
    })
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: String,
    #[command(flatten)]
    run: RunArgs,
    /// Run the plan and show its metrics (rows, time, pruned files and row groups).
    #[arg(long)]
    analyze: bool,
    /// Explain the plan `count` runs (the audience size, reading only the columns it needs)
    /// instead of the one that returns the audience's ids.
    #[arg(long)]
    count: bool,
}

pub fn explain(cli: &Cli, args: &ExplainArgs) -> Result<()> {
    let segments = args.run.segments(cli)?;
    let src = segments.read_arg(&args.segment)?;
    tokio_runtime()?.block_on(async {
        let w = open(cli, &args.run).await?;
        let typed = w.compile(&src, &segments.saved())?;
        let q = w.query(args.run.as_of, args.run.target());
        let e = w.explain(&typed, q, args.analyze, args.count).await?;
        let mut text = format!(
            "== segment (resolved) ==\n{}\n\n== logical plan (optimized) ==\n{}\n\n== physical plan ==\n{}",
            e.resolved, e.logical, e.physical
        );
        if !text.ends_with('\n') {
            text.push('\n');
        }
        print(text.as_bytes())
    })
}
