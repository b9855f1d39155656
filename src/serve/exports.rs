//! Export jobs: long work is a job, not a long request. A job runs in the background, writes
//! its files atomically (as the command line does) into `<store>/exports/<job>/`, reports its
//! progress, and can be cancelled (its temporary files are removed) or deleted.

use crate::app::workspace::ExportSpec;
use crate::app::Workspace;
use crate::check::typed::TypedSegment;
use crate::error::{Error, ErrorKind, Result};
use crate::export::{ExportSummary, Progress};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const EXPORTS_DIR: &str = "exports";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running,
    Done,
    Failed { kind: ErrorKind, message: String },
    Cancelled,
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed { .. } => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// What a job is about, for listing it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct About {
    pub segments: Vec<String>,
    pub channel: Option<String>,
    pub target: String,
    pub format: String,
    pub snapshot_id: String,
    pub as_of: String,
}

pub struct Job {
    pub id: String,
    created_at: chrono::DateTime<chrono::Utc>,
    about: About,
    dir: PathBuf,
    status: Mutex<Status>,
    progress: Progress,
    files: Mutex<Vec<ExportSummary>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Job {
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or(Status::Cancelled)
    }

    /// The job as the API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let status = self.status();
        let files: Vec<serde_json::Value> = self
            .files
            .lock()
            .map(|f| {
                f.iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                            "rows": s.rows,
                            "bytes": s.bytes,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows: u64 = self
            .files
            .lock()
            .map(|f| f.iter().map(|s| s.rows).sum())
            .unwrap_or(0);
        let mut v = serde_json::json!({
            "id": self.id,
            "status": status.name(),
            "created_at": self.created_at.to_rfc3339(),
            "rows": rows,
            "files": files,
            "progress": { "rows": self.progress.done() },
            "about": self.about,
        });
        if let Status::Failed { kind, message } = status {
            v["error"] = serde_json::json!({ "code": kind.as_str(), "message": message });
        }
        v
    }

    /// The path of one of the job's finished files, by name.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let files = self.files.lock().ok()?;
        files
            .iter()
            .find(|s| {
                s.path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy() == name)
            })
            .map(|s| s.path.clone())
    }

    fn cancel(&self) {
        if let Ok(mut task) = self.task.lock() {
            if let Some(t) = task.take() {
                t.abort();
            }
        }
        if let Ok(mut s) = self.status.lock() {
            if *s == Status::Running {
                *s = Status::Cancelled;
            }
        }
    }
}

pub struct Jobs {
    dir: PathBuf,
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
}

impl Jobs {
    pub fn new(dir: PathBuf) -> Jobs {
        Jobs {
            dir,
            jobs: Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts exporting `segments` (each with the file name it gets) in the background.
    pub fn start(
        &self,
        workspace: Arc<Workspace>,
        segments: Vec<(TypedSegment, String)>,
        spec: ExportSpec,
        about: About,
    ) -> Result<Arc<Job>> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let dir = self.dir.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let job = Arc::new(Job {
            id: id.clone(),
            created_at: chrono::Utc::now(),
            about,
            dir: dir.clone(),
            status: Mutex::new(Status::Running),
            progress: Progress::default(),
            files: Mutex::new(Vec::new()),
            task: Mutex::new(None),
        });
        let outs: Vec<(TypedSegment, PathBuf)> = segments
            .into_iter()
            .map(|(seg, name)| (seg, dir.join(format!("{name}.{}", spec.format.extension()))))
            .collect();
        let running = job.clone();
        let handle = tokio::spawn(async move {
            let done = workspace
                .export(&outs, &spec, Some(&running.progress))
                .await;
            let status = match done {
                Ok(files) => {
                    if let Ok(mut f) = running.files.lock() {
                        *f = files;
                    }
                    Status::Done
                }
                Err(e) => Status::Failed {
                    kind: e.kind(),
                    message: e.to_string(),
                },
            };
            if let Ok(mut s) = running.status.lock() {
                if *s == Status::Running {
                    *s = status;
                }
            }
        });
        if let Ok(mut t) = job.task.lock() {
            *t = Some(handle.abort_handle());
        }
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, job.clone());
        }
        Ok(job)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(id).cloned()
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Arc<Job>> {
        let mut all: Vec<Arc<Job>> = self
            .jobs
            .lock()
            .map(|j| j.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        all
    }

    /// Cancels a running job, or deletes a finished one and its files.
    pub fn delete(&self, id: &str) -> Result<()> {
        let job = self
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("there is no export job `{id}`")))?;
        if job.status() == Status::Running {
            job.cancel();
            return Ok(());
        }
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.remove(id);
        }
        remove_dir(&job.dir)
    }

    /// Cancels every running job (the server is stopping).
    pub fn cancel_all(&self) {
        for job in self.list() {
            job.cancel();
        }
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}
