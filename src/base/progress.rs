//! Progress of long work (generating, exporting, importing): a counter the work advances and a
//! front end shows as it likes (a bar on a terminal, a line now and then in a log, a field of
//! an export job in the server).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    done: AtomicU64,
    total: AtomicU64,
    what: Mutex<String>,
}

impl Progress {
    /// Progress of `what`, counted in units of which there are `total` (0: unknown).
    pub fn new(what: &str, total: u64) -> Progress {
        let p = Progress::default();
        p.restart(what, total);
        p
    }

    /// Starts another phase of the work.
    pub fn restart(&self, what: &str, total: u64) {
        if let Ok(mut w) = self.inner.what.lock() {
            *w = what.to_string();
        }
        self.inner.total.store(total, Ordering::Relaxed);
        self.inner.done.store(0, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
    }

    /// (what, done, total; 0 when unknown).
    pub fn get(&self) -> (String, u64, u64) {
        let what = self
            .inner
            .what
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default();
        (
            what,
            self.inner.done.load(Ordering::Relaxed),
            self.inner.total.load(Ordering::Relaxed),
        )
    }

    pub fn done(&self) -> u64 {
        self.inner.done.load(Ordering::Relaxed)
    }
}
