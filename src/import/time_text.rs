//! Dates and times written as text, one set of rules for every source and for typing string
//! values: `YYYY-MM-DD`, and ISO 8601 times (`T`, `t` or a space between date and time; seconds
//! and a fraction optional; `Z`, `±HH:MM`, `±HHMM`, `±HH` or no offset, which is UTC; a leap
//! second read as the next second).

use chrono::NaiveDate;

/// Exactly `YYYY-MM-DD` (chrono alone also takes `2026-5-1`, more likely a code than a date).
pub fn exact_date(s: &str) -> Option<NaiveDate> {
    let mut c = Cursor(s.as_bytes());
    let date = c.date()?;
    c.0.is_empty().then_some(date)
}

/// `YYYY-MM-DD`, or the date of an ISO 8601 time as written.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut c = Cursor(s.as_bytes());
    let date = c.date()?;
    (c.0.is_empty() || parse_time(s).is_some()).then_some(date)
}

/// An ISO 8601 time in µs UTC (see the module doc for the forms accepted), or `None`.
pub fn parse_time(s: &str) -> Option<i64> {
    let mut c = Cursor(s.as_bytes());
    let date = c.date()?;
    if !c.eat(b'T') && !c.eat(b't') && !c.eat(b' ') {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let mut second = 0;
    let mut micros = 0;
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            micros = c.fraction()?;
        }
    }
    let offset = c.offset()?;
    // 60 is a leap second, read as the next second (as POSIX times do).
    if !c.0.is_empty() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = i64::from(chrono::Datelike::num_days_from_ce(&date)) - 719_163;
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

/// A little parser over the bytes of a time.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn eat(&mut self, b: u8) -> bool {
        match self.0.split_first() {
            Some((first, rest)) if *first == b => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(n)?;
        let mut v = 0u32;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(b - b'0');
        }
        self.0 = rest;
        Some(v)
    }

    fn date(&mut self) -> Option<NaiveDate> {
        let year = self.digits(4)?;
        if !self.eat(b'-') {
            return None;
        }
        let month = self.digits(2)?;
        if !self.eat(b'-') {
            return None;
        }
        let day = self.digits(2)?;
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
    }

    /// One or more digits of a fraction of a second, truncated to microseconds.
    fn fraction(&mut self) -> Option<i64> {
        let n = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut micros = 0i64;
        for i in 0..6 {
            let digit = self.0.get(i).filter(|_| i < n).map_or(0, |b| b - b'0');
            micros = micros * 10 + i64::from(digit);
        }
        self.0 = &self.0[n..];
        Some(micros)
    }

    /// The UTC offset in seconds: `Z`, `±HH:MM`, `±HHMM`, `±HH`, or nothing (UTC).
    fn offset(&mut self) -> Option<i64> {
        if self.eat(b'Z') || self.eat(b'z') || self.0.is_empty() {
            return Some(0);
        }
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2)?;
        let minutes = if self.0.is_empty() {
            0
        } else {
            self.eat(b':');
            self.digits(2)?
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * i64::from(hours * 3600 + minutes * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_dates_are_dates_alone_and_every_source_reads_times_alike() {
        let d = NaiveDate::from_ymd_opt(2026, 5, 1);
        assert_eq!(exact_date("2026-05-01"), d);
        for not_exact in [
            "2026-5-1",
            "2026-05-01T10:00:00Z",
            "2026-05-01 ",
            "20260501",
        ] {
            assert_eq!(exact_date(not_exact), None, "{not_exact:?}");
        }
        // A CSV cell and a JSON trait read the same: space or `T`, offset or none (UTC).
        let t = parse_time("2026-05-01T10:00:00Z");
        assert!(t.is_some());
        assert_eq!(parse_time("2026-05-01 10:00:00"), t);
        assert_eq!(parse_time("2026-05-01T12:00:00+02:00"), t);
        assert_eq!(parse_date("2026-05-01T23:30:00-05:00"), d);
    }
}
