//! DataFusion expression helpers the planner and the snapshot writers share, so that a segment
//! planned over raw events and the activity summary written with a snapshot compute the same
//! values the same way.

use super::time::{date_of, days_since_epoch};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{cast, lit};

/// A UTC timestamp literal (microseconds), the type of every stored time.
pub fn ts_lit(micros: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some("UTC".into()),
    ))
}

/// A Date32 literal.
pub fn date_lit(d: chrono::NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some(days_since_epoch(d))))
}

/// The Date32 literal of the UTC day holding `micros`.
pub fn day_lit(micros: i64) -> Expr {
    date_lit(date_of(micros))
}

/// Sums and averages of number properties are computed in decimal with 10 fractional digits
/// (and read back as f64 after the aggregation): amounts in cents then sum exactly, so a total
/// of exactly 500.00 is not 500.00000000000006 (> 500), which f64 sums made it.
pub fn to_decimal(value: Expr) -> Expr {
    cast(value, DataType::Decimal128(38, 10))
}
