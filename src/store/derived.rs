//! Columns a snapshot writer derives from another column of the same row, so that segments read
//! one small column instead of decoding the source: version sort keys (`os_version__sort`, see
//! [`version_key`]) and list lengths (`emails__len`, so `emails is set` is `emails__len > 0`).
//! The catalog says which attributes have them (`sort_key`, `length_column`); catalogs of older
//! snapshots lack them and the planner falls back to the source column. Writers supply the
//! source columns only and [`complete`] adds the rest, so every writer derives them alike (it
//! also dictionary-encodes the strings the catalog stores as dictionaries).

use super::version_key;
use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::sync::Arc;

pub const LENGTH_SUFFIX: &str = "__len";

/// The length column stored beside list column `column`.
pub fn length_column(column: &str) -> String {
    format!("{column}{LENGTH_SUFFIX}")
}

/// Items per list, null where the list is null.
pub fn length_type() -> DataType {
    DataType::Int32
}

/// Whether `name` is a derived column (never supplied by a writer, never an attribute).
pub fn is_derived(name: &str) -> bool {
    name.ends_with(version_key::SUFFIX) || name.ends_with(LENGTH_SUFFIX)
}

/// `stored` without its derived columns: the columns a writer supplies itself, dictionary
/// strings as plain strings ([`complete`] encodes them).
pub fn without_derived(stored: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .filter(|f| !is_derived(f.name()))
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) => f.as_ref().clone().with_data_type(*values.clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` (the table without its derived columns) completed to `stored`: each derived field of
/// `stored` is computed from its source column; other columns are taken by name, and plain
/// strings become the dictionaries `stored` declares.
pub fn complete(batch: &RecordBatch, stored: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = stored
        .fields()
        .iter()
        .map(|f| -> Result<ArrayRef, ArrowError> {
            let name = f.name();
            if let Some(source) = batch.column_by_name(name) {
                return match (source.data_type(), f.data_type()) {
                    (DataType::Utf8, DataType::Dictionary(..)) => {
                        arrow::compute::cast(source, f.data_type())
                    }
                    _ => Ok(source.clone()),
                };
            }
            let source = |suffix: &str| {
                let base = name.strip_suffix(suffix).expect("checked suffix");
                batch
                    .column_by_name(base)
                    .map(|c| (base, c))
                    .ok_or_else(|| {
                        missing(format!("column `{base}` (source of `{name}`) is missing"))
                    })
            };
            if name.ends_with(version_key::SUFFIX) {
                let written = version_key::data_type(version_key::VersionKey::Int64);
                if *f.data_type() != written {
                    return Err(missing(format!(
                        "`{name}` is declared {} but version keys are written as {written} \
                         (a catalog from an older snapshot declares `sort_key: true`)",
                        f.data_type()
                    )));
                }
                let (base, column) = source(version_key::SUFFIX)?;
                let text = column
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| missing(format!("version column `{base}` is not text")))?;
                version_key::keys(base, text)
            } else if name.ends_with(LENGTH_SUFFIX) {
                let (base, column) = source(LENGTH_SUFFIX)?;
                if !matches!(column.data_type(), DataType::List(_)) {
                    return Err(missing(format!("list column `{base}` is not a list")));
                }
                arrow::compute::kernels::length::length(column.as_ref())
            } else {
                Err(missing(format!("column `{name}` is missing")))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(stored.clone(), columns)
}

fn missing(message: String) -> ArrowError {
    ArrowError::SchemaError(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, ListBuilder, StringBuilder};
    use arrow::datatypes::Int32Type;

    fn stored() -> SchemaRef {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        Arc::new(Schema::new(vec![
            Field::new("v", DataType::Utf8, true),
            Field::new(
                version_key::column("v"),
                version_key::data_type(version_key::VersionKey::Int64),
                true,
            ),
            Field::new("l", list, true),
            Field::new(length_column("l"), length_type(), true),
            Field::new("d", crate::store::schema::dictionary_type(), true),
        ]))
    }

    fn batch(versions: Vec<Option<&str>>, lists: Vec<Option<Vec<&str>>>) -> RecordBatch {
        let mut b = ListBuilder::new(StringBuilder::new());
        for l in lists {
            match l {
                Some(items) => {
                    for i in items {
                        b.values().append_value(i);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        let d: Vec<Option<&str>> = (0..versions.len())
            .map(|i| Some(["iOS", "Android"][i % 2]))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(versions)),
            Arc::new(b.finish()),
            Arc::new(StringArray::from(d)),
        ];
        RecordBatch::try_new(without_derived(&stored()), columns).unwrap()
    }

    #[test]
    fn complete_adds_keys_lengths_and_dictionaries() {
        let done = complete(
            &batch(
                vec![Some("1.2"), None, Some("3")],
                vec![Some(vec!["a", "b"]), None, Some(vec![])],
            ),
            &stored(),
        )
        .unwrap();
        let keys = done.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(keys.value(0), version_key::of_text("1.2").unwrap());
        assert!(keys.is_null(1));
        let lengths = done.column(3).as_primitive::<Int32Type>();
        assert_eq!(lengths.value(0), 2);
        assert!(lengths.is_null(1), "a null list has a null length");
        assert_eq!(lengths.value(2), 0, "an empty list has length 0");
        let d = done.column(4).as_dictionary::<Int32Type>();
        let values = d.values().as_string::<i32>();
        assert_eq!(values.len(), 2, "one dictionary entry per distinct value");
        let texts: Vec<&str> = d
            .keys()
            .iter()
            .map(|k| values.value(k.unwrap() as usize))
            .collect();
        assert_eq!(texts, ["iOS", "Android", "iOS"]);
    }

    #[test]
    fn complete_refuses_unkeyed_text_and_names_missing_columns() {
        let err = complete(&batch(vec![Some("1.2b")], vec![None]), &stored()).unwrap_err();
        assert!(err.to_string().contains("version `1.2b` of `v`"), "{err}");
        let no_list = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![Some("1")]))],
        )
        .unwrap();
        let err = complete(&no_list, &stored()).unwrap_err();
        assert!(err.to_string().contains("column `l` is missing"), "{err}");
        // Decimal keys are read, never written.
        let decimal = Arc::new(Schema::new(
            stored()
                .fields()
                .iter()
                .map(|f| match f.name().as_str() {
                    "v__sort" => f
                        .as_ref()
                        .clone()
                        .with_data_type(version_key::data_type(version_key::VersionKey::Decimal)),
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
        ));
        let err = complete(&batch(vec![Some("1.2")], vec![None]), &decimal).unwrap_err();
        assert!(
            err.to_string().contains(
                "`v__sort` is declared Decimal128(38, 0) but version keys are written as Int64"
            ),
            "{err}"
        );
    }
}
