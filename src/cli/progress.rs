//! Showing the progress of long work on stderr: a bar on a terminal, and where stderr is a log
//! (a file, a pipe, a CI job), a plain line every few seconds.

use crate::base::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shows `progress` until dropped.
pub struct Shown {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Time between the plain lines of a log: `$AUDIENCE_PROGRESS_SECONDS`, else 10 s.
fn line_every() -> Duration {
    let secs = std::env::var("AUDIENCE_PROGRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs)
}

pub fn show(progress: &Progress) -> Shown {
    let stop = Arc::new(AtomicBool::new(false));
    let (p, halt) = (progress.clone(), stop.clone());
    let terminal = std::io::stderr().is_terminal();
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let bar = terminal.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} {bar:30} {human_pos}/{human_len} {elapsed_precise} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        let every = line_every();
        let mut last_line = Instant::now();
        while !halt.load(Ordering::Relaxed) {
            let (what, done, total) = p.get();
            match &bar {
                Some(b) => {
                    b.set_message(what);
                    b.set_length(total);
                    b.set_position(done);
                }
                None if last_line.elapsed() >= every => {
                    let of = if total > 0 {
                        format!(" of {total}")
                    } else {
                        String::new()
                    };
                    eprintln!("{what}: {done}{of} after {}s", started.elapsed().as_secs());
                    last_line = Instant::now();
                }
                None => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    });
    Shown {
        stop,
        thread: Some(thread),
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
