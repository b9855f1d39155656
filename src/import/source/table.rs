//! Plain tables: persons, installations and events as CSV (optionally gzipped) or Parquet.
//!
//! A [`Mapping`] says which column plays which part; [`mapping`](super::mapping) documents its
//! defaults, so that a table in the snapshot schema needs none. Each row becomes calls of the
//! replay:
//!
//! * a persons row: `UpsertPerson` keyed by the person id, its attributes as traits, and the
//!   row's device (if the table has a device id) as the one device it lists;
//! * an installations row: `UpsertInstallation` with the row's device, linked to the row's
//!   person id if it has one;
//! * an events row: `Track` of the event as the source names it, with the row's person,
//!   anonymous id and device. When the row also carries person attributes (a clickstream with
//!   `platform` or `acquisition_channel` columns), an `Identify` of the same person at the same
//!   time comes first, but only when those values differ from the last ones sent for that
//!   person: a 10M-row clickstream of 1M users sends about 1M identifies, not 10M. The same
//!   holds for person attributes in an installations table. The memory this costs is 16 bytes
//!   a person (hashes, not values).
//!
//! Values:
//!
//! * Text (CSV, and Parquet string columns) is typed by the mapping, by the standard attribute
//!   it fills, or else by inference over the first [`SAMPLE_ROWS`] data rows: boolean (`true` /
//!   `false`, any case), number, date (`YYYY-MM-DD`), timestamp (RFC 3339), else string. A
//!   number never starts with a redundant zero (`0123` is a code, not 123) unless the mapping
//!   says `number`. A column empty in every sampled row is a string. A later value that does
//!   not parse as the column's type rejects its row, naming the column, the type and the value:
//!   never a silent cast. An empty cell is null. A `list` is `a;b;c` or a JSON array of
//!   strings. Where a timestamp is expected, a bare `YYYY-MM-DD` is its midnight UTC.
//! * Parquet columns carry their types: strings (plain, large, view, dictionary), integers and
//!   floats and decimals (numbers; an integer beyond 2^53 is rejected rather than rounded),
//!   booleans, Date32/Date64, Timestamp of any unit (a zone-less one is taken as UTC) and
//!   lists of strings. A typed column may fill a string attribute (its text: `17` for an
//!   osVersion stored as a number) or an id; any other mismatch with the mapping is an error
//!   before the first row.
//!
//! Reading: CSV through the `csv` crate, strict about field counts (a row with too many or too
//! few fields is a reject), `file:line` being the line the record starts on; cells are checked
//! for UTF-8 one by one, so invalid bytes reject their row only. A record longer than
//! [`MAX_RECORD_BYTES`] ends the file with an error, since no record boundary can be trusted
//! past it. Parquet is read in batches of its used columns only; its "line" is the row number,
//! from 1. Memory is bounded by the sample and a batch, whatever the file's size.
//! [`read_rows_at`] gives back rejected rows whole for the rejects file.

pub use super::mapping::{ColumnSpec, ColumnType, Mapping};

use super::mapping::{self, DeviceField, FieldPlan, PersonField, Plan, Target, TypeOrigin};
use super::{reject, Format, Kind, Sink, SourceFile};
use crate::error::{Error, IoContext, Result};
use crate::import::profile::{
    Action, Call, Device, DeviceData, Origin, PersonDevice, Traits, Value, ValueType,
};
use crate::import::time_text;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, ListArray,
    StringArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, TimeUnit, UInt64Type};
use arrow::error::ArrowError;
use chrono::{DateTime, NaiveDate};
use csv::ByteRecord;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

/// Data rows type inference looks at.
pub const SAMPLE_ROWS: usize = 1000;
/// ... and at most this many bytes of them, so that the sample stays small.
const SAMPLE_BYTES: usize = 32 << 20;
/// The longest CSV record read.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Parquet rows decoded at a time.
const BATCH_ROWS: usize = 8192;
/// Rows between progress reports.
const PROGRESS_ROWS: u64 = 8192;

/// The kind of table a header suggests (see [`mapping`](super::mapping)): an event column makes
/// an events table; a device id or push registration id without one, an installations table;
/// else a person id, a persons table. None when it is unclear.
pub fn detect(headers: &[String]) -> Option<Kind> {
    mapping::detect(headers)
}

/// The column names of a table, for [`detect`].
pub fn headers(file: &SourceFile) -> Result<Vec<String>> {
    match file.format {
        Format::Csv => CsvFile::open(file, false)?.headers(),
        Format::Parquet => Ok(parquet_names(&open_parquet(file)?)),
        Format::JsonLines => Err(not_a_table(file)),
    }
}

/// Reads a table of `kind` into `sink`: one or two calls a good row, a reject a bad one. Errors
/// are what no single row is to blame for (the mapping, the header, an unreadable file), and
/// those about the header and the mapping come before any row is read.
pub fn read(file: &SourceFile, kind: Kind, mapping: &Mapping, sink: &mut impl Sink) -> Result<()> {
    match file.format {
        Format::Csv => read_csv(file, kind, mapping, sink),
        Format::Parquet => read_parquet(file, kind, mapping, sink),
        Format::JsonLines => Err(not_a_table(file)),
    }
}

/// The whole text of the rows at `lines` (as rejects name them), for the rejects file: a CSV
/// record as the csv writer writes it, a Parquet row as a JSON object. Lines that name no row
/// are left out.
pub fn read_rows_at(file: &SourceFile, lines: &[u64]) -> Result<Vec<(u64, String)>> {
    let mut wanted = lines.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    match file.format {
        Format::Csv => csv_rows_at(file, &wanted),
        Format::Parquet => parquet_rows_at(file, &wanted),
        Format::JsonLines => Err(not_a_table(file)),
    }
}

fn not_a_table(file: &SourceFile) -> Error {
    Error::Invalid(format!(
        "{}: JSON lines are not a table (tables are CSV or Parquet)",
        file.name
    ))
}

// ---------------------------------------------------------------------------------------------
// Cells and values
// ---------------------------------------------------------------------------------------------

/// One cell as the file gives it.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    /// µs UTC.
    Time(i64),
    List(Vec<String>),
    /// A typed value the store cannot hold (a timestamp out of range).
    Invalid(&'static str),
}

impl Cell<'_> {
    /// For messages, shortened: a reject must not repeat a megabyte of its row.
    fn shown(&self) -> String {
        const MAX: usize = 60;
        let text = match self {
            Cell::Text(s) => s.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Date(d) => d.to_string(),
            Cell::Time(t) => format_time(*t),
            Cell::List(l) => format!("{l:?}"),
            Cell::Null | Cell::Invalid(_) => String::new(),
        };
        match text.char_indices().nth(MAX) {
            Some((end, _)) => format!("{}...", &text[..end]),
            None => text,
        }
    }
}

/// What a type is called in a reject: "`x` is not {this}".
fn a_type(ty: ValueType) -> &'static str {
    match ty {
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Boolean => "a boolean (true or false)",
        ValueType::Date => "a date (YYYY-MM-DD)",
        ValueType::Timestamp => "an RFC 3339 timestamp",
        ValueType::StringList => "a list of strings",
    }
}

fn format_time(t: i64) -> String {
    DateTime::from_timestamp_micros(t).map_or_else(
        || format!("{t} µs"),
        |d| d.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
    )
}

/// A number as text: digits with an optional sign, point and exponent (no `inf`, `NaN` or
/// `1,5`); `strict` refuses a redundant leading zero, which marks a code (`007`, a zip code).
fn parse_number(s: &str, strict: bool) -> Option<f64> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t).as_bytes();
    let shaped = digits
        .first()
        .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
        && digits
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    let padded = digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit();
    if !shaped || (strict && padded) {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    time_text::exact_date(s.trim())
}

fn parse_timestamp(s: &str) -> Option<i64> {
    time_text::parse_time(s.trim())
}

fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

/// `a;b;c` (items trimmed, empty ones dropped) or a JSON array of strings.
fn parse_list(s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.starts_with('[') {
        serde_json::from_str::<Vec<String>>(t)
            .map_err(|_| "is not a JSON array of strings".to_string())
    } else {
        Ok(t.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// Types text by what all of its sampled values parse as; see the module documentation.
fn infer<'a>(values: impl Iterator<Item = &'a str>) -> ValueType {
    const ORDER: [ValueType; 4] = [
        ValueType::Boolean,
        ValueType::Number,
        ValueType::Date,
        ValueType::Timestamp,
    ];
    let mut possible = [true; 4];
    let mut seen = false;
    for v in values.filter(|v| !v.trim().is_empty()) {
        seen = true;
        for (ok, ty) in possible.iter_mut().zip(ORDER) {
            *ok = *ok && parse_text(v, ty, false).is_ok();
        }
        if !possible.contains(&true) {
            break;
        }
    }
    match possible.iter().position(|ok| *ok) {
        Some(i) if seen => ORDER[i],
        _ => ValueType::String,
    }
}

/// Text as a value of `ty`; the error completes "`text` ...".
fn parse_text(s: &str, ty: ValueType, lenient: bool) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    let not = || format!("is not {}", a_type(ty));
    Ok(match ty {
        ValueType::String => Value::Str(s.to_string()),
        ValueType::Number => Value::Num(parse_number(s, !lenient).ok_or_else(not)?),
        ValueType::Boolean => Value::Bool(parse_bool(s).ok_or_else(not)?),
        ValueType::Date => Value::Date(parse_date(s).ok_or_else(not)?),
        ValueType::Timestamp => match parse_timestamp(s) {
            Some(t) => Value::Time(t),
            None => Value::Time(parse_date(s).map(midnight).ok_or_else(not)?),
        },
        ValueType::StringList => match parse_list(s)? {
            l if l.is_empty() => Value::Null,
            l => Value::List(l),
        },
    })
}

/// The largest integer an f64 holds exactly.
const EXACT: u64 = 1 << 53;

/// A cell as a value of `ty` (a field's type); the error completes "`value` ...".
fn convert(cell: &Cell, ty: ValueType, lenient: bool) -> Result<Value, String> {
    use ValueType as T;
    let not = || Err(format!("is not {}", a_type(ty)));
    Ok(match (cell, ty) {
        (Cell::Null, _) => Value::Null,
        (Cell::Invalid(why), _) => return Err(why.to_string()),
        (Cell::Text(s), _) => return parse_text(s, ty, lenient),
        (Cell::Int(i), T::Number) if i.unsigned_abs() <= EXACT => Value::Num(*i as f64),
        (Cell::Int(_), T::Number) => return Err("is too large to be a number exactly".into()),
        (Cell::Int(i), T::String) => Value::Str(i.to_string()),
        (Cell::Float(f), T::Number) => Value::Num(*f),
        (Cell::Float(f), T::String) => Value::Str(f.to_string()),
        (Cell::Bool(b), T::Boolean) => Value::Bool(*b),
        (Cell::Bool(b), T::String) => Value::Str(b.to_string()),
        (Cell::Date(d), T::Date) => Value::Date(*d),
        (Cell::Date(d), T::Timestamp) => Value::Time(midnight(*d)),
        (Cell::Date(d), T::String) => Value::Str(d.to_string()),
        (Cell::Time(t), T::Timestamp) => Value::Time(*t),
        (Cell::Time(t), T::String) => Value::Str(format_time(*t)),
        (Cell::List(l), T::StringList) if l.is_empty() => Value::Null,
        (Cell::List(l), T::StringList) => Value::List(l.clone()),
        _ => return not(),
    })
}

/// An id (person, device, token, event name, message id): text, or an integer's digits.
fn id_text(cell: Cell, column: &str) -> Result<Option<String>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Text("") => Ok(None),
        Cell::Text(s) => Ok(Some(s.to_string())),
        Cell::Int(i) => Ok(Some(i.to_string())),
        Cell::Float(f) if f.fract() == 0.0 && f.abs() <= EXACT as f64 => {
            Ok(Some((f as i64).to_string()))
        }
        other => Err(format!(
            "column `{column}`: `{}` cannot be an id",
            other.shown()
        )),
    }
}

/// A row's time: RFC 3339 text (or a bare date), or a typed timestamp or date.
fn time_of(cell: Cell, column: &str) -> Result<Option<i64>, String> {
    let bad = |cell: &Cell| {
        format!(
            "column `{column}`: `{}` is not an RFC 3339 timestamp",
            cell.shown()
        )
    };
    match cell {
        Cell::Null => Ok(None),
        Cell::Text("") => Ok(None),
        Cell::Text(s) => match parse_text(s, ValueType::Timestamp, false) {
            Ok(Value::Time(t)) => Ok(Some(t)),
            _ => Err(bad(&cell)),
        },
        Cell::Time(t) => Ok(Some(t)),
        Cell::Date(d) => Ok(Some(midnight(d))),
        Cell::Invalid(why) => Err(format!("column `{column}`: {why}")),
        other => Err(bad(&other)),
    }
}

fn hash_value(h: &mut impl Hasher, v: &Value) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Str(s) => (1u8, s).hash(h),
        Value::Num(n) => (2u8, n.to_bits()).hash(h),
        Value::Bool(b) => (3u8, b).hash(h),
        Value::Date(d) => (4u8, d).hash(h),
        Value::Time(t) => (5u8, t).hash(h),
        Value::List(l) => (6u8, l).hash(h),
    }
}

// ---------------------------------------------------------------------------------------------
// Rows to calls
// ---------------------------------------------------------------------------------------------

/// Turns rows into calls, by a plan and the fields' final types.
struct Rows<'p> {
    file: Arc<str>,
    plan: &'p Plan,
    /// Per `plan.fields`.
    types: Vec<(ValueType, TypeOrigin)>,
    /// A person's key hash → the hash of the person attributes last sent for them.
    sent: HashMap<u64, u64>,
}

impl<'p> Rows<'p> {
    fn new(file: &SourceFile, plan: &'p Plan, types: Vec<(ValueType, TypeOrigin)>) -> Rows<'p> {
        Rows {
            file: file.name.clone(),
            plan,
            types,
            sent: HashMap::new(),
        }
    }

    /// Sends row `line`'s calls, or its reject, to `sink`. `cell(c)` is column c's cell, or
    /// why it cannot be read.
    fn row<'c>(
        &mut self,
        line: u64,
        cell: impl Fn(usize) -> Result<Cell<'c>, String>,
        sink: &mut impl Sink,
    ) {
        let origin = Origin {
            file: self.file.clone(),
            line,
        };
        match self.calls(&origin, &cell) {
            Ok((identify, call)) => {
                if let Some(identify) = identify {
                    sink.call(identify);
                }
                sink.call(call);
            }
            Err(reason) => sink.reject(reject(origin, reason)),
        }
    }

    /// A row's calls: an identify (when its person attributes changed) and the row's own. All
    /// of the row is checked before anything is remembered, so a rejected row leaves no trace.
    fn calls<'c>(
        &mut self,
        origin: &Origin,
        cell: &impl Fn(usize) -> Result<Cell<'c>, String>,
    ) -> Result<(Option<Call>, Call), String> {
        let p = self.plan;
        let id = |column: Option<usize>| match column {
            Some(c) => id_text(cell(c)?, p.name(c)),
            None => Ok(None),
        };
        let user_id = id(p.person_id)?;
        let anonymous_id = id(p.anonymous_id)?;
        let device_id = id(p.device_id)?;
        let mut token = id(p.token)?;
        if let Some(c) = p.push_enabled {
            let enabled = match cell(c)? {
                Cell::Bool(b) => Some(b),
                Cell::Text(s) => parse_bool(s),
                _ => None,
            };
            if enabled == Some(false) {
                token = None;
            }
        }
        let message_id = id(p.message_id)?;
        let event = id(p.event)?;
        let time = match p.time {
            Some(c) => time_of(cell(c)?, p.name(c))?,
            None => None,
        };

        let mut traits = Traits::default();
        let mut data = DeviceData::default();
        let mut properties = BTreeMap::new();
        let mut person = DefaultHasher::new();
        let mut has_person = false;
        for (i, (f, &(ty, origin))) in p.fields.iter().zip(&self.types).enumerate() {
            let c = cell(f.column)?;
            let value = convert(&c, ty, origin == TypeOrigin::Mapping)
                .map_err(|why| mismatch(p.name(f.column), &c, why, ty, origin))?;
            if value == Value::Null {
                continue;
            }
            match &f.target {
                Target::Person(_) | Target::PersonCustom(_) => {
                    has_person = true;
                    i.hash(&mut person);
                    hash_value(&mut person, &value);
                }
                _ => {}
            }
            put(&f.target, value, &mut traits, &mut data, &mut properties);
        }

        let column = |c: Option<usize>| c.map_or("?", |c| p.name(c));
        let time = match (p.kind, time.or(p.default_time)) {
            (Kind::Events, _) if time.is_none() => {
                return Err(format!("missing event time (column `{}`)", column(p.time)))
            }
            (_, Some(t)) => t,
            (_, None) => return Err(format!("missing time (column `{}`)", column(p.time))),
        };
        let device = device_id.map(|id| Device { id, token, data });
        let call = |action, device| Call {
            origin: origin.clone(),
            time: Some(time),
            message_id: message_id.clone(),
            anonymous_id: anonymous_id.clone(),
            user_id: user_id.clone(),
            device,
            action,
        };
        let main = match p.kind {
            Kind::Persons => {
                if user_id.is_none() {
                    return Err(format!(
                        "missing person id (column `{}`)",
                        column(p.person_id)
                    ));
                }
                let devices = device
                    .into_iter()
                    .map(|device| PersonDevice {
                        device,
                        primary: None,
                    })
                    .collect();
                // The traits are the row's own: no identify.
                return Ok((None, call(Action::UpsertPerson { traits, devices }, None)));
            }
            Kind::Installations => {
                if device.is_none() {
                    return Err(format!(
                        "missing device id (column `{}`)",
                        column(p.device_id)
                    ));
                }
                call(Action::UpsertInstallation, device.clone())
            }
            _ => {
                let Some(event) = event else {
                    return Err(format!("missing event name (column `{}`)", column(p.event)));
                };
                if user_id.is_none() && anonymous_id.is_none() && device.is_none() {
                    let names: Vec<&str> = [p.person_id, p.anonymous_id, p.device_id]
                        .into_iter()
                        .flatten()
                        .map(|c| p.name(c))
                        .collect();
                    return Err(format!(
                        "missing person id: the row has no value in `{}`",
                        names.join("`, `")
                    ));
                }
                call(Action::Track { event, properties }, device.clone())
            }
        };
        if !has_person {
            return Ok((None, main));
        }
        // The person the identify is for: by userId, else by the row's anonymousId or device.
        let mut key = DefaultHasher::new();
        match (&main.user_id, &main.anonymous_id, &main.device) {
            (Some(u), ..) => ('u', u).hash(&mut key),
            (None, Some(a), _) => ('a', a).hash(&mut key),
            (None, None, Some(d)) => ('d', &d.id).hash(&mut key),
            (None, None, None) => {}
        }
        let (key, values) = (key.finish(), person.finish());
        if self.sent.insert(key, values) == Some(values) {
            return Ok((None, main));
        }
        // Without a userId, the device says whose traits these are.
        let device = if main.user_id.is_none() {
            main.device.clone()
        } else {
            None
        };
        let mut identify = call(Action::Identify { traits }, device);
        identify.message_id = None;
        Ok((Some(identify), main))
    }
}

fn mismatch(column: &str, cell: &Cell, why: String, ty: ValueType, origin: TypeOrigin) -> String {
    let because = match origin {
        TypeOrigin::Inferred => format!("the type inferred from the first {SAMPLE_ROWS} rows"),
        TypeOrigin::Mapping => "the type the mapping gives".into(),
        TypeOrigin::Standard => "the standard attribute's type".into(),
        TypeOrigin::Source => "the column's type".into(),
    };
    format!(
        "column `{column}`: `{}` {why} ({ty}: {because})",
        cell.shown()
    )
}

/// Stores a (non-null) value where its target says. Types were fixed with the plan, so a value
/// always fits its standard field.
fn put(
    target: &Target,
    value: Value,
    traits: &mut Traits,
    data: &mut DeviceData,
    properties: &mut BTreeMap<String, Value>,
) {
    let a = &mut traits.attributes;
    match (target, value) {
        (Target::PersonCustom(n), v) => {
            a.custom.insert(n.clone(), v);
        }
        (Target::DeviceCustom(n), v) => {
            data.custom.insert(n.clone(), v);
        }
        (Target::Property(n), v) => {
            properties.insert(n.clone(), v);
        }
        (Target::Person(f), Value::Str(s)) => match f {
            PersonField::FirstName => a.first_name = Some(s),
            PersonField::LastName => a.last_name = Some(s),
            PersonField::Gender => a.gender = Some(s),
            PersonField::Country => a.country = Some(s),
            PersonField::City => a.city = Some(s),
            PersonField::PreferredLanguage => a.preferred_language = Some(s),
            _ => {}
        },
        (Target::Person(PersonField::BirthDate), Value::Date(d)) => a.birth_date = Some(d),
        (Target::Person(PersonField::CreatedAt), Value::Time(t)) => traits.created_at = Some(t),
        (Target::Person(f), Value::List(l)) => match f {
            PersonField::Emails => traits.emails = l,
            PersonField::Phones => traits.phones = l,
            PersonField::Tags => a.tags = l,
            _ => {}
        },
        (Target::Device(f), Value::Str(s)) => match f {
            DeviceField::Platform => data.platform = Some(s),
            DeviceField::SdkVersion => data.sdk_version = Some(s),
            DeviceField::OsVersion => data.os_version = Some(s),
            DeviceField::DeviceManufacturer => data.device_manufacturer = Some(s),
            DeviceField::DeviceModel => data.device_model = Some(s),
            DeviceField::ApplicationVersion => data.application_version = Some(s),
            DeviceField::OsLanguage => data.os_language = Some(s),
            _ => {}
        },
        (Target::Device(f), Value::Bool(b)) => match f {
            DeviceField::RegistrationsEnabled => data.registrations_enabled = Some(b),
            DeviceField::NotificationsEnabled => data.notifications_enabled = Some(b),
            DeviceField::GeofencingEnabled => data.geofencing_enabled = Some(b),
            DeviceField::DeviceSecure => data.device_secure = Some(b),
            _ => {}
        },
        _ => {}
    }
}

/// The fields' types: fixed ones as they are, the others by `source` (a column's own type,
/// None for text) or by inference over `sample(column)`.
fn field_types<'s, I: Iterator<Item = &'s str>>(
    plan: &Plan,
    source: impl Fn(usize) -> Option<ValueType>,
    sample: impl Fn(usize) -> I,
) -> Vec<(ValueType, TypeOrigin)> {
    plan.fields
        .iter()
        .map(|f: &FieldPlan| match (f.ty, source(f.column)) {
            (Some(fixed), _) => fixed,
            (None, Some(ty)) => (ty, TypeOrigin::Source),
            (None, None) => (infer(sample(f.column)), TypeOrigin::Inferred),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// A byte count shared between a reader and the code driving it.
type Counter = Rc<std::cell::Cell<u64>>;

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Counter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Fails once more than [`MAX_RECORD_BYTES`] were read since `mark` (set after each record):
/// the csv reader would otherwise grow one record without bound.
struct Limit<R> {
    inner: R,
    read: Counter,
    mark: Counter,
}

#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a record longer than {} MiB", MAX_RECORD_BYTES >> 20)
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read.get() - self.mark.get() > MAX_RECORD_BYTES {
            return Err(io::Error::other(RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// A record's line, or a bad record's line and why it is bad.
type Record = Result<u64, (u64, String)>;

/// A CSV file being read, record by record.
struct CsvFile<'f> {
    file: &'f SourceFile,
    reader: csv::Reader<Box<dyn Read>>,
    /// Bytes of the file read (compressed, for gzip): progress.
    consumed: Counter,
    read: Counter,
    mark: Counter,
    last_line: u64,
}

impl<'f> CsvFile<'f> {
    /// `flexible` accepts records of any length (to give rejected ones back whole).
    fn open(file: &'f SourceFile, flexible: bool) -> Result<CsvFile<'f>> {
        let f = File::open(&file.path).at(&file.path)?;
        let consumed = Counter::default();
        let counted = Counting {
            inner: f,
            count: consumed.clone(),
        };
        let decoded: Box<dyn Read> = if file.gzip {
            Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
                counted,
            )))
        } else {
            Box::new(counted)
        };
        let (read, mark) = (Counter::default(), Counter::default());
        let limited = Limit {
            inner: decoded,
            read: read.clone(),
            mark: mark.clone(),
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(flexible)
            .from_reader(Box::new(limited) as Box<dyn Read>);
        Ok(CsvFile {
            file,
            reader,
            consumed,
            read,
            mark,
            last_line: 1,
        })
    }

    fn headers(&mut self) -> Result<Vec<String>> {
        let record = match self.reader.byte_headers() {
            Ok(r) => r.clone(),
            Err(e) => return Err(self.error(e)),
        };
        self.mark.set(self.read.get());
        record
            .iter()
            .enumerate()
            .map(|(i, h)| {
                String::from_utf8(h.to_vec()).map_err(|_| {
                    Error::data(
                        &self.file.path,
                        format!("column {} of the header is not valid UTF-8", i + 1),
                    )
                })
            })
            .collect()
    }

    /// The next record into `record` and its line, a bad record's line and reason, or None at
    /// the end.
    fn next(&mut self, record: &mut ByteRecord) -> Result<Option<Record>> {
        let read = self.reader.read_byte_record(record);
        self.mark.set(self.read.get());
        match read {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.last_line = record.position().map_or(self.last_line + 1, |p| p.line());
                Ok(Some(Ok(self.last_line)))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } => {
                    self.last_line = pos.as_ref().map_or(self.last_line + 1, |p| p.line());
                    Ok(Some(Err((
                        self.last_line,
                        format!("{len} fields where the header has {expected_len}"),
                    ))))
                }
                _ => Err(self.error(e)),
            },
        }
    }

    fn error(&self, e: csv::Error) -> Error {
        let too_long = matches!(e.kind(), csv::ErrorKind::Io(io)
            if io.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>()));
        let what = if too_long {
            RecordTooLong.to_string()
        } else {
            match e.into_kind() {
                csv::ErrorKind::Io(io) => io.to_string(),
                other => format!("{other:?}"),
            }
        };
        Error::data(
            &self.file.path,
            format!("after line {}: {what}", self.last_line),
        )
    }
}

/// Column `c` of a record: its text, null when empty, or why it cannot be read.
fn csv_cell<'r>(record: &'r ByteRecord, c: usize, plan: &Plan) -> Result<Cell<'r>, String> {
    match record.get(c) {
        None | Some(b"") => Ok(Cell::Null),
        Some(bytes) => std::str::from_utf8(bytes)
            .map(Cell::Text)
            .map_err(|_| format!("column `{}`: invalid UTF-8", plan.name(c))),
    }
}

impl Rows<'_> {
    fn csv_record(&mut self, record: &ByteRecord, item: Record, sink: &mut impl Sink) {
        let plan = self.plan;
        match item {
            Ok(line) => self.row(line, |c| csv_cell(record, c, plan), sink),
            Err((line, reason)) => sink.reject(reject(
                Origin {
                    file: self.file.clone(),
                    line,
                },
                reason,
            )),
        }
    }
}

fn read_csv(file: &SourceFile, kind: Kind, mapping: &Mapping, sink: &mut impl Sink) -> Result<()> {
    let mut csv = CsvFile::open(file, false)?;
    let headers = csv.headers()?;
    let plan = mapping::plan(&file.name, &headers, kind, mapping)?;

    // The sample: the first rows, bad ones included, replayed in order after inference. An
    // error that ends the file within the sample comes after the rows before it, as it would
    // past the sample.
    let mut sample: Vec<(ByteRecord, Record)> = Vec::new();
    let mut bytes = 0;
    let mut record = ByteRecord::new();
    let mut ended = None;
    while sample.len() < SAMPLE_ROWS && bytes < SAMPLE_BYTES {
        match csv.next(&mut record) {
            Ok(None) => break,
            Ok(Some(item)) => {
                bytes += record.as_slice().len();
                sample.push((record.clone(), item));
            }
            Err(e) => {
                ended = Some(e);
                break;
            }
        }
    }
    let types = field_types(
        &plan,
        |_| None,
        |c| {
            sample.iter().filter_map(move |(r, item)| match item {
                Ok(_) => r.get(c).and_then(|b| std::str::from_utf8(b).ok()),
                Err(_) => None,
            })
        },
    );
    let mut rows = Rows::new(file, &plan, types);
    let mut count = 0u64;
    for (record, item) in sample {
        rows.csv_record(&record, item, sink);
        count += 1;
    }
    if let Some(e) = ended {
        return Err(e);
    }
    while let Some(item) = csv.next(&mut record)? {
        rows.csv_record(&record, item, sink);
        count += 1;
        if count.is_multiple_of(PROGRESS_ROWS) {
            sink.progress(csv.consumed.get());
        }
    }
    sink.progress(csv.consumed.get());
    Ok(())
}

fn csv_rows_at(file: &SourceFile, wanted: &[u64]) -> Result<Vec<(u64, String)>> {
    let mut csv = CsvFile::open(file, true)?;
    csv.headers()?;
    let mut out = Vec::new();
    let mut record = ByteRecord::new();
    let mut next = wanted.iter().peekable();
    while next.peek().is_some() {
        let Some(item) = csv.next(&mut record)? else {
            break;
        };
        let line = match item {
            Ok(line) | Err((line, _)) => line,
        };
        while next.next_if(|w| **w < line).is_some() {}
        if next.next_if(|w| **w == line).is_some() {
            let mut writer = csv::WriterBuilder::new()
                .flexible(true)
                .from_writer(Vec::new());
            writer
                .write_byte_record(&record)
                .and_then(|_| writer.flush().map_err(csv::Error::from))
                .map_err(|e| Error::data(&file.path, format!("line {line}: {e}")))?;
            let bytes = writer.into_inner().unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            out.push((line, text.trim_end_matches(['\r', '\n']).to_string()));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parquet
// ---------------------------------------------------------------------------------------------

fn open_parquet(file: &SourceFile) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let f = File::open(&file.path).at(&file.path)?;
    ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| Error::data(&file.path, format!("not a readable Parquet file: {e}")))
}

fn parquet_names(builder: &ParquetRecordBatchReaderBuilder<File>) -> Vec<String> {
    builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// What a Parquet column holds, as far as the import reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Text,
    Number,
    Bool,
    Date,
    Time,
    List,
    /// A column of nulls only.
    Null,
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

fn source_of(t: &DataType) -> Option<Source> {
    use DataType as D;
    Some(match t {
        t if is_text(t) => Source::Text,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            Source::Number
        }
        D::Float16 | D::Float32 | D::Float64 | D::Decimal128(..) | D::Decimal256(..) => {
            Source::Number
        }
        D::Boolean => Source::Bool,
        D::Date32 | D::Date64 => Source::Date,
        D::Timestamp(..) => Source::Time,
        D::List(f) | D::LargeList(f) if is_text(f.data_type()) => Source::List,
        D::Null => Source::Null,
        _ => return None,
    })
}

/// The value type a typed column gives, None for text (typed by inference).
fn natural_type(s: Source) -> Option<ValueType> {
    match s {
        Source::Text => None,
        Source::Number => Some(ValueType::Number),
        Source::Bool => Some(ValueType::Boolean),
        Source::Date => Some(ValueType::Date),
        Source::Time => Some(ValueType::Timestamp),
        Source::List => Some(ValueType::StringList),
        Source::Null => Some(ValueType::String),
    }
}

/// Whether a column of `s` can fill a field of `ty` ([`convert`] says how).
fn fits(s: Source, ty: ValueType) -> bool {
    use ValueType as T;
    match s {
        Source::Text | Source::Null => true,
        Source::Number => matches!(ty, T::Number | T::String),
        Source::Bool => matches!(ty, T::Boolean | T::String),
        Source::Date => matches!(ty, T::Date | T::Timestamp | T::String),
        Source::Time => matches!(ty, T::Timestamp | T::String),
        Source::List => ty == T::StringList,
    }
}

/// Checks every used column's type against what the plan does with it, before any row.
fn check_parquet_types(
    file: &SourceFile,
    plan: &Plan,
    types: &[DataType],
) -> Result<Vec<Option<Source>>> {
    let invalid = |c: usize, what: String| {
        Error::Invalid(format!(
            "{}: column `{}` is {}, {what}",
            file.name,
            plan.name(c),
            types[c]
        ))
    };
    let mut sources = vec![None; types.len()];
    for c in plan.used_columns() {
        sources[c] = Some(source_of(&types[c]).ok_or_else(|| {
            invalid(
                c,
                "which the import cannot read (leave it out with the mapping's \
                 `ignore_columns`)"
                    .into(),
            )
        })?);
    }
    let ids = [
        (plan.person_id, "a person id"),
        (plan.anonymous_id, "an anonymous id"),
        (plan.device_id, "a device id"),
        (plan.token, "a push token"),
        (plan.event, "an event name"),
        (plan.message_id, "a message id"),
    ];
    for (column, what) in ids {
        if let Some(c) = column {
            if !matches!(
                sources[c],
                Some(Source::Text | Source::Number | Source::Null)
            ) {
                return Err(invalid(c, format!("which cannot be {what}")));
            }
        }
    }
    if let Some(c) = plan.time {
        if !matches!(
            sources[c],
            Some(Source::Text | Source::Time | Source::Date | Source::Null)
        ) {
            return Err(invalid(
                c,
                "which cannot be a time (a time is a timestamp, a date or RFC 3339 text)".into(),
            ));
        }
    }
    for f in &plan.fields {
        let source = sources[f.column].unwrap_or(Source::Null);
        let ty = f.ty.map(|(t, _)| t).or_else(|| natural_type(source));
        if let Some(ty) = ty {
            if !fits(source, ty) {
                return Err(invalid(f.column, format!("which cannot be {}", a_type(ty))));
            }
            if ty == ValueType::StringList && matches!(f.target, Target::Property(_)) {
                return Err(invalid(
                    f.column,
                    "and an event property cannot be a list".into(),
                ));
            }
        }
    }
    Ok(sources)
}

/// A batch column, normalized to the few array types cells are read from.
enum Access {
    Null,
    Text(StringArray),
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
    Bool(BooleanArray),
    Date(Date32Array),
    Time(Int64Array, TimeUnit),
    List(ListArray, StringArray),
}

impl Access {
    fn new(array: &ArrayRef) -> Result<Access, ArrowError> {
        use DataType as D;
        let to = |t: &DataType| cast(array, t);
        Ok(match array.data_type() {
            D::Null => Access::Null,
            D::Utf8 => Access::Text(array.as_string::<i32>().clone()),
            t if is_text(t) => Access::Text(to(&D::Utf8)?.as_string::<i32>().clone()),
            D::UInt64 => Access::UInt(array.as_primitive::<UInt64Type>().clone()),
            D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 => {
                Access::Int(to(&D::Int64)?.as_primitive::<Int64Type>().clone())
            }
            D::Float16 | D::Float32 | D::Float64 | D::Decimal128(..) | D::Decimal256(..) => {
                Access::Float(to(&D::Float64)?.as_primitive::<Float64Type>().clone())
            }
            D::Boolean => Access::Bool(array.as_boolean().clone()),
            D::Date32 | D::Date64 => {
                Access::Date(to(&D::Date32)?.as_primitive::<Date32Type>().clone())
            }
            D::Timestamp(unit, _) => {
                Access::Time(to(&D::Int64)?.as_primitive::<Int64Type>().clone(), *unit)
            }
            D::List(_) | D::LargeList(_) => {
                let item = Arc::new(Field::new_list_field(D::Utf8, true));
                let list = to(&D::List(item))?.as_list::<i32>().clone();
                let values = list.values().as_string::<i32>().clone();
                Access::List(list, values)
            }
            other => {
                return Err(ArrowError::CastError(format!(
                    "cannot read a column of {other}"
                )))
            }
        })
    }

    fn cell(&self, i: usize) -> Cell<'_> {
        fn at<A: Array>(
            a: &A,
            i: usize,
            f: impl FnOnce() -> Cell<'static>,
        ) -> Option<Cell<'static>> {
            (!a.is_null(i)).then(f)
        }
        let cell = match self {
            Access::Null => None,
            Access::Text(a) => {
                return if a.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Text(a.value(i))
                }
            }
            Access::Int(a) => at(a, i, || Cell::Int(a.value(i))),
            Access::UInt(a) => at(a, i, || match i64::try_from(a.value(i)) {
                Ok(v) => Cell::Int(v),
                Err(_) => Cell::Float(a.value(i) as f64),
            }),
            Access::Float(a) => at(a, i, || Cell::Float(a.value(i))),
            Access::Bool(a) => at(a, i, || Cell::Bool(a.value(i))),
            Access::Date(a) => at(a, i, || {
                a.value(i)
                    .checked_add(719_163) // 1970-01-01 in days from 0001-01-01
                    .and_then(NaiveDate::from_num_days_from_ce_opt)
                    .map_or(Cell::Invalid("is a date out of range"), Cell::Date)
            }),
            Access::Time(a, unit) => at(a, i, || {
                let v = a.value(i);
                let micros = match unit {
                    TimeUnit::Second => v.checked_mul(1_000_000),
                    TimeUnit::Millisecond => v.checked_mul(1_000),
                    TimeUnit::Microsecond => Some(v),
                    TimeUnit::Nanosecond => Some(v.div_euclid(1_000)),
                };
                micros.map_or(Cell::Invalid("is a timestamp out of range"), Cell::Time)
            }),
            Access::List(list, values) => at(list, i, || {
                let offsets = list.value_offsets();
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                Cell::List(
                    (start..end)
                        .filter(|&j| !values.is_null(j))
                        .map(|j| values.value(j).to_string())
                        .collect(),
                )
            }),
        };
        cell.unwrap_or(Cell::Null)
    }
}

fn read_parquet(
    file: &SourceFile,
    kind: Kind,
    mapping: &Mapping,
    sink: &mut impl Sink,
) -> Result<()> {
    let builder = open_parquet(file)?;
    let headers = parquet_names(&builder);
    let plan = mapping::plan(&file.name, &headers, kind, mapping)?;
    let data_types: Vec<DataType> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let sources = check_parquet_types(file, &plan, &data_types)?;
    let total = builder.metadata().file_metadata().num_rows().max(1) as u64;
    let size = std::fs::metadata(&file.path).map_or(0, |m| m.len());
    let used = plan.used_columns();
    // Column index → its position in the projected batches (which keep schema order).
    let mut position = vec![usize::MAX; headers.len()];
    for (k, c) in used.iter().enumerate() {
        position[*c] = k;
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), used.iter().copied());
    let batches = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| Error::data(&file.path, e.to_string()))?;
    let failed =
        |line: u64, e: ArrowError| Error::data(&file.path, format!("after row {line}: {e}"));

    let needs_sample = plan
        .fields
        .iter()
        .any(|f| f.ty.is_none() && sources[f.column] == Some(Source::Text));
    let mut batches = batches.peekable();
    let mut sample = Vec::new();
    let mut sampled = 0;
    // A batch that cannot be decoded ends the file, after the rows before it (as past the
    // sample): the sample ends there and the error follows its rows.
    let mut ended = None;
    while needs_sample && sampled < SAMPLE_ROWS {
        match batches.next() {
            None => break,
            Some(Ok(batch)) => {
                sampled += batch.num_rows();
                sample.push(batch);
            }
            Some(Err(e)) => {
                ended = Some(e);
                break;
            }
        }
    }
    let mut texts: HashMap<usize, Vec<StringArray>> = HashMap::new();
    for f in &plan.fields {
        if f.ty.is_none() && sources[f.column] == Some(Source::Text) {
            let arrays = sample
                .iter()
                .map(|b| match Access::new(b.column(position[f.column])) {
                    Ok(Access::Text(a)) => Ok(a),
                    Ok(_) => Ok(StringArray::from(Vec::<&str>::new())),
                    Err(e) => Err(failed(0, e)),
                })
                .collect::<Result<_>>()?;
            texts.insert(f.column, arrays);
        }
    }
    let types = field_types(
        &plan,
        |c| sources[c].and_then(natural_type),
        |c| {
            texts
                .get(&c)
                .into_iter()
                .flatten()
                .flat_map(|a| a.iter().flatten())
                .take(SAMPLE_ROWS)
        },
    );
    drop(texts);

    let mut rows = Rows::new(file, &plan, types);
    let mut line = 0u64;
    // After a sample that ended in an error, that error ends the loop: `batches` is not read.
    let after_sample = ended.map(Err);
    for batch in sample
        .into_iter()
        .map(Ok)
        .chain(after_sample)
        .chain(batches)
    {
        let batch = batch.map_err(|e| failed(line, e))?;
        let columns = batch
            .columns()
            .iter()
            .map(Access::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(line, e))?;
        for i in 0..batch.num_rows() {
            line += 1;
            rows.row(line, |c| Ok(columns[position[c]].cell(i)), sink);
        }
        sink.progress(size * line.min(total) / total);
    }
    Ok(())
}

fn parquet_rows_at(file: &SourceFile, wanted: &[u64]) -> Result<Vec<(u64, String)>> {
    let builder = open_parquet(file)?;
    let names = parquet_names(&builder);
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let lines: Vec<u64> = wanted
        .iter()
        .copied()
        .filter(|l| (1..=total).contains(l))
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    // Skip to each wanted row rather than decode the rows between.
    let mut selectors = Vec::new();
    let mut at = 0u64;
    for &l in &lines {
        selectors.push(RowSelector::skip((l - 1 - at) as usize));
        selectors.push(RowSelector::select(1));
        at = l;
    }
    let reader = builder
        .with_row_selection(RowSelection::from(selectors))
        .with_batch_size(1024)
        .build()
        .map_err(|e| Error::data(&file.path, e.to_string()))?;
    let mut out = Vec::with_capacity(lines.len());
    let mut next = lines.iter();
    for batch in reader {
        let batch = batch.map_err(|e| Error::data(&file.path, e.to_string()))?;
        let columns: Vec<Option<Access>> = batch
            .columns()
            .iter()
            .map(|a| Access::new(a).ok())
            .collect();
        for i in 0..batch.num_rows() {
            let Some(&line) = next.next() else { break };
            let mut text = String::from("{");
            for (k, (name, access)) in names.iter().zip(&columns).enumerate() {
                if k > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::Value::from(name.as_str()).to_string());
                text.push(':');
                let value = match access {
                    Some(a) => cell_json(a.cell(i)),
                    None => display_json(batch.column(k), i),
                };
                text.push_str(&value.to_string());
            }
            text.push('}');
            out.push((line, text));
        }
    }
    Ok(out)
}

fn cell_json(cell: Cell) -> serde_json::Value {
    use serde_json::Value as J;
    match cell {
        Cell::Null | Cell::Invalid(_) => J::Null,
        Cell::Text(s) => J::from(s),
        Cell::Int(i) => J::from(i),
        Cell::Float(f) => J::from(f),
        Cell::Bool(b) => J::from(b),
        Cell::Date(d) => J::from(d.to_string()),
        Cell::Time(t) => J::from(format_time(t)),
        Cell::List(l) => J::from(l),
    }
}

/// A value of a type cells do not cover (a struct), as Arrow displays it.
fn display_json(array: &ArrayRef, i: usize) -> serde_json::Value {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    if array.is_null(i) {
        return serde_json::Value::Null;
    }
    match ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()) {
        Ok(f) => serde_json::Value::from(f.value(i).to_string()),
        Err(_) => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::profile::{Catalog, ConflictPolicy, ExistingState, Reject, Replay};
    use arrow::array::{DictionaryArray, Int32Array, ListBuilder, StringBuilder};
    use arrow::datatypes::{Int32Type, TimestampMillisecondType};
    use arrow::record_batch::RecordBatch;
    use std::collections::HashSet;
    use std::io::Write;
    use std::path::Path;

    #[derive(Default)]
    struct Collect {
        calls: Vec<Call>,
        rejects: Vec<Reject>,
    }

    impl Sink for Collect {
        fn call(&mut self, call: Call) {
            self.calls.push(call);
        }
        fn reject(&mut self, reject: Reject) {
            self.rejects.push(reject);
        }
    }

    impl Collect {
        fn reasons(&self) -> Vec<String> {
            self.rejects.iter().map(|r| r.to_string()).collect()
        }
    }

    fn source(dir: &Path, name: &str, bytes: &[u8]) -> SourceFile {
        let path = dir.join(name);
        let gzip = name.ends_with(".gz");
        let mut f = File::create(&path).unwrap();
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            gz.write_all(bytes).unwrap();
            gz.finish().unwrap();
        } else {
            f.write_all(bytes).unwrap();
        }
        SourceFile {
            path,
            name: name.into(),
            format: if name.contains(".parquet") {
                Format::Parquet
            } else {
                Format::Csv
            },
            gzip,
        }
    }

    fn csv(text: &str) -> (tempfile::TempDir, SourceFile) {
        let dir = tempfile::tempdir().unwrap();
        let file = source(dir.path(), "t.csv", text.as_bytes());
        (dir, file)
    }

    fn run(file: &SourceFile, kind: Kind, mapping: &Mapping) -> Collect {
        let mut sink = Collect::default();
        read(file, kind, mapping, &mut sink).unwrap();
        sink
    }

    fn err(file: &SourceFile, kind: Kind, mapping: &Mapping) -> String {
        read(file, kind, mapping, &mut Collect::default())
            .unwrap_err()
            .to_string()
    }

    fn now() -> Mapping {
        Mapping {
            default_time: Some(T0),
            ..Mapping::default()
        }
    }

    /// 2026-01-02T03:04:05Z
    const T0: i64 = 1_767_323_045_000_000;

    fn strs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn track(call: &Call) -> (&str, &BTreeMap<String, Value>) {
        match &call.action {
            Action::Track { event, properties } => (event, properties),
            other => panic!("not a track: {other:?}"),
        }
    }

    fn traits(call: &Call) -> &Traits {
        match &call.action {
            Action::Identify { traits } | Action::UpsertPerson { traits, .. } => traits,
            other => panic!("no traits: {other:?}"),
        }
    }

    #[test]
    fn detects_the_kind_from_the_header() {
        let d = |h: &[&str]| detect(&strs(h));
        assert_eq!(d(&["user_id", "event", "timestamp"]), Some(Kind::Events));
        assert_eq!(d(&["userId", "eventName", "time"]), Some(Kind::Events));
        assert_eq!(
            d(&["external_user_id", "device_id"]),
            Some(Kind::Installations)
        );
        assert_eq!(
            d(&["pushRegistrationId", "platform"]),
            Some(Kind::Installations)
        );
        assert_eq!(d(&["installation_id", "state"]), Some(Kind::Installations));
        assert_eq!(d(&["externalUserId", "firstName"]), Some(Kind::Persons));
        assert_eq!(d(&["person_id", "event_time", "installation_id"]), None);
        assert_eq!(d(&["a", "b"]), None);
    }

    #[test]
    fn a_snake_case_snapshot_persons_table_needs_no_mapping() {
        let (_d, file) = csv(
            "person_id,identified,external_user_id,emails,phones,first_name,birth_date,tags,\
             tags__len,created_at,modified_at,custom_favorite_team,custom_loyalty_points\n\
             7,true,u1,a@x.io;b@x.io,,Ada,1990-05-01,vip,1,2025-01-01T00:00:00Z,\
             2026-01-02T03:04:05Z,Arsenal,12.5\n",
        );
        let out = run(&file, Kind::Persons, &Mapping::default());
        assert_eq!(out.reasons(), Vec::<String>::new());
        let [call] = &out.calls[..] else {
            panic!("{:?}", out.calls)
        };
        assert_eq!(call.user_id.as_deref(), Some("u1"));
        assert_eq!(call.time, Some(T0), "modified_at is the row's time");
        let t = traits(call);
        assert_eq!(t.emails, strs(&["a@x.io", "b@x.io"]));
        assert_eq!(t.phones, Vec::<String>::new());
        assert_eq!(t.created_at, Some(1_735_689_600_000_000));
        assert_eq!(t.attributes.first_name.as_deref(), Some("Ada"));
        assert_eq!(t.attributes.birth_date, NaiveDate::from_ymd_opt(1990, 5, 1));
        assert_eq!(t.attributes.tags, strs(&["vip"]));
        // person_id, identified, tags__len are derived: not attributes.
        assert_eq!(
            t.attributes.custom,
            BTreeMap::from([
                ("favoriteTeam".to_string(), Value::Str("Arsenal".into())),
                ("loyaltyPoints".to_string(), Value::Num(12.5)),
            ])
        );
    }

    #[test]
    fn a_camel_case_persons_table_needs_no_mapping() {
        let (_d, file) = csv(
            "externalUserId,firstName,country,createdAt,customFavoriteTeam,shoeSize\n\
             u1,Ada,UK,2025-01-01T00:00:00Z,Arsenal,42\n",
        );
        let out = run(&file, Kind::Persons, &Mapping::default());
        let [call] = &out.calls[..] else {
            panic!("{:?}", out.reasons())
        };
        // Without modifiedAt, createdAt is the row's time as well as the person's createdAt.
        assert_eq!(call.time, Some(1_735_689_600_000_000));
        let t = traits(call);
        assert_eq!(t.created_at, call.time);
        assert_eq!(t.attributes.country.as_deref(), Some("UK"));
        assert_eq!(
            t.attributes.custom,
            BTreeMap::from([
                ("favoriteTeam".to_string(), Value::Str("Arsenal".into())),
                ("shoeSize".to_string(), Value::Num(42.0)),
            ])
        );
    }

    #[test]
    fn a_snapshot_installations_table_needs_no_mapping() {
        let (_d, file) = csv(
            "installation_id,push_registration_id,person_id,state,platform,os_version,\
             os_version__sort,notifications_enabled,push_registration_enabled,primary_device,\
             installed_at,last_seen_at,uninstalled_at,custom_theme\n\
             1,tok-1,5,personalized,iOS,17.2,123,true,true,true,2026-01-02T03:04:05Z,,,dark\n\
             2,dev-2,5,anonymous,Android,14,456,false,false,false,2026-01-02T03:04:05Z,,,\n",
        );
        let out = run(&file, Kind::Installations, &Mapping::default());
        assert_eq!(out.reasons(), Vec::<String>::new());
        let [a, b] = &out.calls[..] else {
            panic!("{:?}", out.calls)
        };
        assert_eq!(a.action, Action::UpsertInstallation);
        assert_eq!(a.time, Some(T0), "installed_at is the row's time");
        let da = a.device.as_ref().unwrap();
        assert_eq!(
            (da.id.as_str(), da.token.as_deref()),
            ("tok-1", Some("tok-1"))
        );
        assert_eq!(da.data.platform.as_deref(), Some("iOS"));
        assert_eq!(da.data.os_version.as_deref(), Some("17.2"));
        assert_eq!(da.data.notifications_enabled, Some(true));
        assert_eq!(
            da.data.custom,
            BTreeMap::from([("theme".to_string(), Value::Str("dark".into()))])
        );
        let db = b.device.as_ref().unwrap();
        // push_registration_enabled = false: the pushRegistrationId is the device id, no token.
        assert_eq!((db.id.as_str(), db.token.as_deref()), ("dev-2", None));
        // A version stays text: `14`, not the number 14.
        assert_eq!(db.data.os_version.as_deref(), Some("14"));
        assert_eq!(b.user_id, None);
    }

    #[test]
    fn a_camel_case_events_table_needs_no_mapping() {
        let (_d, file) = csv(
            "userId,deviceId,event,eventTime,messageId,amount,currency\n\
             u1,d1,Purchase,2026-01-02T03:04:05Z,m1,9.99,EUR\n\
             ,d2,AppLaunch,2026-01-02T03:04:06.5+01:00,m2,,\n",
        );
        let out = run(&file, Kind::Events, &Mapping::default());
        assert_eq!(out.reasons(), Vec::<String>::new());
        let [a, b] = &out.calls[..] else { panic!() };
        assert_eq!(track(a).0, "Purchase");
        assert_eq!(
            track(a).1,
            &BTreeMap::from([
                ("amount".to_string(), Value::Num(9.99)),
                ("currency".to_string(), Value::Str("EUR".into())),
            ])
        );
        assert_eq!(a.message_id.as_deref(), Some("m1"));
        assert_eq!(a.device.as_ref().unwrap().id, "d1");
        assert_eq!(a.time, Some(T0));
        assert_eq!(b.user_id, None);
        assert_eq!(b.time, Some(T0 + 1_500_000 - 3_600_000_000));
        assert!(track(b).1.is_empty(), "empty cells are null");
    }

    #[test]
    fn a_snake_case_events_table_with_alternative_names() {
        let (_d, file) = csv(
            "external_user_id,installation_id,event_name,timestamp,event_id,page\n\
             u1,i1,view,2026-01-02T03:04:05Z,e1,home\n",
        );
        let out = run(&file, Kind::Events, &Mapping::default());
        let [a] = &out.calls[..] else {
            panic!("{:?}", out.reasons())
        };
        assert_eq!(track(a).0, "view");
        assert_eq!(a.user_id.as_deref(), Some("u1"));
        assert_eq!(a.device.as_ref().unwrap().id, "i1");
        assert_eq!(a.message_id.as_deref(), Some("e1"));
        assert_eq!(
            track(a).1,
            &BTreeMap::from([("page".to_string(), Value::Str("home".into()))])
        );
    }

    #[test]
    fn a_clickstream_identifies_a_user_only_when_their_attributes_change() {
        let (_d, file) = csv(
            "user_id,session_id,event,timestamp,platform,acquisition_channel\n\
             u1,s1,add_to_cart,2026-01-02T03:04:05Z,ios,ads\n\
             u1,s1,purchase,2026-01-02T03:04:06Z,ios,ads\n\
             u2,s2,add_to_cart,2026-01-02T03:04:07Z,android,\n\
             u1,s3,add_to_cart,2026-01-02T03:04:08Z,ios,ads\n\
             u1,s4,add_to_cart,2026-01-02T03:04:09Z,ios,email\n\
             u2,s5,purchase,2026-01-02T03:04:10Z,,\n",
        );
        let mapping = Mapping {
            person_columns: ColumnSpec::parse_list("platform,acquisition_channel").unwrap(),
            ..Mapping::default()
        };
        let out = run(&file, Kind::Events, &mapping);
        assert_eq!(out.reasons(), Vec::<String>::new());
        let summary: Vec<String> = out
            .calls
            .iter()
            .map(|c| match &c.action {
                Action::Identify { traits } => format!(
                    "identify {} {:?}",
                    c.user_id.as_deref().unwrap(),
                    traits.attributes.custom.values().collect::<Vec<_>>()
                ),
                Action::Track { event, .. } => format!("{event} {}", c.line_of()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                r#"identify u1 [Str("ads"), Str("ios")]"#,
                "add_to_cart 2",
                "purchase 3",
                r#"identify u2 [Str("android")]"#,
                "add_to_cart 4",
                "add_to_cart 5",
                r#"identify u1 [Str("email"), Str("ios")]"#,
                "add_to_cart 6",
                "purchase 7",
            ]
        );
        let identify = &out.calls[0];
        assert_eq!(identify.time, out.calls[1].time, "same time as its track");
        assert_eq!(identify.device, None);
        assert_eq!(identify.message_id, None);
        // session_id is named by no list: it is an event property, not dropped.
        assert_eq!(
            track(&out.calls[1]).1,
            &BTreeMap::from([("session_id".to_string(), Value::Str("s1".into()))])
        );
    }

    impl Call {
        fn line_of(&self) -> u64 {
            self.origin.line
        }
    }

    #[test]
    fn a_clickstream_replays_into_profiles() {
        let (_d, file) = csv("user_id,event,timestamp,plan,visits\n\
             u1,add_to_cart,2026-01-02T03:04:05Z,pro,1\n\
             u1,purchase,2026-01-02T03:04:06Z,pro,1\n\
             u2,add_to_cart,2026-01-02T03:04:07Z,free,3\n");
        let mapping = Mapping {
            person_columns: ColumnSpec::parse_list("plan,visits:number").unwrap(),
            ..Mapping::default()
        };
        let out = run(&file, Kind::Events, &mapping);
        let mut replay = Replay::new(
            ExistingState::default(),
            ConflictPolicy::Reject,
            Catalog::default(),
        )
        .unwrap();
        let mut seen = HashSet::new();
        for call in out.calls {
            replay.apply(call, &mut seen).unwrap();
        }
        let p = replay.finish();
        assert_eq!(p.report.rejected(), 0);
        let u1 = p
            .persons
            .iter()
            .find(|r| r.external_user_id.as_deref() == Some("u1"))
            .unwrap();
        assert_eq!(u1.attributes.custom["plan"], Value::Str("pro".into()));
        assert_eq!(u1.attributes.custom["visits"], Value::Num(1.0));
        let rows: usize = p.events.iter().map(|e| e.rows.len()).sum();
        assert_eq!(rows, 3);
    }

    /// A header and `n` rows of `row(i)`.
    fn table(header: &str, n: usize, row: impl Fn(usize) -> String) -> String {
        let mut text = format!("{header}\n");
        for i in 0..n {
            text.push_str(&row(i));
            text.push('\n');
        }
        text
    }

    #[test]
    fn infers_types_from_the_first_rows_and_rejects_later_mismatches() {
        let mut text = table(
            "user_id,event,timestamp,n,flag,day,at,word,code",
            SAMPLE_ROWS,
            |i| {
                format!(
                    "u{i},e,2026-01-02T03:04:05Z,{i}.5,TRUE,2026-01-02,2026-01-02T03:04:05Z,w,0{i}"
                )
            },
        );
        text.push_str("u,e,2026-01-02T03:04:05Z,x,true,2026-01-02,2026-01-02T03:04:05Z,w,1\n");
        text.push_str("u,e,2026-01-02T03:04:05Z,1,maybe,2026-01-02,2026-01-02T03:04:05Z,w,1\n");
        text.push_str("u,e,2026-01-02T03:04:05Z,1,false,2026-13-02,2026-01-02T03:04:05Z,w,1\n");
        text.push_str("u,e,2026-01-02T03:04:05Z,1,false,2026-01-02,yesterday,w,1\n");
        text.push_str("u,e,2026-01-02T03:04:05Z,1e3,false,,,,\n");
        let (_d, file) = csv(&text);
        let out = run(&file, Kind::Events, &Mapping::default());
        let props = track(&out.calls[1]).1;
        assert_eq!(props["n"], Value::Num(1.5));
        assert_eq!(props["flag"], Value::Bool(true));
        assert_eq!(
            props["day"],
            Value::Date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap())
        );
        assert_eq!(props["at"], Value::Time(T0));
        assert_eq!(props["word"], Value::Str("w".into()));
        // `01`, `00`: codes keep their zeros, as strings.
        assert_eq!(props["code"], Value::Str("01".into()));
        let why = "the type inferred from the first 1000 rows";
        assert_eq!(
            out.reasons(),
            [
                format!("t.csv:1002: column `n`: `x` is not a number (number: {why})"),
                format!(
                    "t.csv:1003: column `flag`: `maybe` is not a boolean (true or false) \
                     (boolean: {why})"
                ),
                format!(
                    "t.csv:1004: column `day`: `2026-13-02` is not a date (YYYY-MM-DD) \
                     (date: {why})"
                ),
                format!(
                    "t.csv:1005: column `at`: `yesterday` is not an RFC 3339 timestamp \
                     (timestamp: {why})"
                ),
            ]
        );
        let last = track(out.calls.last().unwrap()).1;
        assert_eq!(last["n"], Value::Num(1000.0));
        assert_eq!(last.get("code"), None, "empty is null");
        assert_eq!(out.calls.len(), SAMPLE_ROWS + 1);
    }

    #[test]
    fn explicit_types_override_inference() {
        let (_d, file) = csv("user_id,event,timestamp,zip,code,tags,when\n\
             u1,e,2026-01-02T03:04:05Z,12345,007,a;b,2026-01-02\n\
             u1,e,2026-01-02T03:04:05Z,54321,x,\"[\"\"c\"\",\"\"d\"\"]\",2026-01-02T03:04:05Z\n");
        let mapping = Mapping {
            property_columns: ColumnSpec::parse_list("zip:string,code:number,when:timestamp")
                .unwrap(),
            person_columns: ColumnSpec::parse_list("tags").unwrap(),
            ..Mapping::default()
        };
        let out = run(&file, Kind::Events, &mapping);
        let props = track(&out.calls[1]).1;
        assert_eq!(props["zip"], Value::Str("12345".into()));
        assert_eq!(
            props["code"],
            Value::Num(7.0),
            "the mapping says number: 007 is 7"
        );
        assert_eq!(
            props["when"],
            Value::Time(T0 - (3 * 3600 + 4 * 60 + 5) * 1_000_000)
        );
        assert_eq!(traits(&out.calls[0]).attributes.tags, strs(&["a", "b"]));
        assert_eq!(
            out.reasons(),
            ["t.csv:3: column `code`: `x` is not a number (number: the type the mapping gives)"]
        );
    }

    #[test]
    fn each_bad_row_is_a_reject_naming_its_line() {
        let mut bytes = b"user_id,device_id,event,timestamp\n\
            u1,d1,e,2026-01-02T03:04:05Z\n\
            u1,d1,e\n\
            u1,d1,e,2026-01-02T03:04:05Z,extra\n\
            ,,e,2026-01-02T03:04:05Z\n\
            u1,d1,,2026-01-02T03:04:05Z\n\
            u1,d1,e,\n\
            u1,d1,e,02/01/2026\n\
            u1,d1,e,12026-01-02T03:04:05Z\n"
            .to_vec();
        bytes.extend_from_slice(b"u\xff1,d1,e,2026-01-02T03:04:05Z\n");
        bytes.extend_from_slice(b"\"u1\nstill u1\",d1,e,2026-01-02T03:04:05Z\n");
        bytes.extend_from_slice(b"u2,d2,e,2026-01-02T03:04:05Z\n");
        let dir = tempfile::tempdir().unwrap();
        let file = source(dir.path(), "t.csv", &bytes);
        let out = run(&file, Kind::Events, &Mapping::default());
        assert_eq!(
            out.reasons(),
            [
                "t.csv:3: 3 fields where the header has 4",
                "t.csv:4: 5 fields where the header has 4",
                "t.csv:5: missing person id: the row has no value in `user_id`, `device_id`",
                "t.csv:6: missing event name (column `event`)",
                "t.csv:7: missing event time (column `timestamp`)",
                "t.csv:8: column `timestamp`: `02/01/2026` is not an RFC 3339 timestamp",
                "t.csv:9: column `timestamp`: `12026-01-02T03:04:05Z` is not an RFC 3339 \
                 timestamp",
                "t.csv:10: column `user_id`: invalid UTF-8",
            ]
        );
        let lines: Vec<u64> = out.calls.iter().map(|c| c.origin.line).collect();
        assert_eq!(
            lines,
            [2, 11, 13],
            "a quoted newline: the record starts on line 11"
        );
        assert_eq!(out.calls[1].user_id.as_deref(), Some("u1\nstill u1"));

        // The rejects file gets the rows whole.
        let rows = read_rows_at(&file, &[10, 3, 4, 99, 11]).unwrap();
        assert_eq!(
            rows,
            [
                (3, "u1,d1,e".to_string()),
                (4, "u1,d1,e,2026-01-02T03:04:05Z,extra".to_string()),
                (10, "u\u{fffd}1,d1,e,2026-01-02T03:04:05Z".to_string()),
                (11, "\"u1\nstill u1\",d1,e,2026-01-02T03:04:05Z".to_string()),
            ]
        );
    }

    #[test]
    fn person_and_installation_rows_need_their_ids() {
        let (_d, file) = csv("user_id,device_id,first_name\nu1,d1,Ada\n,d2,Bo\nu3,,Cy\n");
        let out = run(&file, Kind::Persons, &now());
        assert_eq!(
            out.reasons(),
            ["t.csv:3: missing person id (column `user_id`)"]
        );
        // A persons table with a device column lists the device on the person.
        let Action::UpsertPerson { devices, .. } = &out.calls[0].action else {
            panic!()
        };
        assert_eq!(devices[0].device.id, "d1");
        assert_eq!(
            out.calls[0].time,
            Some(T0),
            "no time column: the default time"
        );
        let Action::UpsertPerson { devices, .. } = &out.calls[1].action else {
            panic!()
        };
        assert!(devices.is_empty());

        let out = run(&file, Kind::Installations, &now());
        assert_eq!(
            out.reasons(),
            ["t.csv:4: missing device id (column `device_id`)"]
        );
        // first_name is a person attribute: an installation row sends it by an identify.
        let kinds: Vec<_> = out.calls.iter().map(|c| &c.action).collect();
        assert!(matches!(
            kinds[..],
            [
                Action::Identify { .. },
                Action::UpsertInstallation,
                Action::Identify { .. },
                Action::UpsertInstallation
            ]
        ));
        // Without a userId the identify goes by the device.
        assert_eq!(out.calls[2].device.as_ref().unwrap().id, "d2");
    }

    #[test]
    fn reads_gzipped_csv() {
        let dir = tempfile::tempdir().unwrap();
        let text = table("user_id,event,timestamp", 5000, |i| {
            format!("u{},e{},2026-01-02T03:04:05Z", i % 7, i % 3)
        });
        // Two gzip members, as `cat a.gz b.gz` makes.
        let (a, b) = text.split_at(text.len() / 2 + 3);
        let mut gz = Vec::new();
        for part in [a, b] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let path = dir.path().join("t.csv.gz");
        std::fs::write(&path, gz).unwrap();
        let file = SourceFile {
            path,
            name: "t.csv.gz".into(),
            format: Format::Csv,
            gzip: true,
        };
        let out = run(&file, Kind::Events, &Mapping::default());
        assert_eq!(out.reasons(), Vec::<String>::new());
        assert_eq!(out.calls.len(), 5000);
        // Every row as written, the one across the members' boundary included.
        for (i, call) in out.calls.iter().enumerate() {
            assert_eq!(call.origin.line, i as u64 + 2);
            assert_eq!(
                call.user_id.as_deref(),
                Some(format!("u{}", i % 7).as_str())
            );
            assert_eq!(track(call).0, format!("e{}", i % 3));
        }
        // The last row, i = 4999 (line 5001): 4999 % 7 = 1, 4999 % 3 = 1.
        assert_eq!(track(&out.calls[4999]).0, "e1");
        assert_eq!(
            headers(&file).unwrap(),
            strs(&["user_id", "event", "timestamp"])
        );
        assert_eq!(
            read_rows_at(&file, &[5001]).unwrap()[0].1,
            "u1,e1,2026-01-02T03:04:05Z"
        );

        // A corrupt stream is an error for the file, not a panic.
        let broken = source(dir.path(), "b.csv", b"");
        std::fs::write(&broken.path, b"\x1f\x8b\x08\x00garbage").unwrap();
        let broken = SourceFile {
            gzip: true,
            ..broken
        };
        assert!(read(
            &broken,
            Kind::Events,
            &Mapping::default(),
            &mut Collect::default()
        )
        .is_err());
    }

    fn write_parquet(dir: &Path, name: &str, batch: RecordBatch) -> SourceFile {
        let path = dir.join(name);
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        SourceFile {
            path,
            name: name.into(),
            format: Format::Parquet,
            gzip: false,
        }
    }

    fn parquet_events(dir: &Path) -> SourceFile {
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.append_value([Some("a"), Some("b")]);
        tags.append_null();
        tags.append_value([Some("c")]);
        let platform: DictionaryArray<Int32Type> =
            [Some("ios"), None, Some("android")].into_iter().collect();
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "user_id",
                Arc::new(Int64Array::from(vec![Some(17), Some(18), None])),
            ),
            (
                "event",
                Arc::new(StringArray::from(vec!["buy", "view", "buy"])),
            ),
            (
                "timestamp",
                Arc::new(
                    arrow::array::PrimitiveArray::<TimestampMillisecondType>::from(vec![
                        T0 / 1000,
                        T0 / 1000 + 1,
                        T0 / 1000 + 2,
                    ]),
                ),
            ),
            ("platform", Arc::new(platform)),
            ("tags", Arc::new(tags.finish())),
            (
                "n",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
            ),
            ("price", Arc::new(StringArray::from(vec!["1.5", "x", "2"]))),
        ];
        write_parquet(
            dir,
            "e.parquet",
            RecordBatch::try_from_iter(columns).unwrap(),
        )
    }

    #[test]
    fn reads_parquet_with_its_types() {
        let dir = tempfile::tempdir().unwrap();
        let file = parquet_events(dir.path());
        assert_eq!(detect(&headers(&file).unwrap()), Some(Kind::Events));
        let mapping = Mapping {
            person_columns: ColumnSpec::parse_list("platform,tags").unwrap(),
            property_columns: ColumnSpec::parse_list("price:number").unwrap(),
            ..Mapping::default()
        };
        let out = run(&file, Kind::Events, &mapping);
        assert_eq!(
            out.reasons(),
            [
                "e.parquet:2: column `price`: `x` is not a number (number: the type the \
                 mapping gives)",
                "e.parquet:3: missing person id: the row has no value in `user_id`",
            ]
        );
        let [identify, buy] = &out.calls[..] else {
            panic!("{:?}", out.calls)
        };
        assert_eq!(
            identify.user_id.as_deref(),
            Some("17"),
            "an integer id is its digits"
        );
        let t = traits(identify);
        assert_eq!(t.attributes.tags, strs(&["a", "b"]));
        assert_eq!(t.attributes.custom["platform"], Value::Str("ios".into()));
        assert_eq!(buy.time, Some(T0), "Timestamp(ms, None) is µs UTC");
        assert_eq!(track(buy).1["n"], Value::Num(1.0));
        assert_eq!(track(buy).1["price"], Value::Num(1.5));

        let rows = read_rows_at(&file, &[3, 2]).unwrap();
        assert_eq!(
            rows[1],
            (
                3,
                r#"{"user_id":null,"event":"buy","timestamp":"2026-01-02T03:04:05.002Z","platform":"android","tags":["c"],"n":3,"price":"2"}"#
                    .to_string()
            )
        );
        assert_eq!(rows[0].0, 2);
    }

    #[test]
    fn parquet_text_columns_are_inferred_and_type_mismatches_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "external_user_id",
                Arc::new(StringArray::from(vec!["u1", "u2"])),
            ),
            (
                "modified_at",
                Arc::new(StringArray::from(vec!["2026-01-02T03:04:05Z"; 2])),
            ),
            ("score", Arc::new(StringArray::from(vec!["1", "2.5"]))),
            ("vip", Arc::new(BooleanArray::from(vec![true, false]))),
            ("first_name", Arc::new(Int64Array::from(vec![1, 2]))),
        ];
        let file = write_parquet(
            dir.path(),
            "p.parquet",
            RecordBatch::try_from_iter(columns).unwrap(),
        );
        let out = run(&file, Kind::Persons, &Mapping::default());
        assert_eq!(out.reasons(), Vec::<String>::new());
        let t = traits(&out.calls[1]);
        assert_eq!(t.attributes.custom["score"], Value::Num(2.5));
        assert_eq!(t.attributes.custom["vip"], Value::Bool(false));
        assert_eq!(
            t.attributes.first_name.as_deref(),
            Some("2"),
            "a number as text"
        );

        let mapping = Mapping {
            person_columns: ColumnSpec::parse_list("vip:number").unwrap(),
            ..Mapping::default()
        };
        assert_eq!(
            err(&file, Kind::Persons, &mapping),
            "p.parquet: column `vip` is Boolean, which cannot be a number"
        );
        let mapping = Mapping {
            time: Some("vip".into()),
            ..Mapping::default()
        };
        assert!(err(&file, Kind::Persons, &mapping).contains("cannot be a time"));
    }

    #[test]
    fn an_event_column_outside_an_events_table_is_an_error_unless_mapped() {
        let (_d, file) = csv("user_id,event,created_at\nu1,signup,2026-01-02T03:04:05Z\n");
        let m = |json: &str| Mapping {
            default_time: Some(T0),
            ..Mapping::from_json("m.json", json).unwrap()
        };
        assert_eq!(
            err(
                &file,
                Kind::Installations,
                &m(r#"{"device_id": "user_id"}"#)
            ),
            "t.csv: an event column in an installations table (events are read from events \
             tables)"
        );
        // Listed as an attribute, or ignored, it is no event column.
        let out = run(
            &file,
            Kind::Persons,
            &m(r#"{"person_columns": ["event=firstEvent"]}"#),
        );
        assert_eq!(out.reasons(), Vec::<String>::new());
        assert_eq!(
            traits(&out.calls[0]).attributes.custom,
            BTreeMap::from([("firstEvent".to_string(), Value::Str("signup".into()))])
        );
        let out = run(&file, Kind::Persons, &m(r#"{"ignore_columns": ["event"]}"#));
        assert_eq!(out.reasons(), Vec::<String>::new());
        assert!(traits(&out.calls[0]).attributes.custom.is_empty());
        // In an installations table, createdAt stays the installation's.
        let (_d, file) = csv("device_id,created_at,email\nd1,2026-01-02,a@x.io\n");
        let out = run(&file, Kind::Installations, &now());
        assert_eq!(out.reasons(), Vec::<String>::new());
        let [identify, installation] = &out.calls[..] else {
            panic!("{:?}", out.calls)
        };
        assert_eq!(traits(identify).emails, strs(&["a@x.io"]));
        assert_eq!(
            installation.device.as_ref().unwrap().data.custom,
            BTreeMap::from([(
                "created_at".to_string(),
                Value::Date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap())
            )])
        );
    }

    #[test]
    fn mapping_errors_come_before_any_row() {
        let (_d, file) = csv("user_id,event,timestamp,first_name,firstName\nu1,e,x,a,b\n");
        let m = |json: &str| Mapping::from_json("m.json", json).unwrap();
        let e = |json: &str| err(&file, Kind::Events, &m(json));
        assert_eq!(
            e(r#"{"person_id": "uid"}"#),
            "t.csv: the mapping's person id is column `uid`, which the file does not have \
             (its columns: user_id, event, timestamp, first_name, firstName)"
        );
        assert_eq!(
            e(r#"{"person_columns": ["first_name", "firstName"]}"#),
            "t.csv: columns `first_name` and `firstName` both give person attribute `firstName`"
        );
        // Unlisted, both become the property `firstName`: still one too many.
        assert_eq!(
            e("{}"),
            "t.csv: columns `first_name` and `firstName` both give event property `firstName`"
        );
        assert_eq!(
            e(r#"{"installation_columns": ["first_name=primaryDevice"]}"#),
            "t.csv: column `first_name`: installation attribute `primaryDevice` is derived by \
             the import and cannot be imported (rename the column to import it as a custom \
             attribute: `column=name`)"
        );
        assert_eq!(
            e(r#"{"person_columns": ["user_id=externalUserId"]}"#),
            "t.csv: column `user_id`: externalUserId is the person id: map it with `person_id`"
        );
        assert_eq!(
            e(r#"{"person_columns": ["first_name:number"], "ignore_columns": ["firstName"]}"#),
            "t.csv: column `first_name`: person attribute `first_name` is a standard attribute \
             of type string, not number"
        );
        assert_eq!(
            e(r#"{"property_columns": ["first_name:list"], "ignore_columns": ["firstName"]}"#),
            "t.csv: column `first_name`: event property `first_name` cannot be a list"
        );
        assert_eq!(
            e(r#"{"installation_columns": ["first_name"], "ignore_columns": ["firstName"]}"#),
            "t.csv: an events table needs a device id column; none of the header's columns is \
             one (name it with the mapping's `device_id`)"
        );
        assert_eq!(
            e(r#"{"time": "first_name", "ignore_columns": ["first_name"]}"#),
            "t.csv: column `first_name` is both ignored and the time"
        );
        assert_eq!(
            e(r#"{"ignore_columns": ["nope"]}"#),
            "t.csv: the mapping's ignored column is column `nope`, which the file does not \
             have (its columns: user_id, event, timestamp, first_name, firstName)"
        );
        assert_eq!(
            err(
                &file,
                Kind::Persons,
                &m(r#"{"ignore_columns": ["firstName"]}"#)
            ),
            "t.csv: an event column in a persons table (events are read from events tables)"
        );

        let (_d, file) = csv("user_id,event\nu1,e\n");
        assert_eq!(
            err(&file, Kind::Events, &Mapping::default()),
            "t.csv: an events table needs an event time column; none of the header's columns \
             is one (name it with the mapping's `time`)"
        );
        let (_d, file) = csv("user_id,first_name\nu1,Ada\n");
        assert_eq!(
            err(&file, Kind::Persons, &Mapping::default()),
            "t.csv: a persons table needs a time column; none of the header's columns is one \
             (name it with the mapping's `time`)"
        );
        assert_eq!(
            err(
                &file,
                Kind::Persons,
                &m(r#"{"property_columns": ["first_name"]}"#)
            ),
            "t.csv: column `first_name` is listed as an event property, but this is a persons \
             table"
        );
        let (_d, file) = csv("a,b,a\n1,2,3\n");
        assert_eq!(
            err(&file, Kind::Events, &Mapping::default()),
            "t.csv: column `a` appears twice in the header"
        );
        let (_d, file) = csv("");
        assert_eq!(
            err(&file, Kind::Persons, &now()),
            "t.csv: the file has no header"
        );
    }

    #[test]
    fn hostile_input_ends_in_rejects_or_an_error_never_a_panic() {
        let inputs: [&[u8]; 9] = [
            b"user_id,event,timestamp\n\"unterminated,e,2026-01-02T03:04:05Z\n",
            b"user_id,event,timestamp\nu1,e,9999-12-31T23:59:59Z\nu1,e,1969-12-31T23:59:59Z\n",
            b"user_id,event,timestamp,n\nu1,e,2026-01-02T03:04:05Z,1e999\n",
            b"user_id,event,timestamp\r\nu1\0,e\r,2026-01-02T03:04:05Z\r\n\r\n",
            b"\xff\xfe,event\nu1,e\n",
            b"user_id,event,timestamp,l\nu1,e,2026-01-02T03:04:05Z,[[[[[[[[[[[[[[[[[\n",
            b"user_id,event,timestamp\nu1,e,+999999-01-01T00:00:00Z\n",
            b"\n\n\n",
            b"user_id,event,timestamp\n,,\n,,,\n",
        ];
        let dir = tempfile::tempdir().unwrap();
        for (i, bytes) in inputs.iter().enumerate() {
            let file = source(dir.path(), &format!("h{i}.csv"), bytes);
            let mapping = Mapping {
                property_columns: if i == 5 {
                    ColumnSpec::parse_list("l:string").unwrap()
                } else {
                    vec![]
                },
                ..Mapping::default()
            };
            let mut sink = Collect::default();
            let _ = read(&file, Kind::Events, &mapping, &mut sink);
            let _ = read_rows_at(&file, &[0, 1, 2, 3, u64::MAX]);
        }
        // Out-of-range times pass through as times: the replay rejects them with its reason.
        let file = source(dir.path(), "y.csv", inputs[1]);
        let out = run(&file, Kind::Events, &Mapping::default());
        assert_eq!(out.calls[1].time, Some(-1_000_000));
        // A number too large for f64 is not a number; the column is text.
        let file = source(dir.path(), "n.csv", inputs[2]);
        let out = run(&file, Kind::Events, &Mapping::default());
        assert_eq!(track(&out.calls[0]).1["n"], Value::Str("1e999".into()));
    }

    #[test]
    fn a_record_past_the_size_limit_ends_the_file_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        let mut f = io::BufWriter::new(File::create(&path).unwrap());
        f.write_all(b"user_id,event,timestamp\nu1,e,2026-01-02T03:04:05Z\n\"")
            .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..=(MAX_RECORD_BYTES >> 20) {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\",e,2026-01-02T03:04:05Z\n").unwrap();
        drop(f);
        let file = SourceFile {
            path,
            name: "big.csv".into(),
            format: Format::Csv,
            gzip: false,
        };
        let mut sink = Collect::default();
        let e = read(&file, Kind::Events, &Mapping::default(), &mut sink).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("big.csv: after line 2: a record longer than 64 MiB"),
            "{e}"
        );
        assert_eq!(sink.calls.len(), 1, "the rows before it were read");
    }

    #[test]
    fn a_bad_row_at_the_end_of_a_long_file_is_just_that_row() {
        let mut text = table("user_id,event,timestamp,n", 20_000, |i| {
            format!("u{},e,2026-01-02T03:04:05Z,{i}", i % 100)
        });
        text.push_str("u1,e,2026-01-02T03:04:05Z,oops\n");
        let (_d, file) = csv(&text);
        let out = run(&file, Kind::Events, &Mapping::default());
        assert_eq!(out.calls.len(), 20_000);
        assert_eq!(
            out.reasons(),
            [
                "t.csv:20002: column `n`: `oops` is not a number (number: the type inferred \
              from the first 1000 rows)"
            ]
        );
    }
}
