//! The command line's surface, as a new user meets it: warnings where an answer would silently
//! be empty or surprising, one meaning of `--format`, channels, time forms, saved segments by
//! name, help on every argument, completions and a man page, pipes, previews and exports that
//! say what they did, and `fmt` that keeps comments. Messages are snapshotted exactly.

mod common;

use assert_cmd::Command;
use insta::assert_snapshot;
use std::path::Path;

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AUDIENCE_STORE")
        .env("NO_COLOR", "1");
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

fn count(args: &[&str]) -> u64 {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out.trim().parse().unwrap()
}

#[test]
fn values_the_data_never_has_warn_with_a_suggestion() {
    let (code, out, err) = run(&["count", "platform = \"ios\""]);
    assert_eq!((code, out.as_str()), (0, "0\n"));
    assert_snapshot!(err, @r#"
    [W001] Warning: no installation has platform "ios" in this snapshot (segment:1:12)
       ╭─[ segment:1:12 ]
       │
     1 │ platform = "ios"
       │            ──┬──  
       │              ╰──── no installation has platform "ios" in this snapshot
       │ 
       │ Help: did you mean "iOS"?
    ───╯
    "#);
    let (_, _, err) = run(&[
        "check",
        "country in (\"Germany\", \"HR\") and did(Purchase where category = \"shoes\")",
    ]);
    assert_snapshot!(err, @r#"
    [W001] Warning: no person has country "Germany" in this snapshot (segment:1:13)
       ╭─[ segment:1:13 ]
       │
     1 │ country in ("Germany", "HR") and did(Purchase where category = "shoes")
       │             ────┬────  
       │                 ╰────── no person has country "Germany" in this snapshot
       │ 
       │ Help: its values: "HR", "DE", "US", "GB", "AT", "SI", "PL", "RS"
    ───╯
    [W001] Warning: no Purchase event has category "shoes" in this snapshot (segment:1:64)
       ╭─[ segment:1:64 ]
       │
     1 │ country in ("Germany", "HR") and did(Purchase where category = "shoes")
       │                                                                ───┬───  
       │                                                                   ╰───── no Purchase event has category "shoes" in this snapshot
       │ 
       │ Help: its values: "fashion", "electronics", "home", "sports", "grocery", "toys", "books", "beauty"
    ───╯
    "#);
    let (code, _, err) = run(&["--deny-warnings", "count", "platform = \"ios\""]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn units_that_read_as_something_else() {
    let (code, _, err) = run(&["count", "count(AppLaunch within 3M) > 1"]);
    assert_eq!(code, 1);
    assert_snapshot!(err, @"
    [E012] Error: `3M` could mean minutes or months (segment:1:24)
       ╭─[ segment:1:24 ]
       │
     1 │ count(AppLaunch within 3M) > 1
       │                        ─┬  
       │                         ╰── `3M` could mean minutes or months
       │ 
       │ Help: write 3m for minutes or 3mo for months
    ───╯
    ");
    let (code, _, err) = run(&["count", "did(AppLaunch within 3m)"]);
    assert_eq!(code, 0);
    assert_snapshot!(err, @"
    [W002] Warning: `within 3m` is 3 minute(s), shorter than an hour (segment:1:22)
       ╭─[ segment:1:22 ]
       │
     1 │ did(AppLaunch within 3m)
       │                      ─┬  
       │                       ╰── `within 3m` is 3 minute(s), shorter than an hour
       │ 
       │ Help: for months write 3mo; for days 3d
    ───╯
    ");
    // Calendar units and spelled-out lengths.
    assert_eq!(
        count(&["count", "count(AppLaunch within 30 days) >= 2"]),
        count(&["count", "count(AppLaunch within 30d) >= 2"])
    );
    assert_eq!(
        count(&["count", "did(Purchase within 1y)"]),
        count(&["count", "did(Purchase within 365d)"]),
        "the sample's year before its as-of has 365 days"
    );
    // A month before 2026-07-31 is 2026-06-30: `within 1mo` is [06-30, 07-31).
    assert_eq!(
        count(&["count", "--as-of", "2026-07-31", "did(Purchase within 1mo)"]),
        count(&[
            "count",
            "--as-of",
            "2026-07-31",
            "did(Purchase between 2026-06-30 and 2026-07-30)"
        ])
    );
}

#[test]
fn scope_traps_warn() {
    let (_, _, err) = run(&["check", "did(Depersonalize within 30d)"]);
    assert_snapshot!(err, @"
    [W003] Warning: `did(…)` of Depersonalize at person scope: a Depersonalize stays with the person the device logged out of, so at person scope it matches that person's other devices, not the device that logged out (segment:1:1)
       ╭─[ segment:1:1 ]
       │
     1 │ did(Depersonalize within 30d)
       │ ──────────────┬──────────────  
       │               ╰──────────────── `did(…)` of Depersonalize at person scope: a Depersonalize stays with the person the device logged out of, so at person scope it matches that person's other devices, not the device that logged out
       │ 
       │ Help: for the device itself, write installation.did(Depersonalize within 30d)
    ───╯
    ");
    let (_, _, err) = run(&["check", "installation.did(Depersonalize within 30d)"]);
    assert_eq!(err, "", "installation scope is what the warning suggests");
}

#[test]
fn as_of_outside_the_history_and_attributes_under_as_of_warn() {
    let (code, _, err) = run(&[
        "count",
        "--as-of",
        "2026-12-15T08:00Z",
        "did(AppLaunch within 7d)",
    ]);
    assert_eq!(code, 0);
    assert_snapshot!(err, @"
    [W004] Warning: the as-of time 2026-12-15T08:00:00Z is after the snapshot's as-of 2026-11-01T00:00:00Z: events after 2026-11-01T00:00:00Z are not in the store (segment:1:1)
       ╭─[ segment:1:1 ]
       │
     1 │ did(AppLaunch within 7d)
       │ ────────────┬───────────  
       │             ╰───────────── the as-of time 2026-12-15T08:00:00Z is after the snapshot's as-of 2026-11-01T00:00:00Z: events after 2026-11-01T00:00:00Z are not in the store
       │ 
       │ Help: a later snapshot holds later events (`audience info` lists snapshots)
    ───╯
    ");
    let (_, _, err) = run(&[
        "count",
        "--as-of",
        "2026-10-01T12:00Z",
        "platform = \"iOS\"",
    ]);
    assert_snapshot!(err, @r#"
    [W005] Warning: attribute conditions use the snapshot's values (as of 2026-11-01T00:00:00Z), not the values at 2026-10-01T12:00:00Z; event windows move to 2026-10-01T12:00:00Z (segment:1:1)
       ╭─[ segment:1:1 ]
       │
     1 │ platform = "iOS"
       │ ────────┬───────  
       │         ╰───────── attribute conditions use the snapshot's values (as of 2026-11-01T00:00:00Z), not the values at 2026-10-01T12:00:00Z; event windows move to 2026-10-01T12:00:00Z
       │ 
       │ Help: values at an earlier time come from a snapshot at or before it (`audience info` lists snapshots; without --snapshot, the newest at or before the as-of serves)
    ───╯
    "#);
    let (_, _, err) = run(&[
        "count",
        "--as-of",
        "2026-10-01T12:00Z",
        "did(AppLaunch within 7d)",
    ]);
    assert_eq!(
        err, "",
        "no attribute, as-of inside the history: nothing to warn about"
    );
}

#[test]
fn corpus_and_benchmark_segments_raise_no_warning() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, saved) in [
        ("tests/segments/valid", "tests/segments/saved"),
        ("benches/segments", "benches/segments/saved"),
        ("benches/export_job/segments", "benches/segments/saved"),
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "seg") {
                continue;
            }
            let arg = format!("@{}", p.display());
            let (code, _, err) = run(&["check", "--segments", saved, &arg]);
            assert_eq!((code, err.as_str()), (0, ""), "{}", p.display());
        }
    }
}

#[test]
fn format_names_mean_the_same_everywhere() {
    let v: serde_json::Value =
        serde_json::from_str(&run(&["count", "--format", "json", "identified"]).1).unwrap();
    assert_eq!(
        v["counts"]["persons"],
        count(&["count", "--target", "persons", "identified"])
    );
    assert!(v["reachable"]["push"].is_number() && v["reachable"]["email"].is_number());
    let rows: serde_json::Value =
        serde_json::from_str(&run(&["query", "--format", "json", "--limit", "2", "identified"]).1)
            .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "json is one array");
    let (code, out, _) = run(&["info", "--format", "table"]);
    assert!(code == 0 && out.contains("derived"));
    let (code, out, _) = run(&["info", "--format", "text"]);
    assert!(
        code == 0 && out.contains("snapshot"),
        "text stays an alias of table"
    );
    let checked: serde_json::Value =
        serde_json::from_str(&run(&["check", "--format", "json", "platform = \"ios\""]).1).unwrap();
    assert_eq!(checked["warnings"][0]["code"], "W001");
}

#[test]
fn channels_count_what_an_export_writes() {
    let push = count(&["count", "--channel", "push", "identified"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("push.csv");
    let (code, _, err) = run(&[
        "export",
        "identified",
        "--channel",
        "push",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&out).unwrap().lines().count() as u64 - 1;
    assert_eq!(written, push);
    let all = count(&["count", "identified"]);
    assert!(
        err.contains(&format!(
            "left out {} of the {all} matching installations: not reachable by push",
            all - push
        )),
        "{err}"
    );
    assert_eq!(
        count(&["count", "--channel", "email", "identified"]),
        count(&[
            "count",
            "--target",
            "persons",
            "identified and emails is set"
        ])
    );
    let (code, _, err) = run(&[
        "count",
        "--channel",
        "email",
        "--target",
        "installations",
        "identified",
    ]);
    assert_eq!(code, 1);
    assert_snapshot!(err, @"error: the email channel exports persons, not installations");
    // The email column is always written for the email channel.
    let email = dir.path().join("email.csv");
    run(&[
        "export",
        "identified",
        "--channel",
        "email",
        "--columns",
        "externalUserId",
        "--out",
        email.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&email)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        "externalUserId,emails"
    );
}

#[test]
fn as_of_takes_every_time_form_the_language_does() {
    for t in [
        "2026-10-01",
        "2026-10-01T12:00Z",
        "2026-10-01T12:00:00+02:00",
    ] {
        let (code, _, err) = run(&["count", "--as-of", t, "did(AppLaunch within 7d)"]);
        assert_eq!(code, 0, "{t}: {err}");
    }
    let (code, _, err) = run(&["count", "--as-of", "yesterday", "identified"]);
    assert_eq!(code, 2);
    assert!(err.contains("`yesterday` is not a date"), "{err}");
}

#[test]
fn saved_segments_resolve_by_name_from_the_store_and_stdin_reads_a_segment() {
    let (_tmp, store) =
        common::copy_store(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample"));
    std::fs::create_dir_all(store.join("segments")).unwrap();
    std::fs::write(
        store.join("segments/vip-users.seg"),
        "person.tags has \"vip\"",
    )
    .unwrap();
    let s = store.to_str().unwrap();
    assert_eq!(
        count(&["count", "--store", s, "vip-users"]),
        count(&["count", "--store", s, "person.tags has \"vip\""])
    );
    let piped = audience()
        .args(["count", "--store", s, "@-"])
        .write_stdin("person.tags has \"vip\"")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(piped.stdout)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap(),
        count(&["count", "--store", s, "vip-users"])
    );
}

#[test]
fn every_argument_has_help_and_no_command_takes_flags_it_ignores() {
    use clap::CommandFactory;
    let cli = audience::cli::Cli::command();
    let mut missing = Vec::new();
    fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if a.get_help().is_none() && a.get_id() != "help" && a.get_id() != "version" {
                missing.push(format!("{path} {}", a.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, format!("{path} {}", sub.get_name()), missing);
        }
    }
    walk(&cli, "audience".into(), &mut missing);
    assert!(missing.is_empty(), "arguments without help: {missing:?}");
    for cmd in ["fmt", "generate"] {
        let (code, _, err) = run(&[cmd, "--snapshot", "x", "a"]);
        assert_eq!(code, 2, "{cmd} takes no --snapshot: {err}");
    }
}

#[test]
fn completions_and_a_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = run(&["completions", shell]);
        assert!(code == 0 && out.contains("audience"), "{shell}");
    }
    let (code, out, _) = run(&["man"]);
    assert!(code == 0 && out.contains(".TH audience"));
}

#[test]
fn without_a_store_the_error_says_how_to_choose_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("audience")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("AUDIENCE_STORE")
        .args(["count", "identified"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_snapshot!(String::from_utf8_lossy(&out.stderr), @"error: no store: give --store DIR or set AUDIENCE_STORE (./data/sample is used when it exists, as in a checkout of audience)");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let bin = assert_cmd::cargo::cargo_bin("audience");
    for cmd in [
        "sql 'select * from installations'",
        "query --limit 0 --format csv identified",
        "export identified --out - --format jsonl",
    ] {
        let out = std::process::Command::new("/bin/sh")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "-c",
                &format!(
                    "'{}' {cmd} | head -1; exit ${{PIPESTATUS:-0}}",
                    bin.display()
                ),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{cmd}: {err}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            1,
            "{cmd}"
        );
    }
}

#[test]
fn previews_say_how_many_rows_there_are() {
    let (_, out, _) = run(&[
        "query",
        "--format",
        "csv",
        "platform = \"iOS\" and platform = \"Android\"",
    ]);
    assert_eq!(
        out,
        "installationId,pushRegistrationId,platform,state,personId,externalUserId\n"
    );
    let (_, out, _) = run(&[
        "query",
        "--format",
        "table",
        "platform = \"iOS\" and platform = \"Android\"",
    ]);
    assert!(
        out.contains("| installationId") && out.ends_with("0 rows\n"),
        "{out}"
    );
    let all = count(&["count", "identified"]);
    let (_, out, err) = run(&["query", "--format", "csv", "identified"]);
    assert_eq!(out.lines().count(), 21);
    assert_eq!(
        err,
        format!("20 of {all} installations (use --limit, 0 for all)\n")
    );
    let (_, out, _) = run(&["query", "--format", "csv", "--limit", "0", "identified"]);
    assert_eq!(out.lines().count() as u64, all + 1);
    let (_, out, _) = run(&[
        "query",
        "--format",
        "csv",
        "--target",
        "persons",
        "--columns",
        "externalUserId,age,randomBucket",
        "--limit",
        "1",
        "identified",
    ]);
    assert_eq!(
        out.lines().next().unwrap(),
        "externalUserId,age,randomBucket"
    );
}

#[test]
fn exports_refuse_surprises_and_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (code, _, err) = run(&["export", "identified", "--out", &at("a.xlsx")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the extension names no export format"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "export",
        "identified",
        "--out",
        &at("a.csv"),
        "--format",
        "jsonl",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the extension says csv, --format says jsonl"),
        "{err}"
    );
    assert_eq!(run(&["export", "identified", "--out", &at("a.csv")]).0, 0);
    let (code, _, err) = run(&["export", "identified", "--out", &at("a.csv")]);
    assert_eq!(code, 1);
    assert!(err.contains("exists already: give --force"), "{err}");
    assert_eq!(
        run(&["export", "identified", "--out", &at("a.csv"), "--force"]).0,
        0
    );
    let (_, out, _) = run(&["export", "identified", "--out", "-"]);
    assert_eq!(
        out.lines().count() as u64,
        count(&["count", "identified"]) + 1
    );
    // Parquet files carry their provenance; CSV a sidecar when asked.
    assert_eq!(
        run(&["export", "identified", "--out", &at("a.parquet")]).0,
        0
    );
    let reader = parquet::file::reader::SerializedFileReader::new(
        std::fs::File::open(at("a.parquet")).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .clone();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get("audience.segment").as_deref(), Some("identified"));
    assert_eq!(get("audience.target").as_deref(), Some("installations"));
    assert!(get("audience.snapshot_id").is_some() && get("audience.as_of").is_some());
    assert_eq!(
        run(&["export", "identified", "--out", &at("b.csv"), "--metadata"]).0,
        0
    );
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(at("b.csv.meta.json")).unwrap()).unwrap();
    assert_eq!(side["audience.segment"], "identified");
}

#[test]
fn fmt_keeps_comments_breaks_long_lines_and_rewrites_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.seg");
    std::fs::write(
        &f,
        "# lapsed buyers\nlast(Purchase) before 90d ago AND   emails is set # reachable\n",
    )
    .unwrap();
    let path = f.to_str().unwrap();
    let (_, out, _) = run(&["fmt", "--file", path]);
    assert_snapshot!(out, @"
    # lapsed buyers
    last(Purchase) before 90d ago
      and emails is set  # reachable
    ");
    assert_eq!(run(&["fmt", "--file", path, "--write"]).0, 0);
    let once = std::fs::read_to_string(&f).unwrap();
    assert_eq!(once, out);
    assert_eq!(run(&["fmt", "--file", path, "--write"]).0, 0);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), once, "idempotent");
    let (_, out, _) = run(&[
        "fmt",
        "--width",
        "30",
        "primaryDevice and pushRegistrationEnabled and identified",
    ]);
    assert_snapshot!(out, @"
    primaryDevice
      and pushRegistrationEnabled
      and identified
    ");
}

#[test]
fn info_lists_derived_fields_and_value_sets() {
    let (_, out, _) = run(&["info"]);
    assert!(out.contains("age ") && out.contains("randomBucket"));
    assert!(out.contains("values: Android ("), "{out}");
}

#[test]
fn long_work_reports_progress_in_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = audience()
        .env("AUDIENCE_PROGRESS_SECONDS", "0.05")
        .args(["generate", "--persons", "3000", "--days", "60", "--out"])
        .arg(dir.path().join("s"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("generating events (days): "), "{err}");
}

#[test]
fn generate_emits_the_world_as_import_sources() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let sources = dir.path().join("sources");
    let (code, out, err) = run(&[
        "generate",
        "--persons",
        "150",
        "--days",
        "10",
        "--partition",
        "month",
        "--out",
        store.to_str().unwrap(),
        "--emit",
        "segment-jsonl",
        "--emit",
        "infobip",
        "--emit-dir",
        sources.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.trim().is_empty(), "the snapshot id on stdout");
    assert!(
        err.contains("segment-jsonl: ") && err.contains("infobip: "),
        "{err}"
    );
    let segment: Vec<_> = std::fs::read_dir(sources.join("segment"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(segment.len() >= 9, "one file a day: {segment:?}");
    assert!(segment
        .iter()
        .all(|n| n.starts_with("events-") && n.ends_with(".jsonl.gz")));
    assert!(sources.join("infobip/people.jsonl.gz").is_file());

    // The directory is taken now, and --emit needs a directory.
    let (code, _, err) = run(&[
        "generate",
        "--persons",
        "10",
        "--days",
        "2",
        "--out",
        dir.path().join("t").to_str().unwrap(),
        "--emit",
        "infobip",
        "--emit-dir",
        sources.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists already"), "{err}");
    assert!(!dir.path().join("t").exists(), "refused before generating");
    let (code, _, err) = run(&["generate", "--out", "x", "--emit", "infobip"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--emit-dir"), "{err}");
}
