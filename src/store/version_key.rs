//! Order-preserving integer keys for version strings, written beside each version column
//! (`os_version__sort`) when the snapshot is made, so `osVersion >= "17.2"` is one integer
//! comparison instead of splitting every row's text into four numbers.
//!
//! A key packs the first [`PARTS`] dotted parts, nine decimal digits each, into a
//! `Decimal128(38, 0)`, which orders exactly like the planner's version order (a part is its
//! integer value, 0 when missing or empty). A catalog declares `sort_key` on a version attribute
//! only when every non-null value has a key: the planner then compares keys alone. Texts that
//! parsers could read differently (`1.2b`, ` 1.2`, `+1`, parts of ten digits or more) have no
//! key, and writing one is refused.

use arrow::array::{Array, ArrayRef, Decimal128Builder, StringArray};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use std::sync::Arc;

/// Dotted parts a key covers (the planner compares versions on the same number of parts).
pub const PARTS: usize = 4;
const DIGITS_PER_PART: u32 = 9;
const PART_LIMIT: i64 = 10i64.pow(DIGITS_PER_PART);
pub const SUFFIX: &str = "__sort";

/// The key column stored beside version column `column`.
pub fn column(column: &str) -> String {
    format!("{column}{SUFFIX}")
}

pub fn data_type() -> DataType {
    DataType::Decimal128(38, 0)
}

/// The key of already-parsed parts, if every part fits in nine digits.
pub fn of_parts(parts: &[i64; PARTS]) -> Option<i128> {
    parts.iter().try_fold(0i128, |acc, &p| {
        (0..PART_LIMIT)
            .contains(&p)
            .then(|| acc * PART_LIMIT as i128 + p as i128)
    })
}

/// The key of a stored version text: null unless each of its first [`PARTS`] parts is empty or
/// all ASCII digits (at most nine), the texts on which every reading of the version agrees.
pub fn of_text(text: &str) -> Option<i128> {
    let mut parts = [0i64; PARTS];
    for (slot, part) in parts.iter_mut().zip(text.split('.')) {
        if part.is_empty() {
            continue;
        }
        if part.len() > DIGITS_PER_PART as usize || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    of_parts(&parts)
}

/// The keys of version column `column`; a non-null text without a key fails the write.
pub(super) fn keys(column: &str, text: &StringArray) -> Result<ArrayRef, ArrowError> {
    let mut b = Decimal128Builder::with_capacity(text.len());
    for v in text.iter() {
        match v.map(|v| (v, of_text(v))) {
            None => b.append_null(),
            Some((_, Some(key))) => b.append_value(key),
            Some((v, None)) => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "version `{v}` of `{column}` has no sort key: parts must be up to nine digits"
                )))
            }
        }
    }
    let (precision, scale) = match data_type() {
        DataType::Decimal128(p, s) => (p, s),
        _ => unreachable!("keys are Decimal128"),
    };
    Ok(Arc::new(
        b.finish()
            .with_precision_and_scale(precision, scale)
            .expect("valid decimal type"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_versions() {
        let ordered = [
            "", "0.9", "1", "1.0.1", "1.2", "1.10", "2.0.0.1", "17.2", "17.10.3",
        ];
        let keys: Vec<i128> = ordered.iter().map(|v| of_text(v).unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(of_text("17.2"), of_text("17.2.0.0"));
        assert_eq!(of_text("17.2"), of_text("017.02"));
        // Parts past the fourth are not compared.
        assert_eq!(of_text("1.2.3.4.5"), of_text("1.2.3.4"));
    }

    #[test]
    fn texts_read_differently_get_no_key() {
        for v in ["1.2b", " 1.2", "1.-2", "+1", "1.1234567890", "beta"] {
            assert_eq!(of_text(v), None, "{v:?}");
        }
        assert_eq!(of_parts(&[1, PART_LIMIT, 0, 0]), None);
        assert_eq!(of_parts(&[-1, 0, 0, 0]), None);
    }
}
