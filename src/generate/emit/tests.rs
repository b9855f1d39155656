//! The emitters on a small generated store: every event exactly once, time order, unique ids,
//! a whole personalize → sign-out lifecycle, and the People shape, read back from the files.

use super::table::Entities;
use super::*;
use crate::generate::{generate, GenerateOptions};
use crate::store::manifest::Partitioning;
use crate::store::Store;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

/// A store of 200 persons and 30 days (enough for several sign-outs) and its emitted sources.
struct Fixture {
    _dir: tempfile::TempDir,
    snapshot: Snapshot,
    emit_dir: PathBuf,
    written: Vec<Written>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let opts = GenerateOptions {
            persons: 200,
            days: 30,
            seed: 7,
            as_of: "2026-11-01T00:00:00Z".parse().unwrap(),
            threads: 2,
            progress: Default::default(),
            partitioning: Partitioning::Month,
            activity_summary: true,
        };
        let g = generate(&store, &opts).unwrap();
        let snapshot = Store::open(&store)
            .unwrap()
            .snapshot(Some(&g.snapshot_id))
            .unwrap();
        let emit_dir = dir.path().join("emitted");
        let written = emit(&snapshot, &emit_dir, &all_formats()).unwrap();
        Fixture {
            _dir: dir,
            snapshot,
            emit_dir,
            written,
        }
    })
}

fn all_formats() -> EmitOptions {
    EmitOptions {
        formats: vec![Format::Infobip, Format::SegmentJsonl],
        threads: 2,
        progress: Default::default(),
    }
}

/// The files of a format's directory, by name, each as its parsed lines.
fn read_dir(dir: &Path) -> Vec<(String, Vec<Value>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(std::fs::File::open(dir.join(&name)).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            let lines = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
                .collect();
            (name, lines)
        })
        .collect()
}

fn segment_calls() -> Vec<(String, Value)> {
    read_dir(&fixture().emit_dir.join("segment"))
        .into_iter()
        .flat_map(|(name, lines)| lines.into_iter().map(move |l| (name.clone(), l)))
        .collect()
}

fn s<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Which event of the snapshot a call stands for (`None`: a device-less identify).
fn event_of(call: &Value) -> Option<String> {
    match (s(call, "/type"), s(call, "/event")) {
        (Some("identify"), _) if call.pointer("/context").is_some() => Some("Personalize".into()),
        (Some("identify"), _) => None,
        (Some("track"), Some(e)) => Some(
            match e {
                "Application Installed" => "Install",
                "Application Opened" => "AppLaunch",
                "Application Uninstalled" => "Uninstall",
                "Signed Out" => "Depersonalize",
                other => other,
            }
            .to_string(),
        ),
        _ => panic!("unexpected call {call}"),
    }
}

/// Rows per event in the manifest.
fn manifest_counts(snapshot: &Snapshot) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for e in &snapshot.manifest.events {
        *counts.entry(e.event.clone()).or_default() += e.file.rows;
    }
    counts
}

fn micros(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_micros()
}

fn persons(snapshot: &Snapshot) -> Entities {
    Entities::load(snapshot, Entity::Person, &PERSON_ATTRIBUTES).unwrap()
}

fn installations(snapshot: &Snapshot) -> Entities {
    Entities::load(snapshot, Entity::Installation, &INSTALLATION_ATTRIBUTES).unwrap()
}

#[test]
fn every_event_is_one_segment_call() {
    let f = fixture();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, call) in segment_calls() {
        if let Some(e) = event_of(&call) {
            *counts.entry(e).or_default() += 1;
        }
    }
    let expected = manifest_counts(&f.snapshot);
    assert_eq!(counts, expected);
    for name in ["Install", "Personalize", "Depersonalize", "Purchase"] {
        assert!(expected[name] > 0, "the fixture has no {name}");
    }
    let w = f.written.iter().find(|w| w.format == Format::SegmentJsonl);
    assert_eq!(
        w.unwrap().events,
        expected,
        "the report counts what was written"
    );
}

#[test]
fn calls_are_in_time_order_with_unique_ids() {
    let mut ids = HashSet::new();
    let mut last = i64::MIN;
    let mut files = HashSet::new();
    for (file, call) in segment_calls() {
        let t = micros(s(&call, "/timestamp").unwrap());
        assert!(t >= last, "{file}: {call} comes after a later call");
        last = t;
        // The file is the call's UTC day.
        let day = date_of(t);
        assert_eq!(file, format!("events-{day}.jsonl.gz"));
        files.insert(file);
        let id = s(&call, "/messageId").unwrap().to_string();
        assert!(ids.insert(id.clone()), "messageId {id} occurs twice");
        assert!(
            call.get("userId").is_some() || call.get("anonymousId").is_some(),
            "{call}"
        );
    }
    assert!(
        files.len() >= 28,
        "one file per day of the history: {files:?}"
    );
}

#[test]
fn a_device_is_installed_personalized_and_signed_out_in_order() {
    let f = fixture();
    let persons = persons(&f.snapshot);
    let devices = installations(&f.snapshot);
    let calls = segment_calls();
    let mut by_device: HashMap<String, Vec<&Value>> = HashMap::new();
    for (_, c) in &calls {
        if let Some(id) = s(c, "/context/device/id") {
            by_device.entry(id.to_string()).or_default().push(c);
        }
    }
    fn signed_out(c: &&Value) -> bool {
        s(c, "/event") == Some("Signed Out")
    }
    let (device_id, seq) = by_device
        .iter()
        .filter(|(_, seq)| seq.iter().any(signed_out))
        .min_by_key(|(id, _)| id.as_str())
        .expect("some device signs out");
    let row = (0..devices.len())
        .map(|i| devices.row(i))
        .find(|r| r.str(d::PUSH_ID) == Some(device_id.as_str()))
        .unwrap();
    let installation = row.int(d::ID).unwrap();
    let owner = persons.row(persons.find(row.int(d::PERSON).unwrap()).unwrap());
    assert_eq!(
        owner.bool(p::IDENTIFIED),
        Some(false),
        "a sign-out leaves the device with an anonymous person"
    );

    let first_anon = format!("anon-i{installation}");
    let after_anon = format!("anon-{}", owner.int(0).unwrap());
    assert_eq!(s(seq[0], "/event"), Some("Application Installed"));
    let identify = seq
        .iter()
        .position(|c| s(c, "/type") == Some("identify"))
        .unwrap();
    let out = seq.iter().position(signed_out).unwrap();
    assert!(identify < out);
    assert_eq!(
        seq.iter()
            .filter(|c| s(c, "/type") == Some("identify"))
            .count(),
        1
    );
    assert_eq!(seq.iter().filter(|c| signed_out(c)).count(), 1);
    let user = s(seq[identify], "/userId").expect("the identify names the user");
    let person = (0..persons.len())
        .map(|i| persons.row(i))
        .find(|r| r.str(p::EXTERNAL_USER_ID) == Some(user))
        .unwrap();
    let traits = &seq[identify]["traits"];
    assert_eq!(s(traits, "/firstName"), person.str(p::FIRST_NAME));
    assert_eq!(
        s(traits, "/createdAt").map(micros),
        person.micros(p::CREATED)
    );
    for (i, c) in seq.iter().enumerate() {
        let (anon, uid) = (s(c, "/anonymousId"), s(c, "/userId"));
        if i < identify {
            assert_eq!((anon, uid), (Some(first_anon.as_str()), None), "{c}");
        } else if i <= out {
            assert_eq!((anon, uid), (Some(first_anon.as_str()), Some(user)), "{c}");
        } else {
            assert_eq!((anon, uid), (Some(after_anon.as_str()), None), "{c}");
        }
    }
    // Every call describes the device as the installations table does.
    let c = seq[0];
    assert_eq!(
        s(c, "/context/device/token"),
        if row.bool(d::PUSH_ENABLED) == Some(true) {
            Some(device_id.as_str())
        } else {
            None
        }
    );
    assert_eq!(s(c, "/context/os/name"), row.str(d::PLATFORM));
    assert_eq!(s(c, "/context/app/version"), row.str(d::APP_VERSION));
    assert_eq!(
        c.pointer("/context/installation/deviceSecure")
            .and_then(Value::as_bool),
        row.bool(d::SECURE)
    );
}

#[test]
fn anonymous_devices_keep_their_persons_anonymous_id() {
    let f = fixture();
    let persons = persons(&f.snapshot);
    let devices = installations(&f.snapshot);
    let anonymous: HashMap<&str, i64> = (0..devices.len())
        .map(|i| devices.row(i))
        .filter(|r| {
            let owner = persons.row(persons.find(r.int(d::PERSON).unwrap()).unwrap());
            owner.bool(p::IDENTIFIED) == Some(false)
        })
        .map(|r| (r.str(d::PUSH_ID).unwrap(), r.int(d::PERSON).unwrap()))
        .collect();
    let mut checked = 0;
    for (_, c) in segment_calls() {
        let Some(id) = s(&c, "/context/device/id") else {
            continue;
        };
        if let Some(owner) = anonymous.get(id) {
            if s(&c, "/anonymousId").is_some_and(|a| !a.starts_with("anon-i")) {
                assert_eq!(
                    s(&c, "/anonymousId"),
                    Some(format!("anon-{owner}").as_str())
                );
                assert!(c.get("userId").is_none(), "{c}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn people_are_identified_persons_with_their_installed_devices() {
    let f = fixture();
    let persons = persons(&f.snapshot);
    let devices = installations(&f.snapshot);
    let files = read_dir(&f.emit_dir.join("infobip"));
    let (name, people) = &files.iter().find(|(n, _)| n == "people.jsonl.gz").unwrap();
    let identified: Vec<_> = (0..persons.len())
        .map(|i| persons.row(i))
        .filter(|r| r.bool(p::IDENTIFIED) == Some(true))
        .collect();
    assert_eq!(people.len(), identified.len(), "{name}");
    let mut with_push = 0;
    for (line, r) in people.iter().zip(&identified) {
        assert_eq!(s(line, "/externalId"), r.str(p::EXTERNAL_USER_ID));
        assert_eq!(s(line, "/lastName"), r.str(p::LAST_NAME));
        assert_eq!(s(line, "/country"), r.str(p::COUNTRY));
        assert_eq!(s(line, "/modifiedAt").map(micros), r.micros(p::MODIFIED));
        let emails: Vec<&str> = line["contactInformation"]["email"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| s(e, "/address").unwrap())
            .collect();
        assert_eq!(emails, r.strs(p::EMAILS));
        let expected: Vec<&str> = (0..devices.len())
            .map(|i| devices.row(i))
            .filter(|d| d.int(d::PERSON) == r.int(0) && d.micros(d::UNINSTALLED).is_none())
            .map(|d| d.str(d::PUSH_ID).unwrap())
            .collect();
        let push = line["contactInformation"]["push"].as_array().unwrap();
        let got: Vec<&str> = push
            .iter()
            .map(|x| s(x, "/registrationId").unwrap())
            .collect();
        assert_eq!(got, expected, "{line}");
        for x in push {
            assert_eq!(s(x, "/applicationId"), Some(infobip::APPLICATION_ID));
            for key in ["os", "osVersion", "sdkVersion", "appVersion", "deviceModel"] {
                assert!(x["systemData"][key].is_string(), "{key}: {x}");
            }
            assert!(x["isPrimary"].is_boolean() && x["systemData"]["deviceSecure"].is_boolean());
        }
        with_push += usize::from(!push.is_empty());
        let team = persons.first_custom
            + persons
                .custom
                .iter()
                .position(|c| c == "favoriteTeam")
                .unwrap();
        assert_eq!(s(line, "/customAttributes/favoriteTeam"), r.str(team));
    }
    let w = f
        .written
        .iter()
        .find(|w| w.format == Format::Infobip)
        .unwrap();
    assert_eq!(w.persons as usize, identified.len());
    assert!(with_push > identified.len() / 2);
    // A primary registration per person who has installations.
    let primaries = people
        .iter()
        .filter(|l| {
            l["contactInformation"]["push"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["isPrimary"] == Value::Bool(true))
        })
        .count();
    assert_eq!(primaries, with_push);
}

#[test]
fn people_events_are_the_custom_events_of_identified_persons() {
    let f = fixture();
    let persons = persons(&f.snapshot);
    let files = read_dir(&f.emit_dir.join("infobip"));
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut last = i64::MIN;
    let mut ids = HashSet::new();
    for (name, lines) in files.iter().filter(|(n, _)| n.starts_with("events-")) {
        for l in lines {
            let t = micros(s(l, "/occurredTime").unwrap());
            assert!(t >= last, "{name}: {l}");
            last = t;
            assert!(s(l, "/identifier").unwrap().starts_with("cust-"));
            assert!(ids.insert(s(l, "/eventId").unwrap().to_string()));
            *counts
                .entry(s(l, "/definitionId").unwrap().into())
                .or_default() += 1;
        }
    }
    let mut expected = BTreeMap::new();
    for def in f
        .snapshot
        .manifest
        .catalog
        .events
        .iter()
        .filter(|e| !e.standard)
    {
        let n = table::who(&f.snapshot, &def.name)
            .unwrap()
            .iter()
            .filter(|(person, _)| {
                let r = persons.row(persons.find(*person).unwrap());
                r.bool(p::IDENTIFIED) == Some(true)
            })
            .count() as u64;
        if n > 0 {
            expected.insert(def.name.clone(), n);
        }
    }
    assert_eq!(counts, expected);
    let w = f
        .written
        .iter()
        .find(|w| w.format == Format::Infobip)
        .unwrap();
    assert_eq!(w.events, expected);
}

#[test]
fn the_same_snapshot_emits_the_same_bytes_and_a_taken_directory_is_refused() {
    let f = fixture();
    let again = tempfile::tempdir().unwrap();
    emit(&f.snapshot, again.path(), &all_formats()).unwrap();
    for format in Format::ALL {
        let (a, b) = (
            f.emit_dir.join(format.dir_name()),
            again.path().join(format.dir_name()),
        );
        let names = |d: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&a), names(&b));
        for n in names(&a) {
            assert!(
                std::fs::read(a.join(&n)).unwrap() == std::fs::read(b.join(&n)).unwrap(),
                "{n:?} differs"
            );
        }
    }
    let err = emit(&f.snapshot, again.path(), &all_formats()).unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    // Nothing is left half-written beside the finished directories.
    let hidden = std::fs::read_dir(again.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(hidden, 0);
}

#[test]
fn every_format_says_what_it_cannot_express() {
    for f in Format::ALL {
        assert!(f.gaps().len() >= 5, "{}", f.name());
    }
    assert!(Format::Infobip
        .gaps()
        .iter()
        .any(|g| g.contains("anonymous persons")));
    assert!(Format::SegmentJsonl
        .gaps()
        .iter()
        .any(|g| g.contains("modifiedAt")));
}

#[test]
fn persons_the_history_never_personalizes_get_an_identify_of_their_own() {
    // The same snapshot with its Personalize files left out of the manifest: as if every
    // identified person had been personalized before the history began.
    let f = fixture();
    let mut snapshot = f.snapshot.clone();
    snapshot
        .manifest
        .events
        .retain(|e| e.event != "Personalize");
    let dir = tempfile::tempdir().unwrap();
    let opts = EmitOptions {
        formats: vec![Format::SegmentJsonl],
        ..all_formats()
    };
    let written = emit(&snapshot, dir.path(), &opts).unwrap();
    let persons = persons(&snapshot);
    let identified = (0..persons.len())
        .filter(|&i| persons.row(i).bool(p::IDENTIFIED) == Some(true))
        .count() as u64;
    assert_eq!(written[0].persons, identified);
    let mut alone = 0;
    let mut last = i64::MIN;
    for (_, lines) in read_dir(&dir.path().join("segment")) {
        for c in lines {
            let t = micros(s(&c, "/timestamp").unwrap());
            assert!(t >= last, "{c}");
            last = t;
            if s(&c, "/type") == Some("identify") {
                assert!(
                    c.get("context").is_none(),
                    "only device-less identifies: {c}"
                );
                assert!(s(&c, "/userId").is_some() && c["traits"].is_object(), "{c}");
                alone += 1;
            }
            // An identified person's device carries the userId from its first call.
            if s(&c, "/event") == Some("Application Installed") {
                let anon = s(&c, "/anonymousId").unwrap();
                assert_eq!(anon.starts_with("anon-i"), c.get("userId").is_some(), "{c}");
            }
        }
    }
    assert_eq!(alone, identified);
}
