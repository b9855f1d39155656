//! Segment diagnostics: one structured report (severity, stable code, message, span, label,
//! hint) that travels through parsing and checking and is rendered only at the boundary: as
//! compiler-style text (ariadne: line:col, the line, a caret under the span) or as JSON for
//! programs and the web page.

pub mod codes;

pub use crate::base::span::Span;
use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};
pub use codes::Code;
use serde::Serialize;
use std::fmt;

/// An error stops the segment from running; a warning says the answer may not be what was meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub span: Span,
    /// Shown at the caret; defaults to the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: None,
            hint: None,
        }
    }

    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
}

/// One or more diagnostics about one segment text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn one(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(src.len());
        let before = &src[..floor_boundary(src, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// Compiler-style text: `error: message` then `--> name:line:col`, the line, a caret, the hint.
    pub fn render(&self, src: &str, name: &str, color: bool) -> String {
        let mut out = Vec::new();
        for d in &self.0 {
            let start = floor_boundary(src, d.span.start.min(src.len()));
            let end = floor_boundary(src, d.span.end.clamp(start, src.len()));
            let kind = match (d.severity, d.code) {
                (_, Code::Internal) => {
                    ReportKind::Custom("internal error (a bug in audience)", ariadne::Color::Red)
                }
                (Severity::Error, _) => ReportKind::Error,
                (Severity::Warning, _) => ReportKind::Warning,
            };
            let (line, col) = Self::line_col(src, start);
            let mut report = Report::build(kind, (name, start..end))
                .with_code(d.code)
                .with_config(
                    Config::default()
                        .with_color(color)
                        .with_index_type(IndexType::Byte),
                )
                .with_message(format!("{} ({name}:{line}:{col})", d.message))
                .with_label(
                    Label::new((name, start..end))
                        .with_message(d.label.clone().unwrap_or_else(|| d.message.clone())),
                );
            if let Some(h) = &d.hint {
                report = report.with_help(h);
            }
            let _ = report.finish().write((name, Source::from(src)), &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// One line a diagnostic: code, byte span, message and hint (for tests and logs).
    pub fn brief(&self) -> String {
        self.0
            .iter()
            .map(|d| {
                let hint = d
                    .hint
                    .as_deref()
                    .map_or(String::new(), |h| format!(" ({h})"));
                format!(
                    "{} {}..{} {}{hint}",
                    d.code, d.span.start, d.span.end, d.message
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `{"diagnostics": [{severity, code, message, span: {start, end}, line, column, hint}]}`
    pub fn to_json(&self, src: &str) -> serde_json::Value {
        let items: Vec<_> = self
            .0
            .iter()
            .map(|d| {
                let (line, column) = Self::line_col(src, d.span.start);
                let mut v = serde_json::to_value(d).expect("serializable");
                v["line"] = line.into();
                v["column"] = column.into();
                v
            })
            .collect();
        serde_json::json!({ "diagnostics": items })
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{}: {} at {}..{}",
                d.code, d.message, d.span.start, d.span.end
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
