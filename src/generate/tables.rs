//! Builds the persons and installations tables from the planned world and what the events taught.

use super::activity::Trackers;
use super::rng::{hash, Rng};
use super::vocab;
use super::world::{Device, World, MICROS_PER_DAY, NEVER};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::store::{derived, schema};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, ListBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampMicrosecondArray,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Rows per batch handed to the Parquet writer.
const CHUNK: usize = 64 * 1024;

fn date_of(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

fn ts(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

fn ts_opt(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn string_lists(values: impl Iterator<Item = Option<Vec<String>>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for v in values {
        match v {
            Some(items) => {
                for item in items {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// Profile of an identified person, drawn from their own stream.
struct Profile {
    external_user_id: String,
    emails: Option<Vec<String>>,
    phones: Option<Vec<String>>,
    first_name: &'static str,
    last_name: &'static str,
    gender: Option<&'static str>,
    birth_date: Option<i32>,
    city: &'static str,
    tags: Option<Vec<String>>,
    favorite_team: Option<&'static str>,
    loyalty_points: Option<f64>,
    newsletter: Option<bool>,
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'č' | 'ć' => 'c',
            'š' | 'ś' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'đ' => 'd',
            'ü' => 'u',
            'ö' | 'ó' => 'o',
            'ä' | 'ą' => 'a',
            'ł' => 'l',
            'ę' => 'e',
            'ń' => 'n',
            c => c.to_ascii_lowercase(),
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn profile(w: &World, pid: usize) -> Profile {
    let mut r = Rng::new(w.seed, &[pid as u64, 0x70726f66]);
    let c = &vocab::COUNTRIES[w.persons[pid].country as usize];
    let gender = r.pick(vocab::GENDERS);
    let first_name = if gender == "male" {
        c.first_male[r.below(c.first_male.len())]
    } else {
        c.first_female[r.below(c.first_female.len())]
    };
    let last_name = c.last[r.below(c.last.len())];
    let n_emails = r.weighted(&[0.12, 0.75, 0.13]);
    let emails = (0..n_emails)
        .map(|i| {
            let domain = r.pick(vocab::EMAIL_DOMAINS);
            format!(
                "{}.{}{}@{domain}",
                ascii_fold(first_name),
                ascii_fold(last_name),
                if i == 0 { pid % 1000 } else { pid % 97 }
            )
        })
        .collect::<Vec<_>>();
    let n_phones = r.weighted(&[0.4, 0.55, 0.05]);
    let phones = (0..n_phones)
        .map(|_| format!("{}{}", c.phone_prefix, 900_000_000 + r.below(99_999_999)))
        .collect::<Vec<_>>();
    let n_tags = r.weighted(&[0.35, 0.3, 0.2, 0.1, 0.05]);
    let mut tags: Vec<String> = Vec::new();
    for _ in 0..n_tags {
        let t = r.pick(vocab::TAGS).to_string();
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let age_years = 16.0 + r.lognormal(18.0, 0.45).min(70.0);
    Profile {
        external_user_id: format!(
            "cust-{:010}",
            hash(w.seed, &[pid as u64, 0x657874]) % 10_000_000_000
        ),
        emails: (!emails.is_empty()).then_some(emails),
        phones: (!phones.is_empty()).then_some(phones),
        first_name,
        last_name,
        gender: r.chance(0.9).then_some(gender),
        birth_date: r
            .chance(0.7)
            .then(|| date_of(w.as_of) - (age_years * 365.25) as i32),
        city: c.cities[r.below(c.cities.len())],
        tags: (!tags.is_empty()).then_some(tags),
        favorite_team: r.chance(0.55).then(|| c.teams[r.below(c.teams.len())]),
        loyalty_points: r.chance(0.65).then(|| (r.exp(900.0)).round().min(50_000.0)),
        newsletter: r.chance(0.8).then(|| r.chance(0.45)),
    }
}

/// The persons table, in batches of [`CHUNK`] rows.
pub fn persons_batches(w: &World, catalog: &Catalog, t: &Trackers) -> Result<Vec<RecordBatch>> {
    let stored = schema::persons_schema(catalog);
    let schema = derived::without_derived(&stored);
    let mut out = Vec::new();
    for start in (0..w.persons.len()).step_by(CHUNK) {
        let ids: Vec<usize> = (start..(start + CHUNK).min(w.persons.len())).collect();
        let people: Vec<_> = ids.iter().map(|&i| &w.persons[i]).collect();
        let profiles: Vec<Option<Profile>> = ids
            .iter()
            .map(|&i| w.persons[i].identified.then(|| profile(w, i)))
            .collect();
        let country = |i: usize| vocab::COUNTRIES[people[i].country as usize].code;
        let language = |i: usize| vocab::COUNTRIES[people[i].country as usize].language;
        let last_purchase = ids.iter().map(|&i| {
            let d = t.last_purchase_day[i].load(Ordering::Relaxed);
            (d != i32::MIN).then_some(d)
        });
        let p = |i: usize| profiles[i].as_ref();
        let n = ids.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|&i| i as i64))),
            Arc::new(BooleanArray::from_iter(
                people.iter().map(|p| Some(p.identified)),
            )),
            strings((0..n).map(|i| p(i).map(|p| p.external_user_id.as_str()))),
            string_lists((0..n).map(|i| p(i).and_then(|p| p.emails.clone()))),
            string_lists((0..n).map(|i| p(i).and_then(|p| p.phones.clone()))),
            strings((0..n).map(|i| p(i).map(|p| p.first_name))),
            strings((0..n).map(|i| p(i).map(|p| p.last_name))),
            strings((0..n).map(|i| p(i).and_then(|p| p.gender))),
            Arc::new(Date32Array::from_iter(
                (0..n).map(|i| p(i).and_then(|p| p.birth_date)),
            )),
            strings((0..n).map(|i| p(i).map(|_| country(i)))),
            strings((0..n).map(|i| p(i).map(|p| p.city))),
            strings((0..n).map(|i| p(i).map(|_| language(i)))),
            string_lists((0..n).map(|i| p(i).and_then(|p| p.tags.clone()))),
            ts(people.iter().map(|p| p.created_at)),
            ts(people.iter().map(|p| p.modified_at)),
            strings((0..n).map(|i| p(i).and_then(|p| p.favorite_team))),
            Arc::new(Float64Array::from_iter(
                (0..n).map(|i| p(i).and_then(|p| p.loyalty_points)),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| p(i).and_then(|p| p.newsletter)),
            )),
            Arc::new(Date32Array::from_iter(last_purchase)),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        out.push(derived::complete(&batch, &stored)?);
    }
    Ok(out)
}

/// Per-device attributes that are not lifecycle: hardware, software, flags.
struct Hardware {
    maker: &'static str,
    model: &'static str,
    os_version: &'static str,
    sdk_version: &'static str,
    app_version: &'static str,
    push_token: String,
    push_enabled: bool,
    registrations: bool,
    notifications: bool,
    geofencing: bool,
    secure: bool,
    theme: Option<&'static str>,
    push_opt_in: Option<i32>,
}

fn hardware(w: &World, id: usize, d: &Device, last_seen: i64) -> Hardware {
    let mut r = Rng::new(w.seed, &[id as u64, 0x6877]);
    let platform = vocab::PLATFORMS[d.platform as usize].0;
    let maker = match platform {
        "iOS" => "Apple",
        "Huawei" => "Huawei",
        _ => r.pick(vocab::ANDROID_MAKERS),
    };
    let models = vocab::models(maker);
    // Newer models are more common: a skew towards the front of the list.
    let model = models[((r.f64().powi(2)) * models.len() as f64) as usize];
    // App version: the release the device updated to, some days before it was last seen.
    let lag = r.exp(18.0) as i64;
    let days_before_as_of = (w.as_of - last_seen) / MICROS_PER_DAY + lag;
    let app_version = vocab::APP_RELEASES
        .iter()
        .rev()
        .find(|(_, age)| *age >= days_before_as_of)
        .unwrap_or(&vocab::APP_RELEASES[0])
        .0;
    let push_enabled = r.chance(0.75);
    let mut h1 = hash(w.seed, &[id as u64, 0x70757368]);
    let mut token = String::with_capacity(64);
    let token_len = if platform == "iOS" { 64 } else { 40 };
    while token.len() < token_len {
        token.push_str(&format!("{h1:016x}"));
        h1 = hash(h1, &[id as u64]);
    }
    token.truncate(token_len);
    let push_token = match platform {
        "iOS" => token,
        "Huawei" => format!("hms:{token}"),
        _ => format!("fcm:{token}:{id:x}"),
    };
    let opt_in_span = (w.as_of - d.installed_at).max(1);
    Hardware {
        maker,
        model,
        os_version: r.pick(vocab::os_versions(platform)),
        sdk_version: r.pick(vocab::SDK_VERSIONS),
        app_version,
        push_token,
        push_enabled,
        registrations: r.chance(0.95),
        notifications: push_enabled && r.chance(if platform == "iOS" { 0.8 } else { 0.93 }),
        geofencing: r.chance(0.2),
        secure: r.chance(0.82),
        theme: r.chance(0.7).then(|| r.pick(vocab::THEMES)),
        push_opt_in: push_enabled
            .then(|| date_of(d.installed_at + (r.f64().powi(4) * opt_in_span as f64) as i64)),
    }
}

/// The installations table, in batches of [`CHUNK`] rows.
pub fn installations_batches(
    w: &World,
    catalog: &Catalog,
    t: &Trackers,
) -> Result<Vec<RecordBatch>> {
    let stored = schema::installations_schema(catalog);
    let schema = derived::without_derived(&stored);
    let mut out = Vec::new();
    for start in (0..w.devices.len()).step_by(CHUNK) {
        let ids: Vec<usize> = (start..(start + CHUNK).min(w.devices.len())).collect();
        let devs: Vec<&Device> = ids.iter().map(|&i| &w.devices[i]).collect();
        let seen: Vec<i64> = ids
            .iter()
            .map(|&i| t.last_seen[i].load(Ordering::Relaxed))
            .zip(&devs)
            .map(|(s, d)| if s == i64::MIN { d.installed_at } else { s })
            .collect();
        let hw: Vec<Hardware> = ids
            .iter()
            .zip(&devs)
            .zip(&seen)
            .map(|((&i, d), &s)| hardware(w, i, d, s))
            .collect();
        let platform = |d: &&Device| Some(vocab::PLATFORMS[d.platform as usize].0);
        let lang = |d: &&Device| {
            Some(vocab::COUNTRIES[w.persons[d.owner as usize].country as usize].language)
        };
        let bools = |f: &dyn Fn(&Hardware) -> bool| -> ArrayRef {
            Arc::new(BooleanArray::from_iter(hw.iter().map(|h| Some(f(h)))))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|&i| i as i64))),
            strings(hw.iter().map(|h| Some(h.push_token.as_str()))),
            Arc::new(Int64Array::from_iter_values(
                devs.iter().map(|d| d.owner as i64),
            )),
            strings(devs.iter().map(|d| Some(d.state()))),
            strings(devs.iter().map(platform)),
            strings(hw.iter().map(|h| Some(h.sdk_version))),
            strings(hw.iter().map(|h| Some(h.os_version))),
            strings(hw.iter().map(|h| Some(h.maker))),
            strings(hw.iter().map(|h| Some(h.model))),
            strings(hw.iter().map(|h| Some(h.app_version))),
            strings(devs.iter().map(lang)),
            bools(&|h| h.push_enabled),
            bools(&|h| h.registrations),
            bools(&|h| h.notifications),
            bools(&|h| h.geofencing),
            bools(&|h| h.secure),
            Arc::new(BooleanArray::from_iter(
                devs.iter().map(|d| Some(d.primary)),
            )),
            ts(devs.iter().map(|d| d.installed_at)),
            ts_opt(seen.iter().map(|&s| Some(s))),
            ts_opt(
                devs.iter()
                    .map(|d| (d.uninstalled_at != NEVER).then_some(d.uninstalled_at)),
            ),
            strings(hw.iter().map(|h| h.theme)),
            Arc::new(Date32Array::from_iter(hw.iter().map(|h| h.push_opt_in))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        out.push(derived::complete(&batch, &stored)?);
    }
    Ok(out)
}
