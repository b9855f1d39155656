//! The store's writer lock: publishing (and a whole incremental import) holds it, so two writers
//! never publish at once and an import never builds on a parent that another writer replaced.

use crate::error::{IoContext, Result};
use std::fs::File;
use std::path::Path;

pub const LOCK_FILE: &str = ".lock";

/// An exclusive advisory lock on `<store>/.lock`, released when dropped (or when the process
/// ends, however it ends).
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Waits for and takes the lock.
    pub fn acquire(store: &Path) -> Result<StoreLock> {
        std::fs::create_dir_all(store).at(store)?;
        let path = store.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        file.lock().at(&path)?;
        Ok(StoreLock { _file: file })
    }
}
