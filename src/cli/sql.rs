use super::output::print;
use super::tokio_runtime;
use crate::app::Workspace;
use crate::error::{Error, Result};
use crate::exec::SessionOptions;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: super::StoreArgs,
    /// SQL over the snapshot's tables: persons, installations, events, event_<Name>.
    query: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print to stderr the time spent opening the snapshot and running the query (parse, plan,
    /// run), the span `count --timings` reports as query_ms.
    #[arg(long)]
    timings: bool,
}

/// Runs hand-written SQL against a snapshot: for inspecting stores and for comparing the
/// compiled plans with hand-written ones in benchmarks (same session settings as `count`).
pub fn run(args: &Args) -> Result<()> {
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        if args.threads == Some(0) {
            return Err(Error::Invalid("--threads must be at least 1".into()));
        }
        let opts = SessionOptions {
            threads: args.threads,
            ..SessionOptions::default()
        };
        let w = Workspace::open(&args.store.dir()?, args.store.snapshot.as_deref(), &opts).await?;
        let opened = Instant::now();
        let batches = w.sql(&args.query).await?;
        if args.timings {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            eprintln!(
                "timings: open_ms={:.1} query_ms={:.1}",
                ms(started, opened),
                ms(opened, Instant::now())
            );
        }
        let table = arrow::util::pretty::pretty_format_batches(&batches)?;
        print(format!("{table}\n").as_bytes())
    })
}
