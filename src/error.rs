//! The crate's error type, in four kinds that are never mixed up, so campaign jobs (by exit
//! code) and the web page (by HTTP status) can tell "fix your segment" from "fix your store":
//! - the user's mistake: a segment with errors, or a request that cannot be met as asked
//!   (exit 1; HTTP 4xx);
//! - not supported (yet) (exit 1; HTTP 501);
//! - data, I/O and the query engine's failures while running (exit 2; HTTP 500/503);
//! - a bug in audience, shown with a fixed prefix that asks for a report (exit 3; HTTP 500).
//!
//! Library errors never name command-line flags: the front ends say which flag or field a
//! message is about.

use crate::diagnostic::Diagnostics;
use std::path::{Path, PathBuf};

/// The fixed prefix of internal errors.
pub const INTERNAL_PREFIX: &str =
    "internal error (a bug in audience; please report it with the command that caused it)";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The segment has errors; the diagnostics and the text they point into.
    #[error("{}", .0.diagnostics)]
    Segment(Box<SegmentError>),
    /// A request the user can correct: an unknown output column, a channel whose target
    /// contradicts the one asked for, an as-of time that cannot be read.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist (a saved segment, an export job).
    #[error("{0}")]
    NotFound(String),
    /// The request was based on a state that changed meanwhile (a saved segment edited by
    /// someone else): nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// Something audience does not do (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store's content is not what its manifest and catalog promise.
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    /// The query engine failed while running a plan (memory exhausted, a file that fails to
    /// decode, a cancelled query).
    #[error("query engine: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A service the command needs cannot be reached (a cluster's scheduler).
    #[error("{0}")]
    Unavailable(String),
    /// The user stopped the work (Ctrl-C), or a caller cancelled it; nothing was written.
    #[error("{0}")]
    Cancelled(String),
    /// A bug: a state the code promises never to reach.
    #[error("{INTERNAL_PREFIX}: {0}")]
    Internal(String),
}

/// A segment that failed to compile: its name (a file, a saved segment, or `segment`), its text
/// and the diagnostics about it. Rendered only at the boundary (terminal, JSON, HTTP).
#[derive(Debug, Clone)]
pub struct SegmentError {
    pub name: String,
    pub text: String,
    pub diagnostics: Diagnostics,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds of [`Error`], for exit codes, HTTP statuses and the `code` of JSON errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Segment,
    Invalid,
    NotFound,
    Conflict,
    Unsupported,
    Data,
    /// The engine ran out of its memory pool, or a query was cancelled or timed out.
    Resources,
    Cancelled,
    Internal,
}

impl ErrorKind {
    /// Stable names for programs (`--json-errors`, the HTTP API).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Segment => "segment",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Data => "data",
            ErrorKind::Resources => "resources",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn data(path: impl AsRef<Path>, message: impl Into<String>) -> Error {
        Error::Data {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    pub fn segment(
        name: impl Into<String>,
        text: impl Into<String>,
        diagnostics: Diagnostics,
    ) -> Error {
        Error::Segment(Box::new(SegmentError {
            name: name.into(),
            text: text.into(),
            diagnostics,
        }))
    }

    pub fn kind(&self) -> ErrorKind {
        use datafusion::error::DataFusionError as D;
        match self {
            Error::Segment(_) => ErrorKind::Segment,
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Unavailable(_) => ErrorKind::Data,
            Error::DataFusion(e) => match e.find_root() {
                D::ResourcesExhausted(_) => ErrorKind::Resources,
                D::Internal(_) => ErrorKind::Internal,
                D::Plan(_) | D::SchemaError(..) => ErrorKind::Internal,
                _ => ErrorKind::Data,
            },
            Error::Io { .. } | Error::Data { .. } | Error::Parquet(_) | Error::Arrow(_) => {
                ErrorKind::Data
            }
        }
    }

    /// Process exit code: 1 for the user's mistakes, 2 for data, I/O and engine failures, 3 for
    /// bugs, 130 when interrupted.
    pub fn exit_code(&self) -> u8 {
        match self.kind() {
            ErrorKind::Segment
            | ErrorKind::Invalid
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::Unsupported => 1,
            ErrorKind::Data | ErrorKind::Resources => 2,
            ErrorKind::Internal => 3,
            ErrorKind::Cancelled => 130,
        }
    }
}

/// Attaches a path to `std::io::Result`s.
pub trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
