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
