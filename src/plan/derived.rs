//! Expressions for derived fields and version ordering, built from DataFusion built-in functions
//! only (so a plan serializes for Ballista without custom codecs).

use crate::base::version::{self, PARTS};
use crate::store::version_key;
use crate::syntax::ast::CmpOp;
use arrow::datatypes::DataType;
use chrono::{Datelike, Months, NaiveDate};
use datafusion::functions::string::expr_fn::split_part;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{coalesce, lit};

/// Part `i` (0-based) of a version column as an integer (0 when absent or not a number).
fn part(column: &Expr, i: usize) -> Expr {
    let text = split_part(column.clone(), lit("."), lit(i as i64 + 1));
    coalesce(vec![
        Expr::TryCast(datafusion::logical_expr::TryCast::new(
            Box::new(text),
            DataType::Int64,
        )),
        lit(0i64),
    ])
}

/// `column <op> literal` under version ordering.
/// The result is null when the column is null (the caller makes missing values false).
/// With the column's stored sort `key` (present for every non-null text, see
/// `store::version_key`) it is one integer comparison that prunes row groups and never reads
/// the text.
pub fn version_compare(
    column: Expr,
    key: Option<(Expr, version_key::VersionKey)>,
    op: CmpOp,
    literal: &str,
) -> Expr {
    let want = version::parts(literal);
    let Some((key, wanted)) =
        key.and_then(|(key, layout)| Some((key, version::literal_key(layout, &want)?)))
    else {
        return split_compare(column, op, want);
    };
    let wanted = lit(version_key::scalar(wanted));
    match op {
        CmpOp::Eq => key.eq(wanted),
        CmpOp::Ne => key.not_eq(wanted),
        CmpOp::Lt => key.lt(wanted),
        CmpOp::Le => key.lt_eq(wanted),
        CmpOp::Gt => key.gt(wanted),
        CmpOp::Ge => key.gt_eq(wanted),
    }
}

fn split_compare(column: Expr, op: CmpOp, want: [i64; PARTS]) -> Expr {
    let parts: Vec<Expr> = (0..PARTS).map(|i| part(&column, i)).collect();
    // Lexicographic comparison of the part tuples, written as nested ands/ors.
    let eq_all = parts
        .iter()
        .zip(want)
        .map(|(p, w)| p.clone().eq(lit(w)))
        .reduce(Expr::and)
        .expect("parts");
    let less = lexicographic(&parts, &want, true);
    let greater = lexicographic(&parts, &want, false);
    let guarded = |e: Expr| {
        // Keep null for a null column so the two-valued wrapper can decide.
        Expr::Case(datafusion::logical_expr::Case::new(
            None,
            vec![(
                Box::new(column.clone().is_null()),
                Box::new(lit(datafusion::scalar::ScalarValue::Boolean(None))),
            )],
            Some(Box::new(e)),
        ))
    };
    guarded(match op {
        CmpOp::Eq => eq_all,
        CmpOp::Ne => !eq_all,
        CmpOp::Lt => less,
        CmpOp::Le => less.or(eq_all),
        CmpOp::Gt => greater,
        CmpOp::Ge => greater.or(eq_all),
    })
}

fn lexicographic(parts: &[Expr], want: &[i64; PARTS], less: bool) -> Expr {
    // p0 < w0 or (p0 = w0 and (p1 < w1 or (p1 = w1 and ...)))
    let mut acc: Option<Expr> = None;
    for i in (0..PARTS).rev() {
        let cmp = if less {
            parts[i].clone().lt(lit(want[i]))
        } else {
            parts[i].clone().gt(lit(want[i]))
        };
        acc = Some(match acc {
            None => cmp,
            Some(rest) => cmp.or(parts[i].clone().eq(lit(want[i])).and(rest)),
        });
    }
    acc.expect("at least one part")
}

/// `randomBucket`: a stable hash of person_id into 0..=9999 (multiplicative hashing modulo a
/// prime; ids are dense and below 2^31, so the product fits in an i64).
pub fn random_bucket(person_id: Expr) -> Expr {
    ((person_id * lit(RANDOM_BUCKET_MULTIPLIER) + lit(RANDOM_BUCKET_OFFSET))
        % lit(RANDOM_BUCKET_PRIME))
        % lit(10_000i64)
}

pub const RANDOM_BUCKET_MULTIPLIER: i64 = 2_654_435_761;
pub const RANDOM_BUCKET_OFFSET: i64 = 40_503;
pub const RANDOM_BUCKET_PRIME: i64 = 4_294_967_291;

pub fn random_bucket_of(person_id: i64) -> i64 {
    ((person_id * RANDOM_BUCKET_MULTIPLIER + RANDOM_BUCKET_OFFSET) % RANDOM_BUCKET_PRIME) % 10_000
}

/// The birth date at which a person turns `years` on `as_of`: `age >= n` ⇔ `birthDate <= born_by(n)`.
/// Comparisons on `age` become comparisons on `birth_date`, which prune and push down.
pub fn born_by(as_of: NaiveDate, years: u32) -> NaiveDate {
    // 29 February birthdays count as 1 March in non-leap years, as chrono's month arithmetic does.
    as_of
        .checked_sub_months(Months::new(12 * years))
        .unwrap_or(NaiveDate::MIN)
}

/// Whole years between `birth` and `as_of` (the reference definition of `age`).
pub fn age_on(birth: NaiveDate, as_of: NaiveDate) -> i32 {
    let mut years = as_of.year() - birth.year();
    if (as_of.month(), as_of.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn born_by_agrees_with_age_on() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        for (birth, age) in [
            ((2008, 11, 1), 18),
            ((2008, 11, 2), 17),
            ((1990, 2, 28), 36),
        ] {
            let b = NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2).unwrap();
            assert_eq!(age_on(b, as_of), age);
            assert_eq!(b <= born_by(as_of, 18), age >= 18);
        }
    }

    #[test]
    fn random_bucket_is_in_range_and_spread() {
        let mut counts = [0u32; 10];
        for id in 0..100_000 {
            let b = random_bucket_of(id);
            assert!((0..10_000).contains(&b));
            counts[(b / 1000) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
