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

/// A length of time as segments write it: calendar months (`3mo`, `1y`) and exact
/// microseconds (`2w`, `30d`, `12h`, `90m`, `45s`). Months are calendar months: `3mo` before
/// 2026-05-31T10:00Z is 2026-02-28T10:00Z (the day of month clamped to the month's end, the time
/// of day kept), so a window of months lines up with calendar dates as marketers mean them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Period {
    pub months: u32,
    pub micros: i64,
}

impl Period {
    /// Longer than any history: the instant this long before any time is the first
    /// representable one.
    pub const EVER: Period = Period {
        months: u32::MAX,
        micros: 0,
    };

    /// An exact length.
    pub fn exact(micros: i64) -> Period {
        Period { months: 0, micros }
    }

    /// The instant this long before `t`: the months on the calendar, then the exact part;
    /// saturating at the first representable instant.
    pub fn before(self, t: i64) -> i64 {
        let (min, _) = representable();
        let after_months = if self.months == 0 {
            t
        } else {
            datetime_of(t)
                .and_then(|dt| dt.checked_sub_months(chrono::Months::new(self.months)))
                .map_or(min, |dt| dt.timestamp_micros())
        };
        after_months.saturating_sub(self.micros).max(min)
    }

    /// The instant this long after `t`: the months on the calendar, then the exact part;
    /// saturating at the last representable instant.
    pub fn after(self, t: i64) -> i64 {
        let (_, max) = representable();
        let after_months = if self.months == 0 {
            t
        } else {
            datetime_of(t)
                .and_then(|dt| dt.checked_add_months(chrono::Months::new(self.months)))
                .map_or(max, |dt| dt.timestamp_micros())
        };
        after_months.saturating_add(self.micros).min(max)
    }

    /// Both lengths one after the other (months and exact parts added).
    pub fn plus(self, other: Period) -> Period {
        Period {
            months: self.months.saturating_add(other.months),
            micros: self.micros.saturating_add(other.micros),
        }
    }

    /// `k` times this length.
    pub fn times(self, k: u32) -> Period {
        Period {
            months: self.months.saturating_mul(k),
            micros: self.micros.saturating_mul(k as i64),
        }
    }

    /// The canonical spelling: `1y2mo`, `30d`, `1d12h` (`0s` for zero).
    pub fn format(self) -> String {
        let mut out = String::new();
        let (years, months) = (self.months / 12, self.months % 12);
        if years > 0 {
            out.push_str(&format!("{years}y"));
        }
        if months > 0 {
            out.push_str(&format!("{months}mo"));
        }
        if self.micros != 0 || out.is_empty() {
            out.push_str(&format_duration(self.micros));
        }
        out
    }
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
    fn months_are_calendar_months() {
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        let three = Period {
            months: 3,
            micros: 0,
        };
        assert_eq!(
            three.before(t("2026-05-31T10:00:00Z")),
            t("2026-02-28T10:00:00Z")
        );
        assert_eq!(
            three.before(t("2024-05-31T00:00:00Z")),
            t("2024-02-29T00:00:00Z")
        );
        let year = Period {
            months: 12,
            micros: MICROS_PER_DAY,
        };
        assert_eq!(
            year.before(t("2026-11-01T00:00:00Z")),
            t("2025-10-31T00:00:00Z")
        );
        assert_eq!(year.format(), "1y1d");
        assert_eq!(Period::exact(30 * MICROS_PER_DAY).format(), "30d");
        assert_eq!(Period::exact(0).format(), "0s");
        assert_eq!(
            Period {
                months: 14,
                micros: 0
            }
            .format(),
            "1y2mo"
        );
        assert_eq!(Period::exact(i64::MAX).before(0), representable().0);
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
