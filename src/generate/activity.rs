//! Generates one UTC day of events for every installation, and writes one file per event.
//!
//! Days are independent (every random draw is keyed by device and day), so days run in parallel
//! and only one day's events are ever in memory.

use super::rng::{hash, poisson_from_unit, unit, Rng};
use super::vocab;
use super::world::{World, MICROS_PER_DAY, MICROS_PER_SEC, NEVER};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::store::manifest::EventFile;
use crate::store::manifest::Partitioning;
use crate::store::publish::Staging;
use crate::store::{derived, schema};
use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use chrono::NaiveDate;
use std::ops::Range;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

/// AppLaunch is only recorded when the device's previous AppLaunch is more than 30 s earlier.
pub const APP_LAUNCH_GAP: i64 = 30 * MICROS_PER_SEC;
/// Sessions start at least this long after midnight, so the 30-second rule also holds across
/// day boundaries without carrying state from one day to the next.
const DAY_LEAD: i64 = APP_LAUNCH_GAP + MICROS_PER_SEC;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(usize)]
enum Kind {
    Install,
    Uninstall,
    Personalize,
    Depersonalize,
    AppLaunch,
    Purchase,
    AddToCart,
    ViewProduct,
}

const KINDS: [Kind; 8] = [
    Kind::Install,
    Kind::Uninstall,
    Kind::Personalize,
    Kind::Depersonalize,
    Kind::AppLaunch,
    Kind::Purchase,
    Kind::AddToCart,
    Kind::ViewProduct,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Install => "Install",
            Kind::Uninstall => "Uninstall",
            Kind::Personalize => "Personalize",
            Kind::Depersonalize => "Depersonalize",
            Kind::AppLaunch => "AppLaunch",
            Kind::Purchase => "Purchase",
            Kind::AddToCart => "AddToCart",
            Kind::ViewProduct => "ViewProduct",
        }
    }
}

/// One event before it becomes columns; `num`, `a`, `b` hold the event's properties.
#[derive(Clone, Copy)]
struct Row {
    person: i64,
    time: i64,
    device: i64,
    num: f64,
    a: u32,
    b: u32,
}

/// What the events teach the tables: when each device was last seen, when each person last bought.
pub struct Trackers {
    pub last_seen: Vec<AtomicI64>,
    pub last_purchase_day: Vec<AtomicI32>,
}

impl Trackers {
    pub fn new(devices: usize, persons: usize) -> Trackers {
        Trackers {
            last_seen: (0..devices).map(|_| AtomicI64::new(i64::MIN)).collect(),
            last_purchase_day: (0..persons).map(|_| AtomicI32::new(i32::MIN)).collect(),
        }
    }
}

pub struct DayContext<'a> {
    pub world: &'a World,
    pub catalog: &'a Catalog,
    pub staging: &'a Staging,
    pub trackers: &'a Trackers,
    /// Midnight (UTC) of the first day.
    pub first_midnight: i64,
    pub partitioning: Partitioning,
}

/// Generates days `days` (0 = the day of `history_start`) and writes them as the files of the
/// partition period starting on `period`.
pub fn write_period(
    ctx: &DayContext,
    days: Range<usize>,
    period: NaiveDate,
) -> Result<Vec<EventFile>> {
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(); KINDS.len()];
    let mut launches = Vec::new();
    for day in days {
        generate_day(ctx, day, &mut rows, &mut launches);
    }
    write_files(ctx, period, rows)
}

fn generate_day(ctx: &DayContext, day: usize, rows: &mut [Vec<Row>], launches: &mut Vec<i64>) {
    let w = ctx.world;
    let day_start = (ctx.first_midnight + day as i64 * MICROS_PER_DAY).max(w.start);
    let day_end = (ctx.first_midnight + (day as i64 + 1) * MICROS_PER_DAY).min(w.as_of);
    for (id, d) in w.devices.iter().enumerate() {
        let in_day = |t: i64| t != NEVER && t >= day_start && t < day_end;
        for (kind, t) in [
            (Kind::Install, d.installed_at),
            (Kind::Personalize, d.personalized_at),
            (Kind::Depersonalize, d.depersonalized_at),
            (Kind::Uninstall, d.uninstalled_at),
        ] {
            // Depersonalize still belongs to the person the device leaves.
            let t_owner = if kind == Kind::Depersonalize {
                t - 1
            } else {
                t
            };
            if in_day(t) {
                rows[kind as usize].push(Row {
                    person: d.owner_at(t_owner) as i64,
                    time: t,
                    device: id as i64,
                    num: 0.0,
                    a: 0,
                    b: 0,
                });
            }
        }
        let mut emit = |kind: Kind, t: i64, num: f64, a: u32, b: u32| {
            rows[kind as usize].push(Row {
                person: d.owner_at(t) as i64,
                time: t,
                device: id as i64,
                num,
                a,
                b,
            });
        };
        let lo = day_start.max(d.installed_at + MICROS_PER_SEC);
        let hi = day_end.min(d.alive_until(w.as_of));
        if lo >= hi {
            continue;
        }
        let lambda = d.rate as f64 * (hi - lo) as f64 / MICROS_PER_DAY as f64;
        let sessions = poisson_from_unit(lambda, unit(hash(w.seed, &[id as u64, day as u64, 1])));
        let install_day = in_day(d.installed_at);
        if sessions == 0 && !install_day {
            continue;
        }
        let mut rng = Rng::new(w.seed, &[id as u64, day as u64, 2]);
        launches.clear();
        if install_day {
            let t = d.installed_at + rng.range(5, 60) * MICROS_PER_SEC;
            if t < hi {
                launches.push(t);
            }
        }
        let owner_country = |t: i64| w.persons[d.owner_at(t) as usize].country;
        let taste =
            (hash(w.seed, &[d.owner_before as u64, 3]) % vocab::CATEGORIES.len() as u64) as u32;
        for _ in 0..sessions {
            let mut t = rng.range(lo.max(day_start + DAY_LEAD), hi);
            if t >= hi {
                continue;
            }
            launches.push(t);
            let mut cart = 0.0;
            while rng.chance(0.45) {
                t += rng.range(5, 120) * MICROS_PER_SEC;
                if t >= hi {
                    break;
                }
                let category = if rng.chance(0.5) {
                    taste
                } else {
                    rng.weighted(&weights(vocab::CATEGORIES)) as u32
                };
                emit(Kind::ViewProduct, t, 0.0, category, 0);
                if rng.chance(0.12) {
                    t += rng.range(10, 60) * MICROS_PER_SEC;
                    if t >= hi {
                        break;
                    }
                    let price = (rng.lognormal(24.0, 0.9) * 100.0).round() / 100.0;
                    let sku = (rng.f64().powi(3) * 20_000.0) as u32;
                    emit(Kind::AddToCart, t, price, sku, 0);
                    cart += price;
                }
            }
            if cart > 0.0 && rng.chance(0.35) {
                t += rng.range(30, 300) * MICROS_PER_SEC;
                if t < hi {
                    let amount = (cart * (0.8 + 0.4 * rng.f64()) * 100.0).round() / 100.0;
                    let category = if rng.chance(0.6) {
                        taste
                    } else {
                        rng.weighted(&weights(vocab::CATEGORIES)) as u32
                    };
                    emit(Kind::Purchase, t, amount, category, owner_country(t) as u32);
                    let owner = d.owner_at(t) as usize;
                    if w.persons[owner].identified {
                        let day_no = (t.div_euclid(MICROS_PER_DAY)) as i32;
                        ctx.trackers.last_purchase_day[owner].fetch_max(day_no, Ordering::Relaxed);
                    }
                }
            }
        }
        launches.sort_unstable();
        let mut previous = i64::MIN;
        for &t in launches.iter() {
            if previous == i64::MIN || t - previous > APP_LAUNCH_GAP {
                emit(Kind::AppLaunch, t, 0.0, 0, 0);
                previous = t;
            }
        }
        // Being seen means the app ran: every event of this device today but an Uninstall.
        let seen = KINDS
            .iter()
            .filter(|k| **k != Kind::Uninstall)
            .flat_map(|k| {
                rows[*k as usize]
                    .iter()
                    .rev()
                    .take_while(|x| x.device == id as i64)
            })
            .map(|r| r.time)
            .max();
        if let Some(seen) = seen {
            ctx.trackers.last_seen[id].fetch_max(seen, Ordering::Relaxed);
        }
    }
}

fn weights<T>(table: &[(T, f64)]) -> Vec<f64> {
    table.iter().map(|x| x.1).collect()
}

fn write_files(
    ctx: &DayContext,
    period: NaiveDate,
    mut rows: Vec<Vec<Row>>,
) -> Result<Vec<EventFile>> {
    let column = ctx.partitioning.column();
    let mut files = Vec::new();
    for kind in KINDS {
        let rows = &mut rows[kind as usize];
        if rows.is_empty() {
            continue;
        }
        rows.sort_unstable_by_key(|r| (r.person, r.time, r.device));
        let def = ctx
            .catalog
            .event(kind.name())
            .expect("the generator's catalog declares its events");
        let schema = schema::event_schema(def);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.time))
                    .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.person))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.device))),
        ];
        let category = |r: &Row| vocab::CATEGORIES[r.a as usize].0;
        match kind {
            Kind::Purchase => {
                columns.push(Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.num),
                )));
                columns.push(Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| vocab::COUNTRIES[r.b as usize].currency),
                )));
                columns.push(Arc::new(StringArray::from_iter_values(
                    rows.iter().map(category),
                )));
            }
            Kind::AddToCart => {
                columns.push(Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| format!("SKU-{:05}", r.a)),
                )));
                columns.push(Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.num),
                )));
            }
            Kind::ViewProduct => columns.push(Arc::new(StringArray::from_iter_values(
                rows.iter().map(category),
            ))),
            _ => {}
        }
        let batch = RecordBatch::try_new(derived::without_derived(&schema), columns)?;
        let batch = derived::complete(&batch, &schema)?;
        let rel = format!("events/event={}/{column}={period}/part-0.parquet", def.name);
        let mut writer = ctx.staging.parquet_writer(&rel, schema, &[1, 0])?;
        writer.write(&batch)?;
        files.push(EventFile {
            event: def.name.clone(),
            period,
            file: writer.finish()?,
        });
    }
    Ok(files)
}
