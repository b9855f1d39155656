//! What the command line prints: rows on stdout (through `export`'s writers, or a table on a
//! terminal) and errors on stderr (compiler-style diagnostics, or JSON for programs).

use super::values::RowsFormatArg;
use crate::diagnostic::Diagnostics;
use crate::error::{Error, Result};
use crate::export::{Format, RowWriter};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::io::{IsTerminal, Write};

/// Diagnostics for stderr: colored on a terminal unless NO_COLOR is set, or JSON.
pub fn diagnostics(d: &Diagnostics, name: &str, text: &str, json: bool) -> String {
    if json {
        let mut out = serde_json::to_string_pretty(&d.to_json(text)).unwrap_or_default();
        out.push('\n');
        return out;
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = d.render(text, name, color);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Warnings on stderr, one a line.
pub fn warnings(lines: &[String]) {
    for w in lines {
        eprintln!("warning: {w}");
    }
}

/// An error as stderr shows it.
pub fn error_report(e: &Error, json: bool) -> String {
    if let Error::Segment(s) = e {
        return diagnostics(&s.diagnostics, &s.name, &s.text, json);
    }
    if json {
        let v = serde_json::json!({
            "error": { "kind": e.kind().as_str(), "message": e.to_string() }
        });
        return format!("{v}\n");
    }
    format!("error: {e}\n")
}

/// Prints rows on stdout in `format`.
pub fn rows(batches: &[RecordBatch], schema: SchemaRef, format: RowsFormatArg) -> Result<()> {
    let format = match format {
        RowsFormatArg::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            return print(format!("{table}\n").as_bytes());
        }
        RowsFormatArg::Csv => Format::Csv,
        RowsFormatArg::Jsonl => Format::Jsonl,
        RowsFormatArg::Json => Format::Json,
    };
    let mut w = RowWriter::new(Vec::new(), format, schema.clone())?;
    for b in batches {
        w.write(b)?;
    }
    let mut bytes = w.finish(&schema)?;
    if format == Format::Json {
        bytes.push(b'\n');
    }
    print(&bytes)
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly, as `cat` does.
pub fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| Error::io("standard output", e)),
    }
}
