//! Saved segments: `segment("name")` refers to `name.seg` in a segments directory. The checker
//! inlines them (checking each once per reference), detecting cycles and bounding fan-out.

use super::typed::TPred;
use super::{Checker, Ctx};
use crate::catalog::names::suggest;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::syntax::ast::Span;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// At most this many saved-segment references are inlined into one segment.
pub const MAX_SAVED_EXPANSIONS: usize = 256;

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

impl<'a> Checker<'a> {
    pub(super) fn saved_segment(&mut self, name: &str, span: Span, ctx: Ctx) -> TPred {
        if ctx.is_some() {
            self.error(
                Code::NestedFunction,
                span,
                "segment(…) cannot be used inside `where`",
            );
            return TPred::Const(false);
        }
        if let Some(pos) = self.stack.iter().position(|n| n == name) {
            let mut cycle = self.stack[pos..].to_vec();
            cycle.push(name.to_string());
            let message = format!(
                "saved segments refer to each other in a cycle: {}",
                cycle.join(" → ")
            );
            return self.graph_failure(Diagnostic::error(Code::SavedSegmentCycle, span, message));
        }
        if self.expansions >= MAX_SAVED_EXPANSIONS {
            let d = Diagnostic::error(
                Code::TooManyExpansions,
                span,
                format!("saved segments expand to more than {MAX_SAVED_EXPANSIONS} references"),
            )
            .with_hint(
                "saved segments that use other saved segments several times multiply; \
                 simplify them",
            );
            return self.graph_failure(d);
        }
        self.expansions += 1;
        let text = match self.saved.load(name) {
            None => {
                let names = self.saved.names();
                let msg = format!("there is no saved segment named `{name}`");
                let close = (!name.is_empty())
                    .then(|| suggest(name, names.iter().map(String::as_str)))
                    .flatten();
                match close {
                    Some(s) => self.error_hint(
                        Code::UnknownSavedSegment,
                        span,
                        msg,
                        format!("did you mean segment(\"{s}\")?"),
                    ),
                    None if names.is_empty() => self.error_hint(
                        Code::UnknownSavedSegment,
                        span,
                        msg,
                        "saved segments are the .seg files of the store's segments directory",
                    ),
                    None => self.error_hint(
                        Code::UnknownSavedSegment,
                        span,
                        msg,
                        format!("saved segments: {}", names.join(", ")),
                    ),
                }
                return TPred::Const(false);
            }
            Some(Err(e)) => {
                self.error(
                    Code::UnreadableSavedSegment,
                    span,
                    format!("cannot read saved segment `{name}`: {e}"),
                );
                return TPred::Const(false);
            }
            Some(Ok(text)) => text,
        };
        let mut graph_error = None;
        let inner = crate::syntax::parse(&text).and_then(|seg| {
            let mut sub = Checker {
                catalog: self.catalog,
                saved: self.saved,
                errors: vec![],
                warnings: vec![],
                stack: self.stack.clone(),
                expansions: self.expansions,
                graph_error: None,
            };
            sub.stack.push(name.to_string());
            let root = sub.pred(&seg.root, None);
            self.expansions = sub.expansions;
            graph_error = sub.graph_error.take();
            if sub.errors.is_empty() {
                Ok(root)
            } else {
                Err(Diagnostics(sub.errors))
            }
        });
        match inner {
            Ok(body) => TPred::Saved {
                name: name.to_string(),
                body: Box::new(body),
            },
            Err(_) if graph_error.is_some() => {
                let mut d = graph_error.expect("checked");
                d.span = span;
                self.graph_failure(d)
            }
            Err(d) => {
                let first = &d.0[0];
                let (line, col) = Diagnostics::line_col(&text, first.span.start);
                let more = if d.0.len() > 1 {
                    format!(" (and {} more)", d.0.len() - 1)
                } else {
                    String::new()
                };
                self.error(
                    Code::SavedSegmentErrors,
                    span,
                    format!(
                        "saved segment `{name}` has errors: {name}.seg:{line}:{col}: {}{more}",
                        first.message
                    ),
                );
                TPred::Const(false)
            }
        }
    }

    pub(super) fn graph_failure(&mut self, d: Diagnostic) -> TPred {
        self.errors.push(d.clone());
        self.graph_error = Some(d);
        TPred::Const(false)
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testing::checked;
    use insta::assert_snapshot;

    #[test]
    fn saved_segments_are_inlined_by_name() {
        assert_snapshot!(checked("segment(\"vip-users\") and primaryDevice"), @r#"segment("vip-users") { person.tags has "vip" } and installation.primaryDevice"#);
        assert_snapshot!(checked("segment(\"vip-user\")"), @r#"E050 0..19 there is no saved segment named `vip-user` (did you mean segment("vip-users")?)"#);
        assert_snapshot!(checked("segment(\"loop-a\")"), @"E053 0..17 saved segments refer to each other in a cycle: loop-a → loop-b → loop-a");
        assert_snapshot!(checked("count(Purchase where segment(\"vip-users\")) > 0"), @"E043 21..41 segment(…) cannot be used inside `where`");
    }
}
