//! What an incremental import starts from, and what it leaves for the next one.
//!
//! The replay needs, besides the persons and installations tables, a few things the data model
//! has no column for: a person's public id, anonymousIds and merged userIds; an installation's
//! device id, push token, last recorded AppLaunch and primary hint; and the de-duplication keys
//! of everything imported. They are kept in the snapshot's `import/` files (listed in the
//! manifest's `import_state`), not in the tables segments read. A parent made by `audience
//! generate` has none: its persons are keyed by externalUserId (anonymous ones by
//! `anon-p<person_id>`), its devices by pushRegistrationId, and the last AppLaunch of each is
//! unknown, so the 30-second rule starts afresh at the first imported launch.

use super::profile::{
    Attributes, Catalog as Types, DeviceData, ExistingState, InstallationRow, InstallationState,
    PersonRow, Value, ValueType as Type,
};
use crate::catalog::{self, AttributeDef, Catalog, Entity, ValueType};
use crate::error::{Error, Result};
use crate::store::manifest::{DataFile, ImportState, Manifest};
use crate::store::publish::Staging;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

const PERSONS_STATE: &str = "import/persons.parquet";
const INSTALLATIONS_STATE: &str = "import/installations.parquet";

/// The replay's types of a catalog: versions are strings to the replay.
pub fn types_of(catalog: &Catalog) -> Types {
    let custom = |entity| -> BTreeMap<String, Type> {
        catalog
            .attributes(entity)
            .iter()
            .filter(|a: &&AttributeDef| a.custom)
            .map(|a| (a.name.clone(), replay_type(a.ty)))
            .collect()
    };
    Types {
        events: catalog
            .events
            .iter()
            .map(|e| {
                let props = e
                    .properties
                    .iter()
                    .map(|p| (p.name.clone(), replay_type(p.ty)))
                    .collect();
                (e.name.clone(), props)
            })
            .collect(),
        person: custom(Entity::Person),
        installation: custom(Entity::Installation),
    }
}

pub fn replay_type(ty: ValueType) -> Type {
    match ty {
        ValueType::String | ValueType::Version => Type::String,
        ValueType::Number => Type::Number,
        ValueType::Boolean => Type::Boolean,
        ValueType::Date => Type::Date,
        ValueType::Timestamp => Type::Timestamp,
        ValueType::StringList => Type::StringList,
    }
}

pub fn catalog_type(ty: Type) -> ValueType {
    match ty {
        Type::String => ValueType::String,
        Type::Number => ValueType::Number,
        Type::Boolean => ValueType::Boolean,
        Type::Date => ValueType::Date,
        Type::Timestamp => ValueType::Timestamp,
        Type::StringList => ValueType::StringList,
    }
}

/// Reads a snapshot file whole, after checking it against its checksum.
pub fn read_file(store: &Path, file: &DataFile) -> Result<Vec<RecordBatch>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let path = store.join(&file.path);
    if let Some(sums) = &file.checksums {
        crate::store::checksum::verify(&path, sums)?;
    }
    let f = std::fs::File::open(&path).map_err(|e| Error::data(&path, e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| Error::data(&path, format!("not a readable Parquet file: {e}")))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::data(&path, e.to_string()))
}

/// The state the replay starts from: the parent's rows and replay state, and its seen keys.
pub fn load(store: &Path, parent: &Manifest) -> Result<(ExistingState, HashSet<u64>)> {
    let catalog = &parent.catalog;
    let mut persons = Vec::with_capacity(parent.row_counts.persons as usize);
    for file in &parent.persons {
        for batch in read_file(store, file)? {
            persons.extend(person_rows(&batch, catalog, &store.join(&file.path))?);
        }
    }
    let mut installations = Vec::with_capacity(parent.row_counts.installations as usize);
    for file in &parent.installations {
        for batch in read_file(store, file)? {
            installations.extend(installation_rows(&batch, catalog, &store.join(&file.path))?);
        }
    }
    let mut seen = HashSet::new();
    if let Some(state) = &parent.import_state {
        apply_person_state(store, &state.persons, &mut persons)?;
        apply_installation_state(store, &state.installations, &mut installations)?;
        for file in &state.seen {
            for batch in read_file(store, file)? {
                let keys = column(&batch, "key", &store.join(&file.path))?;
                let keys = keys
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| bad_type(&store.join(&file.path), "key"))?;
                seen.extend(keys.values().iter().map(|k| *k as u64));
            }
        }
    } else {
        for p in &mut persons {
            p.public_id = match &p.external_user_id {
                Some(id) => id.clone(),
                None => format!("anon-p{}", p.person_id),
            };
        }
    }
    Ok((
        ExistingState {
            persons,
            installations,
        },
        seen,
    ))
}

fn bad_type(path: &Path, column: &str) -> Error {
    Error::data(path, format!("column `{column}` has an unexpected type"))
}

fn column<'a>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::data(path, format!("column `{name}` is missing")))
}

/// A column read as typed cells, whatever its physical encoding (dictionaries included).
struct Cells {
    array: ArrayRef,
}

impl Cells {
    fn of(batch: &RecordBatch, name: &str, path: &Path) -> Result<Cells> {
        let array = column(batch, name, path)?.clone();
        let array = match array.data_type() {
            DataType::Dictionary(..) | DataType::LargeUtf8 | DataType::Utf8View => {
                arrow::compute::cast(&array, &DataType::Utf8)?
            }
            _ => array,
        };
        Ok(Cells { array })
    }

    fn str(&self, i: usize) -> Option<String> {
        let a = self.array.as_string_opt::<i32>()?;
        a.is_valid(i).then(|| a.value(i).to_string())
    }

    fn i64(&self, i: usize) -> Option<i64> {
        match self.array.data_type() {
            DataType::Int64 => {
                let a = self.array.as_primitive::<Int64Type>();
                a.is_valid(i).then(|| a.value(i))
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                let a = self
                    .array
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
                a.is_valid(i).then(|| a.value(i))
            }
            _ => None,
        }
    }

    fn f64(&self, i: usize) -> Option<f64> {
        let a = self
            .array
            .as_primitive_opt::<arrow::datatypes::Float64Type>()?;
        a.is_valid(i).then(|| a.value(i))
    }

    fn bool(&self, i: usize) -> Option<bool> {
        let a = self.array.as_boolean_opt()?;
        a.is_valid(i).then(|| a.value(i))
    }

    fn date(&self, i: usize) -> Option<chrono::NaiveDate> {
        let a = self
            .array
            .as_primitive_opt::<arrow::datatypes::Date32Type>()?;
        a.is_valid(i).then(|| a.value_as_date(i)).flatten()
    }

    fn list(&self, i: usize) -> Vec<String> {
        let Some(a) = self.array.as_list_opt::<i32>() else {
            return vec![];
        };
        if !a.is_valid(i) {
            return vec![];
        }
        let items = a.value(i);
        let items = match arrow::compute::cast(&items, &DataType::Utf8) {
            Ok(items) => items,
            Err(_) => return vec![],
        };
        let items = items.as_string::<i32>();
        (0..items.len())
            .filter(|&j| items.is_valid(j))
            .map(|j| items.value(j).to_string())
            .collect()
    }

    /// A custom attribute's cell as a replay value.
    fn value(&self, i: usize, ty: ValueType) -> Value {
        let v = match ty {
            ValueType::String | ValueType::Version => self.str(i).map(Value::Str),
            ValueType::Number => self.f64(i).map(Value::Num),
            ValueType::Boolean => self.bool(i).map(Value::Bool),
            ValueType::Date => self.date(i).map(Value::Date),
            ValueType::Timestamp => self.i64(i).map(Value::Time),
            ValueType::StringList => Some(Value::List(self.list(i))).filter(|v| match v {
                Value::List(items) => !items.is_empty(),
                _ => true,
            }),
        };
        v.unwrap_or(Value::Null)
    }
}

fn required<T>(v: Option<T>, path: &Path, column: &str, row: usize) -> Result<T> {
    v.ok_or_else(|| Error::data(path, format!("row {row}: `{column}` is null")))
}

/// Custom attributes: (name, column, type) of the catalog's custom attributes of `entity`.
fn customs(catalog: &Catalog, entity: Entity) -> Vec<(String, String, ValueType)> {
    catalog
        .attributes(entity)
        .iter()
        .filter(|a| a.custom)
        .map(|a| (a.name.clone(), a.column.clone(), a.ty))
        .collect()
}

fn person_rows(batch: &RecordBatch, catalog: &Catalog, path: &Path) -> Result<Vec<PersonRow>> {
    let c = |name: &str| Cells::of(batch, name, path);
    let id = c(catalog::PERSON_ID)?;
    let (external, emails, phones) = (c("external_user_id")?, c("emails")?, c("phones")?);
    let (first, last, gender) = (c("first_name")?, c("last_name")?, c("gender")?);
    let (birth, country, city) = (c("birth_date")?, c("country")?, c("city")?);
    let (language, tags) = (c("preferred_language")?, c("tags")?);
    let (created, modified) = (c("created_at")?, c("modified_at")?);
    let custom: Vec<(String, ValueType, Cells)> = customs(catalog, Entity::Person)
        .into_iter()
        .map(|(name, column, ty)| Ok((name, ty, c(&column)?)))
        .collect::<Result<_>>()?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(PersonRow {
                person_id: required(id.i64(i), path, catalog::PERSON_ID, i)?,
                public_id: String::new(),
                identified: false,
                external_user_id: external.str(i),
                emails: emails.list(i),
                phones: phones.list(i),
                attributes: Attributes {
                    first_name: first.str(i),
                    last_name: last.str(i),
                    gender: gender.str(i),
                    birth_date: birth.date(i),
                    country: country.str(i),
                    city: city.str(i),
                    preferred_language: language.str(i),
                    tags: tags.list(i),
                    custom: custom
                        .iter()
                        .map(|(name, ty, cells)| (name.clone(), cells.value(i, *ty)))
                        .filter(|(_, v)| *v != Value::Null)
                        .collect(),
                },
                created_at: required(created.i64(i), path, "created_at", i)?,
                modified_at: required(modified.i64(i), path, "modified_at", i)?,
                anonymous_ids: vec![],
                merged_user_ids: vec![],
            })
        })
        .collect()
}

fn installation_rows(
    batch: &RecordBatch,
    catalog: &Catalog,
    path: &Path,
) -> Result<Vec<InstallationRow>> {
    let c = |name: &str| Cells::of(batch, name, path);
    let (id, push_id, person) = (
        c(catalog::INSTALLATION_ID)?,
        c("push_registration_id")?,
        c(catalog::PERSON_ID)?,
    );
    let (state, platform, sdk, os) = (
        c("state")?,
        c("platform")?,
        c("sdk_version")?,
        c("os_version")?,
    );
    let (maker, model, app, language) = (
        c("device_manufacturer")?,
        c("device_model")?,
        c("application_version")?,
        c("os_language")?,
    );
    let push_enabled = c("push_registration_enabled")?;
    let (registrations, notifications, geofencing, secure) = (
        c("registrations_enabled")?,
        c("notifications_enabled")?,
        c("geofencing_enabled")?,
        c("device_secure")?,
    );
    let (installed, seen, uninstalled) =
        (c("installed_at")?, c("last_seen_at")?, c("uninstalled_at")?);
    let custom: Vec<(String, ValueType, Cells)> = customs(catalog, Entity::Installation)
        .into_iter()
        .map(|(name, column, ty)| Ok((name, ty, c(&column)?)))
        .collect::<Result<_>>()?;
    (0..batch.num_rows())
        .map(|i| {
            let push_registration_id = required(push_id.str(i), path, "push_registration_id", i)?;
            let state = match required(state.str(i), path, "state", i)?.as_str() {
                "anonymous" => InstallationState::Anonymous,
                "personalized" => InstallationState::Personalized,
                "depersonalized" => InstallationState::Depersonalized,
                "uninstalled" => InstallationState::Uninstalled,
                other => {
                    return Err(Error::data(
                        path,
                        format!("row {i}: unknown installation state `{other}`"),
                    ))
                }
            };
            let installed_at = required(installed.i64(i), path, "installed_at", i)?;
            // Without import state a device's id is its pushRegistrationId, and it has a
            // token when push is enabled.
            let token = (push_enabled.bool(i) == Some(true)).then(|| push_registration_id.clone());
            Ok(InstallationRow {
                installation_id: required(id.i64(i), path, catalog::INSTALLATION_ID, i)?,
                device_id: push_registration_id.clone(),
                push_registration_id,
                token,
                person_id: required(person.i64(i), path, catalog::PERSON_ID, i)?,
                state,
                data: DeviceData {
                    platform: platform.str(i),
                    sdk_version: sdk.str(i),
                    os_version: os.str(i),
                    device_manufacturer: maker.str(i),
                    device_model: model.str(i),
                    application_version: app.str(i),
                    os_language: language.str(i),
                    registrations_enabled: registrations.bool(i),
                    notifications_enabled: notifications.bool(i),
                    geofencing_enabled: geofencing.bool(i),
                    device_secure: secure.bool(i),
                    custom: custom
                        .iter()
                        .map(|(name, ty, cells)| (name.clone(), cells.value(i, *ty)))
                        .filter(|(_, v)| *v != Value::Null)
                        .collect(),
                },
                push_registration_enabled: false,
                primary_device: false,
                installed_at,
                last_seen_at: seen.i64(i).unwrap_or(installed_at),
                uninstalled_at: uninstalled.i64(i),
                last_app_launch_at: None,
                primary_hint: None,
            })
        })
        .collect()
}

fn apply_person_state(store: &Path, file: &DataFile, persons: &mut [PersonRow]) -> Result<()> {
    let path = store.join(&file.path);
    let at: HashMap<i64, usize> = persons
        .iter()
        .enumerate()
        .map(|(i, p)| (p.person_id, i))
        .collect();
    let mut covered = 0usize;
    for batch in read_file(store, file)? {
        let c = |name: &str| Cells::of(&batch, name, &path);
        let (id, public, anonymous, merged) = (
            c(catalog::PERSON_ID)?,
            c("public_id")?,
            c("anonymous_ids")?,
            c("merged_user_ids")?,
        );
        for i in 0..batch.num_rows() {
            let pid = required(id.i64(i), &path, catalog::PERSON_ID, i)?;
            let Some(&row) = at.get(&pid) else {
                return Err(Error::data(
                    &path,
                    format!("import state names person {pid}, whom the persons table lacks"),
                ));
            };
            let p = &mut persons[row];
            p.public_id = required(public.str(i), &path, "public_id", i)?;
            p.anonymous_ids = anonymous.list(i);
            p.merged_user_ids = merged.list(i);
            covered += 1;
        }
    }
    if covered != persons.len() {
        return Err(Error::data(
            &path,
            format!(
                "import state covers {covered} persons, the persons table has {}",
                persons.len()
            ),
        ));
    }
    Ok(())
}

fn apply_installation_state(
    store: &Path,
    file: &DataFile,
    installations: &mut [InstallationRow],
) -> Result<()> {
    let path = store.join(&file.path);
    let at: HashMap<i64, usize> = installations
        .iter()
        .enumerate()
        .map(|(i, r)| (r.installation_id, i))
        .collect();
    let mut covered = 0usize;
    for batch in read_file(store, file)? {
        let c = |name: &str| Cells::of(&batch, name, &path);
        let (id, device, token, launch, hint) = (
            c(catalog::INSTALLATION_ID)?,
            c("device_id")?,
            c("token")?,
            c("last_app_launch_at")?,
            c("primary_hint")?,
        );
        for i in 0..batch.num_rows() {
            let iid = required(id.i64(i), &path, catalog::INSTALLATION_ID, i)?;
            let Some(&row) = at.get(&iid) else {
                return Err(Error::data(
                    &path,
                    format!(
                        "import state names installation {iid}, which the installations table \
                         lacks"
                    ),
                ));
            };
            let r = &mut installations[row];
            r.device_id = required(device.str(i), &path, "device_id", i)?;
            r.token = token.str(i);
            r.last_app_launch_at = launch.i64(i);
            r.primary_hint = hint.bool(i);
            covered += 1;
        }
    }
    if covered != installations.len() {
        return Err(Error::data(
            &path,
            format!(
                "import state covers {covered} installations, the installations table has {}",
                installations.len()
            ),
        ));
    }
    Ok(())
}

fn ts_type() -> DataType {
    crate::store::schema::timestamp_type()
}

fn list_array<'a>(lists: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for items in lists {
        for item in items {
            b.values().append_value(item);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn write_batch(staging: &Staging, rel: &str, batch: RecordBatch) -> Result<DataFile> {
    let mut w = staging.parquet_writer(rel, batch.schema(), &[0])?;
    w.write(&batch)?;
    w.finish()
}

/// Writes the replay state of `persons` and `installations` (and the keys this import saw
/// first) and returns the snapshot's import state, listing the parent's key files too.
pub fn save(
    staging: &Staging,
    persons: &[PersonRow],
    installations: &[InstallationRow],
    new_keys: &[u64],
    parent_seen: &[DataFile],
) -> Result<ImportState> {
    let list_field = |name: &str| Field::new(name, crate::store::schema::string_list_type(), false);
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new(catalog::PERSON_ID, DataType::Int64, false),
        Field::new("public_id", DataType::Utf8, false),
        list_field("anonymous_ids"),
        list_field("merged_user_ids"),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(
                persons.iter().map(|p| p.person_id),
            )),
            Arc::new(StringArray::from_iter_values(
                persons.iter().map(|p| p.public_id.as_str()),
            )),
            list_array(persons.iter().map(|p| p.anonymous_ids.as_slice())),
            list_array(persons.iter().map(|p| p.merged_user_ids.as_slice())),
        ],
    )?;
    let persons_file = write_batch(staging, PERSONS_STATE, batch)?;

    let mut by_id: Vec<&InstallationRow> = installations.iter().collect();
    by_id.sort_unstable_by_key(|r| r.installation_id);
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new(catalog::INSTALLATION_ID, DataType::Int64, false),
        Field::new("device_id", DataType::Utf8, false),
        Field::new("token", DataType::Utf8, true),
        Field::new("last_app_launch_at", ts_type(), true),
        Field::new("primary_hint", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(
                by_id.iter().map(|r| r.installation_id),
            )),
            Arc::new(StringArray::from_iter_values(
                by_id.iter().map(|r| r.device_id.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                by_id.iter().map(|r| r.token.as_deref()),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter(by_id.iter().map(|r| r.last_app_launch_at))
                    .with_timezone("UTC"),
            ),
            Arc::new(BooleanArray::from_iter(
                by_id.iter().map(|r| r.primary_hint),
            )),
        ],
    )?;
    let installations_file = write_batch(staging, INSTALLATIONS_STATE, batch)?;

    let mut seen = parent_seen.to_vec();
    if !new_keys.is_empty() {
        let mut keys: Vec<i64> = new_keys.iter().map(|k| *k as i64).collect();
        keys.sort_unstable();
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(keys))])?;
        seen.push(write_batch(staging, "import/seen.parquet", batch)?);
    }
    Ok(ImportState {
        persons: persons_file,
        installations: installations_file,
        seen,
    })
}
