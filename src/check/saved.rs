//! Saved segments: `segment("name")` refers to `name.seg` in a segments directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub trait SavedSegments {
    /// The text of a saved segment: `None` if there is none of that name, `Err` if it cannot be read.
    fn load(&self, name: &str) -> Option<Result<String, String>>;
    /// All names, for suggestions.
    fn names(&self) -> Vec<String>;
}

/// No saved segments (every reference is an error).
pub struct NoSavedSegments;

impl SavedSegments for NoSavedSegments {
    fn load(&self, _: &str) -> Option<Result<String, String>> {
        None
    }
    fn names(&self) -> Vec<String> {
        vec![]
    }
}

/// Saved segments in memory (tests, programs).
#[derive(Default)]
pub struct SavedMap(pub BTreeMap<String, String>);

impl SavedSegments for SavedMap {
    fn load(&self, name: &str) -> Option<Result<String, String>> {
        self.0.get(name).cloned().map(Ok)
    }
    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// `<dir>/<name>.seg` files.
pub struct SegmentDir(pub PathBuf);

impl SegmentDir {
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.seg"))
    }
}

impl SavedSegments for SegmentDir {
    fn load(&self, name: &str) -> Option<Result<String, String>> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return None;
        }
        let path = self.path(name);
        if !path.is_file() {
            return None;
        }
        Some(std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display())))
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".seg")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }
}
