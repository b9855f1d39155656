//! Time as the store keeps it: microseconds since the Unix epoch, UTC. Dates are whole UTC days.

use chrono::{DateTime, NaiveDate, Utc};

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SEC;
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
pub const MICROS_PER_WEEK: i64 = 7 * MICROS_PER_DAY;

/// The Unix epoch as a date (day 0 of Arrow's Date32).
pub fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date")
}

/// Days from the epoch to `d` (Arrow's Date32 value of `d`).
pub fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

/// Midnight (UTC) of `d`, in microseconds since the epoch.
pub fn micros_of_date(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_micros()
}

/// The UTC date of a time in microseconds since the epoch; times outside chrono's range clamp
/// to its first or last date.
pub fn date_of(micros: i64) -> NaiveDate {
    match DateTime::from_timestamp_micros(micros) {
        Some(t) => t.date_naive(),
        None if micros < 0 => NaiveDate::MIN,
        None => NaiveDate::MAX,
    }
}

/// The time `micros` as a UTC date-time, if chrono can represent it.
pub fn datetime_of(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// The earliest and latest instants every stage can represent: chrono's dates, Arrow's Date32
/// and microsecond timestamps all hold these (years −262,143 to 262,142).
pub fn representable() -> (i64, i64) {
    (
        micros_of_date(NaiveDate::MIN),
        micros_of_date(NaiveDate::MAX) + MICROS_PER_DAY - 1,
    )
}

/// Microseconds as the largest exact units: `30d`, `1d12h`, `90s` (`0s` for zero).
pub fn format_duration(us: i64) -> String {
    let mut secs = us / MICROS_PER_SEC;
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_micros_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(date_of(micros_of_date(d)), d);
        assert_eq!(date_of(micros_of_date(d) + MICROS_PER_DAY - 1), d);
        assert_eq!(date_of(micros_of_date(d) - 1), d.pred_opt().unwrap());
        assert_eq!(days_since_epoch(epoch()), 0);
        assert_eq!(date_of(i64::MIN), NaiveDate::MIN);
    }

    #[test]
    fn durations_print_in_exact_units() {
        assert_eq!(format_duration(30 * MICROS_PER_DAY), "30d");
        assert_eq!(
            format_duration(MICROS_PER_DAY + 12 * MICROS_PER_HOUR),
            "1d12h"
        );
        assert_eq!(format_duration(90 * MICROS_PER_SEC), "1m30s");
        assert_eq!(format_duration(0), "0s");
    }
}
