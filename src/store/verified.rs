//! Verified reads: the Parquet reader of manifest tables checks every column chunk it reads
//! against the checksum the manifest records (`store::checksum`), and the footer and page index
//! once per process, so a corrupt or swapped file is an error naming the file, the row group
//! and the column, never a wrong audience. Every I/O error names the file too.
//!
//! A read of part of a chunk (pages selected by the page index) fetches the whole chunk once to
//! verify it; the parquet reader asks for whole chunks otherwise. Files written before
//! checksums (no [`Expected`] attached) are read unverified.

use super::checksum::{hash, read_footer, Expected, Layout};
use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::FutureExt;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a file's reads are checked against: its checksums and local path.
#[derive(Debug)]
pub struct FileCheck {
    pub path: PathBuf,
    pub expected: Expected,
}

/// The files whose footer and page index this process has verified already.
#[derive(Debug, Default)]
pub struct Verified {
    footers: Mutex<HashSet<PathBuf>>,
}

impl Verified {
    /// Records that `check`'s footer was verified elsewhere (the snapshot's open-time check of
    /// persons and installations, whose scans never read the page index).
    pub fn mark(&self, check: &FileCheck) {
        if let Ok(mut f) = self.footers.lock() {
            f.insert(check.path.clone());
        }
    }

    /// Verifies the footer and page index of `check`'s file, unless done before.
    pub fn footer(&self, check: &FileCheck) -> Result<(), ParquetError> {
        if self.footers.lock().is_ok_and(|f| f.contains(&check.path)) {
            return Ok(());
        }
        let (metadata, footer) = read_footer(&check.path, Some(check.expected.footer))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        let layout = Layout::of(&metadata, footer).map_err(|m| named(&check.path, m))?;
        if layout.chunks.len() != check.expected.chunks.len() {
            return Err(named(
                &check.path,
                format!(
                    "has {} column chunks, the manifest records {}",
                    layout.chunks.len(),
                    check.expected.chunks.len()
                ),
            ));
        }
        if let (Some((start, end)), Some(want)) = (layout.index, check.expected.index) {
            let bytes = read_at(&check.path, start, end)?;
            let got = hash(&bytes);
            if got != want {
                return Err(external(super::checksum::mismatch(
                    &check.path,
                    "the page index",
                    want,
                    got,
                )));
            }
        }
        if let Ok(mut f) = self.footers.lock() {
            f.insert(check.path.clone());
        }
        Ok(())
    }
}

fn read_at(path: &Path, start: u64, end: u64) -> Result<Vec<u8>, ParquetError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| named(path, e))?;
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(|e| named(path, e))?;
    Ok(buf)
}

fn named(path: &Path, e: impl std::fmt::Display) -> ParquetError {
    ParquetError::General(format!("{}: {e}", path.display()))
}

fn external(e: crate::error::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

/// Creates DataFusion's cached readers, each wrapped to verify what it reads.
#[derive(Debug)]
pub struct VerifyingReaderFactory {
    inner: CachedParquetFileReaderFactory,
    verified: Arc<Verified>,
}

impl VerifyingReaderFactory {
    pub fn new(inner: CachedParquetFileReaderFactory, verified: Arc<Verified>) -> Self {
        VerifyingReaderFactory { inner, verified }
    }
}

impl ParquetFileReaderFactory for VerifyingReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let check = file.extension::<Arc<FileCheck>>().cloned();
        let path = PathBuf::from(format!("/{}", file.object_meta.location));
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(VerifyingReader {
            inner,
            path,
            check,
            verified: self.verified.clone(),
            layout: None,
            metadata: None,
            whole: None,
        }))
    }
}

/// A reader that verifies column chunks as they arrive.
struct VerifyingReader {
    inner: Box<dyn AsyncFileReader + Send>,
    path: PathBuf,
    check: Option<Arc<FileCheck>>,
    verified: Arc<Verified>,
    layout: Option<Arc<Layout>>,
    /// The footer the layout came from, to name a corrupt chunk's column.
    metadata: Option<Arc<ParquetMetaData>>,
    /// The last chunk fetched whole to verify a read of part of it: (chunk, its bytes).
    whole: Option<(usize, Bytes)>,
}

impl VerifyingReader {
    async fn layout(&mut self) -> Result<Arc<Layout>, ParquetError> {
        if self.layout.is_none() {
            let metadata = self.inner.get_metadata(None).await?;
            let len = std::fs::metadata(&self.path)
                .map_err(|e| named(&self.path, e))?
                .len();
            let footer = footer_range(&self.path, len)?;
            let layout = Layout::of(&metadata, footer).map_err(|m| named(&self.path, m))?;
            self.layout = Some(Arc::new(layout));
            self.metadata = Some(metadata);
        }
        Ok(self.layout.clone().expect("just set"))
    }

    fn check_chunk(&self, k: usize, bytes: &[u8]) -> Result<(), ParquetError> {
        let (Some(check), Some(layout)) = (&self.check, &self.layout) else {
            return Ok(());
        };
        let want = check.expected.chunks.get(k).copied().unwrap_or_default();
        let got = hash(bytes);
        if got == want {
            return Ok(());
        }
        let (_, _, rg, c) = layout.chunks[k];
        let column = self.metadata.as_ref().map_or(c.to_string(), |m| {
            format!("`{}`", m.row_group(rg).column(c).column_path().string())
        });
        Err(external(super::checksum::mismatch(
            &self.path,
            &format!("row group {rg}, column {column}"),
            want,
            got,
        )))
    }

    /// Reads `ranges` with one call to the inner reader (which coalesces them), verifying each
    /// chunk they touch: a whole chunk as read, part of a chunk by reading the chunk whole.
    async fn read(&mut self, ranges: Vec<Range<u64>>) -> Result<Vec<Bytes>, ParquetError> {
        let path = self.path.clone();
        if self.check.is_none() {
            return self
                .inner
                .get_byte_ranges(ranges)
                .await
                .map_err(|e| named(&path, e));
        }
        let layout = self.layout().await?;
        // For each range: which fetch answers it, the chunk it lies in (if any), and where in
        // the fetched bytes it starts.
        let mut fetches: Vec<Range<u64>> = Vec::new();
        let mut answers: Vec<(usize, Option<usize>, u64)> = Vec::with_capacity(ranges.len());
        for r in &ranges {
            let chunk = layout
                .chunk_at(r.start)
                .filter(|&k| r.end <= layout.chunks[k].1);
            let fetch = match chunk {
                Some(k) => layout.chunks[k].0..layout.chunks[k].1,
                // The page index or footer (verified once per process by `Verified`), or a
                // read across chunks, which the parquet reader never asks for.
                None => r.clone(),
            };
            let i = match fetches.iter().position(|f| *f == fetch) {
                Some(i) => i,
                None => {
                    fetches.push(fetch.clone());
                    fetches.len() - 1
                }
            };
            answers.push((i, chunk, r.start - fetch.start));
        }
        let cached = self.whole.clone();
        let mut fetched: Vec<Option<Bytes>> = vec![None; fetches.len()];
        let mut missing = Vec::new();
        for (i, f) in fetches.iter().enumerate() {
            match &cached {
                Some((k, bytes))
                    if layout.chunks[*k].0 == f.start && layout.chunks[*k].1 == f.end =>
                {
                    fetched[i] = Some(bytes.clone())
                }
                _ => missing.push(i),
            }
        }
        let got = self
            .inner
            .get_byte_ranges(missing.iter().map(|&i| fetches[i].clone()).collect())
            .await
            .map_err(|e| named(&path, e))?;
        for (&i, bytes) in missing.iter().zip(got) {
            if let Some(&(_, Some(k), _)) = answers.iter().find(|a| a.0 == i) {
                self.check_chunk(k, &bytes)?;
                self.whole = Some((k, bytes.clone()));
            }
            fetched[i] = Some(bytes);
        }
        Ok(ranges
            .iter()
            .zip(answers)
            .map(|(r, (i, _, offset))| {
                let bytes = fetched[i].as_ref().expect("fetched above");
                bytes.slice(offset as usize..(offset + (r.end - r.start)) as usize)
            })
            .collect())
    }
}

/// The footer's byte range of a file of `len` bytes (one 8-byte read).
fn footer_range(path: &Path, len: u64) -> Result<(u64, u64), ParquetError> {
    let tail = read_at(path, len.saturating_sub(8), len)?;
    if tail.len() != 8 || &tail[4..] != b"PAR1" {
        return Err(named(path, "the file does not end with PAR1"));
    }
    let meta_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    Ok((len.saturating_sub(meta_len + 8), len))
}

impl AsyncFileReader for VerifyingReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let mut one = self.read(vec![range]).await?;
            Ok(one.pop().expect("one range, one answer"))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.read(ranges).boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            if let Some(check) = &self.check {
                self.verified.footer(check)?;
            }
            let path = self.path.clone();
            self.inner
                .get_metadata(options)
                .await
                .map_err(|e| named(&path, e))
        }
        .boxed()
    }
}
