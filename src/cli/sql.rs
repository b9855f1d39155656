use super::{tokio_runtime, Cli};
use crate::error::Result;
use crate::store::Store;
use datafusion::prelude::SessionContext;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SQL over the snapshot's tables: persons, installations, events, event_<Name>.
    query: String,
}

/// Runs hand-written SQL against a snapshot: for inspecting stores and for comparing the
/// compiled plans with hand-written ones in benchmarks.
pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let store = Store::open(cli.store_dir())?;
    let snapshot = store.snapshot(cli.snapshot.as_deref())?;
    tokio_runtime()?.block_on(async {
        let ctx = SessionContext::new();
        snapshot.register(&ctx).await?;
        let batches = ctx.sql(&args.query).await?.collect().await?;
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
        Ok(())
    })
}
