//! What the server holds between requests: its options, one memory pool for every query, the
//! warm workspaces (a few snapshots, least recently used out), the query slots, and the export
//! jobs.

use super::exports::Jobs;
use crate::app::{Segments, Workspace};
use crate::error::{Error, Result};
use crate::exec::{runtime, SessionOptions};
use crate::store::Store;
use datafusion::execution::runtime_env::RuntimeEnv;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub store: PathBuf,
    pub bind: SocketAddr,
    /// The bearer token every API call must send.
    pub token: String,
    /// Refuse writes (saved segments, exports) with 403.
    pub read_only: bool,
    /// The memory pool all queries share (bytes); unbounded when `None`.
    pub memory_limit: Option<usize>,
    /// Queries running at once; more wait up to `queue_wait`, then get 503.
    pub max_queries: usize,
    pub queue_wait: Duration,
    /// A query running longer is cancelled (504).
    pub query_timeout: Duration,
    /// DataFusion's threads per query (default: all cores).
    pub threads: Option<usize>,
    /// Bytes of matched pairs each warm snapshot keeps for count reports (0: none).
    pub matched_budget: usize,
}

/// Warm workspaces kept at once: each holds a session with the snapshot's tables.
const WARM_SNAPSHOTS: usize = 4;

pub struct AppState {
    pub opts: ServeOptions,
    runtime: Arc<RuntimeEnv>,
    /// (snapshot id, workspace, last used), most recent last.
    workspaces: Mutex<Vec<(String, Arc<Workspace>, Instant)>>,
    permits: Semaphore,
    pub jobs: Jobs,
    pub segments: Segments,
}

/// Why a request could not run its query.
#[derive(Debug)]
pub enum Refusal {
    /// Every query slot stayed busy for the queue's wait.
    Busy,
    /// The query ran past the time limit and was cancelled.
    Timeout(Duration),
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal::Failed(e)
    }
}

impl AppState {
    pub fn new(opts: ServeOptions) -> Result<AppState> {
        if opts.max_queries == 0 {
            return Err(Error::Invalid(
                "at least one query must be able to run".into(),
            ));
        }
        let store = Store::open(&opts.store)?;
        Ok(AppState {
            runtime: runtime(opts.memory_limit)?,
            workspaces: Mutex::new(Vec::new()),
            permits: Semaphore::new(opts.max_queries),
            jobs: Jobs::new(store.root().join(super::exports::EXPORTS_DIR)),
            segments: Segments::of_store(store.root()),
            opts,
        })
    }

    /// The store as it is now (a snapshot published since the last request is seen).
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.opts.store)
    }

    /// The warm workspace of snapshot `id` (the latest when `None`), opened on first use.
    /// A request keeps the workspace it got even if a newer snapshot is published meanwhile.
    pub async fn workspace(&self, id: Option<&str>) -> Result<Arc<Workspace>> {
        let store = self.store()?;
        let id = match id {
            Some(id) => id.to_string(),
            None => store.latest_id()?.to_string(),
        };
        let mut warm = self.workspaces.lock().await;
        if let Some(i) = warm.iter().position(|(k, ..)| *k == id) {
            warm[i].2 = Instant::now();
            return Ok(warm[i].1.clone());
        }
        let opts = SessionOptions {
            threads: self.opts.threads,
            runtime: Some(self.runtime.clone()),
            ..SessionOptions::default()
        };
        let w = Workspace::new(store.snapshot(Some(&id))?, &opts).await?;
        let w = Arc::new(w.keep_matched(self.opts.matched_budget));
        // The pairs are built while the page still loads its catalog; a failure here is
        // reported by the first count, which builds them again.
        let warming = w.clone();
        tokio::spawn(async move {
            let _ = warming.warm_matched().await;
        });
        if warm.len() >= WARM_SNAPSHOTS {
            if let Some(oldest) = (0..warm.len()).min_by_key(|&i| warm[i].2) {
                warm.remove(oldest);
            }
        }
        warm.push((id, w.clone(), Instant::now()));
        Ok(w)
    }

    /// Runs a query in one of the server's slots, within its time limit.
    pub async fn limited<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T, Refusal> {
        let permit = tokio::time::timeout(self.opts.queue_wait, self.permits.acquire())
            .await
            .map_err(|_| Refusal::Busy)?
            .map_err(|_| Refusal::Busy)?;
        let done = tokio::time::timeout(self.opts.query_timeout, work)
            .await
            .map_err(|_| Refusal::Timeout(self.opts.query_timeout))?;
        drop(permit);
        Ok(done?)
    }
}
