//! `audience trend` end to end: each point's count is what `count --as-of` says at that point
//! (on the committed sample, for attributes, events, sequences and regularity), CSV, JSON and
//! the chart; attributes that follow a store's snapshots (two imports); the input it refuses;
//! and the plan of a trend, one fused scan per event for all its points.

use assert_cmd::Command;
use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::plan::lower::plan_points;
use audience::plan::{PlanOptions, TableSources, Target};
use audience::store::manifest::Partitioning;
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use serde_json::Value;
use std::path::Path;

fn audience() -> Command {
    let mut cmd = Command::cargo_bin("audience").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AUDIENCE_STORE")
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

fn count(args: &[&str]) -> u64 {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out.trim().parse().unwrap()
}

/// The points of a CSV trend: (as_of, count, snapshot_id).
fn csv_points(out: &str) -> Vec<(String, u64, String)> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("as_of,count,snapshot_id"), "{out}");
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), 3, "{l}");
            (
                cells[0].to_string(),
                cells[1].parse().unwrap(),
                cells[2].to_string(),
            )
        })
        .collect()
}

fn trend(args: &[&str]) -> Vec<(String, u64, String)> {
    let mut all = vec!["trend"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "{args:?}: {err}");
    csv_points(&out)
}

#[test]
fn each_point_is_the_count_at_that_as_of() {
    let segments = [
        ("installations", r#"platform = "iOS" and pushRegistrationEnabled"#),
        (
            "persons",
            "count distinct(ViewProduct.category within 30d) >= 3 and count distinct(Purchase.currency) = 1",
        ),
        (
            "installations",
            r#"last(Purchase).category = "fashion" and first(Purchase where currency = "EUR" within 90d).amount > 50"#,
        ),
        ("installations", "count(AppLaunch within 7d) >= 3"),
        ("persons", "did(AddToCart then Purchase within 1d)"),
        ("installations", "did(Install then AppLaunch then Purchase)"),
        (
            "persons",
            "did(AddToCart then not Purchase within 1d within 14d) and emails is set",
        ),
        ("installations", "count(AppLaunch) >= 1 per day in 3 of the last 5 days"),
        (
            "persons",
            r#"last(Purchase) within 7d or (age >= 30 and did(ViewProduct where category = "books" within 3d))"#,
        ),
    ];
    for (target, segment) in segments {
        let points = trend(&[
            segment,
            "--target",
            target,
            "--from",
            "2026-10-27",
            "--to",
            "2026-10-30T12:00Z",
        ]);
        let times: Vec<&str> = points.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            times,
            [
                "2026-10-27T00:00:00Z",
                "2026-10-28T00:00:00Z",
                "2026-10-29T00:00:00Z",
                "2026-10-30T00:00:00Z"
            ],
            "from, a step of a day, up to and with --to"
        );
        for (at, n, _) in &points {
            let expected = count(&["count", "--target", target, "--as-of", at, segment]);
            assert_eq!(*n, expected, "{segment} ({target}) at {at}");
        }
        assert!(
            points.iter().any(|p| p.1 > 0),
            "{segment}: a trend of zeros tests little"
        );
    }
    // Weekly points, at a time of day.
    let segment = "did(Purchase within 7d)";
    let points = trend(&[
        segment,
        "--from",
        "2026-10-04T06:30Z",
        "--to",
        "2026-10-25T06:30Z",
        "--every",
        "1w",
    ]);
    assert_eq!(points.len(), 4);
    for (at, n, _) in &points {
        assert_eq!(*n, count(&["count", "--as-of", at, segment]), "{at}");
    }
}

#[test]
fn csv_json_and_the_chart_show_the_same_points() {
    let args = [
        "trend",
        "did(AppLaunch within 7d)",
        "--target",
        "persons",
        "--from",
        "2026-10-20",
        "--to",
        "2026-10-24",
    ];
    let (code, csv, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "no as-of warning inside the history");
    let csv = csv_points(&csv);
    assert_eq!(csv.len(), 5);

    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let (code, json, err) = run(&json_args);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["target"], "persons");
    assert_eq!(v["every"], "1d");
    assert!(v["elapsed_ms"].is_number());
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), csv.len());
    for (p, (at, n, id)) in points.iter().zip(&csv) {
        assert_eq!(p["as_of"].as_str().unwrap(), at);
        assert_eq!(p["count"].as_u64().unwrap(), *n);
        assert_eq!(p["snapshot_id"].as_str().unwrap(), id);
    }

    let mut chart_args = args.to_vec();
    chart_args.extend(["--format", "chart"]);
    let (code, chart, _) = run(&chart_args);
    assert_eq!(code, 0);
    let lines: Vec<&str> = chart.lines().collect();
    assert_eq!(lines[0], "persons from 2026-10-20 to 2026-10-24, every 1d");
    assert_eq!(
        lines.len(),
        1 + csv.len(),
        "one snapshot: no snapshot lines\n{chart}"
    );
    for (line, (at, n, _)) in lines[1..].iter().zip(&csv) {
        assert!(line.starts_with(&at[..10]), "{line}");
        assert!(line.contains(&format!(" {n} ")), "{line}");
        assert!(line.contains('█'), "{line}");
    }
}

#[test]
fn warnings_about_the_as_of_are_said_once_per_trend() {
    let (code, out, err) = run(&[
        "trend",
        r#"platform = "iOS""#,
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-03",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(csv_points(&out).len(), 3);
    assert_eq!(err.matches("[W005]").count(), 1, "{err}");
    assert!(
        err.contains("not the values at 2026-10-01T00:00:00Z"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "--deny-warnings",
        "trend",
        r#"platform = "iOS""#,
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-03",
    ]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn bad_input_is_refused() {
    let refused = |args: &[&str], code: i32, says: &str| {
        let mut all = vec!["trend", "did(Purchase)"];
        all.extend_from_slice(args);
        let (c, out, err) = run(&all);
        assert_eq!((c, out.as_str()), (code, ""), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(
        &["--from", "2026-10-10", "--to", "2026-10-01"],
        1,
        "the trend's `to` (2026-10-01T00:00:00Z) is before its `from` (2026-10-10T00:00:00Z)",
    );
    refused(
        &["--from", "2025-01-01", "--to", "2026-10-01"],
        1,
        "a trend has at most 400 points; from 2025-01-01T00:00:00Z to 2026-10-01T00:00:00Z every 1d is 639",
    );
    refused(
        &[
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-10",
            "--every",
            "2d",
        ],
        2,
        "every `2d`: use 1d (daily points) or 1w (weekly points)",
    );
    refused(&["--from", "yesterday", "--to", "2026-10-10"], 2, "--from");
    refused(&["--to", "2026-10-10"], 2, "--from");
    refused(
        &[
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
            "--snapshot",
            "nope",
        ],
        2,
        "no snapshot `nope`",
    );
    refused(
        &[
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
            "--as-of",
            "2026-10-01",
        ],
        2,
        "--as-of",
    );
    // A segment with errors is the user's mistake, as for count.
    let (code, _, err) = run(&[
        "trend",
        "did(Purchse)",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-02",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Purchase"), "a suggestion: {err}");
}

fn write(path: &Path, lines: &[&str]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A store of two imports: u1 lives in Zagreb, then (the second import) in Split; u2 in Split
/// throughout. Each import's as-of is just after its newest record.
fn two_snapshots(dir: &Path) -> (String, String, String) {
    let store = dir.join("store");
    let device = |id: &str, os: &str| {
        format!(
            r#""context":{{"device":{{"id":"{id}","token":"t{id}"}},"os":{{"name":"{os}","version":"17"}}}}"#
        )
    };
    let (d1, d2) = (device("d1", "iOS"), device("d2", "Android"));
    let day1 = dir.join("day1.jsonl");
    write(
        &day1,
        &[
            &format!(
                r#"{{"type":"identify","messageId":"a1","userId":"u1","anonymousId":"x1","timestamp":"2026-10-01T08:00:00Z","traits":{{"email":"ana@example.hr","address":{{"city":"Zagreb","country":"HR"}}}},{d1}}}"#
            ),
            &format!(
                r#"{{"type":"identify","messageId":"a2","userId":"u2","anonymousId":"x2","timestamp":"2026-10-01T08:30:00Z","traits":{{"email":"bo@example.hr","address":{{"city":"Split","country":"HR"}}}},{d2}}}"#
            ),
            &format!(
                r#"{{"type":"track","event":"Application Opened","messageId":"a3","userId":"u1","anonymousId":"x1","timestamp":"2026-10-01T09:00:00Z",{d1}}}"#
            ),
        ],
    );
    let day5 = dir.join("day5.jsonl");
    write(
        &day5,
        &[
            &format!(
                r#"{{"type":"identify","messageId":"b1","userId":"u1","anonymousId":"x1","timestamp":"2026-10-05T08:00:00Z","traits":{{"address":{{"city":"Split","country":"HR"}}}},{d1}}}"#
            ),
            &format!(
                r#"{{"type":"track","event":"Application Opened","messageId":"b2","userId":"u2","anonymousId":"x2","timestamp":"2026-10-05T09:00:00Z",{d2}}}"#
            ),
        ],
    );
    let import = |file: &Path| {
        let (code, out, err) = run(&[
            "import",
            "--store",
            store.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    let first = import(&day1);
    let second = import(&day5);
    assert_ne!(first, second);
    (store.to_str().unwrap().to_string(), first, second)
}

#[test]
fn attributes_at_each_point_come_from_the_newest_snapshot_at_or_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, first, second) = two_snapshots(dir.path());
    let split = r#"city = "Split""#;
    let points = trend(&[
        "--store",
        &store,
        split,
        "--target",
        "persons",
        "--from",
        "2026-09-30",
        "--to",
        "2026-10-07",
    ]);
    let got: Vec<(&str, u64, &str)> = points
        .iter()
        .map(|(t, n, id)| (&t[..10], *n, id.as_str()))
        .collect();
    let (a, b) = (first.as_str(), second.as_str());
    assert_eq!(
        got,
        [
            // Before the first snapshot: the earliest serves (and W005 says so).
            ("2026-09-30", 1, a),
            ("2026-10-01", 1, a),
            // After the first import's as-of (2026-10-01T09:00:01Z): u2 only.
            ("2026-10-02", 1, a),
            ("2026-10-03", 1, a),
            ("2026-10-04", 1, a),
            ("2026-10-05", 1, a),
            // After the second's (2026-10-05T09:00:01Z): u1 moved to Split.
            ("2026-10-06", 2, b),
            ("2026-10-07", 2, b),
        ]
    );
    // `count --as-of` follows the same rule, whichever command asks.
    let at = |as_of: &str, segment: &str| {
        count(&[
            "count", "--store", &store, "--target", "persons", "--as-of", as_of, segment,
        ])
    };
    for (t, n, _) in &points {
        assert_eq!(at(t, split), *n, "count --as-of {t}");
    }
    assert_eq!(
        at("2026-10-05T09:00:01Z", split),
        2,
        "at the second's as-of"
    );
    assert_eq!(at("2026-10-05T09:00:00Z", split), 1, "just before it");
    // Without --as-of, the latest; --snapshot pins every point, trend or count.
    assert_eq!(
        count(&["count", "--store", &store, "--target", "persons", split]),
        2
    );
    let pinned = trend(&[
        "--store",
        &store,
        split,
        "--target",
        "persons",
        "--snapshot",
        &second,
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-03",
    ]);
    assert!(
        pinned.iter().all(|p| p.1 == 2 && p.2 == second),
        "{pinned:?}"
    );
    assert_eq!(
        count(&[
            "count",
            "--store",
            &store,
            "--target",
            "persons",
            "--snapshot",
            &first,
            split
        ]),
        1
    );
    // Events and attributes together: u1 launched on 1 October but lived in Zagreb until the
    // second import; u2 launched on 5 October.
    let both = r#"city = "Split" and did(AppLaunch within 7d)"#;
    let points = trend(&[
        "--store",
        &store,
        both,
        "--target",
        "persons",
        "--from",
        "2026-10-02",
        "--to",
        "2026-10-09",
    ]);
    let counts: Vec<u64> = points.iter().map(|p| p.1).collect();
    assert_eq!(counts, [0, 0, 0, 0, 2, 2, 2, 1]);
    for (t, n, _) in &points {
        assert_eq!(at(t, both), *n, "{both} at {t}");
    }
}

/// The optimized plan of `src` at `points`, against schema-only tables of the sample catalog.
fn trend_plan(src: &str, target: Target, points: &[&str]) -> String {
    let catalog = Catalog::sample();
    let typed = compile(src, &catalog, &NoSavedSegments).unwrap();
    let sources = TableSources::from_catalog(&catalog, Partitioning::Day);
    let points: Vec<DateTime<Utc>> = points.iter().map(|p| p.parse().unwrap()).collect();
    let opts = PlanOptions::keys(points[0], target);
    let plan = plan_points(&typed, &sources, &opts, &points).unwrap();
    let optimized = SessionContext::new().state().optimize(&plan).unwrap();
    format!("{src}\n\n{}", optimized.display_indent())
}

#[test]
fn a_three_point_trend_is_one_fused_scan_per_event() {
    let plan = trend_plan(
        r#"platform = "iOS" and count(AppLaunch within 7d) >= 3 and not did(Purchase within 30d)"#,
        Target::Installations,
        &[
            "2026-10-01T00:00:00Z",
            "2026-10-02T00:00:00Z",
            "2026-10-03T00:00:00Z",
        ],
    );
    for event in ["event_applaunch", "event_purchase"] {
        assert_eq!(
            plan.matches(&format!("TableScan: {event}")).count(),
            1,
            "one scan of {event} for every point:\n{plan}"
        );
    }
    assert_eq!(
        plan.matches("TableScan: installations").count(),
        1,
        "{plan}"
    );
    insta::assert_snapshot!(plan);
}

#[test]
fn a_sequence_trend_reads_each_steps_events_once() {
    let points = [
        "2026-10-01T00:00:00Z",
        "2026-10-02T00:00:00Z",
        "2026-10-03T00:00:00Z",
    ];
    let plan = trend_plan(
        "did(AddToCart then Purchase within 1d within 7d) and not did(AddToCart then not Purchase within 1d within 7d)",
        Target::Persons,
        &points,
    );
    for event in ["event_addtocart", "event_purchase"] {
        assert_eq!(
            plan.matches(&format!("TableScan: {event}")).count(),
            2,
            "one scan of {event} a sequence, for every point:\n{plan}"
        );
    }
    // Over all history, without a gap too.
    let plan = trend_plan("did(Install then Purchase)", Target::Persons, &points);
    assert_eq!(
        plan.matches("TableScan: event_purchase").count(),
        1,
        "{plan}"
    );
}

#[test]
fn value_and_distinct_count_trends_share_their_scans_across_points() {
    let points = [
        "2026-10-01T00:00:00Z",
        "2026-10-02T00:00:00Z",
        "2026-10-03T00:00:00Z",
        "2026-10-04T00:00:00Z",
    ];
    // One plan answers every point: the edge times, then the events at them.
    let plan = trend_plan(
        r#"last(Purchase).category = "fashion" and first(AddToCart within 7d).price > 20"#,
        Target::Installations,
        &points,
    );
    for event in ["event_purchase", "event_addtocart"] {
        assert_eq!(
            plan.matches(&format!("TableScan: {event}")).count(),
            2,
            "two scans of {event} for all four points:\n{plan}"
        );
    }
    let plan = trend_plan(
        "count distinct(ViewProduct.category within 7d) >= 2",
        Target::Persons,
        &points,
    );
    assert_eq!(
        plan.matches("TableScan: event_viewproduct").count(),
        1,
        "one scan of ViewProduct for all four points:\n{plan}"
    );
}
