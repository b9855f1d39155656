//! Reading a JSON-lines source line by line, plain or gzipped, in bounded memory.
//!
//! [`Lines`] yields every non-blank line with its [`Origin`] (`file:line`, the 1-based physical
//! line, blank lines counted), its line ending (`\n` or `\r\n`) removed. What can go wrong with
//! one line is that line's reject reason and reading goes on; what can go wrong with the file is
//! an [`Error`] that ends it:
//!
//! * A line longer than the limit ([`MAX_LINE_BYTES`]) is rejected ("line is longer than
//!   16 MiB") and skipped to its newline without being held: memory stays at the limit whatever
//!   the input (a 1 GB line costs 16 MiB, not 1 GB).
//! * Invalid UTF-8 is rejected naming the byte offset of the first bad byte in the line.
//! * A corrupt or truncated gzip stream ends the file with an error naming it and the line
//!   reached; the lines before it have been yielded. Concatenated gzip members (`cat a.gz b.gz`,
//!   what parallel compressors write) are read as one stream.
//! * A UTF-8 byte order mark at the start of the file is dropped.
//!
//! [`read_lines_at`] and [`visit_lines_at`] read given lines again, for the rejects file.

use crate::error::{Error, Result};
use crate::import::profile::Origin;
use crate::import::source::SourceFile;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The longest line read (its line ending not counted): longer ones are rejected unread. A
/// Segment call is a few KiB; the limit only bounds memory against hostile input.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Read-ahead of the file and of the decompressed stream: large enough that a syscall or a
/// decoder call is rare next to parsing the lines it brings.
const BUFFER_BYTES: usize = 256 << 10;

const BOM: &[u8] = b"\xef\xbb\xbf";

/// One non-blank line of a source.
#[derive(Debug)]
pub struct Line<'a> {
    pub origin: Origin,
    /// The line without its line ending, or why it cannot be read (the reject reason).
    pub text: std::result::Result<&'a str, String>,
}

/// The lines of one source file, in order. A lending reader: each line borrows the reader's
/// buffer until the next call, so reading costs no allocation per line.
pub struct Lines {
    input: Box<dyn BufRead + Send>,
    path: PathBuf,
    name: Arc<str>,
    gzip: bool,
    read: Arc<AtomicU64>,
    limit: usize,
    /// The physical line last read (0 before the first).
    line: u64,
    buf: Vec<u8>,
}

impl Lines {
    /// Opens `file` with the default limit, [`MAX_LINE_BYTES`].
    pub fn open(file: &SourceFile) -> Result<Lines> {
        Lines::with_limit(file, MAX_LINE_BYTES)
    }

    /// Opens `file`, rejecting lines longer than `limit` bytes.
    pub fn with_limit(file: &SourceFile, limit: usize) -> Result<Lines> {
        let (input, read) = open_input(file)?;
        Ok(Lines {
            input,
            path: file.path.clone(),
            name: file.name.clone(),
            gzip: file.gzip,
            read,
            limit,
            line: 0,
            buf: Vec::new(),
        })
    }

    /// Bytes of the file read so far (compressed bytes for gzip), for progress. Read-ahead
    /// makes it run a buffer ahead of the lines yielded.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The physical lines read so far, blank ones included.
    pub fn lines_read(&self) -> u64 {
        self.line
    }

    /// The next non-blank line, `None` at the end of the file, or an error that ends the file.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>> {
        // Finds the line's span in `buf` first and borrows it once found: a borrow returned
        // from inside the loop would hold `buf` across iterations.
        let (start, end) = loop {
            self.buf.clear();
            let line = self.line + 1;
            // Two bytes past the limit tell a line of exactly `limit` bytes and its `\r\n` from
            // a longer one.
            let cap = u64::try_from(self.limit)
                .unwrap_or(u64::MAX)
                .saturating_add(2);
            let read = (&mut self.input).take(cap).read_until(b'\n', &mut self.buf);
            let n = read.map_err(|e| self.read_error(line, e))?;
            if n == 0 {
                return Ok(None);
            }
            self.line = line;
            let mut end = self.buf.len();
            if self.buf.last() == Some(&b'\n') {
                end -= 1;
            } else if n as u64 == cap {
                let skipped = self.skip_line();
                skipped.map_err(|e| self.read_error(line, e))?;
            }
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if end > self.limit {
                let reason = format!("line is longer than {}", describe_bytes(self.limit));
                return Ok(Some(Line {
                    origin: self.origin(),
                    text: Err(reason),
                }));
            }
            let start = if line == 1 && self.buf[..end].starts_with(BOM) {
                BOM.len()
            } else {
                0
            };
            if !self.buf[start..end].iter().all(u8::is_ascii_whitespace) {
                break (start, end);
            }
        };
        let origin = self.origin();
        let text = std::str::from_utf8(&self.buf[start..end])
            .map_err(|e| format!("invalid UTF-8 at byte offset {}", e.valid_up_to()));
        Ok(Some(Line { origin, text }))
    }

    fn origin(&self) -> Origin {
        Origin {
            file: self.name.clone(),
            line: self.line,
        }
    }

    /// Consumes the rest of an over-long line, its newline included, holding none of it.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.input.consume(i + 1);
                    return Ok(());
                }
                None => {
                    let n = chunk.len();
                    self.input.consume(n);
                }
            }
        }
    }

    fn read_error(&self, line: u64, e: io::Error) -> Error {
        read_error(&self.path, self.gzip, line, e)
    }
}

/// An error reading `path` at `line`: a broken gzip stream is the file's data, anything else
/// is I/O.
fn read_error(path: &std::path::Path, gzip: bool, line: u64, e: io::Error) -> Error {
    let corrupt = matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    );
    if gzip && corrupt {
        Error::data(
            path,
            format!("corrupt or truncated gzip stream at line {line}: {e}"),
        )
    } else {
        Error::io(
            path,
            io::Error::new(e.kind(), format!("reading line {line}: {e}")),
        )
    }
}

/// `16 MiB` for whole mebibytes, else a byte count.
fn describe_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// Counts the bytes read from the file, for progress.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Input = (Box<dyn BufRead + Send>, Arc<AtomicU64>);

fn open_input(file: &SourceFile) -> Result<Input> {
    let f = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: f,
        read: read.clone(),
    };
    let input: Box<dyn BufRead + Send> = if file.gzip {
        let decoder = MultiGzDecoder::new(BufReader::with_capacity(BUFFER_BYTES, counting));
        Box::new(BufReader::with_capacity(BUFFER_BYTES, decoder))
    } else {
        Box::new(BufReader::with_capacity(BUFFER_BYTES, counting))
    };
    Ok((input, read))
}

/// The given physical lines of `file` (1-based, as in [`Origin::line`]), each as the bytes
/// before its `\n` (a `\r` kept), so the rejects file holds the line as it was written. Lines
/// past the end of the file are left out; a line longer than [`MAX_LINE_BYTES`] is cut there to
/// bound memory ([`visit_lines_at`] gives it whole).
pub fn read_lines_at(file: &SourceFile, lines: &[u64]) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    visit_lines_at(file, lines, |line, chunk| {
        if out.last().is_none_or(|(l, _)| *l != line) {
            out.push((line, Vec::new()));
        }
        if let Some((_, text)) = out.last_mut() {
            let room = MAX_LINE_BYTES.saturating_sub(text.len());
            text.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Streams the given physical lines of `file` to `f`, whole and in bounded memory whatever
/// their length: `f(line, chunk)` gets each line's bytes before its `\n` in one or more chunks,
/// in order (an empty line as one empty chunk). Errors of `f` end the visit and are returned.
pub fn visit_lines_at(
    file: &SourceFile,
    lines: &[u64],
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut wanted = lines.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut wanted = wanted.into_iter().peekable();
    let (mut input, _) = open_input(file)?;
    let mut line = 1u64;
    while let Some(&target) = wanted.peek() {
        if target < line {
            wanted.next();
            continue;
        }
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(&file.path, file.gzip, line, e)),
        };
        if chunk.is_empty() {
            break;
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        let end = newline.unwrap_or(chunk.len());
        if line == target {
            f(line, &chunk[..end])?;
        }
        input.consume(newline.map_or(end, |i| i + 1));
        if newline.is_some() {
            line += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::source::Format;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn source(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> SourceFile {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        SourceFile {
            path,
            name: name.into(),
            format: Format::JsonLines,
            gzip: name.ends_with(".gz"),
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Every line as `line: text` or `line! reason`.
    fn read_all(lines: &mut Lines) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(line) = lines.next_line()? {
            out.push(match line.text {
                Ok(text) => format!("{}: {text}", line.origin.line),
                Err(reason) => format!("{}! {reason}", line.origin.line),
            });
        }
        Ok(out)
    }

    fn all(file: &SourceFile) -> Vec<String> {
        read_all(&mut Lines::open(file).unwrap()).unwrap()
    }

    #[test]
    fn yields_non_blank_lines_with_physical_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let f = source(
            &dir,
            "a.jsonl",
            b"{\"a\":1}\r\n\n   \r\n\t\n{\"b\":2}\n{\"c\":3}",
        );
        assert_eq!(all(&f), ["1: {\"a\":1}", "5: {\"b\":2}", "6: {\"c\":3}"]);
        let f = source(&dir, "b.jsonl", b"x\n");
        assert_eq!(all(&f), ["1: x"]);
        let f = source(&dir, "empty.jsonl", b"");
        assert!(all(&f).is_empty());
    }

    #[test]
    fn origin_names_the_file_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let f = source(&dir, "calls.jsonl", b"\nx\n");
        let mut lines = Lines::open(&f).unwrap();
        let line = lines.next_line().unwrap().unwrap();
        assert_eq!(line.origin.to_string(), "calls.jsonl:2");
    }

    #[test]
    fn drops_a_byte_order_mark_on_the_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = source(&dir, "a.jsonl", b"\xef\xbb\xbf{}\n\xef\xbb\xbf{}\n");
        let got = all(&f);
        assert_eq!(got[0], "1: {}");
        assert_eq!(got[1], "2: \u{feff}{}");
    }

    #[test]
    fn over_long_lines_are_rejected_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let long = "y".repeat(100);
        let text = format!("{}\n{long}\nzzz\n{long}", "x".repeat(10));
        let f = source(&dir, "a.jsonl", text.as_bytes());
        let mut lines = Lines::with_limit(&f, 10).unwrap();
        assert_eq!(
            read_all(&mut lines).unwrap(),
            [
                "1: xxxxxxxxxx",
                "2! line is longer than 10 bytes",
                "3: zzz",
                "4! line is longer than 10 bytes"
            ]
        );
        // The buffer never held more than the limit and two bytes.
        assert!(lines.buf.capacity() < 64);
        assert_eq!(lines.lines_read(), 4);
    }

    #[test]
    fn the_default_limit_is_described_in_mib() {
        assert_eq!(describe_bytes(MAX_LINE_BYTES), "16 MiB");
        let dir = tempfile::tempdir().unwrap();
        let mut text = vec![b'x'; MAX_LINE_BYTES + 1];
        text.extend_from_slice(b"\n{}\n");
        let f = source(&dir, "big.jsonl", &text);
        assert_eq!(all(&f), ["1! line is longer than 16 MiB", "2: {}"]);
        // Exactly at the limit is fine, the line ending not counted.
        let mut text = vec![b'x'; MAX_LINE_BYTES];
        text.extend_from_slice(b"\r\n");
        let f = source(&dir, "limit.jsonl", &text);
        let mut lines = Lines::open(&f).unwrap();
        let line = lines.next_line().unwrap().unwrap();
        assert_eq!(line.text.map(str::len), Ok(MAX_LINE_BYTES));
    }

    #[test]
    fn invalid_utf8_is_rejected_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let f = source(&dir, "a.jsonl", b"{\"a\":\"\xff\"}\nok\n");
        assert_eq!(all(&f), ["1! invalid UTF-8 at byte offset 6", "2: ok"]);
    }

    #[test]
    fn reads_gzip_and_concatenated_members() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = gzip(b"{\"a\":1}\n\n");
        bytes.extend(gzip(b"{\"b\":2}\n"));
        let f = source(&dir, "a.jsonl.gz", &bytes);
        let mut lines = Lines::open(&f).unwrap();
        assert_eq!(
            read_all(&mut lines).unwrap(),
            ["1: {\"a\":1}", "3: {\"b\":2}"]
        );
        assert_eq!(lines.bytes_read(), bytes.len() as u64);
    }

    #[test]
    fn counts_bytes_of_a_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = source(&dir, "a.jsonl", b"one\ntwo\n");
        let mut lines = Lines::open(&f).unwrap();
        assert_eq!(lines.bytes_read(), 0);
        read_all(&mut lines).unwrap();
        assert_eq!(lines.bytes_read(), 8);
    }

    #[test]
    fn a_corrupt_gzip_stream_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (1..=20_000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let good = gzip(text.as_bytes());

        // Truncated: the lines before the cut are read, then an error.
        let f = source(&dir, "cut.jsonl.gz", &good[..good.len() / 2]);
        let mut lines = Lines::open(&f).unwrap();
        let mut n = 0;
        let err = loop {
            match lines.next_line() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("a truncated stream must not end quietly"),
                Err(e) => break e,
            }
        };
        let message = err.to_string();
        assert!(n > 0 && n < 20_000, "{n}");
        assert!(
            message.contains("cut.jsonl.gz")
                && message.contains(&format!(
                    "corrupt or truncated gzip stream at line {}",
                    n + 1
                )),
            "{message}"
        );

        // Garbled in the middle of the deflate data.
        let mut bad = good.clone();
        for b in &mut bad[good.len() / 3..good.len() / 3 + 64] {
            *b ^= 0x5a;
        }
        let f = source(&dir, "bad.jsonl.gz", &bad);
        let err = read_all(&mut Lines::open(&f).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err}");

        // Not gzip at all.
        let f = source(&dir, "plain.jsonl.gz", b"{\"a\":1}\n");
        let err = read_all(&mut Lines::open(&f).unwrap()).unwrap_err();
        assert!(err.to_string().contains("gzip stream at line 1"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = SourceFile {
            path: dir.path().join("none.jsonl"),
            name: "none.jsonl".into(),
            format: Format::JsonLines,
            gzip: false,
        };
        assert!(matches!(Lines::open(&f), Err(Error::Io { .. })));
    }

    #[test]
    fn reads_given_lines_again_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"one\r\n\ntwo\nthree";
        for f in [
            source(&dir, "a.jsonl", text),
            source(&dir, "a.jsonl.gz", &gzip(text)),
        ] {
            let got = read_lines_at(&f, &[4, 1, 2, 9, 1]).unwrap();
            let want: Vec<(u64, Vec<u8>)> =
                vec![(1, b"one\r".to_vec()), (2, vec![]), (4, b"three".to_vec())];
            assert_eq!(got, want);
            let mut out = Vec::new();
            visit_lines_at(&f, &[3, 4], |line, chunk| {
                out.push((line, chunk.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(out, [(3, b"two".to_vec()), (4, b"three".to_vec())]);
        }
        // A file ending in a newline has no empty line after it.
        let f = source(&dir, "b.jsonl", b"x\n");
        assert_eq!(read_lines_at(&f, &[2]).unwrap(), vec![]);
        assert!(read_lines_at(&f, &[]).unwrap().is_empty());
    }

    #[test]
    fn visits_long_lines_whole_across_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let long = "z".repeat(BUFFER_BYTES * 3 + 17);
        let text = format!("a\n{long}\nb\n");
        let f = source(&dir, "a.jsonl", text.as_bytes());
        let mut out: Vec<(u64, usize)> = Vec::new();
        visit_lines_at(&f, &[2, 3], |line, chunk| {
            out.push((line, chunk.len()));
            Ok(())
        })
        .unwrap();
        assert!(
            out.iter().filter(|(l, _)| *l == 2).count() > 1,
            "several chunks"
        );
        let total: usize = out.iter().filter(|(l, _)| *l == 2).map(|(_, n)| n).sum();
        assert_eq!(total, long.len());
        assert_eq!(out.last(), Some(&(3, 1)));
        let got = read_lines_at(&f, &[2]).unwrap();
        assert_eq!(got, vec![(2, long.into_bytes())]);
    }
}
