//! The `audience` command line: argument parsing and printing around the application layer
//! (`app`). One subcommand per job; data on stdout, diagnostics and progress on stderr; exit 0
//! ok, 1 the user's mistake (the segment or the request), 2 data, I/O, engine or command-line
//! syntax errors, 3 a bug.

mod check;
mod cluster;
mod gc;
mod generate;
mod info;
mod output;
mod segment;
mod serve;
mod sql;
mod values;

use crate::error::{Error, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "audience",
    version,
    about = "Segment expressions over point-in-time snapshots of mobile audiences"
)]
pub struct Cli {
    /// Store directory (default: $AUDIENCE_STORE, else ./data/sample when it exists).
    #[arg(long, global = true, env = "AUDIENCE_STORE", value_parser = absolute_path)]
    pub store: Option<PathBuf>,
    /// Snapshot id (default: the latest).
    #[arg(long, global = true)]
    pub snapshot: Option<String>,
    /// Errors and diagnostics as JSON on stderr.
    #[arg(long, global = true)]
    pub json_errors: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a realistic synthetic snapshot into a store.
    Generate(generate::Args),
    /// Print a snapshot's catalog and row counts.
    Info(info::Args),
    /// Count a segment's audience.
    Count(segment::CountArgs),
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
    /// Start a node of an Apache DataFusion Ballista cluster (builds with the `cluster` feature).
    #[command(subcommand)]
    Cluster(cluster::Command),
}

/// The store used when none is named: the committed sample, seen from a checkout's root.
const DEFAULT_STORE: &str = "data/sample";

impl Cli {
    /// The store to read: --store (or $AUDIENCE_STORE), else ./data/sample when there is one.
    pub fn store_dir(&self) -> Result<PathBuf> {
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
    let cli = Cli::parse();
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
        Command::Info(args) => info::run(cli, args),
        Command::Count(args) => segment::count(cli, args),
        Command::Query(args) => segment::query(cli, args),
        Command::Export(args) => segment::export(cli, args),
        Command::Explain(args) => segment::explain(cli, args),
        Command::Check(args) => check::run_check(cli, args),
        Command::Fmt(args) => check::run_fmt(args),
        Command::Sql(args) => sql::run(cli, args),
        Command::Serve(args) => serve::run(cli, args),
        Command::Gc(args) => gc::run(cli, args),
        Command::Cluster(command) => cluster::run(command),
    }
}

/// A date or timestamp as segments write them, for `--as-of`.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::syntax::parse_time(s)
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}
