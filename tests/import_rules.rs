//! `audience import` end to end, on the committed fixtures in tests/fixtures/import/: each
//! profiling rule seen through the audiences segments give afterwards, the report and the
//! rejects file, re-import, incremental import, `--max-rejects`, `--on-conflict merge`, and
//! every kind of source.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.env_remove("AUDIENCE_STORE")
        .env("NO_COLOR", "1")
        .env("AUDIENCE_PROGRESS", "0");
    cmd
}

/// (exit code, stdout, stderr)
fn run(args: &[&str]) -> (i32, String, String) {
    let out = audience().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn import(store: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["import", "--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

fn count(store: &Path, target: &str, segment: &str) -> u64 {
    let (code, out, err) = run(&[
        "count",
        "--store",
        store.to_str().unwrap(),
        "--target",
        target,
        segment,
    ]);
    assert_eq!(code, 0, "{segment}: {err}");
    out.trim().parse().unwrap()
}

/// The rows of a query, each as its cells joined by `,` (from `sql`'s table).
fn sql(store: &Path, query: &str) -> String {
    let (code, out, err) = run(&["sql", "--store", store.to_str().unwrap(), query]);
    assert_eq!(code, 0, "{query}: {err}");
    out.lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            cells.join(",") + "\n"
        })
        .collect()
}

/// The report of the import that published `snapshot` (or the only one of its kind).
fn report(store: &Path, dir: &str) -> Value {
    let text = std::fs::read_to_string(store.join("imports").join(dir).join("report.json"))
        .unwrap_or_else(|e| panic!("report of {dir}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn rejects(store: &Path, dir: &str) -> Vec<Value> {
    std::fs::read_to_string(store.join("imports").join(dir).join("rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn snapshots(store: &Path) -> usize {
    std::fs::read_dir(store.join("snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn the_rules_decide_who_each_record_belongs_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, out, err) = import(&store, &[fixture("segment-rules.jsonl").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    let r = report(&store, &id);
    // 20 lines: 5 rejected, 1 a duplicate messageId; the throttled launch is accepted (and not
    // recorded).
    assert_eq!(r["accepted"], 14, "{r:#}");
    assert_eq!(r["deduplicated"], 1);
    assert_eq!(r["throttled"], 1);
    assert_eq!(r["merged_on_personalize"], 3);
    assert_eq!(r["merged_by_alias"], 1);
    assert_eq!(r["personalized"], 3);
    assert_eq!(r["depersonalized"], 1);

    // Five lines are rejected, each with its line and reason, whole in the rejects file.
    let rej = rejects(&store, &id);
    let lines: Vec<(u64, &str)> = rej
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    let reason = |line: u64| lines.iter().find(|(l, _)| *l == line).unwrap().1;
    assert!(reason(11).contains("ana@example.hr"), "{}", reason(11));
    assert!(reason(14).to_lowercase().contains("json"), "{}", reason(14));
    assert!(reason(15).contains("timestamp"), "{}", reason(15));
    assert!(reason(16).contains("group"), "{}", reason(16));
    assert!(reason(17).contains("amount"), "{}", reason(17));
    let whole = rej.iter().find(|r| r["line"] == 14).unwrap();
    assert_eq!(whole["record"], "{not json");
    assert!(whole["file"]
        .as_str()
        .unwrap()
        .ends_with("segment-rules.jsonl"));

    // Personalize merged the anonymous history (Install, launches) into u1; the sign-out moved
    // the device to an anonymous person and left the history with u1; the alias merged u3
    // into u4; the rejected identity claim created no u2. So: u1, u4 and the signed-out
    // device's anonymous person.
    let persons = sql(
        &store,
        "select external_user_id, identified, emails, phones from persons order by person_id",
    );
    assert_eq!(persons.lines().count(), 3, "{persons}");
    assert!(persons.contains("u1,true"), "{persons}");
    assert!(persons.contains("u4,true"), "{persons}");
    assert!(
        !persons.contains("u2") && !persons.contains("u3,"),
        "{persons}"
    );
    assert_eq!(count(&store, "persons", "identified"), 2);
    assert_eq!(count(&store, "persons", "did(Install)"), 1);
    assert_eq!(
        count(&store, "persons", "count(AppLaunch) = 2 and did(Install)"),
        1
    );
    assert_eq!(count(&store, "persons", "did(Depersonalize)"), 1);
    assert_eq!(count(&store, "persons", "count(Personalize) = 2"), 1);
    // The device-less Purchase from the backend and the late one count for the person.
    assert_eq!(count(&store, "persons", "count(Purchase) = 3"), 1);
    assert_eq!(count(&store, "persons", "sum(Purchase.amount) = 165.4"), 1);
    assert_eq!(
        count(&store, "persons", "person.emails has \"bo@example.hr\""),
        1
    );
    assert_eq!(
        count(&store, "persons", "person.custom.favoriteTeam = \"Dinamo\""),
        1
    );
    assert_eq!(
        count(&store, "persons", "person.custom.loyaltyPoints >= 100"),
        1
    );
    assert_eq!(count(&store, "persons", "birthDate = 1990-05-01"), 1);

    // Installations: d1 depersonalized (token t1), d2 without a token, d3 from the alias.
    assert_eq!(
        count(&store, "installations", "state = \"depersonalized\""),
        1
    );
    assert_eq!(
        count(&store, "installations", "state = \"personalized\""),
        2
    );
    assert_eq!(count(&store, "installations", "pushRegistrationEnabled"), 2);
    assert_eq!(count(&store, "installations", "primaryDevice"), 3);
    assert_eq!(
        count(
            &store,
            "installations",
            "platform = \"iOS\" and osVersion >= 17"
        ),
        1
    );
    let d2 = sql(
        &store,
        "select push_registration_id, push_registration_enabled from installations \
         where platform = 'Android' and device_model = 'SM-S911B'",
    );
    assert!(d2.contains("d2,false"), "{d2}");
}

#[test]
fn a_reimport_adds_nothing_and_an_increment_builds_on_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let rules = fixture("segment-rules.jsonl");
    let (code, _, err) = import(&store, &[rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = import(&store, &[rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("nothing new"), "{err}");
    assert!(err.contains("0 accepted"), "{err}");
    // The 14 accepted lines and the duplicate among them; the 5 bad lines are rejected again.
    assert!(err.contains("15 de-duplicated"), "{err}");
    assert_eq!(snapshots(&store), 1);

    let (code, out, err) = import(&store, &[fixture("segment-day4.jsonl").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    let r = report(&store, id);
    assert!(r["parent"].is_string(), "{r:#}");
    assert_eq!(snapshots(&store), 2);
    // The earlier history is still there, and the new day adds to it.
    assert_eq!(count(&store, "persons", "did(Install)"), 2);
    assert_eq!(count(&store, "persons", "count(Purchase) = 4"), 1);
    // The anonymous person of the signed-out device identified itself and merged into u5,
    // taking its launch of day 1 along (its file was rewritten).
    assert_eq!(
        count(
            &store,
            "persons",
            "count(AppLaunch) = 2 and not did(Install)"
        ),
        1
    );
    assert!(r["rewritten_files"].as_u64().unwrap() >= 1, "{r:#}");
    assert_eq!(r["merged_on_personalize"], 1);
    // A launch within 30 s of the last one of the previous import is throttled.
    assert_eq!(r["throttled"], 1, "{r:#}");
    // The previous snapshot is untouched.
    let (code, out, _) = run(&["info", "--store", store.to_str().unwrap(), "--verify"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn too_many_rejects_publish_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, out, err) = import(
        &store,
        &[
            "--max-rejects",
            "4",
            fixture("segment-rules.jsonl").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("5 records were rejected, more than --max-rejects 4"),
        "{err}"
    );
    assert!(err.contains("nothing was published"), "{err}");
    assert_eq!(snapshots(&store), 0);
    let failed: Vec<_> = std::fs::read_dir(store.join("imports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(failed[0].starts_with("failed-"), "{failed:?}");
    assert_eq!(rejects(&store, &failed[0]).len(), 5);
    // Plain tables default to no rejects at all.
    let (code, _, err) = import(&store, &[fixture("persons-bad.csv").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("more than --max-rejects 0"), "{err}");
}

#[test]
fn on_conflict_merge_merges_the_claimants() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, out, err) = import(
        &store,
        &[
            "--on-conflict",
            "merge",
            fixture("segment-rules.jsonl").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r = report(&store, out.trim());
    assert_eq!(r["merged_on_conflict"], 1, "{r:#}");
    assert_eq!(rejects(&store, out.trim()).len(), 4);
    // u2 claimed u1's email: one person holds both userIds.
    assert_eq!(count(&store, "persons", "identified"), 2);
}

#[test]
fn bad_sources_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let missing = dir.path().join("nope.jsonl");
    let (code, _, err) = import(&store, &[missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.jsonl"), "{err}");
    let odd = dir.path().join("data.xml");
    std::fs::write(&odd, "<x/>").unwrap();
    let (code, _, err) = import(&store, &[odd.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("data.xml") && err.contains("format"), "{err}");
    let (code, _, err) = import(&store, &["--kind", "segmnet", odd.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown kind `segmnet`"), "{err}");
    assert_eq!(snapshots(&store), 0);
}

/// The lines of a committed fixture, gzipped or not.
fn fixture_lines(name: &str) -> Vec<String> {
    use std::io::Read;
    let bytes = std::fs::read(fixture(name)).unwrap();
    let text = if name.ends_with(".gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The rows of a committed CSV fixture, each as a map from header to cell.
fn fixture_csv(name: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(fixture(name)).unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The kinds the import's report gives its sources, by file name.
fn source_kinds(store: &Path, id: &str) -> Vec<(String, String)> {
    report(store, id)["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let file = s["file"].as_str().unwrap();
            let name = Path::new(file).file_name().unwrap().to_string_lossy();
            (name.into_owned(), s["kind"].as_str().unwrap().to_string())
        })
        .collect()
}

fn sql_number(store: &Path, query: &str) -> f64 {
    let out = sql(store, query);
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{query}: `{out}`: {e}"))
}

fn assert_close(found: f64, expected: f64, what: &str) {
    assert!(
        (found - expected).abs() < 1e-6,
        "{what}: found {found}, expected {expected}"
    );
}

#[test]
fn each_kind_imports_its_committed_fixture() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = tempfile::tempdir().unwrap();

    // -- Infobip People export and People events, kinds told from the content. -----------
    let people: Vec<Value> = fixture_lines("infobip-people.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<Value> = fixture_lines("infobip-events.jsonl.gz")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(people.len() >= 20 && events.len() >= 40);
    let pushes: usize = people
        .iter()
        .map(|p| {
            p["contactInformation"]["push"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    let primaries = people
        .iter()
        .flat_map(|p| p["contactInformation"]["push"].as_array().cloned())
        .flatten()
        .filter(|d| d["isPrimary"] == true)
        .count();
    let buyers: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["definitionId"] == "Purchase")
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    let spent: f64 = events
        .iter()
        .filter(|e| e["definitionId"] == "Purchase")
        .map(|e| e["properties"]["amount"].as_f64().unwrap())
        .sum();
    let views = events
        .iter()
        .filter(|e| e["definitionId"] == "ViewProduct")
        .count();
    assert!(!buyers.is_empty() && buyers.len() < people.len());

    let store = dir.path().join("infobip");
    let (code, out, err) = import(
        &store,
        &[
            fixture("infobip-people.jsonl").to_str().unwrap(),
            fixture("infobip-events.jsonl.gz").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    assert_eq!(
        source_kinds(&store, id),
        [
            ("infobip-people.jsonl".into(), "infobip-people".into()),
            ("infobip-events.jsonl.gz".into(), "infobip-events".into())
        ]
    );
    let r = report(&store, id);
    assert_eq!(r["accepted"], (people.len() + events.len()) as u64, "{r:#}");
    assert!(rejects(&store, id).is_empty());
    assert_eq!(count(&store, "persons", "identified"), people.len() as u64);
    assert_eq!(count(&store, "persons", "not identified"), 0);
    assert_eq!(
        sql_number(&store, "select count(*) from installations") as usize,
        pushes
    );
    assert_eq!(
        count(&store, "installations", "state = \"personalized\""),
        pushes as u64
    );
    assert_eq!(
        count(&store, "installations", "primaryDevice"),
        primaries as u64
    );
    assert_eq!(
        count(&store, "persons", "did(Purchase)"),
        buyers.len() as u64
    );
    assert_close(
        sql_number(&store, "select sum(amount) from event_purchase"),
        spent,
        "sum of Purchase.amount",
    );
    assert_eq!(
        sql_number(&store, "select count(*) from event_viewproduct") as usize,
        views
    );
    // A person's standard and custom attributes, as the export gives them.
    let first = &people[0];
    let ext = first["externalId"].as_str().unwrap();
    let row = sql(
        &store,
        &format!("select first_name, city, country from persons where external_user_id = '{ext}'"),
    );
    assert_eq!(
        row.trim(),
        format!(
            "{},{},{}",
            first["firstName"].as_str().unwrap(),
            first["city"].as_str().unwrap(),
            first["country"].as_str().unwrap()
        )
    );
    let email = first["contactInformation"]["email"][0]["address"]
        .as_str()
        .unwrap();
    assert_eq!(
        count(&store, "persons", &format!("person.emails has \"{email}\"")),
        1
    );
    let loyal = people
        .iter()
        .filter(|p| p["customAttributes"]["loyaltyPoints"].as_f64() >= Some(100.0))
        .count();
    assert_eq!(
        count(&store, "persons", "person.custom.loyaltyPoints >= 100"),
        loyal as u64
    );

    // -- A clickstream: every row an event, user-level columns person attributes. ---------
    let rows = fixture_csv("clickstream.csv");
    assert!(rows.len() >= 100);
    let users: BTreeSet<&str> = rows.iter().map(|r| r["user_id"].as_str()).collect();
    let buyers: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["event"] == "purchase")
        .map(|r| r["user_id"].as_str())
        .collect();
    let purchases = rows.iter().filter(|r| r["event"] == "purchase").count();
    let revenue: f64 = rows
        .iter()
        .filter(|r| r["event"] == "purchase")
        .map(|r| r["price"].parse::<f64>().unwrap())
        .sum();
    let carts = rows.iter().filter(|r| r["event"] == "add_to_cart").count();
    let platform: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r["user_id"].as_str(), r["platform"].as_str()))
        .collect();
    let ios = platform.values().filter(|p| **p == "iOS").count();
    assert!(ios > 0 && ios < users.len());
    let big_spenders = users
        .iter()
        .filter(|u| {
            rows.iter()
                .filter(|r| r["user_id"] == **u && r["event"] == "purchase")
                .map(|r| r["price"].parse::<f64>().unwrap())
                .sum::<f64>()
                > 150.0
        })
        .count();

    let store = dir.path().join("clickstream");
    let (code, out, err) = import(
        &store,
        &[
            "--person-columns",
            "platform,acquisition_channel",
            "--property-columns",
            "price:number",
            fixture("clickstream.csv").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    assert_eq!(
        source_kinds(&store, id),
        [("clickstream.csv".into(), "events".into())]
    );
    assert!(rejects(&store, id).is_empty());
    assert_eq!(count(&store, "persons", "identified"), users.len() as u64);
    assert_eq!(count(&store, "persons", "not identified"), 0);
    assert_eq!(
        count(&store, "persons", "did(purchase)"),
        buyers.len() as u64
    );
    assert_eq!(
        count(&store, "persons", "did(add_to_cart) and not did(purchase)"),
        (users.len() - buyers.len()) as u64
    );
    assert_eq!(
        count(&store, "persons", "sum(purchase.price) > 150"),
        big_spenders as u64
    );
    assert_eq!(
        count(&store, "persons", "person.custom.platform = \"iOS\""),
        ios as u64
    );
    assert_eq!(
        sql_number(&store, "select count(*) from event_purchase") as usize,
        purchases
    );
    assert_eq!(
        sql_number(&store, "select count(*) from event_add_to_cart") as usize,
        carts
    );
    assert_close(
        sql_number(&store, "select sum(price) from event_purchase"),
        revenue,
        "sum of purchase.price",
    );
    // The columns no flag names are properties; the user-level ones are not.
    let session = &rows[0]["session_id"];
    assert!(
        sql_number(
            &store,
            &format!("select count(*) from event_add_to_cart where session_id = '{session}'")
        ) >= 1.0
    );
    let u = &rows[0];
    let row = sql(
        &store,
        &format!(
            "select custom_platform, custom_acquisition_channel from persons \
             where external_user_id = '{}'",
            u["user_id"]
        ),
    );
    assert_eq!(
        row.trim(),
        format!("{},{}", u["platform"], u["acquisition_channel"])
    );

    // -- Plain tables in the snapshot schema: persons CSV and installations Parquet. ------
    let persons = fixture_csv("persons.csv");
    assert!(persons.len() >= 20);
    let dinamo = persons
        .iter()
        .filter(|p| p["custom_favorite_team"] == "Dinamo")
        .count();
    let loyal = persons
        .iter()
        .filter(|p| {
            p["custom_loyalty_points"]
                .parse::<f64>()
                .is_ok_and(|n| n >= 100.0)
        })
        .count();
    let hr = persons.iter().filter(|p| p["country"] == "HR").count();
    let (devices, owned, ios_devices) = {
        use arrow::array::{Array, AsArray};
        let file = std::fs::File::open(fixture("installations.parquet")).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let (mut n, mut owned, mut ios) = (0, 0, 0);
        for batch in reader {
            let batch = batch.unwrap();
            n += batch.num_rows();
            let owner = batch.column_by_name("external_user_id").unwrap();
            owned += owner.len() - owner.null_count();
            let platform = batch.column_by_name("platform").unwrap().as_string::<i32>();
            ios += platform.iter().filter(|p| *p == Some("iOS")).count();
        }
        (n, owned, ios)
    };
    assert!(owned > 0 && owned < devices && ios_devices > 0);

    let store = dir.path().join("tables");
    let (code, out, err) = import(
        &store,
        &[
            fixture("persons.csv").to_str().unwrap(),
            fixture("installations.parquet").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    assert_eq!(
        source_kinds(&store, id),
        [
            ("persons.csv".into(), "persons".into()),
            ("installations.parquet".into(), "installations".into())
        ]
    );
    assert!(rejects(&store, id).is_empty());
    assert_eq!(count(&store, "persons", "identified"), persons.len() as u64);
    // Each device without an owner is an anonymous person's.
    assert_eq!(
        count(&store, "persons", "not identified"),
        (devices - owned) as u64
    );
    assert_eq!(
        sql_number(&store, "select count(*) from installations") as usize,
        devices
    );
    assert_eq!(
        count(&store, "installations", "state = \"personalized\""),
        owned as u64
    );
    assert_eq!(
        count(&store, "installations", "platform = \"iOS\""),
        ios_devices as u64
    );
    assert_eq!(
        count(&store, "persons", "person.custom.favoriteTeam = \"Dinamo\""),
        dinamo as u64
    );
    assert_eq!(
        count(&store, "persons", "person.custom.loyaltyPoints >= 100"),
        loyal as u64
    );
    assert_eq!(count(&store, "persons", "country = \"HR\""), hr as u64);
    let p = &persons[0];
    let row = sql(
        &store,
        &format!(
            "select first_name, last_name, birth_date from persons where external_user_id = '{}'",
            p["external_user_id"]
        ),
    );
    assert_eq!(
        row.trim(),
        format!("{},{},{}", p["first_name"], p["last_name"], p["birth_date"])
    );
}

#[test]
fn every_reject_reason_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let t = |minute: u32| format!("\"timestamp\":\"2026-01-01T00:{minute:02}:00Z\"");
    let track = |rest: &str| format!(r#"{{"type":"track","event":"E","userId":"u1",{rest}}}"#);
    // (line, reason substring): None for a line that is accepted.
    let mut lines: Vec<(Vec<u8>, Option<&str>)> = vec![
        (
            format!(
                r#"{{"type":"identify","userId":"u1",{},"traits":{{"email":"ana@example.hr"}}}}"#,
                t(0)
            )
            .into_bytes(),
            None,
        ),
        (
            format!(
                r#"{{"type":"track","event":"Purchase","userId":"u1",{},"properties":{{"amount":10}}}}"#,
                t(1)
            )
            .into_bytes(),
            None,
        ),
        (b"{not json".to_vec(), Some("bad JSON at column 2")),
        (
            format!(r#"{{"event":"E","userId":"u1",{}}}"#, t(2)).into_bytes(),
            Some("missing `type`"),
        ),
        (
            br#"{"type":"track","event":"E","userId":"u1"}"#.to_vec(),
            Some("missing timestamp"),
        ),
        (
            format!(r#"{{"type":"group","userId":"u1",{}}}"#, t(2)).into_bytes(),
            Some("unknown type `group`"),
        ),
        (
            format!(
                r#"{{"type":"identify","userId":"u1",{},"traits":{{"email":{{"a":1}}}}}}"#,
                t(2)
            )
            .into_bytes(),
            Some("`traits.email` is an object, not a string"),
        ),
        (
            format!(r#"{{"type":"track","event":"E","userId":7.5e0,"anonymousId":[1],{}}}"#, t(2))
                .into_bytes(),
            Some("`anonymousId` is an array"),
        ),
        // The catalog (from line 2) says amount is a number.
        (
            format!(
                r#"{{"type":"track","event":"Purchase","userId":"u1",{},"properties":{{"amount":"lots"}}}}"#,
                t(3)
            )
            .into_bytes(),
            Some("property `Purchase.amount` is number, this call has string"),
        ),
        // u1 holds the email since line 1.
        (
            format!(
                r#"{{"type":"identify","userId":"u2",{},"traits":{{"email":"ana@example.hr"}}}}"#,
                t(4)
            )
            .into_bytes(),
            Some("email `ana@example.hr` belongs to person"),
        ),
        (
            track(r#""timestamp":"1969-12-31T23:59:59Z""#).into_bytes(),
            Some("time 1969-12-31T23:59:59Z is before 1970"),
        ),
        (
            track(r#""timestamp":"10000-01-01T00:00:00Z""#).into_bytes(),
            Some("is not an ISO 8601 time"),
        ),
        // Within the store's range, but not before the import's --as-of.
        (
            track(r#""timestamp":"9999-12-31T23:59:59Z""#).into_bytes(),
            Some("not before the import's --as-of"),
        ),
        (
            [
                br#"{"type":"track","event":"E","userId":"u"#.as_slice(),
                b"\xff\xfe",
                format!(r#"1",{}}}"#, t(5)).as_bytes(),
            ]
            .concat(),
            Some("invalid UTF-8 at byte offset 39"),
        ),
        (
            track(&format!(
                r#"{},"properties":{{"x":{}1{}}}"#,
                t(5),
                "[".repeat(10_000),
                "]".repeat(10_000)
            ))
            .into_bytes(),
            Some("nested more than 128 levels deep"),
        ),
        (
            format!(r#"{{"type":"track","event":"E","userId":"",{}}}"#, t(5)).into_bytes(),
            Some("empty userId"),
        ),
        (
            track(&format!(
                r#"{},"context":{{"device":{{"id":"d1"}},"os":{{"name":"Symbian"}}}}"#,
                t(5)
            ))
            .into_bytes(),
            Some("unknown platform `Symbian`"),
        ),
        (
            format!(r#"{{"type":"track","event":"purchase","userId":"u1",{}}}"#, t(6)).into_bytes(),
            Some("event `purchase` clashes with `Purchase`"),
        ),
        (
            format!(r#"{{"type":"track","event":"Personalize","userId":"u1",{}}}"#, t(6))
                .into_bytes(),
            Some("cannot be tracked"),
        ),
        (
            format!(
                r#"{{"type":"track","event":"Application Installed","userId":"u1",{}}}"#,
                t(6)
            )
            .into_bytes(),
            Some("`Install` needs a device"),
        ),
        (
            format!(r#"{{"type":"alias","previousId":"u1",{}}}"#, t(6)).into_bytes(),
            Some("an alias needs a userId"),
        ),
        (
            format!(r#"{{"type":"alias","userId":"u1",{}}}"#, t(6)).into_bytes(),
            Some("missing `previousId`"),
        ),
        (
            format!(r#"{{"type":"track","userId":"u1",{}}}"#, t(6)).into_bytes(),
            Some("missing `event`"),
        ),
        (
            br#"[{"type":"track"}]"#.to_vec(),
            Some("a record must be a JSON object, this line is an array"),
        ),
        (
            format!(r#"{{"type":"track","event":"E",{}}}"#, t(6)).into_bytes(),
            Some("the call names no userId, anonymousId or device"),
        ),
        (
            track(&format!(
                r#"{},"properties":{{"a":{{"b":{{"c":{{"d":{{"e":{{"f":{{"g":{{"h":{{"i":1}}}}}}}}}}}}}}}}}}"#,
                t(6)
            ))
            .into_bytes(),
            Some("property `a.b.c.d.e.f.g.h` is nested more than 8 levels deep"),
        ),
        (
            track(&format!(r#"{},"properties":{{"a.b":1,"a":{{"b":2}}}}"#, t(6))).into_bytes(),
            Some("property `a.b` is given twice"),
        ),
        (
            track(r#""timestamp":"yesterday""#).into_bytes(),
            Some("timestamp `yesterday` is not an ISO 8601 time"),
        ),
        (
            track(r#""timestamp":1709287200000"#).into_bytes(),
            Some("`timestamp` is a number, not an ISO 8601 time string"),
        ),
        (
            track(&format!(r#"{},"properties":{{"x":1e999}}"#, t(6))).into_bytes(),
            Some("number out of range"),
        ),
    ];
    // A line past the 16 MiB limit (it cannot be set lower from the command line): rejected
    // unread, and the lines after it keep their numbers.
    let mut long = track(&format!("{},\"properties\":{{\"pad\":\"", t(7))).into_bytes();
    long.resize(16 << 20, b'x');
    long.extend_from_slice(b"xx\"}}");
    lines.push((long, Some("line is longer than 16 MiB")));
    lines.push((track(&t(8)).into_bytes(), None));
    let stream = dir.path().join("stream.jsonl");
    let mut text = Vec::new();
    for (line, _) in &lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    std::fs::write(&stream, &text).unwrap();

    // The Infobip sources' own reasons, in files of their own (a kind is told per file).
    let people = dir.path().join("people.jsonl");
    std::fs::write(
        &people,
        [
            r#"{"externalId":"p1","modifiedAt":"2026-01-01T00:00:00Z","contactInformation":{"email":[{"address":"p1@example.hr"}]}}"#,
            r#"{"firstName":"Nobody","modifiedAt":"2026-01-01T00:00:00Z"}"#,
            r#"{"externalId":"p2","modifiedAt":"2026-01-01T00:00:00Z","contactInformation":{"push":[{"systemData":{"os":"Android"}}]}}"#,
            r#"{"externalId":"p3","modifiedAt":"2026-01-01T00:00:00Z","birthDate":"1990-13-01"}"#,
            r#"{"externalId":"p4","modifiedAt":"2026-01-01T00:00:00Z","contactInformation":{"email":[{"address":"p1@example.hr"}]}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        [
            r#"{"definitionId":"Viewed","occurredTime":"2026-01-01T00:00:00Z","identifier":"p1"}"#,
            r#"{"occurredTime":"2026-01-01T00:00:00Z","identifier":"p1"}"#,
            r#"{"definitionId":"Viewed","occurredTime":"2026-01-01T00:00:00Z","identifier":{"type":"EMAIL","value":"p1@example.hr"}}"#,
            r#"{"definitionId":"Viewed","occurredTime":"2026-01-01T00:00:00Z"}"#,
            r#"{"definitionId":"AppLaunch","occurredTime":"2026-01-01T00:00:00Z","identifier":"p1"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let infobip: [(&Path, u64, &str); 7] = [
        (&people, 2, "missing `externalId`"),
        (
            &people,
            3,
            "missing `contactInformation.push[0].registrationId`",
        ),
        (&people, 4, "birthDate `1990-13-01` is not a date"),
        (&people, 5, "email `p1@example.hr` belongs to person"),
        (&events, 2, "missing `definitionId`"),
        (&events, 3, "identifier of type `EMAIL`"),
        (&events, 4, "missing `identifier`"),
    ];

    let store = dir.path().join("store");
    let (code, out, err) = import(
        &store,
        &[
            "--as-of",
            "2030-01-01T00:00:00Z",
            stream.to_str().unwrap(),
            people.to_str().unwrap(),
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let id = out.trim();
    let expected_stream: Vec<(u64, &str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, (_, reason))| reason.map(|r| (i as u64 + 1, r)))
        .collect();
    // The AppLaunch of a device-less event is rejected by the replay, by name.
    let expected = expected_stream.len() + infobip.len() + 1;
    let r = report(&store, id);
    let rej = rejects(&store, id);
    assert_eq!(rej.len(), expected, "{rej:#?}");
    assert_eq!(
        r["accepted"],
        (lines.len() - expected_stream.len() + 2) as u64,
        "{r:#}"
    );
    let found = |file: &Path, line: u64| -> String {
        let name = file.to_str().unwrap();
        let hits: Vec<&Value> = rej
            .iter()
            .filter(|r| r["file"] == name && r["line"] == line)
            .collect();
        assert_eq!(hits.len(), 1, "{name}:{line}: {rej:#?}");
        hits[0]["reason"].as_str().unwrap().to_string()
    };
    for (line, reason) in &expected_stream {
        let got = found(&stream, *line);
        assert!(
            got.contains(reason),
            "line {line}: `{got}` lacks `{reason}`"
        );
    }
    for (file, line, reason) in infobip {
        let got = found(file, line);
        assert!(
            got.contains(reason),
            "{file:?}:{line}: `{got}` lacks `{reason}`"
        );
    }
    let got = found(&events, 5);
    assert!(got.contains("`AppLaunch` needs a device"), "{got}");
    // The rejects file holds the records whole; the long line, cut at the limit.
    let whole = |line: u64| {
        rej.iter()
            .find(|r| r["file"] == stream.to_str().unwrap() && r["line"] == line)
            .unwrap()["record"]
            .as_str()
            .unwrap()
            .len()
    };
    assert_eq!(whole(3), "{not json".len());
    let long_line = lines.len() as u64 - 1;
    assert_eq!(whole(long_line), 16 << 20);
    // What was accepted is there, and nothing of the rejected lines.
    assert_eq!(count(&store, "persons", "identified"), 2);
    assert_eq!(count(&store, "persons", "count(E) = 1"), 1);
    assert_eq!(count(&store, "persons", "did(Viewed)"), 1);
    assert_eq!(count(&store, "persons", "sum(Purchase.amount) = 10"), 1);
    let (code, out, _) = run(&["info", "--store", store.to_str().unwrap(), "--verify"]);
    assert_eq!(code, 0, "{out}");

    // A plain table's reasons: each bad row is rejected naming its line, the file goes on.
    let table = dir.path().join("events.csv");
    std::fs::write(
        &table,
        [
            b"user_id,event,timestamp,price".as_slice(),
            b"u1,view,2026-01-01T00:00:00Z,1.5",
            b"u1,view,2026-01-01T00:01:00Z,abc",
            b"u1,view,2026-01-01T00:02:00Z",
            b"u1,view,,2.0",
            b"u1,,2026-01-01T00:03:00Z,2.0",
            b"u\xff,view,2026-01-01T00:04:00Z,2.0",
            b"u1,view,2026-01-01,2.0",
            b"u1,view,2026-01-01T00:05:00Z,1,extra",
            b"u2,view,2026-01-01T00:06:00Z,3.5",
        ]
        .join(&b'\n'),
    )
    .unwrap();
    let store = dir.path().join("table-store");
    let (code, out, err) = import(
        &store,
        &[
            "--max-rejects",
            "10",
            "--property-columns",
            "price:number",
            table.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let rej = rejects(&store, out.trim());
    let reasons: Vec<(u64, String)> = rej
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: [(u64, &str); 6] = [
        (3, "`abc` is not a number"),
        (4, "3 fields where the header has 4"),
        (5, "missing event time (column `timestamp`)"),
        (6, "missing event name (column `event`)"),
        (7, "column `user_id`: invalid UTF-8"),
        (9, "5 fields where the header has 4"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:#?}");
    for ((line, got), (want_line, want)) in reasons.iter().zip(expected) {
        assert_eq!(*line, want_line, "{reasons:#?}");
        assert!(got.contains(want), "line {line}: `{got}` lacks `{want}`");
    }
    // A bare date where a time is expected is its midnight: line 8 is accepted.
    assert_eq!(
        count(
            &store,
            "persons",
            "count(view) = 2 and sum(view.price) = 3.5"
        ),
        1
    );
    assert_eq!(count(&store, "persons", "did(view)"), 2);
}

fn snapshot_dirs(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn latest_snapshot(store: &Path) -> String {
    let (code, out, err) = run(&[
        "info",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    info["snapshot_id"].as_str().unwrap().to_string()
}

fn verify(store: &Path) {
    let (code, out, err) = run(&["info", "--store", store.to_str().unwrap(), "--verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("verified"), "{err}");
}

#[test]
fn a_killed_import_leaves_the_previous_snapshot() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated");
    let emitted = dir.path().join("emitted");
    let (code, _, err) = run(&[
        "generate",
        "--persons",
        "3000",
        "--days",
        "20",
        "--seed",
        "3",
        "--as-of",
        "2026-08-01T00:00:00Z",
        "--out",
        generated.to_str().unwrap(),
        "--emit",
        "segment-jsonl",
        "--emit-dir",
        emitted.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let mut days: Vec<PathBuf> = std::fs::read_dir(emitted.join("segment"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    days.sort();
    assert_eq!(days.len(), 20);
    let rest = dir.path().join("rest");
    std::fs::create_dir(&rest).unwrap();
    for day in &days[1..] {
        std::fs::copy(day, rest.join(day.file_name().unwrap())).unwrap();
    }

    let store = dir.path().join("store");
    let (code, out, err) = import(&store, &[days[0].to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let first = out.trim().to_string();
    let first_launchers = count(&store, "persons", "did(AppLaunch)");

    let bin = assert_cmd::cargo::cargo_bin("audience");
    let start = || {
        std::process::Command::new(&bin)
            .args(["import", "--store", store.to_str().unwrap()])
            .arg(&rest)
            .env_remove("AUDIENCE_STORE")
            .env("AUDIENCE_PROGRESS", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let staging_has_files = || {
        std::fs::read_dir(store.join(".staging")).is_ok_and(|d| {
            d.flatten()
                .any(|e| std::fs::read_dir(e.path()).is_ok_and(|mut f| f.next().is_some()))
        })
    };
    // Kills while reading and replaying, and once the new snapshot's files are being
    // written into the staging area.
    enum When {
        After(u64),
        WhileWriting,
    }
    for when in [
        When::After(100),
        When::After(400),
        When::After(1000),
        When::WhileWriting,
    ] {
        let mut child = start();
        let what = match when {
            When::After(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                format!("after {ms} ms")
            }
            When::WhileWriting => {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !staging_has_files() {
                    assert!(Instant::now() < deadline, "the import never staged a file");
                    assert!(
                        child.try_wait().unwrap().is_none(),
                        "the import ended before it staged a file"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                "while writing".to_string()
            }
        };
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before the kill {what}: the test needs more data"
        );
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "{what}: {status:?}");
        verify(&store);
        assert_eq!(latest_snapshot(&store), first, "{what}");
        assert_eq!(
            snapshot_dirs(&store),
            std::slice::from_ref(&first),
            "{what}"
        );
        assert_eq!(
            count(&store, "persons", "did(AppLaunch)"),
            first_launchers,
            "{what}"
        );
        // No report of a published import either.
        let imports: Vec<String> = std::fs::read_dir(store.join("imports"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("failed-"))
            .collect();
        assert_eq!(imports, std::slice::from_ref(&first), "{what}");
    }

    // The killed imports' lock is gone with them: the next import runs to the end.
    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the import after the killed ones did not finish in 300 s (a stale lock?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    verify(&store);
    let second = latest_snapshot(&store);
    assert_ne!(second, first);
    assert_eq!(snapshot_dirs(&store), [first.clone(), second.clone()]);
    // The two imports together give the generated world's persons and launchers.
    let everyone = sql_number(&generated, "select count(*) from persons");
    assert_eq!(sql_number(&store, "select count(*) from persons"), everyone);
    assert_eq!(
        count(&store, "persons", "did(AppLaunch)"),
        count(&generated, "persons", "did(AppLaunch)")
    );
    assert!(count(&store, "persons", "did(AppLaunch)") > first_launchers);
    // What the killed imports staged was cleaned up.
    let staged: Vec<_> = std::fs::read_dir(store.join(".staging"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(staged.is_empty(), "{staged:?}");
}
