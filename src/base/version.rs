//! Versions (`osVersion`, `applicationVersion`, `sdkVersion`): dotted strings that compare
//! numerically, part by part, on their first [`PARTS`] parts. One home for the text rule a
//! literal must follow, the ordering, and the order-preserving integer keys the store writes
//! beside each version column (`os_version__sort`) so a comparison is one integer test.
//!
//! A key packs the first [`PARTS`] parts into an `Int64`: 15 bits for the first part, 16 for
//! each other. A part too large for its bits is stored as the largest value they hold
//! (saturated), so every all-digit text has a key and keys never order two versions the wrong
//! way round; they only tie versions that differ in saturated parts. A literal whose parts all
//! stay below their saturation values therefore compares with any key exactly (see
//! [`literal_key`]); the planner compares the text for the rare literal that does not. Texts
//! that parsers could read differently (`1.2b`, ` 1.2`, `+1`, a part past 2^63) have no key.
//!
//! Snapshots written before this layout store exact `Decimal128(38, 0)` keys, nine decimal
//! digits a part ([`VersionKey::Decimal`]); they are read as written.

use std::cmp::Ordering;

/// Dotted parts a version comparison (and a key) covers.
pub const PARTS: usize = 4;
/// Bits of each part in an Int64 key; the sign bit stays clear.
const BITS: [u32; PARTS] = [15, 16, 16, 16];
/// Decimal keys hold nine decimal digits a part.
const DECIMAL_PART_LIMIT: i128 = 1_000_000_000;

/// The layout of a stored version sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionKey {
    /// Int64, parts saturating at their bit widths: what snapshots are written with.
    Int64,
    /// Decimal128(38, 0), nine decimal digits a part: snapshots written before Int64 keys.
    Decimal,
}

/// Whether `s` may be written as a version literal: at most [`PARTS`] dot-separated unsigned
/// integers of at most nine digits ("17", "17.2", "5.10.1").
pub fn is_literal(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= PARTS
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The numeric parts of a version ("17.2" → [17, 2, 0, 0]); a part's leading digits count,
/// anything else is 0.
pub fn parts(v: &str) -> [i64; PARTS] {
    let mut out = [0; PARTS];
    for (i, part) in v.split('.').take(PARTS).enumerate() {
        let digits: String = part
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        out[i] = digits.parse().unwrap_or(0);
    }
    out
}

/// Version order on texts (what the planner's comparisons compute).
pub fn compare(a: &str, b: &str) -> Ordering {
    parts(a).cmp(&parts(b))
}

fn saturation(i: usize) -> i64 {
    (1i64 << BITS[i]) - 1
}

/// The Int64 key of already-parsed parts, saturating parts too large for their bits.
fn packed(parts: &[i64; PARTS]) -> i64 {
    parts.iter().enumerate().fold(0i64, |acc, (i, &p)| {
        (acc << BITS[i]) | p.clamp(0, saturation(i))
    })
}

/// The Int64 key a writer stores for a version text: `None` unless each of its first [`PARTS`]
/// parts is empty or ASCII digits of a 64-bit integer, the texts every reading agrees on.
pub fn key_of_text(text: &str) -> Option<i64> {
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

/// A literal's key in a stored layout: comparing it with stored keys decides every comparison
/// exactly as comparing versions does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKey {
    Int64(i64),
    Decimal(i128),
}

/// The key to compare a stored key column of `layout` with, for a literal of these parts:
/// `None` when a comparison of keys could differ from one of versions (an Int64 part at or past
/// its saturation value, a decimal part of ten digits or more), and the text must be compared.
pub fn literal_key(layout: VersionKey, parts: &[i64; PARTS]) -> Option<LiteralKey> {
    match layout {
        VersionKey::Int64 => parts
            .iter()
            .enumerate()
            .all(|(i, &p)| (0..saturation(i)).contains(&p))
            .then(|| LiteralKey::Int64(packed(parts))),
        VersionKey::Decimal => parts
            .iter()
            .try_fold(0i128, |acc, &p| {
                (0..DECIMAL_PART_LIMIT)
                    .contains(&(p as i128))
                    .then(|| acc * DECIMAL_PART_LIMIT + p as i128)
            })
            .map(LiteralKey::Decimal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert!(compare("9.1", "17.2").is_lt());
        assert!(compare("17.2", "17.2.0").is_eq());
        assert!(compare("17.10", "17.9").is_gt());
        assert_eq!(parts("5.12.0-beta"), [5, 12, 0, 0]);
    }

    #[test]
    fn literal_text_rule() {
        for ok in ["17", "17.2", "5.10.1", "1.2.3.4", "0"] {
            assert!(is_literal(ok), "{ok}");
        }
        for bad in ["", "1.", ".1", "1.2.3.4.5", "1.2b", "-1", "1234567890"] {
            assert!(!is_literal(bad), "{bad}");
        }
    }

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
        let keys: Vec<i64> = ordered.iter().map(|v| key_of_text(v).unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(key_of_text("17.2"), key_of_text("17.2.0.0"));
        assert_eq!(key_of_text("17.2"), key_of_text("017.02"));
        assert_eq!(key_of_text("1.2"), key_of_text("1.000000000000000002"));
        // Parts past the fourth are not compared.
        assert_eq!(key_of_text("1.2.3.4.5"), key_of_text("1.2.3.4"));
        // Saturated parts tie, but never reverse the order.
        assert_eq!(key_of_text("1.65535"), key_of_text("1.70000"));
        assert!(key_of_text("1.65534.9") < key_of_text("1.65535"));
        assert_eq!(key_of_text("32767.1"), key_of_text("99999.1"));
        assert!(key_of_text("32767") < key_of_text("99999.1"));
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
            assert_eq!(key_of_text(v), None, "{v:?}");
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
            let lp = parts(l);
            for layout in [VersionKey::Int64, VersionKey::Decimal] {
                let Some(literal) = literal_key(layout, &lp) else {
                    continue;
                };
                keyed_literals += 1;
                for v in &texts {
                    let ordering = match (layout, literal) {
                        (VersionKey::Int64, LiteralKey::Int64(k)) => {
                            key_of_text(v).expect("all digits").cmp(&k)
                        }
                        (VersionKey::Decimal, LiteralKey::Decimal(k)) => {
                            let vp = parts(v);
                            if vp.iter().any(|&p| p as i128 >= DECIMAL_PART_LIMIT) {
                                continue; // no decimal key was ever written for it
                            }
                            let Some(LiteralKey::Decimal(stored)) = literal_key(layout, &vp) else {
                                unreachable!("in range")
                            };
                            stored.cmp(&k)
                        }
                        _ => unreachable!("a layout's own key"),
                    };
                    assert_eq!(ordering, compare(v, l), "{layout:?}: {v} vs {l}");
                }
            }
        }
        assert!(keyed_literals > texts.len(), "{keyed_literals}");
        // Literals at or past a saturation value are left to the text.
        assert_eq!(
            literal_key(VersionKey::Int64, &[1, saturation(1), 0, 0]),
            None
        );
        assert_eq!(
            literal_key(VersionKey::Decimal, &[1_000_000_000, 0, 0, 0]),
            None
        );
    }
}
