//! Order-preserving integer keys for version strings, written beside each version column
//! (`os_version__sort`) when the snapshot is made, so `osVersion >= "17.2"` is one integer
//! comparison instead of splitting every row's text into four numbers.
//!
//! A key packs the first [`PARTS`] dotted parts (a part is its integer value, 0 when missing or
//! empty) into an `Int64`: 15 bits for the first part, 16 for each other. A part too large for
//! its bits is stored as the largest value they hold (saturated), so every all-digit text has a
//! key and keys never order two versions the wrong way round; they only tie versions that differ
//! in saturated parts. A literal whose parts all stay below their saturation values therefore
//! compares with any key exactly (see [`literal`]); the planner splits the text for the rare
//! literal that does not. Texts that parsers could read differently (`1.2b`, ` 1.2`, `+1`, a part
//! past 2^63) have no key, and writing one is refused: a catalog declares `sort_key` on a version attribute only
//! when the planner may compare keys alone.
//!
//! Snapshots written before this layout store exact `Decimal128(38, 0)` keys, nine decimal
//! digits a part ([`VersionKey::Decimal`]); they are read as written. Int64 keys decode ~10 times
//! faster: 16-byte values are neither dictionary-encoded by the writer nor cheap to rebuild.

pub use crate::catalog::VersionKey;
use arrow::array::{Array, ArrayRef, Int64Builder, StringArray};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::scalar::ScalarValue;
use std::sync::Arc;

/// Dotted parts a key covers (the planner compares versions on the same number of parts).
pub const PARTS: usize = 4;
/// Bits of each part in an Int64 key; the sign bit stays clear.
const BITS: [u32; PARTS] = [15, 16, 16, 16];
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

fn saturation(i: usize) -> i64 {
    (1i64 << BITS[i]) - 1
}

/// The stored key of already-parsed parts, saturating parts too large for their bits.
fn packed(parts: &[i64; PARTS]) -> i64 {
    parts.iter().enumerate().fold(0i64, |acc, (i, &p)| {
        (acc << BITS[i]) | p.clamp(0, saturation(i))
    })
}

/// The key to compare a stored key column of type `key_type` with, for a literal of these
/// parts: `None` when a comparison of keys could differ from one of versions (an Int64 part at
/// or past its saturation value, a decimal part of ten digits or more), and the planner must
/// compare the text instead.
pub fn literal(key_type: VersionKey, parts: &[i64; PARTS]) -> Option<ScalarValue> {
    match key_type {
        VersionKey::Int64 => parts
            .iter()
            .enumerate()
            .all(|(i, &p)| (0..saturation(i)).contains(&p))
            .then(|| ScalarValue::Int64(Some(packed(parts)))),
        VersionKey::Decimal => {
            const PART_LIMIT: i128 = 1_000_000_000;
            let key = parts.iter().try_fold(0i128, |acc, &p| {
                (0..PART_LIMIT)
                    .contains(&(p as i128))
                    .then(|| acc * PART_LIMIT + p as i128)
            })?;
            Some(ScalarValue::Decimal128(Some(key), 38, 0))
        }
    }
}

/// The key of a stored version text: null unless each of its first [`PARTS`] parts is empty or
/// ASCII digits of a 64-bit integer, the texts on which every reading of the version agrees.
pub fn of_text(text: &str) -> Option<i64> {
    let mut parts = [0i64; PARTS];
    for (slot, part) in parts.iter_mut().zip(text.split('.')) {
        if part.is_empty() {
            continue;
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    Some(packed(&parts))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::derived::{compare_versions, version_parts};

    #[test]
    fn keys_order_like_versions() {
        let ordered = [
            "",
            "0.9",
            "1",
            "1.0.1",
            "1.2",
            "1.10",
            "2.0.0.1",
            "17.2",
            "17.10.3",
            "32766.65534",
        ];
        let keys: Vec<i64> = ordered.iter().map(|v| of_text(v).unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(of_text("17.2"), of_text("17.2.0.0"));
        assert_eq!(of_text("17.2"), of_text("017.02"));
        assert_eq!(of_text("1.2"), of_text("1.000000000000000002"));
        // Parts past the fourth are not compared.
        assert_eq!(of_text("1.2.3.4.5"), of_text("1.2.3.4"));
        // Saturated parts tie, but never reverse the order.
        assert_eq!(of_text("1.65535"), of_text("1.70000"));
        assert!(of_text("1.65534.9") < of_text("1.65535"));
        assert_eq!(of_text("32767.1"), of_text("99999.1"));
        assert!(of_text("32767") < of_text("99999.1"));
    }

    #[test]
    fn texts_read_differently_get_no_key() {
        for v in [
            "1.2b",
            " 1.2",
            "1.-2",
            "+1",
            "1.99999999999999999999",
            "beta",
        ] {
            assert_eq!(of_text(v), None, "{v:?}");
        }
    }

    /// The planner's promise: where a literal has a key, comparing keys decides every
    /// comparison exactly as comparing versions does, saturated stored parts included.
    #[test]
    fn literal_keys_compare_like_versions() {
        let edges = |i: usize| {
            let s = saturation(i);
            vec![0, 1, 2, 9, 10, s - 2, s - 1, s, s + 1, 1_000_000_007]
        };
        let mut texts = Vec::new();
        for a in edges(0) {
            for b in edges(1) {
                for c in [0, 3, saturation(2), saturation(2) + 5] {
                    texts.push(format!("{a}.{b}.{c}"));
                }
            }
        }
        let mut keyed_literals = 0;
        for l in &texts {
            let parts = version_parts(l);
            for key_type in [VersionKey::Int64, VersionKey::Decimal] {
                let Some(literal) = literal(key_type, &parts) else {
                    continue;
                };
                keyed_literals += 1;
                for v in &texts {
                    let stored = match key_type {
                        VersionKey::Int64 => ScalarValue::Int64(of_text(v)),
                        VersionKey::Decimal => {
                            let parts = version_parts(v);
                            if parts.iter().any(|&p| p >= 1_000_000_000) {
                                continue; // no decimal key was ever written for it
                            }
                            literal_decimal(&parts)
                        }
                    };
                    assert_eq!(
                        stored.partial_cmp(&literal),
                        Some(compare_versions(v, l)),
                        "{key_type:?}: {v} vs {l}"
                    );
                }
            }
        }
        assert!(keyed_literals > texts.len(), "{keyed_literals}");
        // Literals at or past a saturation value are left to the text.
        assert_eq!(literal(VersionKey::Int64, &[1, saturation(1), 0, 0]), None);
        assert_eq!(
            literal(VersionKey::Decimal, &[1_000_000_000, 0, 0, 0]),
            None
        );
    }

    fn literal_decimal(parts: &[i64; PARTS]) -> ScalarValue {
        literal(VersionKey::Decimal, parts).unwrap()
    }
}
