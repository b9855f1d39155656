//! The `audience` command line: argument parsing and printing around the application layer
//! (`app`). One subcommand per job; data on stdout, diagnostics and progress on stderr; exit 0
//! ok, 1 the user's mistake (the segment or the request), 2 data, I/O, engine or command-line
//! syntax errors, 3 a bug.

mod check;
mod cluster;
mod gc;
mod generate;
mod import;
mod info;
mod output;
mod progress;
mod segment;
mod serve;
mod sql;
mod trend;
mod values;

use crate::error::{Error, Result};
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "audience",
    version,
    about = "Segment expressions over point-in-time snapshots of mobile audiences"
)]
pub struct Cli {
    /// Errors and diagnostics as JSON on stderr.
    #[arg(long, global = true)]
    pub json_errors: bool,
    /// Treat warnings about a segment as errors (exit 1).
    #[arg(long, global = true)]
    pub deny_warnings: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a realistic synthetic snapshot into a store.
    Generate(generate::Args),
    /// Import CDP event streams, People exports and plain tables into a store as a snapshot.
    Import(import::Args),
    /// Print a snapshot's catalog and row counts.
    Info(info::Args),
    /// Count a segment's audience.
    Count(segment::CountArgs),
    /// Count a segment's audience at each as-of point from --from to --to, each on the snapshot
    /// that serves it (a chart on a terminal, CSV otherwise).
    Trend(trend::Args),
    /// Preview a segment's audience (table on a terminal, CSV otherwise).
    Query(segment::QueryArgs),
    /// Export a segment's audience to a file (CSV, JSON lines, Parquet), atomically.
    Export(segment::ExportArgs),
    /// Print the logical and physical plans of a segment (--analyze: with run metrics).
    Explain(segment::ExplainArgs),
    /// Check a segment: print its diagnostics, or the resolved segment.
    Check(check::CheckArgs),
    /// Print a segment in canonical form.
    Fmt(check::FmtArgs),
    /// Run SQL over a snapshot's tables (for inspection and benchmark baselines).
    Sql(sql::Args),
    /// Serve the web page and HTTP API where segments are written and audiences seen live.
    Serve(serve::Args),
    /// Remove what dead writers left behind (unpublished staging directories, temporary export
    /// files), never a live writer's.
    Gc(gc::Args),
    /// Print a shell completion script (e.g. `audience completions bash > /etc/bash_completion.d/audience`).
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (e.g. `audience man > audience.1`).
    Man,
    /// Start a node of an Apache DataFusion Ballista cluster (builds with the `cluster` feature).
    #[command(subcommand)]
    Cluster(cluster::Command),
}

/// The store used when none is named: the committed sample, seen from a checkout's root.
const DEFAULT_STORE: &str = "data/sample";

/// The store a command reads.
#[derive(Debug, clap::Args)]
pub struct StoreDir {
    /// Store directory (default: $AUDIENCE_STORE, else ./data/sample when it exists).
    #[arg(long, env = "AUDIENCE_STORE", value_parser = absolute_path)]
    pub store: Option<PathBuf>,
}

impl StoreDir {
    /// The store to read: --store (or $AUDIENCE_STORE), else ./data/sample when there is one.
    pub fn dir(&self) -> Result<PathBuf> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        match Path::new(DEFAULT_STORE).canonicalize() {
            Ok(p) if p.is_dir() => Ok(p),
            _ => Err(Error::Invalid(format!(
                "no store: give --store DIR or set AUDIENCE_STORE (./{DEFAULT_STORE} is used \
                 when it exists, as in a checkout of audience)"
            ))),
        }
    }
}

/// The store and snapshot a command reads.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub store: StoreDir,
    /// Snapshot id (default: the latest; with --as-of, the newest at or before it, else the
    /// earliest).
    #[arg(long)]
    pub snapshot: Option<String>,
}

impl StoreArgs {
    pub fn dir(&self) -> Result<PathBuf> {
        self.store.dir()
    }
}

/// Options that read a store may also come before the subcommand (`audience --store S count`,
/// as earlier versions took them): moved after it, where each command declares them.
fn store_options_after_subcommand(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let takes_value = |a: &std::ffi::OsStr| a == "--store" || a == "--snapshot";
    let mut leading = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_os_str();
        let with_equals = a
            .to_str()
            .is_some_and(|s| s.starts_with("--store=") || s.starts_with("--snapshot="));
        if takes_value(a) && i + 1 < args.len() {
            leading.extend([args[i].clone(), args[i + 1].clone()]);
            i += 2;
        } else if with_equals {
            leading.push(args[i].clone());
            i += 1;
        } else if a == "--json-errors" || a == "--deny-warnings" {
            i += 1;
        } else {
            break;
        }
    }
    if leading.is_empty() || i >= args.len() {
        return args;
    }
    // args[i] is the subcommand (or `cluster`, whose own subcommand follows).
    let mut out: Vec<std::ffi::OsString> = args[..i]
        .iter()
        .filter(|a| !leading.contains(a))
        .cloned()
        .collect();
    out.push(args[i].clone());
    out.extend(leading);
    out.extend(args[i + 1..].iter().cloned());
    out
}

/// A path made absolute once, where it enters: relative paths name files from the working
/// directory, but the query engine's object store reads absolute locations only. A path that
/// does not exist yet (an output file) is its directory's canonical path and its name.
pub fn absolute_path(s: &str) -> std::result::Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if let Ok(c) = p.canonicalize() {
        return Ok(c);
    }
    let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
    if let (Some(name), Ok(dir)) = (
        p.file_name(),
        parent.unwrap_or(Path::new(".")).canonicalize(),
    ) {
        return Ok(dir.join(name));
    }
    std::path::absolute(&p).map_err(|e| format!("`{s}`: {e}"))
}

/// Runs the command line and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(store_options_after_subcommand(
        std::env::args_os().collect(),
    ));
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", output::error_report(&e, cli.json_errors));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Import(args) => import::run(args),
        Command::Info(args) => info::run(args),
        Command::Count(args) => segment::count(cli, args),
        Command::Trend(args) => trend::run(cli, args),
        Command::Query(args) => segment::query(cli, args),
        Command::Export(args) => segment::export(cli, args),
        Command::Explain(args) => segment::explain(cli, args),
        Command::Check(args) => check::run_check(cli, args),
        Command::Fmt(args) => check::run_fmt(args),
        Command::Sql(args) => sql::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "audience", &mut out);
            output::print(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(|e| Error::io("man page", e))?;
            output::print(&out)
        }
        Command::Cluster(command) => cluster::run(command),
    }
}

/// A date or timestamp as segments write them, for `--as-of`.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::syntax::parse_time(s)
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    // Planning, optimizing and (on a cluster) serializing a long segment's plan recurse once per
    // plan node; tokio's default 2 MiB worker stacks overflowed on generated segments.
    tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}
