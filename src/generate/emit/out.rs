//! Gzipped JSON-lines files, compressed on worker threads. Lines are made on one thread (a
//! device's identity is sequential state), so compression is the work that runs in parallel: a
//! file's lines go in chunks to a thread of its own, and a few files (consecutive days) compress
//! at once while the next day is being made.

use crate::error::{Error, IoContext, Result};
use chrono::NaiveDate;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Bytes of lines handed to a compressor at once.
const CHUNK: usize = 1 << 20;
/// Chunks waiting per file: bounds the memory a slow disk can make the formatter fill.
const QUEUED: usize = 8;

/// The files being written under one directory.
pub struct Files {
    dir: PathBuf,
    max_running: usize,
    running: VecDeque<JoinHandle<Result<()>>>,
}

/// An open file: lines are buffered here and sent to its compressor a chunk at a time.
pub struct Sink {
    path: PathBuf,
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    pub lines: u64,
}

impl Files {
    /// Files under `dir` (created), at most `threads` compressing at once.
    pub fn new(dir: &Path, threads: usize) -> Result<Files> {
        std::fs::create_dir_all(dir).at(dir)?;
        Ok(Files {
            dir: dir.to_path_buf(),
            max_running: threads.max(1),
            running: VecDeque::new(),
        })
    }

    /// Creates `<dir>/<name>`; waits first for the oldest compressor when enough are running.
    pub fn create(&mut self, name: &str) -> Result<Sink> {
        while self.running.len() >= self.max_running {
            join(self.running.pop_front().expect("non-empty"))?;
        }
        let path = self.dir.join(name);
        let file = std::fs::File::create(&path).at(&path)?;
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUED);
        let at = path.clone();
        self.running.push_back(std::thread::spawn(move || {
            let mut gz = GzEncoder::new(
                std::io::BufWriter::with_capacity(CHUNK, file),
                Compression::fast(),
            );
            for chunk in rx {
                gz.write_all(&chunk).at(&at)?;
            }
            gz.finish().at(&at)?.flush().at(&at)
        }));
        Ok(Sink {
            path,
            tx,
            buf: Vec::with_capacity(CHUNK + 4096),
            lines: 0,
        })
    }

    /// Waits for every compressor; the first error any of them met.
    pub fn finish(mut self) -> Result<()> {
        let mut first = Ok(());
        while let Some(t) = self.running.pop_front() {
            if let Err(e) = join(t) {
                first = first.and(Err(e));
            }
        }
        first
    }
}

fn join(t: JoinHandle<Result<()>>) -> Result<()> {
    t.join()
        .unwrap_or_else(|_| Err(Error::Internal("a compressor thread panicked".into())))
}

impl Sink {
    /// Appends `line` and a newline.
    pub fn line(&mut self, line: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.lines += 1;
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
        // A compressor stops early only on an error, which `Files::finish` reports.
        self.tx.send(chunk).map_err(|_| {
            Error::io(
                &self.path,
                std::io::Error::other("its compressor stopped (see the error it reported)"),
            )
        })
    }

    /// Sends what is buffered; the compressor finishes the file once the sink is gone.
    pub fn close(mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// A series of one file per UTC day, `<prefix>-YYYY-MM-DD.jsonl.gz`, opened as lines of a new
/// day arrive (lines come in time order, so a day's file is complete when the next day begins).
pub struct Days {
    prefix: &'static str,
    open: Option<(NaiveDate, Sink)>,
    pub files: usize,
    pub lines: u64,
}

impl Days {
    pub fn new(prefix: &'static str) -> Days {
        Days {
            prefix,
            open: None,
            files: 0,
            lines: 0,
        }
    }

    pub fn line(&mut self, files: &mut Files, day: NaiveDate, line: &[u8]) -> Result<()> {
        if self.open.as_ref().is_none_or(|(d, _)| *d != day) {
            if self.open.as_ref().is_some_and(|(d, _)| *d > day) {
                // Reopening a day would truncate its file.
                return Err(Error::Internal(format!(
                    "emitted lines went back in time to {day}"
                )));
            }
            self.close()?;
            let sink = files.create(&format!("{}-{day}.jsonl.gz", self.prefix))?;
            self.files += 1;
            self.open = Some((day, sink));
        }
        let (_, sink) = self.open.as_mut().expect("opened above");
        self.lines += 1;
        sink.line(line)
    }

    pub fn close(&mut self) -> Result<()> {
        match self.open.take() {
            Some((_, sink)) => sink.close(),
            None => Ok(()),
        }
    }
}
