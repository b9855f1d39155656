//! Version sort keys as stored columns: the key column written beside each version column
//! (`os_version__sort`), its Arrow type per layout, and the keys of a column of texts. The
//! ordering rules and the packing are `base::version`'s.

pub use crate::base::version::{key_of_text as of_text, LiteralKey, VersionKey, PARTS};
use arrow::array::{Array, ArrayRef, Int64Builder, StringArray};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::scalar::ScalarValue;
use std::sync::Arc;

pub const SUFFIX: &str = "__sort";

/// The key column stored beside version column `column`.
pub fn column(column: &str) -> String {
    format!("{column}{SUFFIX}")
}

/// The stored type of keys in `layout`.
pub fn data_type(layout: VersionKey) -> DataType {
    match layout {
        VersionKey::Int64 => DataType::Int64,
        VersionKey::Decimal => DataType::Decimal128(38, 0),
    }
}

/// The layout of a stored key column of type `t`, if it is one.
pub fn layout_of(t: &DataType) -> Option<VersionKey> {
    [VersionKey::Int64, VersionKey::Decimal]
        .into_iter()
        .find(|&l| data_type(l) == *t)
}

/// A literal key as the scalar a key column of its layout compares with.
pub fn scalar(key: LiteralKey) -> ScalarValue {
    match key {
        LiteralKey::Int64(k) => ScalarValue::Int64(Some(k)),
        LiteralKey::Decimal(k) => ScalarValue::Decimal128(Some(k), 38, 0),
    }
}

/// The keys of version column `column`; a non-null text without a key fails the write.
pub(super) fn keys(column: &str, text: &StringArray) -> Result<ArrayRef, ArrowError> {
    let mut b = Int64Builder::with_capacity(text.len());
    for v in text.iter() {
        match v.map(|v| (v, of_text(v))) {
            None => b.append_null(),
            Some((_, Some(key))) => b.append_value(key),
            Some((v, None)) => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "version `{v}` of `{column}` has no sort key: parts must be digits, each below 2^63"
                )))
            }
        }
    }
    Ok(Arc::new(b.finish()))
}
