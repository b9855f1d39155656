//! Arrow schemas of the snapshot tables, derived from the catalog (the catalog is the truth).

use super::{derived, version_key};
use crate::catalog::{self, AttributeDef, Catalog, EventDef, PropertyDef, ValueType};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// All timestamps are stored as microseconds since the epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn string_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// Physical type of a catalog type. Surrogate keys are the one exception: `Number` but Int64.
pub fn arrow_type(ty: ValueType, column: &str) -> DataType {
    match ty {
        ValueType::Number if is_key(column) => DataType::Int64,
        ValueType::Number => DataType::Float64,
        ValueType::String | ValueType::Version => DataType::Utf8,
        ValueType::Boolean => DataType::Boolean,
        ValueType::Date => DataType::Date32,
        ValueType::Timestamp => timestamp_type(),
        ValueType::StringList => string_list_type(),
    }
}

/// An attribute's stored type: [`arrow_type`], or a dictionary of strings.
pub fn attribute_type(a: &AttributeDef) -> DataType {
    stored_type(a.ty, &a.column, a.dictionary)
}

/// An event property's stored type: [`arrow_type`], or a dictionary of strings.
pub fn property_type(p: &PropertyDef) -> DataType {
    stored_type(p.ty, &p.column, p.dictionary)
}

fn stored_type(ty: ValueType, column: &str, dictionary: bool) -> DataType {
    if dictionary && ty == ValueType::String {
        dictionary_type()
    } else {
        arrow_type(ty, column)
    }
}

pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Whether `column` is a person or installation key (Int64).
pub fn is_key(column: &str) -> bool {
    column == catalog::PERSON_ID || column == catalog::INSTALLATION_ID
}

/// Each attribute's column, followed by its version sort key when the catalog says it is stored.
fn attribute_fields(attrs: &[AttributeDef]) -> Vec<Field> {
    let mut fields = Vec::with_capacity(attrs.len());
    for a in attrs {
        fields.push(Field::new(&a.column, attribute_type(a), a.nullable));
        if let Some(layout) = a.sort_key {
            fields.push(Field::new(
                version_key::column(&a.column),
                version_key::data_type(layout),
                true,
            ));
        }
        if a.length_column {
            fields.push(Field::new(
                derived::length_column(&a.column),
                derived::length_type(),
                true,
            ));
        }
    }
    fields
}

pub fn persons_schema(catalog: &Catalog) -> SchemaRef {
    Arc::new(Schema::new(attribute_fields(&catalog.person)))
}

/// Installations carry their owner's `person_id` (never null) besides the catalog attributes.
pub fn installations_schema(catalog: &Catalog) -> SchemaRef {
    let mut fields = attribute_fields(&catalog.installation);
    fields.insert(2, Field::new(catalog::PERSON_ID, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Schema of one event definition's files (without the hive partition columns).
pub fn event_schema(event: &EventDef) -> SchemaRef {
    let mut fields = vec![
        Field::new(catalog::EVENT_TIME, timestamp_type(), false),
        Field::new(catalog::PERSON_ID, DataType::Int64, false),
        Field::new(catalog::INSTALLATION_ID, DataType::Int64, true),
    ];
    fields.extend(
        event
            .properties
            .iter()
            .map(|p| Field::new(&p.column, property_type(p), true)),
    );
    Arc::new(Schema::new(fields))
}

/// The columns all event definitions share: the schema of the cross-event `events` table.
pub fn common_event_schema() -> SchemaRef {
    let none = EventDef {
        name: String::new(),
        standard: true,
        properties: vec![],
    };
    event_schema(&none)
}

/// Checks that a file's schema has every expected column with the expected type.
/// Extra columns are tolerated (a newer writer may add some); missing or retyped ones are not.
/// With `missing_nullable`, a nullable column may be missing: an event file written before an
/// import added a property to its event reads it as null.
pub fn check_compatible(
    expected: &Schema,
    actual: &Schema,
    missing_nullable: bool,
) -> Result<(), String> {
    for field in expected.fields() {
        match actual.field_with_name(field.name()) {
            Err(_) if missing_nullable && field.is_nullable() => {}
            Err(_) => return Err(format!("column `{}` is missing", field.name())),
            Ok(found) if !types_match(field.data_type(), found.data_type()) => {
                return Err(format!(
                    "column `{}` has type {} but the catalog declares {}",
                    field.name(),
                    found.data_type(),
                    field.data_type()
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// List element names differ between writers ("item" vs "element"); only the element type matters.
fn types_match(expected: &DataType, actual: &DataType) -> bool {
    match (expected, actual) {
        (DataType::List(a), DataType::List(b)) => a.data_type() == b.data_type(),
        _ => expected == actual,
    }
}
