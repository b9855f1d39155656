//! The generator: realistic, deterministic snapshots at any scale.
//!
//! 1. `world` plans persons, installations and lifecycles (all in memory, small per person);
//! 2. `activity` streams the history day by day, in parallel, one Parquet file per event and day;
//! 3. `tables` writes persons and installations, using what the history taught (last seen, last
//!    purchase);
//! 4. the snapshot is published atomically;
//! 5. on request, `emit` writes the published snapshot again as import sources (Segment-spec
//!    JSON lines, an Infobip People export), the known answer an import is tested against.

mod activity;
pub mod emit;
mod rng;
mod tables;
mod vocab;
mod world;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::store::manifest::{
    DataFile, EventFile, Manifest, Partitioning, RowCounts, FORMAT_VERSION,
};
use crate::store::publish::Staging;
use activity::{DayContext, Trackers};
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use world::{World, MICROS_PER_DAY};

pub use activity::APP_LAUNCH_GAP;

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub persons: usize,
    pub days: u32,
    pub seed: u64,
    pub as_of: DateTime<Utc>,
    pub threads: usize,
    /// Advanced by days of history written (then by the summary's passes).
    pub progress: crate::base::progress::Progress,
    pub partitioning: Partitioning,
    /// Write the person activity summary (`store::summary`) with the snapshot.
    pub activity_summary: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Generated {
    pub snapshot_id: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Leftovers of dead writers removed from the store's staging area on the way.
    pub removed: Vec<crate::store::gc::Leftover>,
}

/// Generates a snapshot into the store at `out` (created if missing) and publishes it.
pub fn generate(out: &Path, opts: &GenerateOptions) -> Result<Generated> {
    if opts.persons == 0 {
        return Err(Error::Invalid(
            "a snapshot needs at least one person".into(),
        ));
    }
    if opts.days == 0 || opts.days > 3660 {
        return Err(Error::Invalid(
            "the history must be 1 to 3660 days long".into(),
        ));
    }
    let catalog = Catalog::sample();
    let as_of = opts.as_of.timestamp_micros();
    let start = as_of - opts.days as i64 * MICROS_PER_DAY;
    let world = World::plan(opts.seed, opts.persons, start, as_of);
    let staging = Staging::begin(out, Utc::now())?;
    let removed = staging.swept().to_vec();
    match write(&staging, &world, catalog, opts, start) {
        Ok(mut manifest) => {
            let snapshot_id = manifest.snapshot_id.clone();
            let dir = staging.publish(&mut manifest)?;
            Ok(Generated {
                snapshot_id,
                dir,
                manifest,
                removed,
            })
        }
        Err(e) => {
            // A failed write removes its own staging directory (a killed one is removed by the
            // next writer, or `audience gc`).
            staging.abandon();
            Err(e)
        }
    }
}

/// Writes the snapshot's files into `staging` and returns its manifest, not yet published.
fn write(
    staging: &Staging,
    world: &World,
    catalog: Catalog,
    opts: &GenerateOptions,
    start: i64,
) -> Result<Manifest> {
    let as_of = opts.as_of.timestamp_micros();

    let first_midnight = start.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY;
    let day_count = ((as_of - 1 - first_midnight).div_euclid(MICROS_PER_DAY) + 1) as usize;
    let periods = periods(opts.partitioning, first_midnight, day_count);
    let trackers = Trackers::new(world.devices.len(), world.persons.len());
    let ctx = DayContext {
        world,
        catalog: &catalog,
        staging,
        trackers: &trackers,
        first_midnight,
        partitioning: opts.partitioning,
    };
    let bar = &opts.progress;
    bar.restart("generating events (days)", day_count as u64);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<EventFile>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= periods.len() || failure.lock().unwrap().is_some() {
                    break;
                }
                let (start, days) = periods[i].clone();
                let n = days.len() as u64;
                match activity::write_period(&ctx, days, start) {
                    Ok(files) => results.lock().unwrap().extend(files),
                    Err(e) => {
                        failure.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
                bar.add(n);
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let mut events = results.into_inner().unwrap();
    events.sort_by(|a, b| (&a.event, a.period).cmp(&(&b.event, b.period)));

    let persons = write_table(
        staging,
        "persons.parquet",
        &tables::persons_batches(world, &catalog, &trackers)?,
        &[0],
    )?;
    let installations = write_table(
        staging,
        "installations.parquet",
        &tables::installations_batches(world, &catalog, &trackers)?,
        &[2, 0],
    )?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        snapshot_id: staging.id().to_string(),
        published_seq: None,
        parent: None,
        as_of: opts.as_of,
        history_start: DateTime::from_timestamp_micros(start).expect("in range"),
        created_at: Utc::now(),
        row_counts: RowCounts {
            persons: persons.rows,
            installations: installations.rows,
            events: events.iter().map(|e| e.file.rows).sum(),
        },
        catalog,
        persons: vec![persons],
        installations: vec![installations],
        event_roots: vec![staging.store_path("events")],
        partitioning: opts.partitioning,
        events,
        person_activity: None,
        activity_columns: Default::default(),
        activity_days: None,
        provenance: Some(serde_json::json!({
            "generator": "audience generate",
            "persons": opts.persons,
            "days": opts.days,
            "seed": opts.seed,
            "as_of": opts.as_of,
            "partitioning": opts.partitioning,
        })),
        import_state: None,
    };
    let mut manifest = manifest;
    if opts.activity_summary {
        crate::store::summarize::build(staging, &mut manifest, opts.threads)?;
    }
    crate::store::values::collect(staging, &mut manifest, opts.threads)?;
    Ok(manifest)
}

fn write_table(
    staging: &Staging,
    rel: &str,
    batches: &[arrow::array::RecordBatch],
    sorted_by: &[usize],
) -> Result<DataFile> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .expect("a table has at least one batch");
    let mut w = staging.parquet_writer(rel, schema, sorted_by)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

/// The partition periods covering days `0..day_count`: (first day of the period, day indices).
fn periods(
    p: Partitioning,
    first_midnight: i64,
    day_count: usize,
) -> Vec<(NaiveDate, Range<usize>)> {
    let date = |i: usize| {
        chrono::DateTime::from_timestamp_micros(first_midnight + i as i64 * MICROS_PER_DAY)
            .expect("in range")
            .date_naive()
    };
    let mut out: Vec<(NaiveDate, Range<usize>)> = Vec::new();
    for i in 0..day_count {
        let start = p.period_start(date(i));
        match out.last_mut() {
            Some((s, range)) if *s == start => range.end = i + 1,
            _ => out.push((start, i..i + 1)),
        }
    }
    out
}
