//! A DataFusion session over the snapshot being written, for the writer's own passes over what
//! it staged (the activity summary, the value sets). It runs on a runtime of its own thread, so
//! writers may call it from sync code or from inside another runtime.

use super::manifest::Manifest;
use super::publish::Staging;
use crate::error::{Error, Result};
use datafusion::prelude::{SessionConfig, SessionContext};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The work a pass does with the session.
pub type Pass<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// Runs `work` with a session holding `manifest`'s tables as staged; `reader_filters` turns on
/// filtering inside the Parquet reader (passes that select few rows of every file).
pub fn with_session<'a, T: Send>(
    staging: &Staging,
    manifest: &Manifest,
    threads: usize,
    reader_filters: bool,
    work: impl FnOnce(SessionContext) -> Pass<'a, T> + Send,
) -> Result<T> {
    let run = || -> Result<T> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start a runtime: {e}")))?;
        rt.block_on(async {
            let mut config = SessionConfig::new().with_target_partitions(threads.max(1));
            config.options_mut().execution.parquet.pushdown_filters = reader_filters;
            let ctx = SessionContext::new_with_config(config);
            super::register::register(
                manifest,
                &|rel| staging.resolve(rel),
                &ctx,
                super::TableFiles::Manifest,
                Default::default(),
                Arc::new(super::history::HistoryCheck::none()),
            )
            .await?;
            work(ctx).await
        })
    };
    std::thread::scope(|s| s.spawn(run).join())
        .map_err(|_| Error::Internal("a pass over the staged snapshot panicked".into()))?
}
