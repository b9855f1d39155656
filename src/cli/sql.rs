use super::{tokio_runtime, Cli};
use crate::error::Result;
use crate::exec::{open_session, SessionOptions};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SQL over the snapshot's tables: persons, installations, events, event_<Name>.
    query: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs hand-written SQL against a snapshot: for inspecting stores and for comparing the
/// compiled plans with hand-written ones in benchmarks (same session settings as `count`).
pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let store = Store::open(cli.store_dir())?;
    let snapshot = store.snapshot(cli.snapshot.as_deref())?;
    tokio_runtime()?.block_on(async {
        let opts = SessionOptions {
            threads: args.threads,
            ..SessionOptions::default()
        };
        let ctx = open_session(&snapshot, &opts).await?;
        let batches = ctx.sql(&args.query).await?.collect().await?;
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
        Ok(())
    })
}
