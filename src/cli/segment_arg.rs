//! Reading the SEGMENT argument and reporting segment errors (exit 1, diagnostics on stderr).

use crate::catalog::Catalog;
use crate::check::typed::TypedSegment;
use crate::check::{compile, NoSavedSegments, SavedSegments, SegmentDir};
use crate::diagnostic::Diagnostics;
use crate::error::{Error, IoContext, Result};
use std::io::IsTerminal;
use std::path::PathBuf;

/// A segment's text and the name its diagnostics use.
pub struct SegmentSource {
    pub name: String,
    pub text: String,
}

/// `SEGMENT` is the text itself, `@file.seg`, or the name of a saved segment in `--segments`.
pub fn read_segment(arg: &str, segments: Option<&PathBuf>) -> Result<SegmentSource> {
    if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path).at(path)?;
        return Ok(SegmentSource {
            name: path.to_string(),
            text,
        });
    }
    if let Some(dir) = segments {
        let saved = SegmentDir(dir.clone());
        if let Some(text) = saved.load(arg) {
            let text = text.map_err(Error::Usage)?;
            return Ok(SegmentSource {
                name: saved.path(arg).display().to_string(),
                text,
            });
        }
    }
    Ok(SegmentSource {
        name: "segment".into(),
        text: arg.to_string(),
    })
}

pub fn saved_segments(segments: Option<&PathBuf>) -> Box<dyn SavedSegments> {
    match segments {
        Some(dir) => Box::new(SegmentDir(dir.clone())),
        None => Box::new(NoSavedSegments),
    }
}

/// A segment error, already rendered for the terminal or as JSON.
#[derive(Debug)]
pub struct SegmentError {
    pub rendered: String,
}

/// Renders diagnostics for stderr: colored on a terminal unless NO_COLOR is set.
pub fn render(d: &Diagnostics, src: &SegmentSource, json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(&d.to_json(&src.text)).expect("serializable");
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    d.render(&src.text, &src.name, color)
}

pub fn compile_segment(
    src: &SegmentSource,
    catalog: &Catalog,
    segments: Option<&PathBuf>,
    json: bool,
) -> Result<TypedSegment, SegmentError> {
    let saved = saved_segments(segments);
    compile(&src.text, catalog, saved.as_ref()).map_err(|d| SegmentError {
        rendered: render(&d, src, json),
    })
}
