//! Stage 5, export: audiences written as CSV, JSON lines, a JSON array or Parquet. One set of
//! writers serves every output: previews on stdout, files, the server's downloads. Files are
//! streamed batch by batch (bounded memory) into a temporary file next to the target that is
//! fsynced and renamed only when complete, so a failed or killed export never leaves a truncated
//! list under the target name.

use crate::error::{Error, IoContext, Result};
use arrow::array::{AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A row format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    /// One JSON object a line.
    Jsonl,
    /// One JSON array of objects.
    Json,
    Parquet,
}

impl Format {
    /// The format a file name asks for, if its extension names one.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "json" => Some(Format::Json),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }

    /// CSV cannot hold lists: they are written as `a;b` text.
    pub fn lists_as_text(self) -> bool {
        self == Format::Csv
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub format: Format,
    pub rows: u64,
    pub bytes: u64,
    /// Temporary files of killed exports to the same file that this one removed.
    pub removed_leftovers: Vec<PathBuf>,
}

/// What an export says about itself: key-value pairs (the segment, snapshot, as-of, …), in a
/// Parquet file's footer, and for other formats in a `<file>.meta.json` sidecar when asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub pairs: Vec<(String, String)>,
    /// Write the sidecar (CSV, JSON lines, JSON).
    pub sidecar: bool,
}

/// The sidecar of an export file.
pub fn sidecar_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_os_string();
    name.push(".meta.json");
    PathBuf::from(name)
}

/// Batches written in one format to any byte sink.
pub enum RowWriter<W: Write + Send> {
    Csv(arrow::csv::Writer<W>),
    Jsonl(arrow::json::LineDelimitedWriter<W>),
    Json(arrow::json::ArrayWriter<W>),
    Parquet(parquet::arrow::ArrowWriter<W>),
}

impl<W: Write + Send> RowWriter<W> {
    pub fn new(out: W, format: Format, schema: SchemaRef) -> Result<RowWriter<W>> {
        Self::with_metadata(out, format, schema, &[])
    }

    /// A writer whose Parquet footer carries `pairs` as key-value metadata.
    pub fn with_metadata(
        out: W,
        format: Format,
        schema: SchemaRef,
        pairs: &[(String, String)],
    ) -> Result<RowWriter<W>> {
        Ok(match format {
            Format::Csv => RowWriter::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            Format::Jsonl => RowWriter::Jsonl(arrow::json::LineDelimitedWriter::new(out)),
            Format::Json => RowWriter::Json(arrow::json::ArrayWriter::new(out)),
            Format::Parquet => {
                let kv: Vec<parquet::file::metadata::KeyValue> = pairs
                    .iter()
                    .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
                    .collect();
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_key_value_metadata((!kv.is_empty()).then_some(kv))
                    .build();
                RowWriter::Parquet(parquet::arrow::ArrowWriter::try_new(
                    out,
                    schema,
                    Some(props),
                )?)
            }
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), arrow::error::ArrowError> {
        match self {
            RowWriter::Csv(w) => w.write(batch),
            RowWriter::Jsonl(w) => w.write(batch),
            RowWriter::Json(w) => w.write(batch),
            RowWriter::Parquet(w) => w
                .write(batch)
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        }
    }

    /// Writes what the format needs at the end (a CSV header when no row came, a JSON array's
    /// brackets, a Parquet footer) and returns the sink.
    pub fn finish(self, schema: &SchemaRef) -> Result<W, arrow::error::ArrowError> {
        match self {
            RowWriter::Csv(mut w) => {
                // arrow writes the header with the first batch; an empty result still has one.
                w.write(&RecordBatch::new_empty(schema.clone()))?;
                Ok(w.into_inner())
            }
            RowWriter::Jsonl(mut w) => {
                w.finish()?;
                Ok(w.into_inner())
            }
            RowWriter::Json(mut w) => {
                w.finish()?;
                Ok(w.into_inner())
            }
            RowWriter::Parquet(w) => w
                .into_inner()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        }
    }
}

/// A file being exported; dropped without [`AtomicExport::commit`] it removes its temporary file.
pub struct AtomicExport {
    target: PathBuf,
    temp: PathBuf,
    format: Format,
    /// The sidecar to write beside the file, as JSON, when asked for.
    sidecar: Option<String>,
    schema: SchemaRef,
    sink: Option<RowWriter<BufWriter<File>>>,
    rows: u64,
    removed: Vec<PathBuf>,
}

impl AtomicExport {
    pub fn create(
        target: &Path,
        format: Format,
        schema: SchemaRef,
        meta: &Metadata,
    ) -> Result<AtomicExport> {
        let name = target
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("{}: not a file name", target.display())))?
            .to_string_lossy();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::data(&dir, "output directory does not exist"));
        }
        // The temporary file names its writer, so a later run can remove it once the writer is
        // gone (see [`stale_temporaries`]) without touching a live export's.
        let stamp = crate::base::process::stamp().replace(' ', "-");
        let temp = dir.join(format!(".{name}.{stamp}.tmp"));
        let prefix = format!(".{name}.");
        let mut removed = Vec::new();
        for stale in stale_temporaries(&dir) {
            let ours = stale
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
            if ours && std::fs::remove_file(&stale).is_ok() {
                removed.push(stale);
            }
        }
        let file = File::create(&temp).at(&temp)?;
        let sink =
            RowWriter::with_metadata(BufWriter::new(file), format, schema.clone(), &meta.pairs);
        let sink = match sink {
            Ok(sink) => sink,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        Ok(AtomicExport {
            target: target.to_path_buf(),
            temp,
            format,
            schema,
            sink: Some(sink),
            rows: 0,
            removed,
            sidecar: (meta.sidecar && format != Format::Parquet).then(|| {
                let map: serde_json::Map<String, serde_json::Value> = meta
                    .pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                format!("{:#}\n", serde_json::Value::Object(map))
            }),
        })
    }

    fn failed(&self, e: impl std::fmt::Display) -> Error {
        Error::data(&self.target, format!("writing the export failed: {e}"))
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let sink = self
            .sink
            .as_mut()
            .ok_or_else(|| Error::Internal("write after commit".into()))?;
        if let Err(e) = sink.write(batch) {
            return Err(self.failed(e));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finishes the file, fsyncs it and renames it over the target. On any failure the
    /// temporary file is removed (by `Drop`) and the error names the target.
    pub fn commit(mut self) -> Result<ExportSummary> {
        let sink = self
            .sink
            .take()
            .ok_or_else(|| Error::Internal("commit twice".into()))?;
        let written = sink
            .finish(&self.schema)
            .map_err(|e| self.failed(e))
            .and_then(|w| w.into_inner().map_err(|e| self.failed(e.into_error())))
            .and_then(|mut file| {
                file.flush().map_err(|e| self.failed(e))?;
                file.sync_all().map_err(|e| self.failed(e))?;
                Ok(file.metadata().map_err(|e| self.failed(e))?.len())
            });
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = std::fs::remove_file(&self.temp);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&self.temp, &self.target) {
            let _ = std::fs::remove_file(&self.temp);
            return Err(Error::io(&self.target, e));
        }
        if let Some(text) = &self.sidecar {
            let side = sidecar_path(&self.target);
            let temp = side.with_extension("json.tmp");
            std::fs::write(&temp, text)
                .and_then(|_| std::fs::rename(&temp, &side))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&temp);
                    Error::io(&side, e)
                })?;
        }
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename durable; not every filesystem allows opening a directory.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(ExportSummary {
            path: self.target.clone(),
            format: self.format,
            rows: self.rows,
            bytes,
            removed_leftovers: std::mem::take(&mut self.removed),
        })
    }
}

impl Drop for AtomicExport {
    fn drop(&mut self) {
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Temporary export files in `dir` whose writers are gone: `.<name>.<pid>-<start>.tmp` (or the
/// older `.<name>.<pid>.tmp`) left by a killed export.
pub fn stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
            let stamp = stem.rsplit('.').next()?.replace('-', " ");
            (e.path().is_file() && crate::base::process::is_gone(&stamp)).then(|| e.path())
        })
        .collect();
    out.sort();
    out
}

/// Counts rows as they are written, for progress reports (shared with whoever polls).
pub use crate::base::progress::Progress;

/// Streams a query result into `target` atomically.
pub async fn export_stream(
    mut stream: SendableRecordBatchStream,
    target: &Path,
    format: Format,
    meta: &Metadata,
    progress: Option<&Progress>,
) -> Result<ExportSummary> {
    let mut out = AtomicExport::create(target, format, stream.schema(), meta)?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        out.write(&batch)?;
        if let Some(p) = progress {
            p.add(batch.num_rows() as u64);
        }
    }
    out.commit()
}

/// Streams a result whose last `targets.len()` columns are boolean flags (one query for several
/// segments) into one file per flag: a row goes, without the flags, to every file whose flag is
/// true. Files are committed only after the stream has ended, so an error, or dropping this
/// future on an interrupt, leaves none of them.
pub async fn export_split(
    mut stream: SendableRecordBatchStream,
    targets: &[(&Path, &Metadata)],
    format: Format,
    progress: Option<&Progress>,
) -> Result<Vec<ExportSummary>> {
    let width = stream.schema().fields().len();
    let columns: Vec<usize> = (0..width.saturating_sub(targets.len())).collect();
    let schema = Arc::new(stream.schema().project(&columns)?);
    let mut files = targets
        .iter()
        .map(|(t, meta)| AtomicExport::create(t, format, schema.clone(), meta))
        .collect::<Result<Vec<_>>>()?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let rows = batch.project(&columns)?;
        for (k, file) in files.iter_mut().enumerate() {
            let flags = batch
                .column(columns.len() + k)
                .as_boolean_opt()
                .ok_or_else(|| {
                    Error::Internal(format!("column {} is not a flag", columns.len() + k))
                })?;
            let matching = filter_record_batch(&rows, flags)?;
            if matching.num_rows() > 0 {
                file.write(&matching)?;
                if let Some(p) = progress {
                    p.add(matching.num_rows() as u64);
                }
            }
        }
    }
    files.into_iter().map(AtomicExport::commit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("platform", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("iOS"), None])),
            ],
        )
        .unwrap()
    }

    fn written(format: Format, batches: &[RecordBatch]) -> String {
        let schema = batch().schema();
        let mut w = RowWriter::new(Vec::new(), format, schema.clone()).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        String::from_utf8(w.finish(&schema).unwrap()).unwrap()
    }

    #[test]
    fn text_formats() {
        let b = batch();
        assert_eq!(
            written(Format::Csv, std::slice::from_ref(&b)),
            "id,platform\n1,iOS\n2,\n"
        );
        assert_eq!(
            written(Format::Jsonl, std::slice::from_ref(&b)),
            "{\"id\":1,\"platform\":\"iOS\"}\n{\"id\":2}\n"
        );
        assert_eq!(
            written(Format::Json, &[b]),
            "[{\"id\":1,\"platform\":\"iOS\"},{\"id\":2}]"
        );
    }

    #[test]
    fn empty_results_keep_their_shape() {
        assert_eq!(written(Format::Csv, &[]), "id,platform\n");
        assert_eq!(written(Format::Jsonl, &[]), "");
        assert_eq!(written(Format::Json, &[]), "[]");
    }

    #[test]
    fn a_failed_commit_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("missing-dir").join("x.csv");
        let meta = Metadata::default();
        assert!(AtomicExport::create(&target, Format::Csv, batch().schema(), &meta).is_err());
        let target = dir.path().join("x.csv");
        let mut out = AtomicExport::create(&target, Format::Csv, batch().schema(), &meta).unwrap();
        out.write(&batch()).unwrap();
        // The target is a directory: the rename fails.
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("f"), "x").unwrap();
        let err = out.commit().unwrap_err().to_string();
        assert!(err.contains("x.csv"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["x.csv"], "only the (directory) target remains");
    }
}
