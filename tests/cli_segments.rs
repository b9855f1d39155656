//! End-to-end: every segment command through the real binary on the committed sample.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AUDIENCE_STORE")
        .env("NO_COLOR", "1");
    cmd
}

fn stdout(args: &[&str]) -> String {
    let out = audience().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SEG: &str = "primaryDevice and pushRegistrationEnabled and count(AppLaunch within 30d) >= 3";

#[test]
fn count_prints_the_audience_size() {
    let n: u64 = stdout(&["count", SEG]).trim().parse().unwrap();
    assert!(n > 100, "{n}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&["count", "--format", "json", SEG])).unwrap();
    assert_eq!(json["count"], n);
    assert_eq!(json["target"], "installations");
    assert!(json["counts"]["persons"].as_u64().unwrap() <= n);
    assert_eq!(json["as_of"], "2026-11-01T00:00:00Z");
    // Backtesting: an earlier as-of sees fewer recent launches' worth of history.
    let earlier: u64 = stdout(&["count", "--as-of", "2026-06-01", SEG])
        .trim()
        .parse()
        .unwrap();
    assert_ne!(earlier, n);
}

/// `--timings` splits the query into its phases, which add up to no more than the query, and
/// leaves stdout to the count.
#[test]
fn count_timings_split_the_query_into_phases() {
    let out = audience()
        .args(["count", "--timings", SEG])
        .output()
        .unwrap();
    assert!(out.status.success());
    let n: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(n > 100, "{n}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let field = |name: &str| -> f64 {
        let key = format!("{name}=");
        let at = stderr
            .find(&key)
            .unwrap_or_else(|| panic!("{name}: {stderr}"));
        let rest = &stderr[at + key.len()..];
        let end = rest
            .find(|c: char| c != '.' && !c.is_ascii_digit())
            .unwrap();
        rest[..end].parse().unwrap()
    };
    let phases: f64 = ["plan_ms", "optimize_ms", "physical_ms", "execute_ms"]
        .iter()
        .map(|f| field(f))
        .sum();
    assert!(
        field("open_ms") > 0.0 && field("execute_ms") > 0.0,
        "{stderr}"
    );
    // Each figure is rounded to 0.1 ms.
    assert!(phases <= field("query_ms") + 0.25, "{stderr}");
}

#[test]
fn segment_errors_exit_1_with_a_caret_and_a_suggestion() {
    audience()
        .args(["count", "primaryDevise and count(AppLunch) > 1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unknown attribute `primaryDevise`",
        ))
        .stderr(predicate::str::contains("did you mean `primaryDevice`?"))
        .stderr(predicate::str::contains("did you mean `AppLaunch`?"))
        .stderr(predicate::str::contains("segment:1:1"));
    let out = audience()
        .args(["count", "--json-errors", "platform = "])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(json["diagnostics"][0]["column"], 12); // the end of "platform = "
}

#[test]
fn data_errors_exit_2() {
    audience()
        .args(["--store", "/nonexistent", "count", "identified"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent"));
    audience()
        .args(["count", "--memory-limit", "lots", "identified"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a size"));
    audience()
        .args(["count", "@/nonexistent.seg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent.seg"));
}

#[test]
fn request_mistakes_exit_1() {
    audience()
        .args(["query", "--columns", "nope", "identified"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown attribute `nope`"));
    audience()
        .args([
            "query",
            "--target",
            "persons",
            "--columns",
            "platform",
            "identified",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`platform` is an installation attribute",
        ));
    audience()
        .args([
            "export",
            "identified",
            "--channel",
            "push",
            "--target",
            "persons",
        ])
        .args(["--out", "/tmp/never-written.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the push channel exports installations, not persons",
        ));
}

#[test]
fn query_previews_in_every_format() {
    let csv = stdout(&[
        "query",
        "--limit",
        "3",
        "--format",
        "csv",
        "--columns",
        "externalUserId,emails,platform",
        SEG,
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "externalUserId,emails,platform");
    assert_eq!(lines.len(), 4);
    let jsonl = stdout(&[
        "query", "--limit", "2", "--format", "jsonl", "--target", "persons", SEG,
    ]);
    assert_eq!(jsonl.lines().count(), 2);
    let row: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert!(row["personId"].is_number() && row["externalUserId"].is_string());
    let table = stdout(&["query", "--limit", "1", "--format", "table", SEG]);
    assert!(table.contains("| installationId") && table.contains("pushRegistrationId"));
}

fn parquet_rows(path: &Path) -> usize {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap();
    reader.metadata().file_metadata().num_rows() as usize
}

#[test]
fn export_writes_complete_files_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let n: usize = stdout(&["count", SEG]).trim().parse().unwrap();
    for (file, check) in [
        ("a.csv", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.parquet", "parquet"),
    ] {
        let out = dir.path().join(file);
        audience()
            .args(["export", SEG, "--out"])
            .arg(&out)
            .assert()
            .success()
            .stderr(predicate::str::contains(format!("wrote {n} rows")));
        let rows = match check {
            "csv" => std::fs::read_to_string(&out).unwrap().lines().count() - 1,
            "jsonl" => std::fs::read_to_string(&out).unwrap().lines().count(),
            _ => parquet_rows(&out),
        };
        assert_eq!(rows, n, "{file}");
    }
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn channel_exports_apply_reachability() {
    let dir = tempfile::tempdir().unwrap();
    let push = dir.path().join("push.csv");
    audience()
        .args(["export", "identified", "--channel", "push", "--out"])
        .arg(&push)
        .assert()
        .success();
    let text = std::fs::read_to_string(&push).unwrap();
    assert!(
        text.starts_with("installationId,pushRegistrationId,platform,externalUserId\n"),
        "{}",
        &text[..80]
    );
    let reachable: usize = stdout(&[
        "count",
        "identified and pushRegistrationEnabled and state != \"uninstalled\"",
    ])
    .trim()
    .parse()
    .unwrap();
    assert_eq!(text.lines().count() - 1, reachable);
    let email = dir.path().join("email.csv");
    audience()
        .args(["export", "identified", "--channel", "email", "--out"])
        .arg(&email)
        .assert()
        .success();
    let text = std::fs::read_to_string(&email).unwrap();
    let with_email: usize = stdout(&[
        "count",
        "--target",
        "persons",
        "identified and emails is set",
    ])
    .trim()
    .parse()
    .unwrap();
    assert_eq!(text.lines().count() - 1, with_email);
    assert!(text.lines().nth(1).unwrap().contains('@'));
}

#[test]
fn export_to_an_unwritable_place_fails_cleanly() {
    audience()
        .args(["export", SEG, "--out", "/nonexistent/dir/a.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/dir"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.csv");
    audience()
        .args(["export", "count(AppLunch) > 1", "--out"])
        .arg(&out)
        .assert()
        .code(1);
    assert!(!out.exists());
}

#[test]
fn export_many_saved_segments_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let segs = dir.path().join("segs");
    std::fs::create_dir(&segs).unwrap();
    std::fs::write(segs.join("ios.seg"), "platform = \"iOS\"").unwrap();
    std::fs::write(segs.join("buyers.seg"), "did(Purchase within 90d)").unwrap();
    std::fs::write(
        segs.join("ios-buyers.seg"),
        "segment(\"ios\") and segment(\"buyers\")",
    )
    .unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    audience()
        .args(["export", "--format", "jsonl", "--segments"])
        .arg(&segs)
        .arg("--out-dir")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("exported 3 file(s)"));
    for name in ["ios", "buyers", "ios-buyers"] {
        let rows = std::fs::read_to_string(out.join(format!("{name}.jsonl")))
            .unwrap()
            .lines()
            .count();
        let n: usize = stdout(&["count", "--segments", segs.to_str().unwrap(), name])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(rows, n, "{name}");
    }
}

/// A job's one shared query writes, for each segment, exactly the rows that segment exported
/// alone writes: push (installations, CSV) and email (persons, JSON lines, installation
/// conditions folded per person) over the benchmark's 10-segment campaign.
#[test]
fn an_export_job_writes_what_each_segment_writes_alone() {
    let segs = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/export_job/segments");
    let names: Vec<String> = std::fs::read_dir(&segs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 10);
    let sorted_lines = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    for (channel, format) in [("push", "csv"), ("email", "jsonl")] {
        let dir = tempfile::tempdir().unwrap();
        let export = || {
            let mut cmd = audience();
            cmd.args(["export", "--channel", channel, "--format", format])
                .arg("--segments")
                .arg(&segs);
            cmd
        };
        export()
            .arg("--out-dir")
            .arg(dir.path())
            .assert()
            .success()
            .stderr(predicate::str::contains("exported 10 file(s)"));
        let mut nonempty = 0;
        for name in &names {
            let alone = dir.path().join(format!("{name}.alone.{format}"));
            export()
                .args([name.as_str(), "--out"])
                .arg(&alone)
                .assert()
                .success();
            let job = sorted_lines(&dir.path().join(format!("{name}.{format}")));
            assert_eq!(job, sorted_lines(&alone), "{channel}: {name}");
            nonempty += usize::from(job.len() > 1);
        }
        assert!(
            nonempty >= 8,
            "{channel}: only {nonempty} segments have rows"
        );
    }
}

#[test]
fn killed_export_never_leaves_a_truncated_file() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.csv");
    let bin = assert_cmd::cargo::cargo_bin("audience");
    for delay_ms in [5, 40, 120] {
        let mut child = std::process::Command::new(&bin)
            .arg("--store")
            .arg(&store)
            .args([
                "export",
                "not primaryDevice or count(AppLaunch) >= 0",
                "--out",
            ])
            .arg(&out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        if out.exists() {
            // Only a complete file is ever renamed into place.
            let expected: usize = String::from_utf8(
                audience()
                    .arg("--store")
                    .arg(&store)
                    .args(["count", "not primaryDevice or count(AppLaunch) >= 0"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .parse()
            .unwrap();
            assert_eq!(
                std::fs::read_to_string(&out).unwrap().lines().count() - 1,
                expected
            );
        }
    }
}

#[test]
fn explain_shows_plans_and_metrics() {
    // A 10-day window is not one of the activity summary's: the plan scans AddToCart events.
    let text = stdout(&[
        "explain",
        "did(AddToCart within 10d) and not did(Purchase within 10d)",
    ]);
    assert!(
        text.contains("== logical plan (optimized) ==")
            && text.contains("event_addtocart")
            && text.contains("DataSourceExec"),
        "{text}"
    );
    // 30 days at the snapshot's as-of is, and AppLaunch has more rows in those partitions than
    // the summary has persons: the plan reads the summary and no event table.
    let text = stdout(&["explain", "count(AppLaunch within 30d) >= 3"]);
    assert!(
        text.contains("person_activity") && !text.contains("event_applaunch"),
        "{text}"
    );
    let analyzed = stdout(&["explain", "--analyze", "count(AppLaunch within 30d) >= 3"]);
    assert!(
        analyzed.contains("metrics=[") && analyzed.contains("output_rows="),
        "{analyzed}"
    );
    // --count explains what `count` runs: one aggregate row, and the ids are never read.
    let counted = stdout(&["explain", "--analyze", "--count", "primaryDevice"]);
    let n = stdout(&["count", "primaryDevice"]).trim().to_string();
    let top = counted
        .lines()
        .skip_while(|l| !l.starts_with("== physical plan"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        counted.contains("Aggregate: groupBy=[[]], aggr=[[count(Int32(1)) AS n]]")
            && top.starts_with("AggregateExec")
            && top.contains("output_rows=1,")
            && !counted.contains("installationId"),
        "{counted}"
    );
    assert!(n.parse::<u64>().unwrap() > 0);
}

#[test]
fn check_and_fmt() {
    assert_eq!(
        stdout(&["check", "PrimaryDevice AND tags HAS \"vip\""]).trim(),
        "installation.primaryDevice and person.tags has \"vip\""
    );
    // fmt is syntax only: layout and keywords are canonical, names stay as written, and a
    // comment stays after the condition on whose line it was.
    assert_eq!(
        stdout(&["fmt", "PrimaryDevice   AND (tags HAS \"vip\")"]).trim(),
        "PrimaryDevice and tags has \"vip\""
    );
    assert_eq!(
        stdout(&["fmt", "PrimaryDevice   AND (tags HAS \"vip\")  # c"]).trim(),
        "PrimaryDevice\n  and tags has \"vip\"  # c"
    );
    audience().args(["fmt", "(("]).assert().code(1);
}

#[test]
fn reports_and_jobs_with_negated_installation_strings_plan() {
    // Several flags sharing `state = "uninstalled" IS NOT TRUE` once failed physical planning
    // (a shared subexpression typed non-null logically, nullable physically).
    for segment in [
        "state != \"uninstalled\"",
        "platform != \"iOS\" and pushRegistrationEnabled",
        "not (state = \"uninstalled\") or not identified",
    ] {
        let out = stdout(&["count", "--format", "json", segment]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        for (target, key) in [("installations", "installations"), ("persons", "persons")] {
            let alone = stdout(&["count", "--target", target, segment]);
            assert_eq!(
                v["counts"][key].as_u64().unwrap().to_string(),
                alone.trim(),
                "{segment} {target}"
            );
        }
        let push = stdout(&["count", "--channel", "push", segment]);
        assert_eq!(v["reachable"]["push"].to_string(), push.trim(), "{segment}");
    }
}
