use super::output::print;
use super::{absolute_path, parse_time};
use crate::error::{Error, Result};
use crate::generate::emit::{self, EmitOptions, Format};
use crate::generate::{generate, GenerateOptions};
use crate::store::manifest::Partitioning;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store directory to write the snapshot into (created if missing).
    #[arg(long, value_parser = absolute_path)]
    out: PathBuf,
    /// Number of persons (identified and anonymous).
    #[arg(long, default_value_t = 1_000_000)]
    persons: usize,
    /// Days of event history before the as-of time.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Seed of every random draw: the same seed, persons, days and as-of give the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The snapshot's as-of time (default: today, 00:00 UTC). Same seed, persons, days and
    /// as-of give the same data.
    #[arg(long, value_parser = parse_time)]
    as_of: Option<DateTime<Utc>>,
    /// Time partitioning of event files: `day` for large histories, `month` for small stores.
    #[arg(long, value_enum, default_value_t = PartitionArg::Day)]
    partition: PartitionArg,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Skip the person activity summary (segments then always aggregate raw events).
    #[arg(long)]
    no_activity_summary: bool,
    /// Also write the published snapshot as import sources, to test `audience import` against:
    /// `segment-jsonl` (Segment-spec calls, DIR/segment/) or `infobip` (People export and
    /// People events, DIR/infobip/). Repeatable.
    #[arg(long, value_enum, requires = "emit_dir")]
    emit: Vec<EmitArg>,
    /// Directory for --emit's sources (created if missing; its segment/ or infobip/ must not
    /// exist yet).
    #[arg(long, value_parser = absolute_path, requires = "emit")]
    emit_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PartitionArg {
    Day,
    Month,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EmitArg {
    SegmentJsonl,
    Infobip,
}

impl EmitArg {
    fn format(self) -> Format {
        match self {
            EmitArg::SegmentJsonl => Format::SegmentJsonl,
            EmitArg::Infobip => Format::Infobip,
        }
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.persons == 0 {
        return Err(Error::Invalid("--persons must be at least 1".into()));
    }
    if !(1..=3660).contains(&args.days) {
        return Err(Error::Invalid("--days must be between 1 and 3660".into()));
    }
    if args.threads == Some(0) {
        return Err(Error::Invalid("--threads must be at least 1".into()));
    }
    let as_of = args.as_of.unwrap_or_else(|| {
        Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
    });
    if args.threads == Some(0) {
        return Err(crate::error::Error::Invalid(
            "--threads must be at least 1".into(),
        ));
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let opts = GenerateOptions {
        persons: args.persons,
        days: args.days,
        seed: args.seed,
        as_of,
        threads,
        progress: crate::base::progress::Progress::default(),
        activity_summary: !args.no_activity_summary,
        partitioning: match args.partition {
            PartitionArg::Day => Partitioning::Day,
            PartitionArg::Month => Partitioning::Month,
        },
    };
    let formats: Vec<Format> = args.emit.iter().map(|e| e.format()).collect();
    if let Some(dir) = &args.emit_dir {
        // Before the long part: a taken directory fails now, not after generating.
        emit::check_targets(dir, &formats)?;
    }
    let started = Instant::now();
    let shown = super::progress::show(&opts.progress);
    let g = generate(&args.out, &opts);
    drop(shown);
    let g = g?;
    for l in &g.removed {
        eprintln!(
            "removed {} ({} bytes), left by a writer that died",
            l.path.display(),
            l.bytes
        );
    }
    let c = &g.manifest.row_counts;
    eprintln!(
        "published snapshot {} in {:.1}s: {} persons, {} installations, {} events in {} files",
        g.snapshot_id,
        started.elapsed().as_secs_f64(),
        c.persons,
        c.installations,
        c.events,
        g.manifest.events.len()
    );
    if let Some(dir) = &args.emit_dir {
        let started = Instant::now();
        let snapshot = Store::open(&args.out)?.snapshot(Some(&g.snapshot_id))?;
        let eopts = EmitOptions {
            formats,
            threads,
            progress: opts.progress.clone(),
        };
        let shown = super::progress::show(&eopts.progress);
        let written = emit::emit(&snapshot, dir, &eopts);
        drop(shown);
        let written = written?;
        eprintln!("emitted in {:.1}s:", started.elapsed().as_secs_f64());
        for w in written {
            eprintln!(
                "  {}: {} lines in {} files under {}",
                w.format.name(),
                w.lines,
                w.files,
                w.dir.display()
            );
        }
    }
    print(format!("{}\n", g.snapshot_id).as_bytes())
}
