//! `audience trend`: a segment's audience at each as-of point from `--from` to `--to`, each
//! point on the snapshot that serves it, as a chart on a terminal or CSV / JSON.

use super::output::{self, print};
use super::segment::warned;
use super::values::TargetArg;
use super::{absolute_path, parse_time, tokio_runtime, Cli, StoreDir};
use crate::app::workspace::{trend, trend_points, trend_snapshots, Every, TrendPoint};
use crate::app::{SegmentSource, Segments, Workspace};
use crate::error::{Error, Result};
use crate::exec::{parse_size, Cluster, ClusterUrl, SessionOptions};
use crate::plan::Target;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrendFormat {
    /// One line a point with a bar (the default on a terminal).
    Chart,
    /// `as_of,count,snapshot_id`, a header line first (the default otherwise).
    Csv,
    /// One object: the target, the step and the points.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: String,
    #[command(flatten)]
    store: StoreDir,
    /// Count every point on this snapshot (default: each point on the newest snapshot at or
    /// before it, the earliest for points before every snapshot).
    #[arg(long)]
    snapshot: Option<String>,
    /// The first as-of point: a date or a time, as `--as-of` takes them.
    #[arg(long, value_parser = parse_time)]
    from: DateTime<Utc>,
    /// The last as-of point (included when a step lands on it).
    #[arg(long, value_parser = parse_time)]
    to: DateTime<Utc>,
    /// Time between points: 1d (daily) or 1w (weekly).
    #[arg(long, default_value = "1d", value_parser = parse_every)]
    every: Every,
    /// What the segment returns.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    /// Directory of saved segments (`name.seg`) for segment("name") and SEGMENT names
    /// (default: the store's segments/).
    #[arg(long, value_parser = absolute_path)]
    segments: Option<PathBuf>,
    /// DataFusion memory pool (e.g. 512MiB); operators spill to disk past it where they can.
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run on an Apache DataFusion Ballista cluster: its scheduler's df://HOST:PORT (builds with
    /// the `cluster` feature). Every node must see the store at the same path.
    #[arg(long, value_parser = ClusterUrl::parse, env = "AUDIENCE_CLUSTER")]
    cluster: Option<ClusterUrl>,
    /// Output format (default: a chart on a terminal, CSV otherwise).
    #[arg(long, value_enum)]
    format: Option<TrendFormat>,
    /// Print the plans of the trend's queries (one per snapshot serving points) with their run
    /// metrics, instead of the points.
    #[arg(long)]
    explain: bool,
    /// Print on stderr where the time went: opening the snapshots, and the queries (checking
    /// the segment included; one query per snapshot serving points).
    #[arg(long)]
    timings: bool,
}

fn parse_every(s: &str) -> Result<Every, String> {
    Every::parse(s).map_err(|e| e.to_string())
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    if args.threads == Some(0) {
        return Err(Error::Invalid("--threads must be at least 1".into()));
    }
    let opts = SessionOptions {
        threads: args.threads,
        memory_limit: args.memory_limit,
        cluster: args.cluster.clone().map_or(Cluster::Local, Cluster::Remote),
        runtime: None,
    };
    let dir = args.store.dir()?;
    let segments = match &args.segments {
        Some(d) => Segments::at(d.clone()),
        None => Segments::of_store(&dir),
    };
    let src = segments.read_arg(&args.segment)?;
    let points = trend_points(args.from, args.to, args.every)?;
    let target = args.target.map_or(Target::Installations, Target::from);
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        TrendFormat::Chart
    } else {
        TrendFormat::Csv
    });
    tokio_runtime()?.block_on(async {
        let started = Instant::now();
        let store = Store::open(&dir)?;
        output::warnings(store.warnings());
        let groups = trend_snapshots(&store, args.snapshot.as_deref(), &points)?;
        if args.explain {
            return explain(cli, &dir, &opts, &groups, &points, &src, &segments, target).await;
        }
        let opening = Mutex::new(Duration::ZERO);
        let open = |id: String| {
            let (dir, opts, opening) = (&dir, &opts, &opening);
            async move {
                let at = Instant::now();
                let w = Workspace::open(dir, Some(&id), opts).await.map(Box::new);
                if let Ok(mut d) = opening.lock() {
                    *d += at.elapsed();
                }
                w
            }
        };
        let t = trend(&groups, &points, &src, &segments.saved(), target, open).await?;
        warned(cli, &src, &t.warnings)?;
        if args.timings {
            let opened = opening.lock().map(|d| *d).unwrap_or_default();
            let total = started.elapsed();
            eprintln!(
                "timings: open_ms={:.1} query_ms={:.1} (points={}, snapshots={})",
                opened.as_secs_f64() * 1000.0,
                total.saturating_sub(opened).as_secs_f64() * 1000.0,
                points.len(),
                groups.len(),
            );
        }
        let text = match format {
            TrendFormat::Csv => csv(&t.points),
            TrendFormat::Json => {
                let out = serde_json::json!({
                    "target": target,
                    "every": args.every,
                    "points": t.points,
                    "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
                });
                format!("{out}\n")
            }
            TrendFormat::Chart => chart(&t.points, target, args.every),
        };
        print(text.as_bytes())
    })
}

/// The plans of each snapshot's query, run with metrics.
#[allow(clippy::too_many_arguments)]
async fn explain(
    cli: &Cli,
    dir: &std::path::Path,
    opts: &SessionOptions,
    groups: &[(String, Vec<usize>)],
    points: &[DateTime<Utc>],
    src: &SegmentSource,
    segments: &Segments,
    target: Target,
) -> Result<()> {
    let mut text = String::new();
    for (id, members) in groups {
        let w = Workspace::open(dir, Some(id), opts).await?;
        let typed = w.compile(src, &segments.saved())?;
        warned(cli, src, &typed.warnings)?;
        let at: Vec<DateTime<Utc>> = members.iter().map(|&k| points[k]).collect();
        let e = w.explain_trend(&typed, target, &at, true).await?;
        text.push_str(&format!(
            "== snapshot {id}: {} points, one query ==\n\n== logical plan (optimized) ==\n{}\n\n\
             == physical plan (with metrics) ==\n{}\n",
            at.len(),
            e.logical,
            e.physical
        ));
    }
    print(text.as_bytes())
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn csv(points: &[TrendPoint]) -> String {
    let mut out = String::from("as_of,count,snapshot_id\n");
    for p in points {
        out.push_str(&format!(
            "{},{},{}\n",
            time_text(p.as_of),
            p.count,
            p.snapshot_id
        ));
    }
    out
}

/// The width of the longest bar, in characters.
const BAR_WIDTH: usize = 40;

/// A bar of `n` out of `max` in eighths of a character, from zero.
fn bar(n: u64, max: u64) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if max == 0 {
        return String::new();
    }
    let eighths = ((n as u128 * (BAR_WIDTH as u128 * 8) + max as u128 / 2) / max as u128) as usize;
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTS[eighths % 8]);
    if s.is_empty() && n > 0 {
        s.push_str(PARTS[1]);
    }
    s
}

/// One line a point: its time (the day when every point is at midnight), a bar from zero and
/// the count; a line naming the snapshot wherever the serving snapshot changes.
fn chart(points: &[TrendPoint], target: Target, every: Every) -> String {
    let midnight = points
        .iter()
        .all(|p| p.as_of.time() == chrono::NaiveTime::MIN);
    let label = |t: DateTime<Utc>| {
        if midnight {
            t.format("%Y-%m-%d").to_string()
        } else {
            time_text(t)
        }
    };
    let max = points.iter().map(|p| p.count).max().unwrap_or(0);
    let digits = max.to_string().len();
    let several = points
        .windows(2)
        .any(|w| w[0].snapshot_id != w[1].snapshot_id);
    let mut out = match (points.first(), points.last()) {
        (Some(a), Some(b)) => format!(
            "{} from {} to {}, every {}\n",
            target.name(),
            label(a.as_of),
            label(b.as_of),
            every.name()
        ),
        _ => String::new(),
    };
    let mut shown: Option<&str> = None;
    for p in points {
        if several && shown != Some(p.snapshot_id.as_str()) {
            out.push_str(&format!("── snapshot {}\n", p.snapshot_id));
            shown = Some(&p.snapshot_id);
        }
        out.push_str(&format!(
            "{}  {:>digits$}  {}\n",
            label(p.as_of),
            p.count,
            bar(p.count, max)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_start_at_zero_and_the_largest_fills_the_width() {
        assert_eq!(bar(10, 10).chars().count(), BAR_WIDTH);
        assert_eq!(bar(5, 10).chars().count(), BAR_WIDTH / 2);
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(1, 1_000_000), "▏", "a count above zero shows");
        assert_eq!(bar(0, 0), "");
    }

    #[test]
    fn a_chart_has_a_line_a_point_and_names_snapshots_where_they_change() {
        let p = |day: u32, count: u64, id: &str| TrendPoint {
            as_of: format!("2026-10-{day:02}T00:00:00Z").parse().unwrap(),
            count,
            snapshot_id: id.into(),
        };
        let text = chart(
            &[p(1, 5, "a"), p(2, 10, "a"), p(3, 0, "b")],
            Target::Persons,
            Every::Day,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "persons from 2026-10-01 to 2026-10-03, every 1d");
        assert_eq!(lines[1], "── snapshot a");
        assert!(lines[2].starts_with("2026-10-01   5  ███"), "{text}");
        assert_eq!(lines[3].chars().filter(|c| *c == '█').count(), BAR_WIDTH);
        assert_eq!(lines[4], "── snapshot b");
        assert_eq!(lines[5], "2026-10-03   0  ");
    }
}
