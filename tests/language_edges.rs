//! The second edition's constructs at their edges, on a tiny store imported from a handmade
//! Segment-spec stream (tests/fixtures/language/edges.jsonl) with the real importer: events at
//! one instant in a sequence, one event never two steps, `then not` before and after its gap
//! has passed, regularity over empty periods, 29 February birthdays in leap and other years, a
//! window over New Year, an as-of before a person was first seen, first/last properties at one
//! instant and count distinct over missing values.
//!
//! Every case is pinned three ways: the users it must return (written by hand from the
//! fixture), the reference evaluator's audience (tests/common/reference.rs), and
//! `audience count` for both targets.
//!
//! The fixture gives every person a trait `fixture` naming their group, and every segment here
//! is read within one group (`custom.fixture = "…" and (…)`), so that each expectation only
//! depends on the few persons written for it. One device per person, but u41, who has none.

mod common;

use assert_cmd::Command;
use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use common::reference::{Reference, V};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The persons without an installation (they count for persons only).
const DEVICELESS: &[&str] = &["u41"];

struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
    catalog: Catalog,
    reference: Reference,
    /// person_id → userId
    users: HashMap<i64, String>,
}

fn audience() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_audience"));
    cmd.env_remove("AUDIENCE_STORE")
        .env("NO_COLOR", "1")
        .env("AUDIENCE_PROGRESS", "0");
    cmd
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/language/edges.jsonl");
        // The snapshot's as-of lies after every as-of below, so none of them moves past it.
        let out = audience()
            .args(["import", "--store", store.to_str().unwrap()])
            .args(["--as-of", "2029-01-01T00:00:00Z"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (catalog, reference) = rt.block_on(async {
            let (snapshot, ctx, _) = common::open(&store).await;
            let reference = Reference::load(&ctx, &snapshot.manifest.catalog).await;
            (snapshot.manifest.catalog.clone(), reference)
        });
        let users = reference
            .persons
            .iter()
            .filter_map(|p| match (&p["person_id"], &p["external_user_id"]) {
                (V::Num(id), V::Str(user)) => Some((*id as i64, user.clone())),
                _ => None,
            })
            .collect();
        Fixture {
            _dir: dir,
            store,
            catalog,
            reference,
            users,
        }
    })
}

fn cli_count(store: &Path, as_of: &str, target: &str, segment: &str) -> usize {
    let out = audience()
        .args(["count", "--store", store.to_str().unwrap()])
        .args(["--as-of", as_of, "--target", target, segment])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{segment}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `segment` within the persons of `group`, as of `as_of`, is exactly `expected` (userIds):
/// by the reference evaluator and by `audience count` for persons and installations.
fn check(group: &str, segment: &str, as_of: &str, expected: &[&str]) {
    let f = fixture();
    let src = format!("custom.fixture = \"{group}\" and ({segment})");
    let typed =
        compile(&src, &f.catalog, &NoSavedSegments).unwrap_or_else(|d| panic!("{src}: {d}"));
    let at = chrono::DateTime::parse_from_rfc3339(as_of)
        .unwrap()
        .timestamp_micros();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    let reference: BTreeSet<&str> = f
        .reference
        .audience(&typed, at, true)
        .iter()
        .map(|id| f.users[id].as_str())
        .collect();
    assert_eq!(reference, want, "reference: {segment} as of {as_of}");
    let persons = cli_count(&f.store, as_of, "persons", &src);
    assert_eq!(
        persons,
        want.len(),
        "audience count (persons): {segment} as of {as_of}"
    );
    let devices = want.iter().filter(|u| !DEVICELESS.contains(u)).count();
    let installations = cli_count(&f.store, as_of, "installations", &src);
    assert_eq!(
        (installations, f.reference.audience(&typed, at, false).len()),
        (devices, devices),
        "installations (audience count, reference): {segment} as of {as_of}"
    );
}

/// u1: AddToCart and Purchase at the same instant; u2: the Purchase 1 µs later; u6: two days
/// later. u3: one AppLaunch; u4: two, 40 minutes apart; u5: two, 2 hours apart.
#[test]
fn a_sequence_needs_distinct_events_strictly_in_order() {
    let at = "2026-10-20T00:00:00Z";
    check("seq", "did(AddToCart then Purchase)", at, &["u2", "u6"]);
    check("seq", "did(Purchase then AddToCart)", at, &[]);
    check("seq", "did(AddToCart then Purchase within 1s)", at, &["u2"]);
    check("seq", "did(AddToCart then Purchase within 1d)", at, &["u2"]);
    // A gap is inclusive: exactly two days.
    check(
        "seq",
        "did(AddToCart then Purchase within 2d)",
        at,
        &["u2", "u6"],
    );
    // One event is never two steps.
    check(
        "seq",
        "did(AppLaunch then AppLaunch within 1h)",
        at,
        &["u4"],
    );
    check("seq", "did(AppLaunch then AppLaunch)", at, &["u4", "u5"]);
    check(
        "seq",
        "did(AppLaunch then AppLaunch then AppLaunch)",
        at,
        &[],
    );
    check(
        "seq",
        "not did(AppLaunch then AppLaunch within 1h)",
        at,
        &["u1", "u2", "u3", "u5", "u6"],
    );
    // The outer window holds every step.
    check(
        "seq",
        "did(AddToCart then Purchase within 2d between 2026-10-05 and 2026-10-06)",
        at,
        &["u2"],
    );
    check(
        "seq",
        "did(AddToCart then Purchase within 2d since 2026-10-06)",
        at,
        &[],
    );
    check(
        "seq",
        "did(AddToCart then Purchase within 2d within 15d)",
        at,
        &["u2", "u6"],
    );
    // An event at the as-of is not yet seen.
    check(
        "seq",
        "did(AddToCart then Purchase)",
        "2026-10-05T10:00:00.000001Z",
        &[],
    );
    check(
        "seq",
        "did(AddToCart then Purchase)",
        "2026-10-05T10:00:00.000002Z",
        &["u2"],
    );
}

/// Each of u10–u13 put something in the cart on 2026-10-10 at 12:00; u11 bought exactly a day
/// later, u12 two days later, u13 at the same instant; u10 never.
#[test]
fn then_not_waits_for_its_gap_to_pass() {
    let s = "did(AddToCart then not Purchase within 1d)";
    check("absent", s, "2026-10-11T00:00:00Z", &[]);
    check("absent", s, "2026-10-11T11:59:59Z", &[]);
    // The day has passed; u11's purchase at the as-of is not seen yet.
    check(
        "absent",
        s,
        "2026-10-11T12:00:00Z",
        &["u10", "u11", "u12", "u13"],
    );
    // A purchase exactly at the gap's end is within it.
    check("absent", s, "2026-10-11T12:00:01Z", &["u10", "u12", "u13"]);
    check("absent", s, "2026-10-20T00:00:00Z", &["u10", "u12", "u13"]);
    check(
        "absent",
        &format!("not {s}"),
        "2026-10-11T00:00:00Z",
        &["u10", "u11", "u12", "u13"],
    );
    // Without a gap: no purchase after the cart, up to the as-of. u13's purchase at the same
    // instant does not follow it.
    let s = "did(AddToCart then not Purchase)";
    check(
        "absent",
        s,
        "2026-10-11T00:00:00Z",
        &["u10", "u11", "u12", "u13"],
    );
    check("absent", s, "2026-10-20T00:00:00Z", &["u10", "u13"]);
}

/// Weeks back from 2026-10-29: W1 = [10-22, 10-29), W2 = [10-15, 10-22), W3 = [10-08, 10-15).
/// Launches per (W1, W2, W3): u20 (1, 0, 0); u21 (1, 1, 0); u22 none at all; u23 (1, 1, 1), each
/// at a week's first instant; u24 (0, 0, 0), one launch just before W3 and one at the as-of.
#[test]
fn regularity_counts_empty_periods_as_zero() {
    let at = "2026-10-29T00:00:00Z";
    check(
        "regular",
        "count(AppLaunch) < 1 per week in 2 of the last 3 weeks",
        at,
        &["u20", "u22", "u24"],
    );
    check(
        "regular",
        "count(AppLaunch) = 0 per week in 3 of the last 3 weeks",
        at,
        &["u22", "u24"],
    );
    check(
        "regular",
        "count(AppLaunch) >= 1 per week in 3 of the last 3 weeks",
        at,
        &["u23"],
    );
    check(
        "regular",
        "count(AppLaunch) != 0 per week in 2 of the last 3 weeks",
        at,
        &["u21", "u23"],
    );
    check(
        "regular",
        "count(AppLaunch) <= 1 per week in 3 of the last 3 weeks",
        at,
        &["u20", "u21", "u22", "u23", "u24"],
    );
    check(
        "regular",
        "count(AppLaunch) > 0 per day in 1 of the last 7 days",
        at,
        &["u20", "u21", "u23"],
    );
    check(
        "regular",
        "installation.count(AppLaunch) = 0 per month in 1 of the last 1 month",
        at,
        &["u22"],
    );
    // A microsecond later u24's launch is seen and u23's first launch of W1 falls out of it.
    check(
        "regular",
        "count(AppLaunch) >= 1 per week in 1 of the last 1 week",
        at,
        &["u20", "u21", "u23"],
    );
    check(
        "regular",
        "count(AppLaunch) >= 1 per week in 1 of the last 1 week",
        "2026-10-29T00:00:00.000001Z",
        &["u20", "u21", "u24"],
    );
}

/// Birthdays: u30 2000-02-29, u31 2000-03-01, u32 2000-02-28, u33 1995-12-30, u34 1995-01-02,
/// u35 1995-01-05, u36 1995-12-27, u37 2026-12-30 (born this year), u38 none.
#[test]
fn birthdays_of_29_february_fall_on_1_march_in_other_years() {
    // 2027 is not a leap year.
    let b = "birthday within next 7d";
    check(
        "birthday",
        b,
        "2027-02-25T10:00:00Z",
        &["u30", "u31", "u32"],
    );
    check(
        "birthday",
        "birthday within next 2d",
        "2027-02-25T10:00:00Z",
        &[],
    );
    check(
        "birthday",
        "birthday within next 1d",
        "2027-02-28T00:00:00Z",
        &["u30", "u31", "u32"],
    );
    check(
        "birthday",
        "birthday within next 1h",
        "2027-02-28T12:00:00Z",
        &["u32"],
    );
    check(
        "birthday",
        "birthday within next 1h",
        "2027-03-01T08:00:00Z",
        &["u30", "u31"],
    );
    check(
        "birthday",
        "birthday within 1d",
        "2027-03-02T08:00:00Z",
        &["u30", "u31"],
    );
    // 2028 is.
    check(
        "birthday",
        "birthday within next 1d",
        "2028-02-28T00:00:00Z",
        &["u30", "u32"],
    );
    check(
        "birthday",
        "birthday within next 1h",
        "2028-02-29T08:00:00Z",
        &["u30"],
    );
    check(
        "birthday",
        "birthday within next 1h",
        "2028-03-01T08:00:00Z",
        &["u31"],
    );
    check(
        "birthday",
        "birthday within 1d",
        "2028-03-01T08:00:00Z",
        &["u30", "u31"],
    );
}

#[test]
fn birthday_windows_run_over_new_year() {
    let at = "2026-12-28T15:00:00Z";
    // [2026-12-28, 2027-01-04]; u37 was born on 2026-12-30, which is no anniversary yet.
    check("birthday", "birthday within next 7d", at, &["u33", "u34"]);
    check(
        "birthday",
        "not (birthday within next 7d)",
        at,
        &["u30", "u31", "u32", "u35", "u36", "u37", "u38"],
    );
    check(
        "birthday",
        "birthday within next 1mo",
        at,
        &["u33", "u34", "u35"],
    );
    // [2026-12-26, 2027-01-02]
    check(
        "birthday",
        "birthday within 7d",
        "2027-01-02T00:00:00Z",
        &["u33", "u34", "u36"],
    );
    // A year on, u37's first birthday.
    check(
        "birthday",
        "birthday within next 7d",
        "2027-12-28T15:00:00Z",
        &["u33", "u34", "u37"],
    );
}

/// u40 is first seen on 2026-10-20 at 10:00 (installed then, launched 5 s later); u41 has no
/// device. Attributes are the snapshot's, events those before the as-of.
#[test]
fn an_as_of_before_a_person_was_seen() {
    let at = "2026-10-15T00:00:00Z";
    check("existence", "not did(AppLaunch)", at, &["u40", "u41"]);
    check("existence", "installedAt within next 7d", at, &["u40"]);
    check("existence", "installedAt within next 5d", at, &[]);
    check("existence", "installedAt within next 5d10h", at, &["u40"]);
    check("existence", "person.createdAt within next 7d", at, &["u40"]);
    check(
        "existence",
        "count(AppLaunch) = 0 per day in 3 of the last 3 days",
        at,
        &["u40", "u41"],
    );
    // Without an installation the installation's counts are 0 and its sequences never happen.
    check(
        "existence",
        "installation.count(AppLaunch) = 0 per day in 3 of the last 3 days",
        at,
        &["u40", "u41"],
    );
    check(
        "existence",
        "installation.did(AppLaunch then not AppLaunch)",
        at,
        &[],
    );
    check("existence", "stopped(AppLaunch for 1d within 30d)", at, &[]);
    // The first anniversary is a year on.
    check(
        "existence",
        "anniversary of installedAt within next 7d",
        at,
        &[],
    );
    check(
        "existence",
        "anniversary of installedAt within next 1d",
        "2027-10-20T00:00:00Z",
        &["u40"],
    );
    let s = "did(Install then AppLaunch within 1m)";
    check("existence", s, "2026-10-20T10:00:05Z", &[]);
    check("existence", s, "2026-10-21T00:00:00Z", &["u40"]);
}

/// u50: two purchases at one instant, (5, "b") and (7, "a"); u51: (3, no category) and (4, "c")
/// at one instant; u52: one a day from 10-05, categories a, a, none, b; u53: one without a
/// category.
#[test]
fn first_and_last_properties_and_count_distinct() {
    let at = "2026-10-20T00:00:00Z";
    check(
        "values",
        "first(Purchase).category = \"a\"",
        at,
        &["u50", "u52"],
    );
    check(
        "values",
        "last(Purchase).category = \"b\"",
        at,
        &["u50", "u52"],
    );
    check("values", "first(Purchase).category = \"c\"", at, &["u51"]);
    check("values", "last(Purchase).category = \"c\"", at, &["u51"]);
    check("values", "first(Purchase).amount = 5", at, &["u50"]);
    check("values", "last(Purchase).amount = 7", at, &["u50"]);
    check("values", "first(Purchase).amount = 3", at, &["u51"]);
    check("values", "last(Purchase).amount = 4", at, &["u51"]);
    check(
        "values",
        "last(Purchase).category is set",
        at,
        &["u50", "u51", "u52"],
    );
    check(
        "values",
        "not (last(Purchase).category = \"b\")",
        at,
        &["u51", "u53"],
    );
    check(
        "values",
        "last(Purchase within 14d).category = \"b\"",
        at,
        &["u52"],
    );
    check(
        "values",
        "first(Purchase since 2026-10-06).category = \"a\"",
        at,
        &["u52"],
    );
    // The first purchase since 10-07 has no category.
    check(
        "values",
        "first(Purchase since 2026-10-07).category is set",
        at,
        &[],
    );
    check(
        "values",
        "count distinct(Purchase.category) = 2",
        at,
        &["u50", "u52"],
    );
    check(
        "values",
        "count distinct(Purchase.category) = 1",
        at,
        &["u51"],
    );
    check(
        "values",
        "count distinct(Purchase.category) = 0",
        at,
        &["u53"],
    );
}

/// A trend's points share one plan for `first(E).p`, `last(E).p` and `count distinct` (one
/// column a point): each
/// point equals the reference at that as-of, ties at one instant included (u50, u51), for both
/// targets, on days before, at and after the values change (u52 buys one a day from 10-05).
#[test]
fn values_and_distinct_counts_at_each_point_of_a_trend() {
    let f = fixture();
    let segments = [
        "first(Purchase).category = \"a\"",
        "last(Purchase).category = \"b\" or last(Purchase).amount = 4",
        "last(Purchase within 2d).category = \"a\"",
        "first(Purchase since 2026-10-06).category is set",
        "not (last(Purchase).category = \"b\")",
        "count distinct(Purchase.category) = 2",
        "count distinct(Purchase.category within 3d) = 1",
    ];
    for segment in segments {
        let src = format!("custom.fixture = \"values\" and ({segment})");
        let typed = compile(&src, &f.catalog, &NoSavedSegments).unwrap();
        for (target, persons) in [("persons", true), ("installations", false)] {
            let out = audience()
                .args(["trend", "--store", f.store.to_str().unwrap()])
                .args([
                    "--from",
                    "2026-10-04",
                    "--to",
                    "2026-10-10",
                    "--format",
                    "csv",
                ])
                .args(["--target", target, &src])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{segment}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let points: Vec<(String, usize)> = text
                .lines()
                .skip(1)
                .map(|l| {
                    let mut cols = l.split(',');
                    let at = cols.next().unwrap().to_string();
                    (at, cols.next().unwrap().parse().unwrap())
                })
                .collect();
            assert_eq!(points.len(), 7, "{segment}: {text}");
            let mut changes = BTreeSet::new();
            for (at, n) in &points {
                let micros = chrono::DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .timestamp_micros();
                let want = f.reference.audience(&typed, micros, persons).len();
                assert_eq!(*n, want, "{segment} ({target}) at {at}");
                changes.insert(*n);
            }
            assert!(
                changes.len() > 1,
                "{segment} ({target}): the same count at every point tests little"
            );
        }
    }
}
