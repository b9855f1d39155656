//! The commands that answer segments: count, query, export, explain. Each parses its
//! arguments, opens a workspace (`app`), runs the job and prints what comes back.

use super::output::{self, print};
use super::values::{ChannelArg, FileFormatArg, OutputFormat, RowsFormatArg, TargetArg};
use super::{absolute_path, parse_time, tokio_runtime, Cli, StoreArgs};
use crate::app::workspace::{export_target, ExportSpec};
use crate::app::{Channel, SegmentSource, Segments, Workspace};
use crate::check::typed::{TPred, TypedSegment};
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
    #[command(flatten)]
    store: StoreArgs,
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

    fn segments(&self) -> Result<Segments> {
        Ok(match &self.segments {
            Some(dir) => Segments::at(dir.clone()),
            None => Segments::of_store(&self.store.dir()?),
        })
    }
}

/// The workspace of the store and snapshot the command names (without --snapshot, the one
/// serving --as-of), its warnings shown.
async fn open(run: &RunArgs) -> Result<Workspace> {
    let w = Workspace::open_at(
        &run.store.dir()?,
        run.store.snapshot.as_deref(),
        run.as_of,
        &run.session()?,
    )
    .await?;
    output::warnings(w.warnings());
    Ok(w)
}

/// The segment checked for a run at `as_of`: its warnings shown on stderr (with
/// `--deny-warnings`, they stop the command like errors).
fn checked(
    cli: &Cli,
    w: &Workspace,
    src: &SegmentSource,
    segments: &Segments,
    as_of: Option<DateTime<Utc>>,
) -> Result<crate::check::typed::TypedSegment> {
    let typed = w.check(src, &segments.saved(), as_of)?;
    warned(cli, src, &typed.warnings)?;
    Ok(typed)
}

/// Shows `warnings` about `src`; an error when warnings are denied.
pub(super) fn warned(
    cli: &Cli,
    src: &SegmentSource,
    warnings: &[crate::diagnostic::Diagnostic],
) -> Result<()> {
    if warnings.is_empty() {
        return Ok(());
    }
    let d = crate::diagnostic::Diagnostics(warnings.to_vec());
    if cli.deny_warnings {
        return Err(Error::segment(&src.name, &src.text, d));
    }
    eprint!(
        "{}",
        output::diagnostics(&d, &src.name, &src.text, cli.json_errors)
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct CountArgs {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: String,
    #[command(flatten)]
    run: RunArgs,
    /// Count the audience reachable on a channel (what an export for it writes): push counts
    /// installations, email and sms count persons.
    #[arg(long, value_enum)]
    channel: Option<ChannelArg>,
    /// `json` adds both targets, the reachable audience of every channel, the snapshot id, the
    /// as-of and the time taken.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Print on stderr where the time went: opening the snapshot, checking, and the query
    /// (benchmarks compare it with other engines' query times): planning the segment,
    /// DataFusion's optimizer, physical planning and running the plan.
    #[arg(long)]
    timings: bool,
}

pub fn count(cli: &Cli, args: &CountArgs) -> Result<()> {
    let segments = args.run.segments()?;
    let src = segments.read_arg(&args.segment)?;
    let channel: Option<Channel> = args.channel.map(Into::into);
    let target = export_target(args.run.target.map(Into::into), channel)?;
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let w = open(&args.run).await?;
        let opened = Instant::now();
        let typed = checked(cli, &w, &src, &segments, args.run.as_of)?;
        let checked = Instant::now();
        let q = w.query(args.run.as_of, target);
        let counted = match channel {
            Some(c) => TypedSegment::of(TPred::And(vec![
                typed.root.clone(),
                c.condition(w.catalog())?,
            ])),
            None => typed.clone(),
        };
        let (n, t) = w.count_timed(&counted, q).await?;
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
            let r = w.count_report(&typed, &[], q.as_of).await?;
            let out = serde_json::json!({
                "count": n,
                "target": q.target,
                "channel": channel,
                "counts": { "installations": r.installations, "persons": r.persons },
                "reachable": { "push": r.push, "email": r.email, "sms": r.sms },
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
    /// Rows to show (0: all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Comma-separated attribute names, `age` and `randomBucket` too (default: ids, push
    /// registration, platform, state, externalUserId).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Output format (default: table on a terminal, CSV otherwise).
    #[arg(long, value_enum)]
    format: Option<RowsFormatArg>,
}

pub fn query(cli: &Cli, args: &QueryArgs) -> Result<()> {
    let segments = args.run.segments()?;
    let src = segments.read_arg(&args.segment)?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        RowsFormatArg::Table
    } else {
        RowsFormatArg::Csv
    });
    tokio_runtime()?.block_on(async {
        let w = open(&args.run).await?;
        let typed = checked(cli, &w, &src, &segments, args.run.as_of)?;
        let q = w.query(args.run.as_of, args.run.target());
        let lists_as_text = format == RowsFormatArg::Csv;
        // One row more than shown says whether the preview is cut off.
        let limit = (args.limit > 0).then_some(args.limit);
        let (schema, mut batches) = w
            .preview(
                &typed,
                q,
                &args.columns,
                0,
                limit.map(|l| l + 1),
                lists_as_text,
            )
            .await?;
        let shown: usize = batches.iter().map(|b| b.num_rows()).sum();
        let cut = limit.filter(|&l| shown > l);
        if let Some(l) = cut {
            batches = output::first_rows(batches, l);
        }
        output::rows(&batches, schema, format)?;
        let rows = shown.min(limit.unwrap_or(usize::MAX));
        let note = match cut {
            Some(l) => {
                let total = w.count(&typed, q).await?;
                format!(
                    "{l} of {total} {} (use --limit, 0 for all)",
                    q.target.name()
                )
            }
            None => format!("{rows} {}", if rows == 1 { "row" } else { "rows" }),
        };
        if format == RowsFormatArg::Table {
            print(format!("{note}\n").as_bytes())
        } else {
            if cut.is_some() {
                eprintln!("{note}");
            }
            Ok(())
        }
    })
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The segment (omit with --out-dir to export every saved segment).
    segment: Option<String>,
    #[command(flatten)]
    run: RunArgs,
    /// The file to write (written to a temporary file and renamed when complete); `-` for
    /// standard output.
    #[arg(long, required_unless_present = "out_dir")]
    out: Option<String>,
    /// Export every saved segment into this directory, one file each.
    #[arg(long, conflicts_with = "out", value_parser = absolute_path)]
    out_dir: Option<PathBuf>,
    /// File format (default: from the file extension, else CSV).
    #[arg(long, value_enum)]
    format: Option<FileFormatArg>,
    /// Comma-separated attribute names, `age` and `randomBucket` too (default: the target's
    /// or channel's columns; a channel's address column is always written).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Export for a channel: its reachability condition and columns (push: installations;
    /// email, sms: persons).
    #[arg(long, value_enum)]
    channel: Option<ChannelArg>,
    /// Replace files that exist already.
    #[arg(long)]
    force: bool,
    /// Also write `<file>.meta.json` beside each CSV or JSON file: the segment, snapshot, as-of,
    /// target, channel and time of the export (Parquet files always carry them in their footer).
    #[arg(long)]
    metadata: bool,
}

/// The file an export writes and its format: from `--format` or the extension, which must agree.
fn export_file(out: &str, explicit: Option<Format>) -> Result<(Option<PathBuf>, Format)> {
    if out == "-" {
        return Ok((None, explicit.unwrap_or(Format::Csv)));
    }
    let path = absolute_path(out).map_err(Error::Invalid)?;
    let by_name = Format::from_path(&path);
    if path.extension().is_some() && by_name.is_none() {
        return Err(Error::Invalid(format!(
            "{}: the extension names no export format (use .csv, .jsonl, .json or .parquet, or \
             give --format)",
            path.display()
        )));
    }
    match (explicit, by_name) {
        (Some(f), Some(g)) if f != g => Err(Error::Invalid(format!(
            "{}: the extension says {}, --format says {}",
            path.display(),
            g.extension(),
            f.extension()
        ))),
        (f, g) => Ok((Some(path), f.or(g).unwrap_or(Format::Csv))),
    }
}

pub fn export(cli: &Cli, args: &ExportArgs) -> Result<()> {
    let segments = args.run.segments()?;
    // (segment, output file) pairs: one segment, or every saved segment.
    let mut sources: Vec<(SegmentSource, Option<PathBuf>)> = Vec::new();
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
                    Some(out),
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
            let (path, format) = export_file(out, explicit)?;
            sources.push((segments.read_arg(seg)?, path));
            format
        }
        (None, _, _) => {
            return Err(Error::Invalid(
                "give a SEGMENT and --out FILE (or --out-dir for every saved segment)".into(),
            ))
        }
    };
    if !args.force {
        if let Some(existing) = sources
            .iter()
            .filter_map(|(_, p)| p.as_ref())
            .find(|p| p.exists())
        {
            return Err(Error::Invalid(format!(
                "{} exists already: give --force to replace it",
                existing.display()
            )));
        }
    }
    let channel: Option<Channel> = args.channel.map(Into::into);
    let target = export_target(args.run.target.map(Into::into), channel)?;
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let w = open(&args.run).await?;
        // Check every segment before writing anything, so a bad one fails the job up front.
        let mut typed = Vec::new();
        for (src, _) in &sources {
            typed.push(checked(cli, &w, src, &segments, args.run.as_of)?);
        }
        let as_of = w.query(args.run.as_of, target).as_of;
        let spec = ExportSpec {
            as_of,
            target,
            channel,
            columns: args.columns.clone(),
            format,
        };
        if sources.len() == 1 && sources[0].1.is_none() {
            // Standard output: streamed as it comes (not atomic, there is no file to rename).
            let stream = w
                .rows(
                    &typed[0],
                    w.query(Some(as_of), target),
                    channel,
                    &spec.columns,
                    format,
                )
                .await?;
            return output::stream(stream, format).await;
        }
        let mut jobs = Vec::new();
        for ((src, out), t) in sources.iter().zip(typed) {
            let out = out
                .clone()
                .expect("files for every segment but a stdout one");
            let meta = crate::export::Metadata {
                pairs: vec![
                    ("audience.segment".into(), src.text.clone()),
                    ("audience.snapshot_id".into(), w.snapshot().id().to_string()),
                    ("audience.as_of".into(), as_of.to_rfc3339()),
                    ("audience.target".into(), target.name().to_string()),
                    (
                        "audience.channel".into(),
                        channel.map_or("none", |c| c.name()).to_string(),
                    ),
                    (
                        "audience.created_at".into(),
                        chrono::Utc::now().to_rfc3339(),
                    ),
                ],
                sidecar: args.metadata,
            };
            jobs.push((t, out, meta));
        }
        let progress = crate::export::Progress::new("exporting (rows)", 0);
        let shown = super::progress::show(&progress);
        let exported = tokio::select! {
            done = w.export_with(&jobs, &spec, Some(&progress)) => { drop(shown); done? },
            _ = tokio::signal::ctrl_c() => {
                return Err(Error::Cancelled("export interrupted; nothing was written".into()));
            }
        };
        for (s, (t, ..)) in exported.iter().zip(&jobs) {
            for leftover in &s.removed_leftovers {
                eprintln!("removed {}, left by a killed export", leftover.display());
            }
            eprintln!(
                "wrote {} rows, {} bytes to {}",
                s.rows,
                s.bytes,
                s.path.display()
            );
            if let Some(c) = channel {
                let matching = w.count(t, w.query(Some(as_of), target)).await?;
                if matching > s.rows {
                    eprintln!(
                        "  left out {} of the {matching} matching {}: {}",
                        matching - s.rows,
                        target.name(),
                        c.unreachable()
                    );
                }
            }
        }
        let rows: u64 = exported.iter().map(|s| s.rows).sum();
        eprintln!(
            "exported {} file(s), {rows} rows in {:.2}s (snapshot {}, as of {})",
            exported.len(),
            started.elapsed().as_secs_f64(),
            w.snapshot().id(),
            as_of.to_rfc3339()
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
    let segments = args.run.segments()?;
    let src = segments.read_arg(&args.segment)?;
    tokio_runtime()?.block_on(async {
        let w = open(&args.run).await?;
        let typed = checked(cli, &w, &src, &segments, args.run.as_of)?;
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
