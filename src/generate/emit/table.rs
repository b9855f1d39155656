//! The published snapshot as the emitters read it: persons and installations whole (their
//! columns, not their rows, so a million persons stay compact), and the event history one
//! partition period at a time, in time order. Everything is read through the parquet crate's
//! Arrow reader from the files the manifest lists.

use super::json::Obj;
use crate::catalog::{Catalog, Entity, EventDef, EVENT_TIME, INSTALLATION_ID, PERSON_ID};
use crate::error::{Error, IoContext, Result};
use crate::store::manifest::{DataFile, EventFile};
use crate::store::Snapshot;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Int32Type, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use std::collections::HashMap;
use std::path::Path;

/// One column of one batch, typed for reading row by row.
pub enum Column {
    Str(StringArray),
    /// A dictionary of strings (how the store keeps few-valued ones): keys and values.
    Dict(Int32Array, StringArray),
    Num(Float64Array),
    Int(Int64Array),
    Bool(BooleanArray),
    Date(Date32Array),
    Time(TimestampMicrosecondArray),
    /// A list of strings, and the strings of all its rows.
    List(ListArray, StringArray),
}

impl Column {
    fn of(array: &ArrayRef, name: &str, path: &Path) -> Result<Column> {
        let unreadable = || {
            Error::data(
                path,
                format!(
                    "column `{name}` has type {}, which the emitters do not read",
                    array.data_type()
                ),
            )
        };
        Ok(match array.data_type() {
            DataType::Utf8 => Column::Str(array.as_string::<i32>().clone()),
            DataType::Dictionary(key, value)
                if **key == DataType::Int32 && **value == DataType::Utf8 =>
            {
                let d = array.as_dictionary::<Int32Type>();
                Column::Dict(d.keys().clone(), d.values().as_string::<i32>().clone())
            }
            DataType::Float64 => Column::Num(array.as_primitive().clone()),
            DataType::Int64 => Column::Int(array.as_primitive().clone()),
            DataType::Boolean => Column::Bool(array.as_boolean().clone()),
            DataType::Date32 => Column::Date(array.as_primitive().clone()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Column::Time(array.as_primitive().clone())
            }
            DataType::List(item) if *item.data_type() == DataType::Utf8 => {
                let list = array.as_list::<i32>().clone();
                let values = list.values().as_string::<i32>().clone();
                Column::List(list, values)
            }
            _ => return Err(unreadable()),
        })
    }

    fn array(&self) -> &dyn Array {
        match self {
            Column::Str(a) => a,
            Column::Dict(k, _) => k,
            Column::Num(a) => a,
            Column::Int(a) => a,
            Column::Bool(a) => a,
            Column::Date(a) => a,
            Column::Time(a) => a,
            Column::List(a, _) => a,
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        self.array().is_null(row)
    }

    pub fn str(&self, row: usize) -> Option<&str> {
        if self.is_null(row) {
            return None;
        }
        match self {
            Column::Str(a) => Some(a.value(row)),
            Column::Dict(k, v) => Some(v.value(k.value(row) as usize)),
            _ => None,
        }
    }

    pub fn int(&self, row: usize) -> Option<i64> {
        match self {
            Column::Int(a) if !a.is_null(row) => Some(a.value(row)),
            _ => None,
        }
    }

    pub fn bool(&self, row: usize) -> Option<bool> {
        match self {
            Column::Bool(a) if !a.is_null(row) => Some(a.value(row)),
            _ => None,
        }
    }

    pub fn date(&self, row: usize) -> Option<i32> {
        match self {
            Column::Date(a) if !a.is_null(row) => Some(a.value(row)),
            _ => None,
        }
    }

    /// A timestamp in microseconds since the epoch.
    pub fn micros(&self, row: usize) -> Option<i64> {
        match self {
            Column::Time(a) if !a.is_null(row) => Some(a.value(row)),
            _ => None,
        }
    }

    /// The strings of a list (none when the list is null).
    pub fn strs(&self, row: usize) -> Vec<&str> {
        match self {
            Column::List(list, values) if !list.is_null(row) => {
                let o = list.value_offsets();
                (o[row] as usize..o[row + 1] as usize)
                    .filter(|&i| !values.is_null(i))
                    .map(|i| values.value(i))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Writes the value under `key` as JSON has it: dates as `YYYY-MM-DD`, times as RFC 3339,
    /// lists as arrays. Nothing for a null.
    pub fn write(&self, o: &mut Obj, key: &str, row: usize) {
        if self.is_null(row) {
            return;
        }
        match self {
            Column::Str(_) | Column::Dict(..) => o.opt_str(key, self.str(row)),
            Column::Num(a) => o.num(key, a.value(row)),
            Column::Int(a) => o.int(key, a.value(row)),
            Column::Bool(a) => o.bool(key, a.value(row)),
            Column::Date(a) => o.date(key, a.value(row)),
            Column::Time(a) => o.time(key, a.value(row)),
            Column::List(..) => o.strs(key, &self.strs(row)),
        }
    }
}

/// Batches of named columns read from Parquet files, addressed by row number.
pub struct Table {
    /// Per batch, the columns in the order they were asked for.
    batches: Vec<Vec<Column>>,
    /// Where each row is: (batch, row in the batch).
    locs: Vec<(u32, u32)>,
}

/// One row of a [`Table`]; columns by the position they were asked for.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    cols: &'a [Column],
    pub row: usize,
}

impl<'a> Row<'a> {
    pub fn col(&self, i: usize) -> &'a Column {
        &self.cols[i]
    }
    pub fn str(&self, i: usize) -> Option<&'a str> {
        self.cols[i].str(self.row)
    }
    pub fn int(&self, i: usize) -> Option<i64> {
        self.cols[i].int(self.row)
    }
    pub fn bool(&self, i: usize) -> Option<bool> {
        self.cols[i].bool(self.row)
    }
    pub fn date(&self, i: usize) -> Option<i32> {
        self.cols[i].date(self.row)
    }
    pub fn micros(&self, i: usize) -> Option<i64> {
        self.cols[i].micros(self.row)
    }
    pub fn strs(&self, i: usize) -> Vec<&'a str> {
        self.cols[i].strs(self.row)
    }
    pub fn write(&self, o: &mut Obj, key: &str, i: usize) {
        self.cols[i].write(o, key, self.row)
    }
}

impl Table {
    fn load(snapshot: &Snapshot, files: &[DataFile], columns: &[String]) -> Result<Table> {
        let mut table = Table {
            batches: Vec::new(),
            locs: Vec::new(),
        };
        for f in files {
            let path = snapshot.path(&f.path);
            for batch in read(&path, columns)? {
                let batch = batch?;
                let b = table.batches.len() as u32;
                table
                    .locs
                    .extend((0..batch.num_rows() as u32).map(|r| (b, r)));
                table.batches.push(columns_of(&batch, columns, &path)?);
            }
        }
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.locs.len()
    }

    pub fn row(&self, i: usize) -> Row<'_> {
        let (b, r) = self.locs[i];
        Row {
            cols: &self.batches[b as usize],
            row: r as usize,
        }
    }
}

/// The batches of a Parquet file, holding only `columns` (by name).
fn read(
    path: &Path,
    columns: &[String],
) -> Result<impl Iterator<Item = Result<RecordBatch>> + use<>> {
    let broken = |e: &dyn std::fmt::Display| Error::data(path, format!("unreadable Parquet: {e}"));
    let file = std::fs::File::open(path).at(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| broken(&e))?;
    let schema = builder.schema().clone();
    let roots = columns
        .iter()
        .map(|c| {
            schema
                .index_of(c)
                .map_err(|_| Error::data(path, format!("column `{c}` is missing")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|e| broken(&e))?;
    let path = path.to_path_buf();
    Ok(reader.map(move |b| b.map_err(|e| Error::data(&path, format!("unreadable Parquet: {e}")))))
}

fn columns_of(batch: &RecordBatch, columns: &[String], path: &Path) -> Result<Vec<Column>> {
    columns
        .iter()
        .map(|c| {
            let array = batch
                .column_by_name(c)
                .ok_or_else(|| Error::data(path, format!("column `{c}` is missing")))?;
            Column::of(array, c, path)
        })
        .collect()
}

/// Persons or installations: a [`Table`] of the standard attributes the emitters name (in the
/// order given) followed by every custom attribute, and an index by id (the first column).
pub struct Entities {
    pub table: Table,
    /// Catalog names of the custom attributes, whose columns follow the standard ones.
    pub custom: Vec<String>,
    /// Position of the first custom column.
    pub first_custom: usize,
    index: HashMap<i64, u32>,
}

impl Entities {
    /// Reads `entity`'s table with the standard attributes `standard` (catalog names;
    /// `person_id` is the installations' owner column), then the custom ones.
    pub fn load(snapshot: &Snapshot, entity: Entity, standard: &[&str]) -> Result<Entities> {
        let m = &snapshot.manifest;
        let catalog: &Catalog = &m.catalog;
        let mut columns = Vec::new();
        for name in standard {
            let column = match catalog.attribute(entity, name, false) {
                Some(a) => a.column.clone(),
                None if *name == PERSON_ID => PERSON_ID.to_string(),
                None => {
                    return Err(Error::data(
                        snapshot.dir(),
                        format!("the catalog lacks the standard {entity} attribute `{name}`"),
                    ))
                }
            };
            columns.push(column);
        }
        let custom: Vec<_> = catalog
            .attributes(entity)
            .iter()
            .filter(|a| a.custom)
            .collect();
        columns.extend(custom.iter().map(|a| a.column.clone()));
        let files = match entity {
            Entity::Person => &m.persons,
            Entity::Installation => &m.installations,
        };
        let table = Table::load(snapshot, files, &columns)?;
        let mut index = HashMap::with_capacity(table.len());
        for i in 0..table.len() {
            let id = table
                .row(i)
                .int(0)
                .ok_or_else(|| Error::data(snapshot.dir(), format!("a {entity} row has no id")))?;
            if index.insert(id, i as u32).is_some() {
                return Err(Error::data(
                    snapshot.dir(),
                    format!("{entity} id {id} occurs twice"),
                ));
            }
        }
        Ok(Entities {
            table,
            custom: custom.iter().map(|a| a.name.clone()).collect(),
            first_custom: standard.len(),
            index,
        })
    }

    /// The row of the entity with this id.
    pub fn find(&self, id: i64) -> Option<usize> {
        self.index.get(&id).map(|&i| i as usize)
    }

    pub fn row(&self, i: usize) -> Row<'_> {
        self.table.row(i)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Writes every non-null custom attribute of row `r` under its catalog name.
    pub fn write_custom(&self, o: &mut Obj, r: Row) {
        for (k, name) in self.custom.iter().enumerate() {
            r.write(o, name, self.first_custom + k);
        }
    }
}

/// Which of the catalog's events an event file holds, by what the emitters do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Install,
    Personalize,
    Depersonalize,
    AppLaunch,
    Uninstall,
    Custom,
}

impl Kind {
    pub fn of(def: &EventDef) -> Kind {
        match def.name.as_str() {
            "Install" => Kind::Install,
            "Personalize" => Kind::Personalize,
            "Depersonalize" => Kind::Depersonalize,
            "AppLaunch" => Kind::AppLaunch,
            "Uninstall" => Kind::Uninstall,
            _ => Kind::Custom,
        }
    }

    /// Order among events of one instant: a device is installed before anything else happens on
    /// it, and signs out before the calls that already belong to its new anonymous person (the
    /// generator gives an event at the depersonalize instant to the new owner).
    fn rank(self) -> u8 {
        match self {
            Kind::Install => 0,
            Kind::Personalize => 1,
            Kind::Depersonalize => 2,
            Kind::AppLaunch | Kind::Custom => 3,
            Kind::Uninstall => 4,
        }
    }
}

/// The properties of one file's batch of events (their time, person and installation are in
/// the [`Entry`]s).
pub struct EventBatch {
    /// Index of the event definition in the catalog.
    pub event: usize,
    /// The definition's properties, in catalog order.
    pub properties: Vec<Column>,
}

/// One event of a period, as sorted: by time, then [`Kind::rank`], installation, event and
/// person, and the position in the files last, so the order is total and the same every run
/// (and equal events of one instant and installation, or person, are neighbours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub time: i64,
    rank: u8,
    /// `i64::MIN` for none.
    pub installation: i64,
    pub event: u16,
    pub person: i64,
    pub batch: u32,
    pub row: u32,
}

/// All events of one partition period (every event file of it, of every event root).
pub struct Period {
    pub batches: Vec<EventBatch>,
    /// Every event, in time order.
    pub order: Vec<Entry>,
}

impl Period {
    pub fn load(snapshot: &Snapshot, files: &[&EventFile]) -> Result<Period> {
        let catalog = &snapshot.manifest.catalog;
        let mut batches = Vec::new();
        let mut order = Vec::new();
        for f in files {
            let path = snapshot.path(&f.file.path);
            let (event, def) = catalog
                .events
                .iter()
                .enumerate()
                .find(|(_, e)| e.name == f.event)
                .ok_or_else(|| Error::data(&path, format!("undeclared event `{}`", f.event)))?;
            let mut columns = vec![
                EVENT_TIME.to_string(),
                PERSON_ID.to_string(),
                INSTALLATION_ID.to_string(),
            ];
            columns.extend(def.properties.iter().map(|p| p.column.clone()));
            let rank = Kind::of(def).rank();
            for batch in read(&path, &columns)? {
                let batch = batch?;
                let mut cols = columns_of(&batch, &columns, &path)?.into_iter();
                let (Some(Column::Time(time)), Some(Column::Int(person)), Some(Column::Int(inst))) =
                    (cols.next(), cols.next(), cols.next())
                else {
                    return Err(Error::data(
                        &path,
                        "event_time, person_id or installation_id has the wrong type",
                    ));
                };
                let b = batches.len() as u32;
                for r in 0..batch.num_rows() {
                    if time.is_null(r) || person.is_null(r) {
                        return Err(Error::data(&path, "an event without time or person"));
                    }
                    order.push(Entry {
                        time: time.value(r),
                        rank,
                        installation: if inst.is_null(r) {
                            i64::MIN
                        } else {
                            inst.value(r)
                        },
                        event: event as u16,
                        person: person.value(r),
                        batch: b,
                        row: r as u32,
                    });
                }
                batches.push(EventBatch {
                    event,
                    properties: cols.collect(),
                });
            }
        }
        order.sort_unstable();
        Ok(Period { batches, order })
    }
}

/// The (person id, installation id) of every event of the named event, over the whole history:
/// a pass over the small Personalize files, to know ahead whom the stream will identify.
pub fn who(snapshot: &Snapshot, event: &str) -> Result<Vec<(i64, Option<i64>)>> {
    let columns = [PERSON_ID.to_string(), INSTALLATION_ID.to_string()];
    let mut out = Vec::new();
    for f in snapshot.manifest.events.iter().filter(|e| e.event == event) {
        let path = snapshot.path(&f.file.path);
        for batch in read(&path, &columns)? {
            let batch = batch?;
            let cols = columns_of(&batch, &columns, &path)?;
            for r in 0..batch.num_rows() {
                if let Some(p) = cols[0].int(r) {
                    out.push((p, cols[1].int(r)));
                }
            }
        }
    }
    Ok(out)
}
