//! Leftovers of writers that died: staging directories of snapshots that were never published.
//! A staging directory names its writer (`.writer`: pid and start time); it is a leftover once
//! that process is gone. Directories without a writer stamp (written before stamps) count as
//! leftovers when untouched for a day. Live writers' directories are never touched.

use super::publish::WRITER_FILE;
use super::STAGING_DIR;
use crate::base::process;
use crate::error::{IoContext, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long an unstamped staging directory must sit untouched before it counts as a leftover.
const UNSTAMPED_AGE: Duration = Duration::from_secs(24 * 3600);

/// A leftover and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The staging directories of `store` whose writers are gone.
pub fn staging_leftovers(store: &Path) -> Result<Vec<Leftover>> {
    let dir = store.join(STAGING_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).at(&dir)? {
        let path = entry.at(&dir)?.path();
        if !path.is_dir() {
            continue;
        }
        let dead = match std::fs::read_to_string(path.join(WRITER_FILE)) {
            Ok(stamp) => process::is_gone(&stamp),
            Err(_) => untouched_for(&path, UNSTAMPED_AGE),
        };
        if dead {
            out.push(Leftover {
                bytes: size_of(&path),
                path,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Removes leftovers; returns what it removed.
pub fn remove(leftovers: Vec<Leftover>) -> Result<Vec<Leftover>> {
    for l in &leftovers {
        if l.path.is_dir() {
            std::fs::remove_dir_all(&l.path).at(&l.path)?;
        } else {
            std::fs::remove_file(&l.path).at(&l.path)?;
        }
    }
    Ok(leftovers)
}

fn untouched_for(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= age)
}

/// Bytes of a file, or of everything below a directory.
pub fn size_of(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| size_of(&e.path()))
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
