//! The `audience` command line: one subcommand per job; data on stdout, diagnostics and progress
//! on stderr; exit 0 ok, 1 segment error, 2 data/IO/usage error.

mod audience;
mod check;
mod cluster;
mod generate;
mod info;
pub mod segment_arg;
mod sql;

use crate::error::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "audience",
    version,
    about = "Segment expressions over point-in-time snapshots of mobile audiences"
)]
pub struct Cli {
    /// Store directory (default: $AUDIENCE_STORE, else the committed sample data/sample).
    #[arg(long, global = true, env = "AUDIENCE_STORE")]
    pub store: Option<PathBuf>,
    /// Snapshot id (default: the latest).
    #[arg(long, global = true)]
    pub snapshot: Option<String>,
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
    Count(audience::CountArgs),
    /// Preview a segment's audience (table on a terminal, CSV or JSON lines otherwise).
    Query(audience::QueryArgs),
    /// Export a segment's audience to a file (CSV, JSON lines, Parquet), atomically.
    Export(audience::ExportArgs),
    /// Print the logical and physical plans of a segment (--analyze: with run metrics).
    Explain(audience::ExplainArgs),
    /// Check a segment: print its diagnostics, or the resolved segment.
    Check(check::CheckArgs),
    /// Print a segment in canonical form.
    Fmt(check::FmtArgs),
    /// Run SQL over a snapshot's tables (for inspection and benchmark baselines).
    Sql(sql::Args),
    /// Start a node of an Apache DataFusion Ballista cluster (builds with the `cluster` feature).
    #[command(subcommand)]
    Cluster(cluster::Command),
}

/// How a command failed: a segment error (exit 1, already rendered) or anything else (exit 2).
#[derive(Debug)]
pub enum Failure {
    Segment(String),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

impl Cli {
    /// The store to read: --store, else the committed sample (found from the working directory
    /// or, for a binary run from elsewhere, from where it was built).
    pub fn store_dir(&self) -> PathBuf {
        if let Some(s) = &self.store {
            return s.clone();
        }
        let local = PathBuf::from("data/sample");
        if local.is_dir() {
            return local;
        }
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample"))
    }
}

/// Runs the command line and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Segment(rendered)) => {
            eprint!("{rendered}");
            if !rendered.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Generate(args) => Ok(generate::run(cli, args)?),
        Command::Info(args) => Ok(info::run(cli, args)?),
        Command::Count(args) => audience::count(cli, args),
        Command::Query(args) => audience::query(cli, args),
        Command::Export(args) => audience::export(cli, args),
        Command::Explain(args) => audience::explain(cli, args),
        Command::Check(args) => check::run_check(cli, args),
        Command::Fmt(args) => check::run_fmt(cli, args),
        Command::Sql(args) => Ok(sql::run(cli, args)?),
        Command::Cluster(command) => Ok(cluster::run(command)?),
    }
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "`{s}` is not a date (2026-11-01) or an RFC 3339 timestamp (2026-11-01T10:00:00Z)"
            )
        })
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))
}
