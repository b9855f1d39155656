//! Writes a replay's result as a snapshot: the catalog grown with what the data declared, the
//! persons and installations tables, the new events, and the parent's event history.
//!
//! The parent's event files are hard-linked into the new snapshot (no byte is copied), so every
//! snapshot's history lies under its own event root and stays whole when older snapshots are
//! removed. A parent file holding events of a person the import merged away is rewritten with
//! the surviving person's id instead of being linked: a personalized device's anonymous history
//! belongs to the identified person in every table segments read.

use super::profile::{EventTable, InstallationRow, PersonRow, Profiles, Value, ValueType as Type};
use super::state::catalog_type;
use crate::catalog::{
    self, snake_case, AttributeDef, Catalog, Entity, EventDef, PropertyDef, ValueType, VersionKey,
};
use crate::error::{Error, IoContext, Result};
use crate::store::manifest::{DataFile, EventFile, Manifest, Partitioning};
use crate::store::publish::Staging;
use crate::store::{derived, schema};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, ListBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampMicrosecondArray,
};
use chrono::{DateTime, NaiveDate};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Rows per batch handed to the Parquet writer.
const CHUNK: usize = 64 * 1024;

/// A new custom string is stored as a dictionary when it takes at most this many values in
/// the imported data (an enumeration: a theme, a channel), as the generator's are.
const DICTIONARY_VALUES: usize = 256;

/// The parent's catalog (or the standard one) with the attributes, events and properties the
/// replay learned added, typed as learned.
pub fn grow_catalog(parent: Option<&Catalog>, profiles: &Profiles) -> Catalog {
    let mut catalog = parent
        .cloned()
        .unwrap_or_else(|| Catalog::with_custom(&[], &[], &[]));
    let learned = &profiles.report.new_catalog;
    let person_values = |name: &str| {
        distinct_strings(
            profiles
                .persons
                .iter()
                .map(|p| p.attributes.custom.get(name)),
        )
    };
    let installation_values = |name: &str| {
        distinct_strings(
            profiles
                .installations
                .iter()
                .map(|i| i.data.custom.get(name)),
        )
    };
    for (name, ty) in &learned.person {
        let few = person_values(name) <= DICTIONARY_VALUES;
        add_attribute(&mut catalog, Entity::Person, name, *ty, few);
    }
    for (name, ty) in &learned.installation {
        let few = installation_values(name) <= DICTIONARY_VALUES;
        add_attribute(&mut catalog, Entity::Installation, name, *ty, few);
    }
    for (event, properties) in &learned.events {
        if catalog.events.iter().all(|e| e.name != *event) {
            catalog.events.push(EventDef {
                name: event.clone(),
                standard: false,
                properties: vec![],
            });
        }
        let table = profiles.events.iter().find(|t| t.event == *event);
        let def = catalog
            .events
            .iter_mut()
            .find(|e| e.name == *event)
            .expect("just added");
        for (name, ty) in properties {
            if def.properties.iter().any(|p| p.name == *name) {
                continue;
            }
            let few = table.is_some_and(|t| {
                let pos = t.properties.iter().position(|(n, _)| n == name);
                pos.is_some_and(|pos| {
                    distinct_strings(t.rows.iter().map(|r| Some(r.value(pos)))) <= DICTIONARY_VALUES
                })
            });
            let taken: HashSet<&str> = def
                .properties
                .iter()
                .map(|p| p.column.as_str())
                .chain([
                    catalog::EVENT_TIME,
                    catalog::PERSON_ID,
                    catalog::INSTALLATION_ID,
                ])
                .collect();
            let column = free_column(&snake_case(name), &taken);
            let ty = catalog_type(*ty);
            def.properties.push(PropertyDef {
                name: name.clone(),
                column,
                ty,
                dictionary: ty == ValueType::String && few,
                values: None,
            });
        }
    }
    catalog
}

/// Distinct strings among `values`, counting no further than past the dictionary limit.
fn distinct_strings<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> usize {
    let mut seen: HashSet<&str> = HashSet::new();
    for v in values {
        if let Some(Value::Str(s)) = v {
            seen.insert(s);
            if seen.len() > DICTIONARY_VALUES {
                break;
            }
        }
    }
    seen.len()
}

/// `base`, or `base_2`, `base_3`… when a column of that name exists (`a.b` and `a_b` are two
/// names but one snake_case column).
fn free_column(base: &str, taken: &HashSet<&str>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|c| !taken.contains(c.as_str()))
        .expect("some suffix is free")
}

fn add_attribute(catalog: &mut Catalog, entity: Entity, name: &str, ty: Type, few: bool) {
    let attrs = match entity {
        Entity::Person => &mut catalog.person,
        Entity::Installation => &mut catalog.installation,
    };
    if attrs.iter().any(|a| a.custom && a.name == name) {
        return;
    }
    let taken: HashSet<&str> = attrs.iter().map(|a| a.column.as_str()).collect();
    let column = free_column(&format!("custom_{}", snake_case(name)), &taken);
    let ty = catalog_type(ty);
    attrs.push(AttributeDef {
        name: name.to_string(),
        column,
        ty,
        custom: true,
        nullable: true,
        aliases: vec![],
        sort_key: (ty == ValueType::Version).then_some(VersionKey::Int64),
        length_column: ty == ValueType::StringList,
        dictionary: ty == ValueType::String && few,
        values: None,
    });
}

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

/// One attribute's cell of one row.
enum Cell<'a> {
    Str(Option<&'a str>),
    Int(i64),
    Bool(Option<bool>),
    Date(Option<NaiveDate>),
    Time(Option<i64>),
    List(&'a [String]),
    Value(&'a Value),
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The column of `field` (of catalog type `ty`) over `rows`, each row's cell given by `cell`.
fn build<'a, R: 'a>(
    field: &arrow::datatypes::Field,
    ty: Option<ValueType>,
    rows: &'a [R],
    cell: impl Fn(&'a R) -> Cell<'a>,
) -> Result<ArrayRef> {
    use arrow::datatypes::DataType as D;
    let wrong = |c: &str| {
        Error::Internal(format!(
            "column `{}` ({}) got a {c} cell",
            field.name(),
            field.data_type()
        ))
    };
    let value_str = |v: &'a Value| match v {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    };
    Ok(match field.data_type() {
        D::Utf8 | D::Dictionary(..) => {
            let mut out: Vec<Option<&str>> = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(match cell(r) {
                    Cell::Str(s) => s,
                    Cell::Value(v) => value_str(v),
                    _ => return Err(wrong("non-text")),
                });
            }
            Arc::new(StringArray::from(out))
        }
        D::Int64 => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                match cell(r) {
                    Cell::Int(v) => out.push(v),
                    _ => return Err(wrong("non-key")),
                }
            }
            Arc::new(Int64Array::from(out))
        }
        D::Float64 => Arc::new(Float64Array::from_iter(rows.iter().map(|r| {
            match cell(r) {
                Cell::Value(Value::Num(n)) => Some(*n),
                _ => None,
            }
        }))),
        D::Boolean => Arc::new(BooleanArray::from_iter(rows.iter().map(|r| {
            match cell(r) {
                Cell::Bool(b) => b,
                Cell::Value(Value::Bool(b)) => Some(*b),
                _ => None,
            }
        }))),
        D::Date32 => Arc::new(Date32Array::from_iter(rows.iter().map(|r| match cell(r) {
            Cell::Date(d) => d.map(days),
            Cell::Value(Value::Date(d)) => Some(days(*d)),
            _ => None,
        }))),
        D::Timestamp(..) => Arc::new(
            TimestampMicrosecondArray::from_iter(rows.iter().map(|r| match cell(r) {
                Cell::Time(t) => t,
                Cell::Int(t) => Some(t),
                Cell::Value(Value::Time(t)) => Some(*t),
                _ => None,
            }))
            .with_timezone("UTC"),
        ),
        D::List(_) => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for r in rows {
                let items: Option<&[String]> = match cell(r) {
                    Cell::List(items) => Some(items).filter(|i| !i.is_empty()),
                    Cell::Value(Value::List(items)) => Some(items.as_slice()),
                    _ => None,
                };
                match items {
                    Some(items) => {
                        for item in items {
                            b.values().append_value(item);
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        other => {
            let _ = ty;
            return Err(Error::Internal(format!(
                "the import cannot write a {other} column (`{}`)",
                field.name()
            )));
        }
    })
}

fn person_cell<'a>(a: &'a AttributeDef, p: &'a PersonRow) -> Cell<'a> {
    let at = &p.attributes;
    if a.custom {
        return Cell::Value(at.custom.get(&a.name).unwrap_or(&Value::Null));
    }
    match a.column.as_str() {
        catalog::PERSON_ID => Cell::Int(p.person_id),
        "identified" => Cell::Bool(Some(p.identified)),
        "external_user_id" => Cell::Str(p.external_user_id.as_deref()),
        "emails" => Cell::List(&p.emails),
        "phones" => Cell::List(&p.phones),
        "first_name" => Cell::Str(at.first_name.as_deref()),
        "last_name" => Cell::Str(at.last_name.as_deref()),
        "gender" => Cell::Str(at.gender.as_deref()),
        "birth_date" => Cell::Date(at.birth_date),
        "country" => Cell::Str(at.country.as_deref()),
        "city" => Cell::Str(at.city.as_deref()),
        "preferred_language" => Cell::Str(at.preferred_language.as_deref()),
        "tags" => Cell::List(&at.tags),
        "created_at" => Cell::Time(Some(p.created_at)),
        "modified_at" => Cell::Time(Some(p.modified_at)),
        _ => Cell::Value(&Value::Null),
    }
}

fn installation_cell<'a>(a: &'a AttributeDef, i: &'a InstallationRow) -> Cell<'a> {
    let d = &i.data;
    if a.custom {
        return Cell::Value(d.custom.get(&a.name).unwrap_or(&Value::Null));
    }
    // Flags the data never reported take the SDK's defaults: registered for everything but
    // geofencing, notifications only with a push token, a device not known to be secure.
    let has_token = i.token.is_some();
    match a.column.as_str() {
        catalog::INSTALLATION_ID => Cell::Int(i.installation_id),
        "push_registration_id" => Cell::Str(Some(&i.push_registration_id)),
        "state" => Cell::Str(Some(i.state.as_str())),
        "platform" => Cell::Str(Some(d.platform.as_deref().unwrap_or("Android"))),
        "sdk_version" => Cell::Str(d.sdk_version.as_deref()),
        "os_version" => Cell::Str(d.os_version.as_deref()),
        "device_manufacturer" => Cell::Str(d.device_manufacturer.as_deref()),
        "device_model" => Cell::Str(d.device_model.as_deref()),
        "application_version" => Cell::Str(d.application_version.as_deref()),
        "os_language" => Cell::Str(d.os_language.as_deref()),
        "push_registration_enabled" => Cell::Bool(Some(i.push_registration_enabled)),
        "registrations_enabled" => Cell::Bool(Some(d.registrations_enabled.unwrap_or(true))),
        "notifications_enabled" => Cell::Bool(Some(d.notifications_enabled.unwrap_or(has_token))),
        "geofencing_enabled" => Cell::Bool(Some(d.geofencing_enabled.unwrap_or(false))),
        "device_secure" => Cell::Bool(Some(d.device_secure.unwrap_or(false))),
        "primary_device" => Cell::Bool(Some(i.primary_device)),
        "installed_at" => Cell::Time(Some(i.installed_at)),
        "last_seen_at" => Cell::Time(Some(i.last_seen_at)),
        "uninstalled_at" => Cell::Time(i.uninstalled_at),
        _ => Cell::Value(&Value::Null),
    }
}

/// Where a table goes: its file in the staging area, its stored schema, its sort columns.
struct TableOut<'a> {
    rel: &'a str,
    stored: &'a arrow::datatypes::SchemaRef,
    sorted_by: &'a [usize],
}

/// Writes `rows` as the table `out`, columns by the catalog's attributes.
fn write_rows<R>(
    staging: &Staging,
    out: TableOut<'_>,
    attrs: &[AttributeDef],
    rows: &[R],
    cell: impl for<'a> Fn(&'a AttributeDef, &'a R) -> Cell<'a>,
    person_of: Option<fn(&R) -> i64>,
) -> Result<DataFile> {
    let TableOut {
        rel,
        stored,
        sorted_by,
    } = out;
    let supplied = derived::without_derived(stored);
    let mut w = staging.parquet_writer(rel, stored.clone(), sorted_by)?;
    for chunk in rows.chunks(CHUNK) {
        let columns = supplied
            .fields()
            .iter()
            .map(|f| {
                if f.name() == catalog::PERSON_ID && attrs.iter().all(|a| a.column != *f.name()) {
                    let person_of = person_of.expect("only installations carry a person");
                    return Ok(
                        Arc::new(Int64Array::from_iter_values(chunk.iter().map(person_of)))
                            as ArrayRef,
                    );
                }
                let a = attrs
                    .iter()
                    .find(|a| a.column == *f.name())
                    .ok_or_else(|| {
                        Error::Internal(format!("column `{}` has no attribute", f.name()))
                    })?;
                build(f, Some(a.ty), chunk, |r| cell(a, r))
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(supplied.clone(), columns)?;
        w.write(&derived::complete(&batch, stored)?)?;
    }
    if rows.is_empty() {
        let columns = stored
            .fields()
            .iter()
            .map(|f| arrow::array::new_empty_array(f.data_type()))
            .collect();
        w.write(&RecordBatch::try_new(stored.clone(), columns)?)?;
    }
    w.finish()
}

pub fn write_persons(staging: &Staging, catalog: &Catalog, rows: &[PersonRow]) -> Result<DataFile> {
    let stored = schema::persons_schema(catalog);
    write_rows(
        staging,
        TableOut {
            rel: "persons.parquet",
            stored: &stored,
            sorted_by: &[0],
        },
        &catalog.person,
        rows,
        person_cell,
        None,
    )
}

pub fn write_installations(
    staging: &Staging,
    catalog: &Catalog,
    rows: &[InstallationRow],
) -> Result<DataFile> {
    let stored = schema::installations_schema(catalog);
    write_rows(
        staging,
        TableOut {
            rel: "installations.parquet",
            stored: &stored,
            sorted_by: &[2, 0],
        },
        &catalog.installation,
        rows,
        installation_cell,
        Some(|r: &InstallationRow| r.person_id),
    )
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

fn period_of(p: Partitioning, micros: i64) -> NaiveDate {
    let date = DateTime::from_timestamp_micros(micros)
        .expect("times are checked at replay")
        .date_naive();
    p.period_start(date)
}

/// Writes the replay's events under this snapshot's event root, one file per event and period.
pub fn write_events(
    staging: &Staging,
    catalog: &Catalog,
    partitioning: Partitioning,
    tables: &[EventTable],
) -> Result<Vec<EventFile>> {
    let mut out = Vec::new();
    let part = format!("part-{}.parquet", staging.id());
    for table in tables {
        let def = catalog.event(&table.event).ok_or_else(|| {
            Error::Internal(format!("event `{}` is not in the catalog", table.event))
        })?;
        let stored = schema::event_schema(def);
        let supplied = derived::without_derived(&stored);
        // Rows are sorted by person, so each period's rows keep that order.
        let mut periods: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
        for (i, r) in table.rows.iter().enumerate() {
            periods
                .entry(period_of(partitioning, r.event_time))
                .or_default()
                .push(i);
        }
        let positions: HashMap<&str, usize> = table
            .properties
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect();
        for (period, rows) in periods {
            let rel = format!(
                "events/event={}/{}={period}/{part}",
                def.name,
                partitioning.column()
            );
            let mut w = staging.parquet_writer(&rel, stored.clone(), &[1, 0])?;
            for chunk in rows.chunks(CHUNK) {
                let rows: Vec<&super::profile::EventRow> =
                    chunk.iter().map(|&i| &table.rows[i]).collect();
                let mut columns: Vec<ArrayRef> = vec![
                    Arc::new(
                        TimestampMicrosecondArray::from_iter_values(
                            rows.iter().map(|r| r.event_time),
                        )
                        .with_timezone("UTC"),
                    ),
                    Arc::new(Int64Array::from_iter_values(
                        rows.iter().map(|r| r.person_id),
                    )),
                    Arc::new(Int64Array::from_iter(
                        rows.iter().map(|r| r.installation_id),
                    )),
                ];
                for (f, p) in supplied.fields().iter().skip(3).zip(&def.properties) {
                    let pos = positions.get(p.name.as_str()).copied();
                    columns.push(build(f, Some(p.ty), &rows, |r| {
                        Cell::Value(pos.map_or(&Value::Null, |pos| r.value(pos)))
                    })?);
                }
                let batch = RecordBatch::try_new(supplied.clone(), columns)?;
                w.write(&derived::complete(&batch, &stored)?)?;
            }
            out.push(EventFile {
                event: def.name.clone(),
                period,
                file: w.finish()?,
            });
        }
    }
    Ok(out)
}

/// Brings the parent's event files under this snapshot's event root: hard links, except files
/// holding events of persons merged away (`merged_into`), which are rewritten with the
/// survivors' ids. Returns the files and how many were rewritten.
pub fn carry_history(
    store: &Path,
    staging: &Staging,
    parent: &Manifest,
    merged_into: &BTreeMap<i64, i64>,
) -> Result<(Vec<EventFile>, usize)> {
    let mut out = Vec::with_capacity(parent.events.len());
    let mut rewritten = 0;
    let mut used: HashSet<String> = HashSet::new();
    for e in &parent.events {
        let suffix = parent
            .event_roots
            .iter()
            .find_map(|r| e.file.path.strip_prefix(&format!("{r}/")))
            .ok_or_else(|| {
                Error::data(
                    store,
                    format!("event file {} is under none of its roots", e.file.path),
                )
            })?;
        let mut rel = format!("events/{suffix}");
        if !used.insert(rel.clone()) {
            rel = format!("events/{suffix}.{}", used.len());
            used.insert(rel.clone());
        }
        let source = store.join(&e.file.path);
        let file = if !merged_into.is_empty() && holds_any(store, &e.file, merged_into)? {
            rewritten += 1;
            rewrite(store, staging, &e.file, &rel, merged_into)?
        } else {
            link(&source, staging, &rel, &e.file)?
        };
        out.push(EventFile {
            event: e.event.clone(),
            period: e.period,
            file,
        });
    }
    Ok((out, rewritten))
}

/// Hard-links a parent's file into the snapshot being written (a copy where links fail, on
/// file systems without them).
pub fn link(source: &Path, staging: &Staging, rel: &str, file: &DataFile) -> Result<DataFile> {
    let target = staging.local_path(rel);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    if std::fs::hard_link(source, &target).is_err() {
        std::fs::copy(source, &target).at(&target)?;
    }
    Ok(DataFile {
        path: staging.store_path(rel),
        ..file.clone()
    })
}

/// Whether the file holds an event of a person in `persons`.
fn holds_any(store: &Path, file: &DataFile, persons: &BTreeMap<i64, i64>) -> Result<bool> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;
    let path = store.join(&file.path);
    let f = std::fs::File::open(&path).at(&path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| Error::data(&path, e.to_string()))?;
    let index = builder
        .schema()
        .index_of(catalog::PERSON_ID)
        .map_err(|_| Error::data(&path, "column `person_id` is missing"))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| Error::data(&path, e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| Error::data(&path, e.to_string()))?;
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| Error::data(&path, "column `person_id` is not Int64"))?;
        if ids.values().iter().any(|id| persons.contains_key(id)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Rewrites a parent's event file with merged persons' ids replaced, sorted again by
/// (person_id, event_time).
fn rewrite(
    store: &Path,
    staging: &Staging,
    file: &DataFile,
    rel: &str,
    merged_into: &BTreeMap<i64, i64>,
) -> Result<DataFile> {
    let batches = super::state::read_file(store, file)?;
    let path = store.join(&file.path);
    let Some(first) = batches.first() else {
        return link(&path, staging, rel, file);
    };
    let schema = first.schema();
    let all = arrow::compute::concat_batches(&schema, &batches)?;
    let person = schema
        .index_of(catalog::PERSON_ID)
        .map_err(|_| Error::data(&path, "column `person_id` is missing"))?;
    let time = schema
        .index_of(catalog::EVENT_TIME)
        .map_err(|_| Error::data(&path, "column `event_time` is missing"))?;
    let ids = all
        .column(person)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::data(&path, "column `person_id` is not Int64"))?;
    let remapped: ArrayRef = Arc::new(Int64Array::from_iter_values(
        ids.values()
            .iter()
            .map(|id| *merged_into.get(id).unwrap_or(id)),
    ));
    let mut columns = all.columns().to_vec();
    columns[person] = remapped;
    let order = arrow::compute::lexsort_to_indices(
        &[
            arrow::compute::SortColumn {
                values: columns[person].clone(),
                options: None,
            },
            arrow::compute::SortColumn {
                values: columns[time].clone(),
                options: None,
            },
        ],
        None,
    )?;
    let columns = columns
        .iter()
        .map(|c| arrow::compute::take(c, &order, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let sorted = RecordBatch::try_new(schema.clone(), columns)?;
    let mut w = staging.parquet_writer(rel, schema, &[person, time])?;
    for offset in (0..sorted.num_rows()).step_by(CHUNK) {
        let len = CHUNK.min(sorted.num_rows() - offset);
        w.write(&sorted.slice(offset, len))?;
    }
    w.finish()
}
