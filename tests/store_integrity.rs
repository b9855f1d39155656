//! Store integrity: corruption is detected and names the file, paths work relative to the
//! working directory, failures clean up after themselves, leftovers of dead writers are removed
//! safely, foreign directories are skipped, and the latest snapshot is the one published last.

mod common;

use assert_cmd::Command;
use audience::store::checksum::{read_footer, Layout};
use audience::store::manifest::Manifest;
use audience::store::publish::Staging;
use audience::store::Store;
use predicates::prelude::*;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.env_remove("AUDIENCE_STORE");
    cmd
}

fn latest(store: &Path) -> audience::store::Snapshot {
    Store::open(store).unwrap().snapshot(None).unwrap()
}

/// Flips one byte in the middle of column chunk `k` of the Parquet file at `path`.
fn flip_in_chunk(path: &Path, k: usize) {
    let (metadata, footer) = read_footer(path, None).unwrap();
    let layout = Layout::of(&metadata, footer).unwrap();
    let (start, end, ..) = layout.chunks[k];
    let at = start + (end - start) / 2;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}

#[test]
fn a_flipped_byte_in_an_event_file_is_an_error_naming_the_file() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let snapshot = latest(&store);
    let file = snapshot
        .manifest
        .events
        .iter()
        .filter(|e| e.event == "AppLaunch")
        .max_by_key(|e| e.file.bytes)
        .unwrap();
    let path = store.join(&file.file.path);
    // The chunks of every column, so the one the segment reads is hit.
    let (metadata, footer) = read_footer(&path, None).unwrap();
    for k in 0..Layout::of(&metadata, footer).unwrap().chunks.len() {
        flip_in_chunk(&path, k);
    }
    audience()
        .arg("--store")
        .arg(&store)
        // Installation scope: raw events, whatever the activity summary holds.
        .args(["count", "installation.count(AppLaunch) >= 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(path.display().to_string()))
        .stderr(predicate::str::contains("is corrupt"));
    audience()
        .arg("--store")
        .arg(&store)
        .args(["info", "--verify"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(path.display().to_string()))
        .stderr(predicate::str::contains("row group"));
}

#[test]
fn a_flipped_byte_in_persons_or_installations_is_an_error_naming_the_file() {
    for (table, segment) in [
        ("persons", "person.country = \"DE\" or tags has \"vip\""),
        ("installations", "platform = \"iOS\" or osVersion >= \"1\""),
    ] {
        let (_tmp, store) = common::copy_store(common::shared_store());
        let snapshot = latest(&store);
        let m = &snapshot.manifest;
        let rel = match table {
            "persons" => &m.persons[0].path,
            _ => &m.installations[0].path,
        };
        let path = store.join(rel);
        // Corrupt every chunk's middle byte, so whichever columns the segment reads are hit.
        let (metadata, footer) = read_footer(&path, None).unwrap();
        let chunks = Layout::of(&metadata, footer).unwrap().chunks.len();
        for k in 0..chunks {
            flip_in_chunk(&path, k);
        }
        audience()
            .arg("--store")
            .arg(&store)
            .args(["count", segment])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(path.display().to_string()))
            .stderr(predicate::str::contains("is corrupt"));
    }
}

#[test]
fn a_file_swapped_for_another_of_the_same_size_is_detected() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let snapshot = latest(&store);
    let mut manifest = snapshot.manifest.clone();
    // Two AppLaunch files; the first is replaced by the second, its size fixed in the manifest.
    let launches: Vec<usize> = (0..manifest.events.len())
        .filter(|&i| manifest.events[i].event == "AppLaunch")
        .collect();
    let (a, b) = (launches[0], launches[1]);
    let (pa, pb) = (
        store.join(&manifest.events[a].file.path),
        store.join(&manifest.events[b].file.path),
    );
    std::fs::copy(&pb, &pa).unwrap();
    manifest.events[a].file.bytes = manifest.events[b].file.bytes;
    let mpath = snapshot.dir.join("manifest.json");
    std::fs::write(&mpath, manifest.to_json()).unwrap();
    audience()
        .arg("--store")
        .arg(&store)
        .args(["count", "installation.count(AppLaunch) >= 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(pa.display().to_string()))
        .stderr(predicate::str::contains("footer is corrupt"));
}

#[test]
fn a_manifest_row_count_disagreeing_with_the_footer_is_an_error() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let snapshot = latest(&store);
    let mut manifest = snapshot.manifest.clone();
    let i = manifest
        .events
        .iter()
        .position(|e| e.event == "Purchase")
        .unwrap();
    manifest.events[i].file.rows += 1;
    manifest.row_counts.events += 1;
    std::fs::write(snapshot.dir.join("manifest.json"), manifest.to_json()).unwrap();
    let path = store.join(&manifest.events[i].file.path);
    for args in [vec!["count", "did(Purchase)"], vec!["info", "--verify"]] {
        audience()
            .arg("--store")
            .arg(&store)
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(path.display().to_string()))
            .stderr(predicate::str::contains("the manifest says"));
    }
}

#[test]
fn info_verify_says_what_it_verified() {
    audience()
        .arg("--store")
        .arg(common::shared_store())
        .args(["info", "--verify"])
        .assert()
        .success()
        .stderr(
            predicate::str::is_match("verified [0-9]+ files .* against their checksums").unwrap(),
        );
}

#[test]
fn windows_reaching_before_time_began_are_all_history() {
    let all = audience()
        .arg("--store")
        .arg(common::shared_store())
        .args(["count", "did(AppLaunch)"])
        .output()
        .unwrap();
    assert!(all.status.success());
    for seg in [
        "did(AppLaunch within 96500000d)",
        "count(AppLaunch within 15250000w) >= 1",
        "installedAt within 96500000d and did(AppLaunch since 96500000d ago)",
    ] {
        let out = audience()
            .arg("--store")
            .arg(common::shared_store())
            .args(["count", seg])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{seg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if seg.starts_with("did") || seg.starts_with("count") {
            assert_eq!(out.stdout, all.stdout, "{seg}");
        }
        for cmd in ["explain", "query"] {
            audience()
                .arg("--store")
                .arg(common::shared_store())
                .args([cmd, seg])
                .assert()
                .success();
        }
    }
}

#[test]
fn every_path_taking_command_works_with_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = audience()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    std::fs::create_dir(dir.path().join("segs")).unwrap();
    std::fs::write(dir.path().join("segs/buyers.seg"), "did(Purchase)").unwrap();
    std::fs::write(dir.path().join("one.seg"), "identified").unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    run(&[
        "generate",
        "--out",
        "./rel/store",
        "--persons",
        "60",
        "--days",
        "20",
        "--partition",
        "month",
        "--as-of",
        "2026-11-01",
    ]);
    let s = ["--store", "rel/store"];
    run(&[s[0], s[1], "info", "--verify"]);
    run(&[s[0], s[1], "count", "@one.seg"]);
    run(&[s[0], s[1], "count", "--segments", "segs", "buyers"]);
    run(&[s[0], s[1], "check", "--file", "./one.seg"]);
    run(&[
        s[0],
        s[1],
        "query",
        "--segments",
        "./segs",
        "segment(\"buyers\")",
    ]);
    run(&[s[0], s[1], "export", "identified", "--out", "out/a.csv"]);
    run(&[s[0], s[1], "export", "identified", "--out", "b.parquet"]);
    run(&[
        s[0],
        s[1],
        "export",
        "--segments",
        "segs",
        "--out-dir",
        "./out",
    ]);
    run(&[s[0], s[1], "gc", "--dry-run", "--exports", "out"]);
    run(&["fmt", "--file", "one.seg"]);
    assert!(dir.path().join("out/a.csv").is_file());
    assert!(dir.path().join("b.parquet").is_file());
    assert!(dir.path().join("out/buyers.csv").is_file());
}

#[test]
fn a_directory_without_a_manifest_is_skipped_with_a_warning() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let foreign = store.join("snapshots").join("zzzz-not-a-snapshot");
    std::fs::create_dir(&foreign).unwrap();
    audience()
        .arg("--store")
        .arg(&store)
        .args(["count", "identified"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "warning: {}: no manifest.json, so not a snapshot; skipped",
            foreign.display()
        )));
}

/// A staging directory with a manifest of the shared store's snapshot, ready to publish.
fn staged(store: &Path, at: &str) -> (Staging, Manifest) {
    let staging = Staging::begin(store, at.parse().unwrap()).unwrap();
    let mut manifest = latest(common::shared_store()).manifest;
    let summary_in_persons = manifest.activity_in_persons();
    manifest.snapshot_id = staging.id().to_string();
    manifest.published_seq = None;
    // No event files of its own: a snapshot of persons and installations only.
    manifest.events.clear();
    manifest.event_roots.clear();
    manifest.row_counts.events = 0;
    // Nor day counts of events.
    manifest.activity_days = None;
    for f in manifest
        .persons
        .iter_mut()
        .chain(manifest.installations.iter_mut())
    {
        let name = Path::new(&f.path).file_name().unwrap().to_owned();
        std::fs::copy(
            common::shared_store().join(&f.path),
            staging.local_path(name.to_str().unwrap()),
        )
        .unwrap();
        f.path = staging.store_path(name.to_str().unwrap());
    }
    if summary_in_persons {
        manifest.person_activity = Some(manifest.persons[0].clone());
    }
    (staging, manifest)
}

#[test]
fn the_latest_snapshot_is_the_one_published_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Begun first (an earlier id), published second.
    let (early, mut early_m) = staged(&store, "2026-01-01T00:00:00Z");
    let (late, mut late_m) = staged(&store, "2026-06-01T00:00:00Z");
    late.publish(&mut late_m).unwrap();
    early.publish(&mut early_m).unwrap();
    let opened = Store::open(&store).unwrap();
    assert_eq!(opened.latest_id().unwrap(), early_m.snapshot_id);
    assert_eq!(
        opened.snapshot_ids(),
        [late_m.snapshot_id.clone(), early_m.snapshot_id.clone()]
    );
    assert_eq!(
        (late_m.published_seq, early_m.published_seq),
        (Some(1), Some(2))
    );
    assert_eq!(latest(&store).id(), early_m.snapshot_id);
}

#[test]
fn concurrent_publishes_get_distinct_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let writers: Vec<_> = (0..6)
        .map(|k| staged(&store, &format!("2026-0{}-01T00:00:00Z", k + 1)))
        .collect();
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .into_iter()
            .map(|(st, mut m)| {
                s.spawn(move || {
                    st.publish(&mut m).unwrap();
                    m.published_seq.unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2, 3, 4, 5, 6], "{seqs:?}");
}

#[test]
fn a_killed_generate_leaves_staging_that_the_next_writer_and_gc_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let bin = assert_cmd::cargo::cargo_bin("audience");
    let mut child = std::process::Command::new(&bin)
        .args(["generate", "--persons", "20000", "--days", "30", "--out"])
        .arg(&store)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has begun writing, then kill it.
    let staging = store.join(".staging");
    for _ in 0..200 {
        if std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<PathBuf> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "the killed writer left its staging directory"
    );
    std::fs::create_dir_all(store.join("snapshots")).unwrap();
    audience()
        .args(["--store"])
        .arg(&store)
        .args(["gc", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "would remove {}",
            left[0].display()
        )));
    assert!(left[0].exists(), "a dry run removes nothing");
    // The next writer removes it, and says so.
    audience()
        .args([
            "generate",
            "--persons",
            "30",
            "--days",
            "5",
            "--partition",
            "month",
            "--out",
        ])
        .arg(&store)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "removed {}",
            left[0].display()
        )));
    assert!(!left[0].exists());
}

#[test]
fn a_killed_export_leaves_a_temporary_file_that_the_next_export_removes() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.csv");
    let me = std::process::id();
    // As killed exports leave them: named after a process that is gone, or after a pid now
    // reused by another process (this one, which started at another time).
    let dead = dir.path().join(".all.csv.999999999-0.tmp");
    let reused = dir.path().join(format!(".all.csv.{me}-1.tmp"));
    // A live writer's (this process, in the older unstamped form): never removed.
    let live = dir.path().join(format!(".all.csv.{me}.tmp"));
    for f in [&dead, &reused, &live] {
        std::fs::write(f, "half an export").unwrap();
    }
    audience()
        .arg("--store")
        .arg(&store)
        .args(["export", "identified", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "removed {}",
            dead.display()
        )))
        .stderr(predicate::str::contains(format!(
            "removed {}",
            reused.display()
        )));
    assert!(!dead.exists() && !reused.exists());
    assert!(
        live.exists(),
        "a live writer's temporary file is never removed"
    );
    std::fs::write(&dead, "again").unwrap();
    audience()
        .arg("--store")
        .arg(&store)
        .args(["gc", "--exports"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "removed {}",
            dead.display()
        )))
        .stdout(predicate::str::contains("removed 1 leftover(s)"));
    assert!(live.exists());
}

#[test]
fn a_full_disk_during_export_leaves_no_temporary_file() {
    // A file size limit stands in for a full disk: writes past it fail (EFBIG) once the signal
    // it raises is ignored, which `sh` passes on to the command it runs.
    if !Path::new("/bin/sh").exists() {
        eprintln!("skipped: no /bin/sh to set a file size limit");
        return;
    }
    let (_tmp, store) = common::copy_store(common::shared_store());
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("audience");
    for out in ["big.parquet", "big.csv"] {
        let script = format!(
            "trap '' XFSZ; ulimit -f 8; exec '{}' --store '{}' export \
             'not primaryDevice or count(AppLaunch) >= 0' --columns \
             installationId,pushRegistrationId,deviceModel,osVersion,externalUserId,emails,tags \
             --out '{}'",
            bin.display(),
            store.display(),
            dir.path().join(out).display()
        );
        let result = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(out), "the error names the target: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "nothing left behind: {left:?}");
    }
}

#[test]
fn invalid_utf8_in_a_segment_file_names_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.seg");
    std::fs::write(&f, b"platform = \"i\xffOS\"").unwrap();
    audience()
        .arg("--store")
        .arg(common::shared_store())
        .arg("count")
        .arg(format!("@{}", f.display()))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "bad.seg: not UTF-8 text (invalid byte at offset 13)",
        ));
}

#[test]
fn a_year_past_four_digits_is_out_of_range() {
    audience()
        .arg("--store")
        .arg(common::shared_store())
        .args(["check", "birthDate < 10000-01-01"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the year is out of range"));
}
