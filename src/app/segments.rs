//! Segments as users hand them over: the text itself, `@file.seg`, `@-` (standard input), or
//! the name of a saved segment. Saved segments are the `.seg` files of a folder, by default the
//! store's `segments/`: the command line reads them, the server also creates, updates and
//! deletes them (atomically, guarded by an entity tag so a stale edit never overwrites a newer
//! one).

use crate::check::{SavedSegments, SegmentDir};
use crate::error::{Error, IoContext, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The folder of a store that holds its saved segments.
pub const SEGMENTS_DIR: &str = "segments";

/// Longest saved segment name.
pub const MAX_NAME_LEN: usize = 64;

/// A segment's text and the name its diagnostics use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSource {
    pub name: String,
    pub text: String,
}

impl SegmentSource {
    pub fn text(text: impl Into<String>) -> SegmentSource {
        SegmentSource {
            name: "segment".into(),
            text: text.into(),
        }
    }
}

/// A saved segment as stored: its text and the tag of that exact content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedSegment {
    pub name: String,
    pub text: String,
    pub etag: String,
    /// Modification time of the file (RFC 3339).
    pub modified_at: Option<String>,
}

/// What a write expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No segment of that name exists yet.
    Absent,
    /// The segment exists with this tag.
    Matches(String),
}

/// The saved segments folder.
#[derive(Debug, Clone)]
pub struct Segments {
    dir: PathBuf,
}

/// A stable tag of content: FNV-1a, 64 bits, quoted as HTTP entity tags are.
pub fn etag(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// Whether `name` may name a saved segment: 1 to 64 letters, digits, `-` and `_` (so it is
/// always a plain file name inside the folder: no path separators, no `..`, no hidden files).
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads a file as UTF-8 text; invalid UTF-8 is an error naming the byte offset.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).at(path)?;
    decode(bytes, &path.display().to_string())
}

fn decode(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        Error::Invalid(format!(
            "{what}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

impl Segments {
    /// The saved segments of the store at `store`.
    pub fn of_store(store: &Path) -> Segments {
        Segments {
            dir: store.join(SEGMENTS_DIR),
        }
    }

    /// Saved segments in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Segments {
        Segments { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checker's view: `segment("name")` loads `name.seg` from this folder.
    pub fn saved(&self) -> SegmentDir {
        SegmentDir(self.dir.clone())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.seg"))
    }

    /// `arg` as a segment: `@file`, `@-` for standard input, a saved segment's name, or else
    /// the text itself.
    pub fn read_arg(&self, arg: &str) -> Result<SegmentSource> {
        if arg == "@-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .at("standard input")?;
            return Ok(SegmentSource {
                name: "stdin".into(),
                text: decode(bytes, "standard input")?,
            });
        }
        if let Some(path) = arg.strip_prefix('@') {
            return Ok(SegmentSource {
                name: path.to_string(),
                text: read_text(Path::new(path))?,
            });
        }
        if valid_name(arg) && self.path(arg).is_file() {
            return Ok(SegmentSource {
                name: self.path(arg).display().to_string(),
                text: read_text(&self.path(arg))?,
            });
        }
        Ok(SegmentSource::text(arg))
    }

    fn checked(name: &str) -> Result<()> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "`{name}` cannot name a saved segment: use 1 to {MAX_NAME_LEN} letters, digits, \
                 `-` and `_`"
            )))
        }
    }

    fn load(&self, name: &str) -> Result<Option<SavedSegment>> {
        let path = self.path(name);
        let text = match std::fs::read(&path) {
            Ok(bytes) => decode(bytes, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let modified_at = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
        Ok(Some(SavedSegment {
            name: name.to_string(),
            etag: etag(&text),
            text,
            modified_at,
        }))
    }

    /// Every saved segment, by name.
    pub fn list(&self) -> Result<Vec<SavedSegment>> {
        let mut out = Vec::new();
        for name in self.saved().names() {
            if valid_name(&name) {
                if let Some(s) = self.load(&name)? {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// One saved segment.
    pub fn get(&self, name: &str) -> Result<SavedSegment> {
        Self::checked(name)?;
        self.load(name)?
            .ok_or_else(|| Error::NotFound(format!("there is no saved segment named `{name}`")))
    }

    /// Creates or replaces `name` if `expect` holds, atomically (a temporary file renamed over
    /// the old one, under a lock on the folder so two writers cannot both pass the check).
    pub fn put(&self, name: &str, text: &str, expect: &Precondition) -> Result<SavedSegment> {
        Self::checked(name)?;
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let _lock = self.lock()?;
        let current = self.load(name)?;
        match (expect, &current) {
            (Precondition::Absent, Some(_)) => {
                return Err(Error::Conflict(format!(
                    "a saved segment named `{name}` already exists"
                )))
            }
            (Precondition::Matches(tag), Some(c)) if *tag != c.etag => {
                return Err(Error::Conflict(format!(
                    "the saved segment `{name}` changed since it was read"
                )))
            }
            (Precondition::Matches(_), None) => {
                return Err(Error::NotFound(format!(
                    "there is no saved segment named `{name}`"
                )))
            }
            _ => {}
        }
        let path = self.path(name);
        let temp = self
            .dir
            .join(format!(".{name}.seg.{}.tmp", std::process::id()));
        let written = std::fs::File::create(&temp)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::io(&path, e));
        }
        let _ = std::fs::File::open(&self.dir).and_then(|d| d.sync_all());
        self.load(name)?
            .ok_or_else(|| Error::Internal(format!("{} vanished after writing", path.display())))
    }

    /// Deletes `name` if its tag is `tag`.
    pub fn delete(&self, name: &str, tag: &str) -> Result<()> {
        Self::checked(name)?;
        let _lock = self.lock()?;
        match self.load(name)? {
            None => Err(Error::NotFound(format!(
                "there is no saved segment named `{name}`"
            ))),
            Some(c) if c.etag != tag => Err(Error::Conflict(format!(
                "the saved segment `{name}` changed since it was read"
            ))),
            Some(_) => std::fs::remove_file(self.path(name)).at(self.path(name)),
        }
    }

    /// An exclusive lock on the folder for the length of a read-check-write.
    fn lock(&self) -> Result<std::fs::File> {
        let path = self.dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        file.lock().at(&path)?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_folder() {
        for ok in ["vip", "vip-users", "Q4_2026", "a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "a b",
            "x.seg",
            &"n".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn writes_are_guarded_by_the_tag() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::at(dir.path().join("segments"));
        let a = s
            .put("vip", "tags has \"vip\"", &Precondition::Absent)
            .unwrap();
        assert!(matches!(
            s.put("vip", "x", &Precondition::Absent),
            Err(Error::Conflict(_))
        ));
        let b = s
            .put(
                "vip",
                "platform = \"iOS\"",
                &Precondition::Matches(a.etag.clone()),
            )
            .unwrap();
        assert_ne!(a.etag, b.etag);
        // A writer holding the old tag loses, and nothing it sent is stored.
        assert!(matches!(
            s.put("vip", "lost", &Precondition::Matches(a.etag.clone())),
            Err(Error::Conflict(_))
        ));
        assert_eq!(s.get("vip").unwrap().text, "platform = \"iOS\"");
        assert!(matches!(s.delete("vip", &a.etag), Err(Error::Conflict(_))));
        s.delete("vip", &b.etag).unwrap();
        assert!(matches!(s.get("vip"), Err(Error::NotFound(_))));
        assert!(s.list().unwrap().is_empty());
        let left: Vec<_> = std::fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect();
        assert!(left.is_empty(), "no temporary files left: {left:?}");
    }

    #[test]
    fn invalid_utf8_names_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.seg");
        std::fs::write(&f, b"platform = \"i\xffOS\"").unwrap();
        let err = read_text(&f).unwrap_err().to_string();
        assert!(err.contains("offset 13"), "{err}");
    }
}
