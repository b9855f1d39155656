//! Checksums of a snapshot's Parquet files, so that corruption is an error naming the file and
//! never a wrong audience. Parquet 59 writes no page CRCs, so the writer hashes (XXH3-64) every
//! file after writing it and records in the manifest: the whole file, its footer, the page
//! index region, and every column chunk. Queries verify what they read as they read it (the
//! footer and page index once per process, column chunks on every read; see
//! `store::verified`); `audience info --verify` checks whole files.

use crate::error::{Error, IoContext, Result};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::hash::Hasher as _;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use twox_hash::XxHash3_64;

/// The checksums of one file, as the manifest records them (16 hex digits each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    /// The whole file.
    pub file: String,
    /// The footer: the metadata, its length and the closing magic.
    pub footer: String,
    /// The bytes between the last column chunk and the footer (page indexes), when there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Each column chunk, in footer order (row group by row group, column by column),
    /// concatenated.
    pub chunks: String,
}

/// [`Checksums`] parsed, for verifying reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub footer: u64,
    pub index: Option<u64>,
    pub chunks: Vec<u64>,
}

pub fn hash(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

fn hex(h: u64) -> String {
    format!("{h:016x}")
}

fn parse_hex(s: &str) -> Option<u64> {
    (s.len() == 16)
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

impl Checksums {
    /// The parsed form; `None` when a field is not 16 hex digits (a damaged manifest).
    pub fn expected(&self) -> Option<Expected> {
        if !self.chunks.len().is_multiple_of(16) || !self.chunks.is_ascii() {
            return None;
        }
        let chunks = (0..self.chunks.len() / 16)
            .map(|i| parse_hex(&self.chunks[i * 16..i * 16 + 16]))
            .collect::<Option<Vec<_>>>()?;
        Some(Expected {
            footer: parse_hex(&self.footer)?,
            index: match &self.index {
                Some(i) => Some(parse_hex(i)?),
                None => None,
            },
            chunks,
        })
    }
}

/// Where a file's parts lie: `[start, end)` byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Each column chunk, in footer order, with its row group and column index.
    pub chunks: Vec<(u64, u64, usize, usize)>,
    /// The page index region, if not empty.
    pub index: Option<(u64, u64)>,
    /// The footer: metadata, length and magic.
    pub footer: (u64, u64),
}

impl Layout {
    /// The layout of a file whose metadata is `metadata` and whose footer is `footer`.
    pub fn of(metadata: &ParquetMetaData, footer: (u64, u64)) -> Result<Layout, String> {
        let mut chunks = Vec::new();
        for (rg, group) in metadata.row_groups().iter().enumerate() {
            for (c, column) in group.columns().iter().enumerate() {
                let (start, len) = column.byte_range();
                chunks.push((start, start + len, rg, c));
            }
        }
        let data_end = chunks.iter().map(|c| c.1).max().unwrap_or(4);
        if data_end > footer.0 {
            return Err("column chunks overlap the footer".into());
        }
        let index = (data_end < footer.0).then_some((data_end, footer.0));
        Ok(Layout {
            chunks,
            index,
            footer,
        })
    }

    /// The chunk holding byte `offset`, as an index into [`Layout::chunks`].
    pub fn chunk_at(&self, offset: u64) -> Option<usize> {
        self.chunks
            .iter()
            .position(|&(start, end, ..)| start <= offset && offset < end)
    }
}

/// Reads, optionally verifies, and decodes the footer of the Parquet file at `path`; returns the
/// metadata and the footer's byte range.
pub fn read_footer(path: &Path, expected: Option<u64>) -> Result<(ParquetMetaData, (u64, u64))> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let corrupt = |why: String| Error::data(path, format!("corrupt Parquet file: {why}"));
    if len < 12 {
        return Err(corrupt(format!("{len} bytes is too short")));
    }
    let mut tail = [0u8; 8];
    file.read_exact_at(&mut tail, len - 8).at(path)?;
    if &tail[4..] != b"PAR1" {
        return Err(corrupt("the file does not end with PAR1".into()));
    }
    let meta_len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if meta_len + 12 > len {
        return Err(corrupt(format!("a footer of {meta_len} bytes in {len}")));
    }
    let start = len - 8 - meta_len;
    let mut footer = vec![0u8; (meta_len + 8) as usize];
    file.read_exact_at(&mut footer, start).at(path)?;
    if let Some(want) = expected {
        let got = hash(&footer);
        if got != want {
            return Err(mismatch(path, "the footer", want, got));
        }
    }
    let metadata = ParquetMetaDataReader::decode_metadata(&footer[..meta_len as usize])
        .map_err(|e| corrupt(format!("its footer does not decode: {e}")))?;
    Ok((metadata, (start, len)))
}

/// The error for bytes whose checksum is not the recorded one.
pub fn mismatch(path: &Path, what: &str, want: u64, got: u64) -> Error {
    Error::data(
        path,
        format!(
            "{what} is corrupt: its checksum is {} where the manifest records {} (restore the \
             file from a backup, or write the snapshot again)",
            hex(got),
            hex(want)
        ),
    )
}

fn read_range(file: &File, path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start).at(path)?;
    Ok(buf)
}

/// Computes the checksums of the Parquet file at `path` (just written: in the page cache).
pub fn compute(path: &Path) -> Result<Checksums> {
    let (metadata, footer) = read_footer(path, None)?;
    let file = File::open(path).at(path)?;
    let layout = Layout::of(&metadata, footer).map_err(|m| Error::data(path, m))?;
    let mut chunks = String::with_capacity(layout.chunks.len() * 16);
    for &(start, end, ..) in &layout.chunks {
        chunks.push_str(&hex(hash(&read_range(&file, path, start, end)?)));
    }
    let index = match layout.index {
        Some((start, end)) => Some(hex(hash(&read_range(&file, path, start, end)?))),
        None => None,
    };
    let footer_hash = hex(hash(&read_range(&file, path, footer.0, footer.1)?));
    Ok(Checksums {
        file: hex(whole_file(path)?),
        footer: footer_hash,
        index,
        chunks,
    })
}

/// XXH3-64 of a whole file, read in blocks.
pub fn whole_file(path: &Path) -> Result<u64> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = XxHash3_64::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// Verifies a whole file against its checksums; on a mismatch, names the part that differs
/// (the footer, the page index, or the row group and column of a chunk).
pub fn verify(path: &Path, sums: &Checksums) -> Result<()> {
    let want = parse_hex(&sums.file)
        .ok_or_else(|| Error::data(path, "the manifest's checksum of it is damaged"))?;
    let got = whole_file(path)?;
    if got == want {
        return Ok(());
    }
    let expected = sums
        .expected()
        .ok_or_else(|| Error::data(path, "the manifest's checksums of it are damaged"))?;
    let (metadata, footer) = read_footer(path, Some(expected.footer))?;
    let layout = Layout::of(&metadata, footer).map_err(|m| Error::data(path, m))?;
    let file = File::open(path).at(path)?;
    if let (Some((start, end)), Some(want)) = (layout.index, expected.index) {
        let got = hash(&read_range(&file, path, start, end)?);
        if got != want {
            return Err(mismatch(path, "the page index", want, got));
        }
    }
    for (k, &(start, end, rg, c)) in layout.chunks.iter().enumerate() {
        let got = hash(&read_range(&file, path, start, end)?);
        let want = expected.chunks.get(k).copied().unwrap_or_default();
        if got != want {
            let name = metadata.row_group(rg).column(c).column_path().string();
            return Err(mismatch(
                path,
                &format!("row group {rg}, column `{name}`"),
                want,
                got,
            ));
        }
    }
    Err(mismatch(path, "the file", want, got))
}
