//! The event history's files checked against the manifest: each listed file exists with its
//! recorded size, and the event roots hold no file the manifest does not list.
//!
//! A day-partitioned year is thousands of files and directories, and opening a snapshot does
//! not walk them: manifest tables read only the files they list and verify every read (a
//! missing or changed file is an error naming it), so a count or an export that reads a few
//! days' files pays for those alone. What reads the directories runs this check first: listed
//! tables (cluster sessions, and the `events` table through [`Checked`]) and `audience info`.

use crate::error::{Error, IoContext, Result};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The event files (local path, size) and event roots of one snapshot.
#[derive(Debug)]
pub struct HistoryCheck {
    files: Vec<(PathBuf, u64)>,
    roots: Vec<PathBuf>,
    /// Shared by every check of the same opened snapshot: passed once, not walked again.
    passed: Arc<AtomicBool>,
}

impl HistoryCheck {
    pub(super) fn new(
        files: Vec<(PathBuf, u64)>,
        roots: Vec<PathBuf>,
        passed: Arc<AtomicBool>,
    ) -> HistoryCheck {
        HistoryCheck {
            files,
            roots,
            passed,
        }
    }

    /// Nothing to check: a snapshot being written, whose writer made every file.
    pub(super) fn none() -> HistoryCheck {
        HistoryCheck::new(vec![], vec![], Arc::new(AtomicBool::new(true)))
    }

    /// Runs the check (unless it passed already), spread over a few threads.
    pub fn run(&self) -> Result<()> {
        if self.passed.load(Ordering::Acquire) {
            return Ok(());
        }
        let listed: HashSet<&Path> = self.files.iter().map(|(p, _)| p.as_path()).collect();
        // The walk starts one level down (one directory per event), to split it.
        let mut dirs = Vec::new();
        for root in self.roots.iter().filter(|r| r.exists()) {
            for entry in std::fs::read_dir(root).at(root)? {
                let path = entry.at(root)?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if !listed.contains(path.as_path()) {
                    return Err(stray(&path));
                }
            }
        }
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        std::thread::scope(|scope| {
            let listed = &listed;
            let mut running = Vec::new();
            for part in self.files.chunks(self.files.len().div_ceil(workers).max(1)) {
                running.push(scope.spawn(move || {
                    part.iter()
                        .try_for_each(|(path, bytes)| check_size(path, *bytes))
                }));
            }
            for part in dirs.chunks(dirs.len().div_ceil(workers).max(1)) {
                running.push(
                    scope.spawn(move || part.iter().try_for_each(|d| check_no_strays(d, listed))),
                );
            }
            running
                .into_iter()
                .try_for_each(|t| t.join().expect("a file check panicked"))
        })?;
        self.passed.store(true, Ordering::Release);
        Ok(())
    }
}

/// The file at `path` exists and has `bytes` bytes, as the manifest says.
pub(super) fn check_size(path: &Path, bytes: u64) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::data(
            path,
            format!("file named by the manifest is unreadable: {e}"),
        )
    })?;
    if meta.len() != bytes {
        return Err(Error::data(
            path,
            format!("has {} bytes, the manifest says {bytes}", meta.len()),
        ));
    }
    Ok(())
}

fn check_no_strays(dir: &Path, listed: &HashSet<&Path>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let path = entry.path();
        if entry.file_type().at(&path)?.is_dir() {
            check_no_strays(&path, listed)?;
        } else if !listed.contains(path.as_path()) {
            return Err(stray(&path));
        }
    }
    Ok(())
}

fn stray(path: &Path) -> Error {
    Error::data(
        path,
        "file in the event history is not listed in the manifest",
    )
}

/// A table that lists the event directories (`events`), scanned only after the history's
/// check passed.
#[derive(Debug)]
pub struct Checked {
    inner: Arc<dyn TableProvider>,
    check: Arc<HistoryCheck>,
}

impl Checked {
    pub fn new(inner: Arc<dyn TableProvider>, check: Arc<HistoryCheck>) -> Checked {
        Checked { inner, check }
    }
}

#[async_trait]
impl TableProvider for Checked {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let check = self.check.clone();
        tokio::task::spawn_blocking(move || check.run())
            .await
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        self.inner.scan(state, projection, filters, limit).await
    }
}
