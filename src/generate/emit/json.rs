//! A streaming JSON writer for the emitted lines. The emitters write about a hundred million
//! lines for a large store, so each line is written straight into one reused buffer, without a
//! `serde_json::Value` in between. Objects and arrays close when they go out of scope.

use crate::base::time::MICROS_PER_DAY;
use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use std::io::Write;

/// An open JSON object; `}` is written when it is dropped.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

/// An open JSON array; `]` is written when it is dropped.
pub struct Arr<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Obj<'a> {
    /// Starts an object at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        string(self.out, key);
        self.out.push(b':');
    }

    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        string(self.out, value);
    }

    /// Nothing when `value` is `None`: absent fields are left out, never written as null.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    pub fn num(&mut self, key: &str, value: f64) {
        self.key(key);
        number(self.out, value);
    }

    pub fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        write!(self.out, "{value}").expect("writing to a Vec cannot fail");
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        if let Some(v) = value {
            self.bool(key, v);
        }
    }

    /// A time as RFC 3339 with microseconds, in UTC (`2026-10-31T08:15:00.250000Z`).
    pub fn time(&mut self, key: &str, micros: i64) {
        self.key(key);
        self.out.push(b'"');
        rfc3339(self.out, micros);
        self.out.push(b'"');
    }

    /// A Date32 value as `YYYY-MM-DD`.
    pub fn date(&mut self, key: &str, days: i32) {
        self.key(key);
        self.out.push(b'"');
        ymd(self.out, days);
        self.out.push(b'"');
    }

    pub fn obj(&mut self, key: &str) -> Obj<'_> {
        self.key(key);
        Obj::new(self.out)
    }

    pub fn arr(&mut self, key: &str) -> Arr<'_> {
        self.key(key);
        self.out.push(b'[');
        Arr {
            out: self.out,
            empty: true,
        }
    }

    pub fn strs(&mut self, key: &str, items: &[&str]) {
        let mut a = self.arr(key);
        for item in items {
            a.str(item);
        }
    }
}

impl Drop for Obj<'_> {
    fn drop(&mut self) {
        self.out.push(b'}');
    }
}

impl Arr<'_> {
    fn comma(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
    }

    pub fn str(&mut self, value: &str) {
        self.comma();
        string(self.out, value);
    }

    pub fn obj(&mut self) -> Obj<'_> {
        self.comma();
        Obj::new(self.out)
    }
}

impl Drop for Arr<'_> {
    fn drop(&mut self) {
        self.out.push(b']');
    }
}

/// A JSON string; most values need no escaping, so they are copied as they are.
fn string(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("a string always serializes");
    }
}

/// The shortest text that reads back as the same f64 (serde_json's); null if not finite,
/// which the store never holds.
fn number(out: &mut Vec<u8>, v: f64) {
    serde_json::to_writer(out, &v).expect("a number always serializes");
}

/// `micros` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn rfc3339(out: &mut Vec<u8>, micros: i64) {
    let t = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros.rem_euclid(1_000_000)
    )
    .expect("writing to a Vec cannot fail");
}

/// A Date32 value as `YYYY-MM-DD`.
pub fn ymd(out: &mut Vec<u8>, days: i32) {
    let d = date(days);
    write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
        .expect("writing to a Vec cannot fail");
}

/// The date of a Date32 value.
pub fn date(days: i32) -> NaiveDate {
    crate::base::time::date_of(days as i64 * MICROS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_nest_close_and_escape() {
        let mut out = Vec::new();
        {
            let mut o = Obj::new(&mut out);
            o.str("a", "x\"y");
            o.opt_str("skipped", None);
            o.num("n", 24.5);
            o.int("i", -3);
            {
                let mut inner = o.obj("in");
                inner.bool("b", true);
                inner.strs("l", &["p", "q"]);
            }
            o.time("t", 1_785_024_000_000_001);
            o.date("d", 0);
            let mut a = o.arr("objs");
            a.obj().str("k", "v");
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"a":"x\"y","n":24.5,"i":-3,"in":{"b":true,"l":["p","q"]},"t":"2026-07-26T00:00:00.000001Z","d":"1970-01-01","objs":[{"k":"v"}]}"#
        );
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
    }
}
