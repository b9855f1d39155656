//! Writing audiences to files: streamed batch by batch (bounded memory), into a temporary file next
//! to the target that is fsynced and renamed only when complete, so a failed or killed export never
//! leaves a truncated list under the target name.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Jsonl,
    Parquet,
}

impl ExportFormat {
    /// The format a file name asks for, if its extension says.
    pub fn from_path(path: &Path) -> Option<ExportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(ExportFormat::Jsonl),
            "parquet" => Some(ExportFormat::Parquet),
            _ => None,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub format: ExportFormat,
    pub rows: u64,
    pub bytes: u64,
}

enum Sink {
    Csv(arrow::csv::Writer<BufWriter<File>>),
    Jsonl(arrow::json::LineDelimitedWriter<BufWriter<File>>),
    Parquet(parquet::arrow::ArrowWriter<File>),
}

/// A file being exported; dropped without [`AtomicExport::commit`] it removes its temporary file.
pub struct AtomicExport {
    target: PathBuf,
    temp: PathBuf,
    format: ExportFormat,
    sink: Option<Sink>,
    rows: u64,
}

impl AtomicExport {
    pub fn create(target: &Path, format: ExportFormat, schema: SchemaRef) -> Result<AtomicExport> {
        let name = target
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{}: not a file name", target.display())))?
            .to_string_lossy();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::data(&dir, "output directory does not exist"));
        }
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&temp).at(&temp)?;
        let sink = match format {
            ExportFormat::Csv => Sink::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(BufWriter::new(file)),
            ),
            ExportFormat::Jsonl => {
                Sink::Jsonl(arrow::json::LineDelimitedWriter::new(BufWriter::new(file)))
            }
            ExportFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                Sink::Parquet(parquet::arrow::ArrowWriter::try_new(
                    file,
                    schema,
                    Some(props),
                )?)
            }
        };
        Ok(AtomicExport {
            target: target.to_path_buf(),
            temp,
            format,
            sink: Some(sink),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let temp = &self.temp;
        let err = |e: String| Error::data(temp, format!("writing export failed: {e}"));
        match self.sink.as_mut().expect("not committed") {
            Sink::Csv(w) => w.write(batch).map_err(|e| err(e.to_string()))?,
            Sink::Jsonl(w) => w.write(batch).map_err(|e| err(e.to_string()))?,
            Sink::Parquet(w) => w.write(batch).map_err(|e| err(e.to_string()))?,
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finishes the file, fsyncs it and renames it over the target.
    pub fn commit(mut self) -> Result<ExportSummary> {
        let temp = self.temp.clone();
        let file: File = match self.sink.take().expect("not committed") {
            Sink::Csv(w) => w
                .into_inner()
                .into_inner()
                .map_err(|e| Error::io(&temp, e.into_error()))?,
            Sink::Jsonl(mut w) => {
                w.finish().map_err(|e| Error::data(&temp, e.to_string()))?;
                w.into_inner()
                    .into_inner()
                    .map_err(|e| Error::io(&temp, e.into_error()))?
            }
            Sink::Parquet(w) => w
                .into_inner()
                .map_err(|e| Error::data(&temp, e.to_string()))?,
        };
        let mut file = file;
        file.flush().at(&temp)?;
        file.sync_all().at(&temp)?;
        let bytes = file.metadata().at(&temp)?.len();
        std::fs::rename(&temp, &self.target).at(&self.target)?;
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename durable; not every filesystem allows opening a directory.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(ExportSummary {
            path: self.target.clone(),
            format: self.format,
            rows: self.rows,
            bytes,
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

/// Streams a query result into `target` atomically.
pub async fn export_stream(
    mut stream: SendableRecordBatchStream,
    target: &Path,
    format: ExportFormat,
) -> Result<ExportSummary> {
    let mut out = AtomicExport::create(target, format, stream.schema())?;
    while let Some(batch) = stream.next().await {
        out.write(&batch?)?;
    }
    out.commit()
}

/// Streams a result whose last `targets.len()` columns are boolean flags (one query for several
/// segments) into one file per flag: a row goes, without the flags, to every file whose flag is
/// true. Files are committed only after the stream has ended, so an error, or dropping this
/// future on an interrupt, leaves none of them.
pub async fn export_split(
    mut stream: SendableRecordBatchStream,
    targets: &[&Path],
    format: ExportFormat,
) -> Result<Vec<ExportSummary>> {
    let width = stream.schema().fields().len();
    let columns: Vec<usize> = (0..width.saturating_sub(targets.len())).collect();
    let schema = Arc::new(stream.schema().project(&columns)?);
    let mut files = targets
        .iter()
        .map(|t| AtomicExport::create(t, format, schema.clone()))
        .collect::<Result<Vec<_>>>()?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let rows = batch.project(&columns)?;
        for (k, file) in files.iter_mut().enumerate() {
            let flags = batch
                .column(columns.len() + k)
                .as_boolean_opt()
                .ok_or_else(|| {
                    Error::Usage(format!("column {} is not a flag", columns.len() + k))
                })?;
            let matching = filter_record_batch(&rows, flags)?;
            if matching.num_rows() > 0 {
                file.write(&matching)?;
            }
        }
    }
    files.into_iter().map(AtomicExport::commit).collect()
}
