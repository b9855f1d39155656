//! What the command line prints: rows on stdout (through `export`'s writers, or a table on a
//! terminal) and errors on stderr (compiler-style diagnostics, or JSON for programs).

use super::values::RowsFormatArg;
use crate::diagnostic::Diagnostics;
use crate::error::{Error, Result};
use crate::export::{Format, RowWriter};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
            let table =
                arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), batches)?;
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

/// The first `n` rows of `batches`.
pub fn first_rows(batches: Vec<RecordBatch>, n: usize) -> Vec<RecordBatch> {
    let mut left = n;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    out
}

/// Streams rows to stdout in `format` (an export to `-`), batch by batch; a closed pipe ends
/// the export quietly.
pub async fn stream(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    format: Format,
) -> Result<()> {
    use futures::StreamExt;
    let closed = Arc::new(AtomicBool::new(false));
    let out = std::io::BufWriter::new(Stdout {
        closed: closed.clone(),
    });
    let schema = stream.schema();
    let quiet = |e: Error| {
        if closed.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(e)
        }
    };
    let mut w = RowWriter::new(out, format, schema.clone())?;
    while let Some(batch) = stream.next().await {
        if let Err(e) = w.write(&batch?) {
            return quiet(e.into());
        }
    }
    match w.finish(&schema) {
        Ok(mut out) => out
            .flush()
            .map_err(|e| Error::io("standard output", e))
            .or_else(quiet),
        Err(e) => quiet(e.into()),
    }
}

/// Standard output that remembers whether the reader went away.
struct Stdout {
    closed: Arc<AtomicBool>,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let done = std::io::stdout().write(buf);
        if matches!(&done, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe) {
            self.closed.store(true, Ordering::Relaxed);
        }
        done
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly, as `cat` does.
pub fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| Error::io("standard output", e)),
    }
}
