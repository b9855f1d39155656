//! Bad input and crashes: every failure is a clear error naming the file, exit code 2, and the
//! previous snapshot always stays readable.

mod common;

use assert_cmd::Command;
use audience::store::manifest::{Manifest, Partitioning};
use audience::store::publish::Staging;
use audience::store::Store;
use predicates::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.env_remove("AUDIENCE_STORE");
    cmd
}

fn info(store: &Path) -> assert_cmd::assert::Assert {
    audience().arg("--store").arg(store).arg("info").assert()
}

fn only_snapshot_dir(store: &Path) -> PathBuf {
    let ids = Store::open(store).unwrap().snapshot_ids().to_vec();
    store.join("snapshots").join(&ids[0])
}

fn manifest_path(store: &Path) -> PathBuf {
    only_snapshot_dir(store).join("manifest.json")
}

#[test]
fn info_prints_catalog_and_counts() {
    info(common::shared_store())
        .success()
        .stdout(predicate::str::contains("600 persons"))
        .stdout(predicate::str::contains("custom.favoriteTeam"))
        .stdout(predicate::str::contains(
            "Purchase(amount: number, currency: string, category: string)",
        ));
    let out = audience()
        .arg("--store")
        .arg(common::shared_store())
        .args(["info", "--format", "json", "--verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["row_counts"]["persons"], 600);
    assert_eq!(json["partitioning"], "day");
    assert!(json["events"]["AppLaunch"]["rows"].as_u64().unwrap() > 1000);
}

#[test]
fn missing_store_is_an_error_naming_it() {
    info(Path::new("/nonexistent/store"))
        .code(2)
        .stderr(predicate::str::contains(
            "/nonexistent/store: store directory does not exist",
        ));
    let empty = tempfile::tempdir().unwrap();
    info(empty.path())
        .code(2)
        .stderr(predicate::str::contains("not an audience store"));
}

#[test]
fn unknown_snapshot_lists_the_known_ones() {
    let id = Store::open(common::shared_store()).unwrap().snapshot_ids()[0].clone();
    audience()
        .arg("--store")
        .arg(common::shared_store())
        .args(["--snapshot", "nope", "info"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "no snapshot `nope` in this store (snapshots: {id})"
        )));
}

#[test]
fn corrupt_manifest_names_the_file() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let path = manifest_path(&store);
    std::fs::write(&path, "{ \"format_version\": 1, \"snapshot_id\": ").unwrap();
    info(&store)
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{}: corrupt manifest",
            path.display()
        )));
    // A directory without a manifest is not a snapshot: skipped, with a warning naming it.
    std::fs::remove_file(&path).unwrap();
    info(&store)
        .code(2)
        .stderr(predicate::str::contains(format!(
            "warning: {}: no manifest.json, so not a snapshot; skipped",
            path.parent().unwrap().display()
        )))
        .stderr(predicate::str::contains("the store has no snapshots"));
}

#[test]
fn unsupported_format_version_is_refused() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let path = manifest_path(&store);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"format_version\": 1", "\"format_version\": 99");
    std::fs::write(&path, text).unwrap();
    info(&store).code(2).stderr(predicate::str::contains(
        "format version 99 is not supported",
    ));
}

#[test]
fn manifest_naming_a_missing_file_is_an_error() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let manifest = Manifest::read(&manifest_path(&store)).unwrap();
    let victim = store.join(&manifest.events[3].file.path);
    std::fs::remove_file(&victim).unwrap();
    info(&store)
        .code(2)
        .stderr(predicate::str::contains(victim.display().to_string()))
        .stderr(predicate::str::contains(
            "file named by the manifest is unreadable",
        ));
}

/// A file at `rel` in the only snapshot's directory that its manifest does not list.
fn plant_stray(store: &Path, rel: &str) -> PathBuf {
    let stray = only_snapshot_dir(store).join(rel);
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"PAR1").unwrap();
    stray
}

#[test]
fn stray_file_in_the_history_is_an_error() {
    // In a period directory, and at the top of the event root.
    for rel in [
        "events/event=Purchase/day=2026-10-01/extra.parquet",
        "events/extra.parquet",
    ] {
        let (_tmp, store) = common::copy_store(common::shared_store());
        let stray = plant_stray(&store, rel);
        info(&store)
            .code(2)
            .stderr(predicate::str::contains("not listed in the manifest"))
            .stderr(predicate::str::contains(stray.display().to_string()));
    }
}

/// Opening a snapshot does not walk its thousands of event files; what reads one finds it
/// missing, and what lists the directories checks them all first.
#[test]
fn event_files_are_checked_by_what_reads_them() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let manifest = Manifest::read(&manifest_path(&store)).unwrap();
    let victim = &manifest.events[3];
    std::fs::remove_file(store.join(&victim.file.path)).unwrap();
    let count = |segment: &str, as_of: &str| {
        audience()
            .arg("--store")
            .arg(&store)
            .args(["count", "--as-of", as_of, "--", segment])
            .assert()
    };
    let before = (manifest.as_of - chrono::Duration::seconds(1)).to_rfc3339();
    // Every file of the event's history: the missing one is an error naming it.
    count(&format!("count({}) >= 2", victim.event), &before)
        .code(2)
        .stderr(predicate::str::contains(victim.file.path.as_str()));
    // Attributes alone read no event file.
    count("pushRegistrationEnabled", &before).success();
    // `events` lists the directories: the whole history is checked before it is read.
    let (_tmp2, store2) = common::copy_store(common::shared_store());
    let stray = plant_stray(&store2, "events/event=Purchase/day=2026-10-01/x.parquet");
    audience()
        .arg("--store")
        .arg(&store2)
        .args(["sql", "select count(*) from events"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not listed in the manifest"))
        .stderr(predicate::str::contains(stray.display().to_string()));
}

/// Replaces `rel` with a Parquet file whose `person_id` is a string, keeping the manifest's size.
fn replace_with_wrong_schema(store: &Path, rel: &str) -> PathBuf {
    use arrow::array::{RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let path = store.join(rel);
    let schema = Arc::new(Schema::new(vec![Field::new(
        "person_id",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["p1"]))],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let mpath = manifest_path(store);
    let mut manifest = Manifest::read(&mpath).unwrap();
    for f in manifest
        .persons
        .iter_mut()
        .chain(manifest.person_activity.iter_mut())
        .chain(manifest.events.iter_mut().map(|e| &mut e.file))
    {
        if f.path == rel {
            f.bytes = size;
            f.checksums = Some(audience::store::checksum::compute(&path).unwrap());
        }
    }
    std::fs::write(&mpath, manifest.to_json()).unwrap();
    path
}

#[test]
fn schema_disagreeing_with_the_catalog_names_the_file() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let manifest = Manifest::read(&manifest_path(&store)).unwrap();
    let path = replace_with_wrong_schema(&store, &manifest.persons[0].path);
    info(&store)
        .code(2)
        .stderr(predicate::str::contains(path.display().to_string()))
        .stderr(predicate::str::contains(
            "column `person_id` has type Utf8 but the catalog declares Int64",
        ));

    // Event files are checked by `info --verify` (reading every footer on each open costs time).
    let (_tmp2, store) = common::copy_store(common::shared_store());
    let rel = manifest
        .events
        .iter()
        .find(|e| e.event == "Purchase")
        .unwrap()
        .file
        .path
        .clone();
    let path = replace_with_wrong_schema(&store, &rel);
    info(&store).success();
    audience()
        .arg("--store")
        .arg(&store)
        .args(["info", "--verify"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(path.display().to_string()))
        .stderr(predicate::str::contains("column `event_time` is missing"));
}

#[test]
fn generate_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    audience()
        .args(["generate", "--persons", "0", "--out"])
        .arg(dir.path().join("s"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--persons must be at least 1"));
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    audience()
        .args(["generate", "--persons", "5", "--out"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a-file"));
    audience()
        .args(["generate", "--as-of", "yesterday", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a date"));
}

#[test]
fn an_abandoned_write_leaves_the_previous_snapshot_latest() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let before = Store::open(&store)
        .unwrap()
        .snapshot(None)
        .unwrap()
        .manifest;
    let staging = Staging::begin(&store, chrono::Utc::now() + chrono::Duration::days(1)).unwrap();
    std::fs::write(staging.local_path("persons.parquet"), b"half a file").unwrap();
    drop(staging); // the writer failed before publishing
    let after = Store::open(&store)
        .unwrap()
        .snapshot(None)
        .unwrap()
        .manifest;
    assert_eq!(before, after);
    assert_eq!(Store::open(&store).unwrap().snapshot_ids().len(), 1);
}

/// kill -9 at several moments of a real `audience generate`: the store always opens, its latest
/// snapshot is either the old one or the complete new one, and its data reads back whole.
#[test]
fn killed_generate_never_leaves_a_half_snapshot() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let old = Store::open(&store)
        .unwrap()
        .snapshot(None)
        .unwrap()
        .manifest
        .snapshot_id;
    let bin = assert_cmd::cargo::cargo_bin("audience");
    let mut published = 0;
    for delay_ms in [30, 150, 400, 900, 1600, 3000] {
        let mut child = std::process::Command::new(&bin)
            .args([
                "generate",
                "--persons",
                "4000",
                "--days",
                "120",
                "--partition",
                "month",
                "--out",
            ])
            .arg(&store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let opened = Store::open(&store).unwrap();
        let latest = opened.snapshot(None).unwrap();
        if latest.manifest.snapshot_id != old {
            published += 1;
            assert_eq!(latest.manifest.row_counts.persons, 4000);
        }
        latest.verify().unwrap();
        // Every published snapshot stays readable, including the original one.
        opened.snapshot(Some(&old)).unwrap();
    }
    let ids = Store::open(&store).unwrap().snapshot_ids().to_vec();
    assert_eq!(ids.len(), 1 + published);
    assert!(
        published < 6,
        "no kill interrupted a write: the test proved nothing"
    );
}

#[test]
fn month_partitioned_store_has_few_files() {
    let dir = tempfile::tempdir().unwrap();
    let g = audience::generate::generate(
        &dir.path().join("s"),
        &common::options(300, 90, 3, Partitioning::Month),
    )
    .unwrap();
    assert!(
        g.manifest.events.len() <= 8 * 4,
        "{} files",
        g.manifest.events.len()
    );
    assert!(g
        .manifest
        .events
        .iter()
        .all(|e| e.file.path.contains("/month=") && e.period.format("%d").to_string() == "01"));
}

#[test]
fn summary_columns_the_manifest_lists_but_the_file_lacks_are_named() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let mpath = manifest_path(&store);
    let mut manifest = Manifest::read(&mpath).unwrap();
    assert!(manifest.activity_in_persons());
    manifest.activity_columns.months += 1;
    let month = manifest.activity_columns.months;
    std::fs::write(&mpath, manifest.to_json()).unwrap();
    let file = manifest.persons[0]
        .path
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    info(&store)
        .code(2)
        .stderr(predicate::str::contains(file))
        .stderr(predicate::str::contains(format!(
            "column `install__count_month_{month}` is missing"
        )));
}
