//! The commands that answer segments: count, query, export, explain.
//! Each runs parse → check → plan → execute (→ export) on one snapshot.

use super::segment_arg::{compile_segment, read_segment, SegmentSource};
use super::{parse_time, tokio_runtime, Cli, Failure};
use crate::catalog::{Catalog, Entity};
use crate::check::resolve_attribute;
use crate::check::typed::{Field, TPred, TypedSegment};
use crate::error::{Error, Result};
use crate::exec::cluster::{check_cluster_sees, scanned_tables};
use crate::exec::{open_session, parse_size, run, Cluster, ClusterUrl, SessionOptions};
use crate::export::{export_split, AtomicExport, ExportFormat, ExportSummary};
use crate::plan::{plan_segment, plan_segments, OutputColumn, PlanOptions, TableSources, Target};
use crate::store::{Snapshot, Store};
use chrono::{DateTime, Utc};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Options shared by every command that runs a segment.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Evaluate as of this time (default: the snapshot's as-of). Relative windows and `D ago` are
    /// measured from it; later events are ignored.
    #[arg(long, value_parser = parse_time)]
    as_of: Option<DateTime<Utc>>,
    /// What the segment returns.
    #[arg(long, value_enum, default_value_t = Target::Installations)]
    target: Target,
    /// Directory of saved segments (`name.seg`) for segment("name") and SEGMENT names.
    #[arg(long)]
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
    /// Diagnostics as JSON on stderr.
    #[arg(long)]
    json_errors: bool,
}

#[derive(Debug, clap::Args)]
pub struct CountArgs {
    /// The segment: its text, `@file.seg`, or a saved segment's name.
    segment: String,
    #[command(flatten)]
    run: RunArgs,
    /// `json` adds the count of both targets, timing, snapshot id and as-of.
    #[arg(long, value_enum, default_value_t = super::OutputFormat::Text)]
    format: super::OutputFormat,
    /// Print on stderr where the time went: opening the snapshot, checking, and the query
    /// (benchmarks compare it with other engines' query times): planning the segment,
    /// DataFusion's optimizer, physical planning and running the plan.
    #[arg(long)]
    timings: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    /// A table (the default on a terminal).
    Table,
    Csv,
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
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
    format: Option<QueryFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Channel {
    /// Reachable installations: not uninstalled, push registration enabled.
    Push,
    /// Persons with an email address.
    Email,
    /// Persons with a phone number.
    Sms,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The segment (omit with --out-dir to export every saved segment in --segments).
    segment: Option<String>,
    #[command(flatten)]
    run: RunArgs,
    /// The file to write (written to a temporary file and renamed when complete).
    #[arg(long, required_unless_present = "out_dir")]
    out: Option<PathBuf>,
    /// Export every saved segment of --segments into this directory, one file each.
    #[arg(long, conflicts_with = "out")]
    out_dir: Option<PathBuf>,
    /// File format (default: from the file extension, else CSV).
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Export for a channel: its reachability condition and columns.
    #[arg(long, value_enum)]
    channel: Option<Channel>,
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
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

/// Everything a segment command needs, opened once.
struct Prepared {
    snapshot: Snapshot,
    as_of: DateTime<Utc>,
    ctx: SessionContext,
    sources: TableSources,
    cluster: Cluster,
    /// Tables the cluster was shown to see in full (checked once per table, before first use).
    cluster_checked: Mutex<BTreeSet<String>>,
}

impl Prepared {
    /// On a cluster, checks that it sees the snapshot's files for the tables `plan` reads.
    async fn ready(&self, plan: &LogicalPlan) -> Result<()> {
        if self.cluster == Cluster::Local {
            return Ok(());
        }
        let mut tables = scanned_tables(plan);
        tables.retain(|t| {
            !self
                .cluster_checked
                .lock()
                .expect("not poisoned")
                .contains(t)
        });
        check_cluster_sees(&self.ctx, &self.snapshot, &self.cluster, &tables).await?;
        self.cluster_checked
            .lock()
            .expect("not poisoned")
            .extend(tables);
        Ok(())
    }
}

async fn prepare(cli: &Cli, run: &RunArgs) -> Result<Prepared> {
    let snapshot = Store::open(cli.store_dir())?.snapshot(cli.snapshot.as_deref())?;
    let as_of = run.as_of.unwrap_or(snapshot.manifest.as_of);
    let cluster = run.cluster.clone().map_or(Cluster::Local, Cluster::Remote);
    let ctx = open_session(
        &snapshot,
        &SessionOptions {
            threads: run.threads,
            memory_limit: run.memory_limit,
            cluster: cluster.clone(),
        },
    )
    .await?;
    let sources = TableSources::from_session(&ctx, &snapshot.manifest).await?;
    Ok(Prepared {
        snapshot,
        as_of,
        ctx,
        sources,
        cluster,
        cluster_checked: Mutex::default(),
    })
}

fn compile(p: &Prepared, src: &SegmentSource, run: &RunArgs) -> Result<TypedSegment, Failure> {
    compile_segment(
        src,
        &p.snapshot.manifest.catalog,
        run.segments.as_ref(),
        run.json_errors,
    )
    .map_err(|e| Failure::Segment(e.rendered))
}

/// Output columns from names, or the defaults of the target.
fn columns(
    catalog: &Catalog,
    names: &[String],
    target: Target,
    channel: Option<Channel>,
) -> Result<Vec<OutputColumn>> {
    let defaults: &[&str] = match (channel, target) {
        (Some(Channel::Push), _) => &[
            "installation.installationId",
            "pushRegistrationId",
            "platform",
            "person.externalUserId",
        ],
        (Some(Channel::Email), _) => &[
            "person.personId",
            "externalUserId",
            "emails",
            "firstName",
            "preferredLanguage",
        ],
        (Some(Channel::Sms), _) => &[
            "person.personId",
            "externalUserId",
            "phones",
            "firstName",
            "preferredLanguage",
        ],
        (None, Target::Installations) => &[
            "installation.installationId",
            "pushRegistrationId",
            "platform",
            "state",
            "person.personId",
            "person.externalUserId",
        ],
        (None, Target::Persons) => &["person.personId", "externalUserId", "identified", "country"],
    };
    let names: Vec<String> = if names.is_empty() {
        defaults.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    let mut out = Vec::new();
    for name in names {
        let (entity, column, canonical) =
            resolve_attribute(name.trim(), catalog).ok_or_else(|| {
                Error::Usage(format!(
                    "--columns: unknown attribute `{}` (`audience info` lists them)",
                    name.trim()
                ))
            })?;
        let alias = if out.iter().any(|c: &OutputColumn| c.name == canonical) {
            format!("{entity}.{canonical}")
        } else {
            canonical
        };
        out.push(OutputColumn {
            entity,
            column,
            name: alias,
        });
    }
    Ok(out)
}

/// A channel's reachability condition, as a typed predicate over the catalog.
fn channel_condition(catalog: &Catalog, channel: Channel) -> TPred {
    let attr = |entity: Entity, name: &str| {
        let a = catalog
            .attribute(entity, name, false)
            .expect("standard attribute");
        Field::Attribute {
            entity,
            name: a.name.clone(),
            column: a.column.clone(),
            ty: a.ty,
        }
    };
    match channel {
        Channel::Push => TPred::And(vec![
            TPred::IsTrue(attr(Entity::Installation, "pushRegistrationEnabled")),
            TPred::Not(Box::new(TPred::Compare {
                field: attr(Entity::Installation, "state"),
                op: crate::syntax::ast::CmpOp::Eq,
                value: crate::check::typed::Value::String("uninstalled".into()),
            })),
        ]),
        Channel::Email => TPred::IsSet(attr(Entity::Person, "emails")),
        Channel::Sms => TPred::IsSet(attr(Entity::Person, "phones")),
    }
}

async fn count_target(p: &Prepared, typed: &TypedSegment, target: Target) -> Result<u64> {
    Ok(count_target_timed(p, typed, target).await?.0)
}

/// The count, the time planning the segment took, and the time of DataFusion's phases.
async fn count_target_timed(
    p: &Prepared,
    typed: &TypedSegment,
    target: Target,
) -> Result<(u64, Duration, run::Phases)> {
    let started = Instant::now();
    let opts = PlanOptions::keys(p.as_of, target);
    let plan = plan_segment(typed, &p.sources, &opts)?;
    let planned = started.elapsed();
    p.ready(&plan).await?;
    let (n, phases) = run::count_rows_timed(&p.ctx, plan).await?;
    Ok((n, planned, phases))
}

pub fn count(cli: &Cli, args: &CountArgs) -> Result<(), Failure> {
    let src = read_segment(&args.segment, args.run.segments.as_ref())?;
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let p = prepare(cli, &args.run).await?;
        let opened = Instant::now();
        let typed = compile(&p, &src, &args.run)?;
        let checked = Instant::now();
        let (n, planned, phases) = count_target_timed(&p, &typed, args.run.target).await?;
        if args.timings {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            let d = |d: Duration| d.as_secs_f64() * 1000.0;
            let done = Instant::now();
            eprintln!(
                "timings: open_ms={:.1} check_ms={:.1} query_ms={:.1} (plan_ms={:.1} \
                 optimize_ms={:.1} physical_ms={:.1} execute_ms={:.1})",
                ms(started, opened),
                ms(opened, checked),
                ms(checked, done),
                d(planned),
                d(phases.optimize),
                d(phases.physical),
                d(phases.execute),
            );
        }
        if args.format == super::OutputFormat::Json {
            let other = match args.run.target {
                Target::Installations => Target::Persons,
                Target::Persons => Target::Installations,
            };
            let m = count_target(&p, &typed, other).await?;
            let (installations, persons) = if args.run.target == Target::Installations {
                (n, m)
            } else {
                (m, n)
            };
            let out = serde_json::json!({
                "count": n,
                "target": args.run.target,
                "counts": { "installations": installations, "persons": persons },
                "snapshot_id": p.snapshot.id(),
                "as_of": p.as_of,
                "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
            });
            println!("{out}");
        } else {
            println!("{n}");
        }
        Ok(())
    })
}

pub fn query(cli: &Cli, args: &QueryArgs) -> Result<(), Failure> {
    let src = read_segment(&args.segment, args.run.segments.as_ref())?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        QueryFormat::Table
    } else {
        QueryFormat::Csv
    });
    tokio_runtime()?.block_on(async {
        let p = prepare(cli, &args.run).await?;
        let typed = compile(&p, &src, &args.run)?;
        let columns = columns(
            &p.snapshot.manifest.catalog,
            &args.columns,
            args.run.target,
            None,
        )?;
        let opts = PlanOptions {
            as_of: p.as_of,
            target: args.run.target,
            columns,
            extra: None,
            lists_as_text: format == QueryFormat::Csv,
        };
        let plan = plan_segment(&typed, &p.sources, &opts).map_err(Error::from)?;
        let plan = LogicalPlanBuilder::from(plan)
            .limit(0, Some(args.limit))
            .map_err(Error::from)?
            .build()
            .map_err(Error::from)?;
        p.ready(&plan).await?;
        let mut stream = run::stream(&p.ctx, plan).await?;
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b.map_err(Error::from)?);
        }
        let stdout = std::io::stdout();
        match format {
            QueryFormat::Table => println!(
                "{}",
                arrow::util::pretty::pretty_format_batches(&batches).map_err(Error::from)?
            ),
            QueryFormat::Csv => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(stdout.lock());
                for b in &batches {
                    w.write(b).map_err(Error::from)?;
                }
            }
            QueryFormat::Jsonl => {
                let mut w = arrow::json::LineDelimitedWriter::new(stdout.lock());
                for b in &batches {
                    w.write(b).map_err(Error::from)?;
                }
                w.finish().map_err(Error::from)?;
            }
        }
        Ok(())
    })
}

/// What an export writes: the channel decides the target and adds its reachability condition.
fn export_options(p: &Prepared, args: &ExportArgs, format: ExportFormat) -> Result<PlanOptions> {
    let catalog = &p.snapshot.manifest.catalog;
    let target = match args.channel {
        Some(Channel::Push) => Target::Installations,
        Some(Channel::Email | Channel::Sms) => Target::Persons,
        None => args.run.target,
    };
    Ok(PlanOptions {
        as_of: p.as_of,
        target,
        columns: columns(catalog, &args.columns, target, args.channel)?,
        extra: args.channel.map(|c| channel_condition(catalog, c)),
        lists_as_text: format == ExportFormat::Csv,
    })
}

/// Streams one segment into one file; Ctrl-C stops it and removes the temporary file.
async fn export_one(
    p: &Prepared,
    typed: &TypedSegment,
    out: &std::path::Path,
    format: ExportFormat,
    args: &ExportArgs,
) -> Result<ExportSummary> {
    let plan = plan_segment(typed, &p.sources, &export_options(p, args, format)?)?;
    p.ready(&plan).await?;
    let mut stream = run::stream(&p.ctx, plan).await?;
    let mut file = AtomicExport::create(out, format, stream.schema())?;
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(batch) => file.write(&batch?)?,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                drop(file);
                return Err(Error::Usage(format!("{}: export interrupted; nothing was written", out.display())));
            }
        }
    }
    file.commit()
}

/// Exports several segments with one query over shared scans ([`plan_segments`]), split into
/// their files by the segments' flag columns.
async fn export_each(
    p: &Prepared,
    typed: &[TypedSegment],
    outs: &[&std::path::Path],
    format: ExportFormat,
    args: &ExportArgs,
) -> Result<Vec<ExportSummary>> {
    let segments: Vec<&TypedSegment> = typed.iter().collect();
    let plan = plan_segments(&segments, &p.sources, &export_options(p, args, format)?)?;
    p.ready(&plan).await?;
    let stream = run::stream(&p.ctx, plan).await?;
    tokio::select! {
        done = export_split(stream, outs, format) => done,
        _ = tokio::signal::ctrl_c() => {
            Err(Error::Usage("export interrupted; nothing was written".into()))
        }
    }
}

fn format_for(path: &std::path::Path, explicit: Option<ExportFormat>) -> ExportFormat {
    explicit
        .or_else(|| ExportFormat::from_path(path))
        .unwrap_or(ExportFormat::Csv)
}

fn extension(f: ExportFormat) -> &'static str {
    match f {
        ExportFormat::Csv => "csv",
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Parquet => "parquet",
    }
}

pub fn export(cli: &Cli, args: &ExportArgs) -> Result<(), Failure> {
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let p = prepare(cli, &args.run).await?;
        // (segment text, output file) pairs: one segment, or every saved segment.
        let mut jobs: Vec<(SegmentSource, PathBuf)> = Vec::new();
        match (&args.out_dir, &args.segment) {
            (Some(dir), None) => {
                let Some(seg_dir) = &args.run.segments else {
                    return Err(Failure::Error(Error::Usage(
                        "--out-dir exports the saved segments of --segments DIR: give --segments"
                            .into(),
                    )));
                };
                let saved = crate::check::SegmentDir(seg_dir.clone());
                use crate::check::SavedSegments;
                let names = saved.names();
                if names.is_empty() {
                    return Err(Failure::Error(Error::data(
                        seg_dir,
                        "no .seg files to export",
                    )));
                }
                if !dir.is_dir() {
                    return Err(Failure::Error(Error::data(
                        dir,
                        "output directory does not exist",
                    )));
                }
                let format = args.format.unwrap_or(ExportFormat::Csv);
                for name in names {
                    let src = read_segment(&name, Some(seg_dir))?;
                    jobs.push((src, dir.join(format!("{name}.{}", extension(format)))));
                }
            }
            (Some(_), Some(_)) => {
                return Err(Failure::Error(Error::Usage(
                    "give either a SEGMENT with --out, or --out-dir with --segments".into(),
                )))
            }
            (None, Some(seg)) => {
                let out = args
                    .out
                    .clone()
                    .ok_or_else(|| Error::Usage("--out FILE is required".into()))?;
                jobs.push((read_segment(seg, args.run.segments.as_ref())?, out));
            }
            (None, None) => {
                return Err(Failure::Error(Error::Usage(
                    "give a SEGMENT to export (or --out-dir with --segments)".into(),
                )))
            }
        }
        // Check every segment before writing anything, so a bad one fails the job up front.
        let mut typed = Vec::new();
        for (src, _) in &jobs {
            typed.push(compile(&p, src, &args.run)?);
        }
        let summaries = if let [(_, out)] = jobs.as_slice() {
            let format = format_for(out, args.format);
            vec![export_one(&p, &typed[0], out, format, args).await?]
        } else if p.cluster != Cluster::Local
            && export_options(&p, args, ExportFormat::Csv)?.target == Target::Persons
        {
            // Ballista 55 never finishes some shared persons plans (per-person flags over an
            // installation-scoped aggregate), so on a cluster a persons job runs its segments
            // one by one.
            let mut done = Vec::new();
            for ((_, out), t) in jobs.iter().zip(&typed) {
                done.push(export_one(&p, t, out, format_for(out, args.format), args).await?);
            }
            done
        } else {
            // --out-dir: every file has the job's format.
            let format = args.format.unwrap_or(ExportFormat::Csv);
            let outs: Vec<&std::path::Path> = jobs.iter().map(|(_, out)| out.as_path()).collect();
            export_each(&p, &typed, &outs, format, args).await?
        };
        for s in &summaries {
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
            p.snapshot.id(),
            p.as_of.to_rfc3339()
        );
        Ok(())
    })
}

pub fn explain(cli: &Cli, args: &ExplainArgs) -> Result<(), Failure> {
    let src = read_segment(&args.segment, args.run.segments.as_ref())?;
    tokio_runtime()?.block_on(async {
        let p = prepare(cli, &args.run).await?;
        let typed = compile(&p, &src, &args.run)?;
        let opts = PlanOptions::keys(p.as_of, args.run.target);
        let mut plan = plan_segment(&typed, &p.sources, &opts).map_err(Error::from)?;
        p.ready(&plan).await?;
        if args.count {
            plan = run::counted(&p.ctx, plan)?;
        }
        println!("== segment (resolved) ==\n{}\n", typed.root);
        println!("{}", run::explain(&p.ctx, plan, args.analyze).await?);
        Ok(())
    })
}
