//! Fuzzing the whole pipeline, not only the parser: generated and mutated segments go through
//! parse → check → plan (both targets, ordinary and extreme as-of times) → execute on the
//! committed sample, and no stage may panic. Inputs are grammar-shaped segments with extreme
//! literals (durations of millennia, dates at the ends of the calendar, huge and tiny numbers,
//! deep nesting), byte-level mutations of the corpus, and random text.
//!
//! CI runs a short pass of each test. Long runs: `FUZZ_INPUTS=1000000 FUZZ_PARSE_INPUTS=10000000
//! cargo test --all-features --test pipeline_fuzz -- --nocapture` (FUZZ_EXECUTE_EVERY sets how
//! many inputs go per execution; FUZZ_SEED the seed).

mod common;

use audience::catalog::Catalog;
use audience::check::{check, SegmentDir};
use audience::exec::run;
use audience::plan::{plan_segment, PlanOptions, Target};
use chrono::{DateTime, Utc};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// A small deterministic generator (xorshift64*), so a failing input can be reproduced from
/// the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIELDS: &[&str] = &[
    "platform",
    "state",
    "osVersion",
    "appVersion",
    "age",
    "randomBucket",
    "tags",
    "emails",
    "phones",
    "birthDate",
    "installedAt",
    "lastSeenAt",
    "person.createdAt",
    "primaryDevice",
    "pushRegistrationEnabled",
    "person.country",
    "custom.theme",
    "custom.loyaltyPoints",
    "person.custom.favoriteTeam",
    "custom.lastPurchaseDate",
    "custom.pushOptInDate",
    "deviceModel",
    "firstName",
    "identified",
    "custom.newsletter",
    "unknownThing",
];
const EVENTS: &[&str] = &[
    "AppLaunch",
    "Purchase",
    "AddToCart",
    "ViewProduct",
    "Install",
    "Uninstall",
    "Personalize",
    "Depersonalize",
    "Nope",
];
const FUNCS: &[&str] = &["count", "did", "sum", "avg", "min", "max", "first", "last"];
const OPS: &[&str] = &[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "between",
    "is set",
    "is not set",
    "contains",
    "starts with",
    "ends with",
    "matches",
    "has",
    "has any",
    "has all",
    "within",
    "before",
    "after",
];

fn literal(r: &mut Rng) -> String {
    match r.below(16) {
        0 => format!("{}d", r.next() % 200_000_000),
        1 => format!("{}w{}h", r.next() % 20_000_000, r.next() % 100),
        2 => format!("{}s ago", r.next() % (1 << 62)),
        3 => format!(
            "{:04}-{:02}-{:02}",
            r.below(10_000),
            1 + r.below(12),
            1 + r.below(28)
        ),
        4 => r
            .pick(&[
                "0000-01-01",
                "9999-12-31",
                "1970-01-01",
                "2026-02-29",
                "2024-02-29",
            ])
            .into(),
        5 => format!("{:04}-06-15T23:59:59Z", r.below(10_000)),
        6 => r
            .pick(&[
                "1e308",
                "-1e308",
                "0.000000001",
                "-0",
                "9223372036854775807",
                "1.5",
            ])
            .into(),
        7 => format!("{}", r.next() as i64),
        8 => format!(
            "\"{}\"",
            r.pick(&[
                "iOS",
                "",
                "17.2",
                "99999.99999.9",
                "(",
                "\\u{1F600}",
                "a\\\"b"
            ])
        ),
        9 => r.pick(&["true", "false"]).into(),
        10 => format!("\"{}\"", "x".repeat(r.below(300))),
        11 => format!("({}, {})", literal(r), literal(r)),
        12 => format!("{} and {}", literal(r), literal(r)),
        13 => format!("{}m", r.next() % 1_000_000_000_000),
        14 => format!("{}.{}.{}", r.below(70_000), r.below(70_000), r.below(10)),
        _ => format!("{}", r.below(10_000)),
    }
}

fn window(r: &mut Rng) -> String {
    match r.below(5) {
        0 => String::new(),
        1 => format!(" within {}", literal(r)),
        2 => format!(" since {}", literal(r)),
        3 => format!(" between {} and {}", literal(r), literal(r)),
        _ => format!(" within {}d", r.below(4000)),
    }
}

fn atom(r: &mut Rng) -> String {
    match r.below(4) {
        0 => {
            let f = r.pick(FUNCS);
            let e = r.pick(EVENTS);
            let prop = if r.below(3) == 0 { ".amount" } else { "" };
            let filter = match r.below(4) {
                0 => format!(" where {}", atom(r)),
                1 => " where amount > 5".into(),
                _ => String::new(),
            };
            let scope = if r.below(4) == 0 { "installation." } else { "" };
            let call = format!("{scope}{f}({e}{prop}{filter}{})", window(r));
            if f == "did" {
                call
            } else {
                format!("{call} {} {}", r.pick(OPS), literal(r))
            }
        }
        1 => r.pick(FIELDS).to_string(),
        2 => format!("segment(\"{}\")", r.pick(&["buyers", "nope", "../x"])),
        _ => format!("{} {} {}", r.pick(FIELDS), r.pick(OPS), literal(r)),
    }
}

fn segment(r: &mut Rng, depth: usize) -> String {
    if depth == 0 || r.below(3) == 0 {
        return atom(r);
    }
    match r.below(4) {
        0 => format!("{} and {}", segment(r, depth - 1), segment(r, depth - 1)),
        1 => format!("{} or {}", segment(r, depth - 1), segment(r, depth - 1)),
        2 => format!("not ({})", segment(r, depth - 1)),
        _ => format!("({})", segment(r, depth - 1)),
    }
}

/// A byte-level mutation of `seed`, kept valid UTF-8.
fn mutate(r: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..1 + r.below(4) {
        let at = r.below(chars.len() + 1);
        let noise = [
            '(', ')', '"', '`', '.', ',', '-', ' ', '9', 'd', 'é', '\n', '#', '\\', '0',
        ];
        match r.below(3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = noise[r.below(noise.len())],
            _ => chars.insert(at, noise[r.below(noise.len())]),
        }
    }
    chars.into_iter().collect()
}

fn random_text(r: &mut Rng) -> String {
    let len = r.below(60);
    (0..len)
        .map(|_| {
            let c = (r.next() % 0x250) as u32;
            char::from_u32(c).unwrap_or('?')
        })
        .collect()
}

fn corpus(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "tests/segments/valid",
        "tests/segments/errors",
        "benches/segments",
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "seg") {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    out
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn no_stage_of_the_pipeline_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inputs = env("FUZZ_INPUTS", 10_000);
    let execute_every = env("FUZZ_EXECUTE_EVERY", 100).max(1);
    let mut r = Rng(env("FUZZ_SEED", 0x5eed_1234_abcd).max(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (snapshot, ctx, sources) = rt.block_on(common::open(&root.join("data/sample")));
    let catalog = Catalog::sample();
    let saved = SegmentDir(root.join("tests/segments/saved"));
    let seeds = corpus(root);
    let as_ofs: Vec<DateTime<Utc>> = vec![
        snapshot.manifest.as_of,
        snapshot.manifest.as_of - chrono::Duration::days(45),
        "0001-01-01T00:00:00Z".parse().unwrap(),
        "9999-12-31T23:59:59Z".parse().unwrap(),
        "1970-01-01T00:00:00Z".parse().unwrap(),
    ];
    // Valid segments of every construct (the property tests' generator), to reach the planner
    // and the engine often; the rest exercise the front end's error paths.
    let mut valid = proptest::test_runner::TestRunner::deterministic();
    let valid_segments = common::segments::segment();
    let (mut parsed, mut checked, mut planned, mut executed) = (0u64, 0u64, 0u64, 0u64);
    let started = std::time::Instant::now();
    for i in 0..inputs {
        let src = match r.below(10) {
            0..=2 => {
                use proptest::strategy::{Strategy, ValueTree};
                let mut text = valid_segments.new_tree(&mut valid).unwrap().current();
                if r.below(3) == 0 {
                    text = format!("{text} and {}", atom(&mut r));
                }
                text
            }
            3..=4 => segment(&mut r, 4),
            5..=8 => {
                let seed = &seeds[r.below(seeds.len())];
                mutate(&mut r, seed)
            }
            _ => random_text(&mut r),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let Ok(seg) = audience::syntax::parse(&src) else {
                return (false, false, false, false);
            };
            let _ = seg.to_string();
            let Ok(typed) = check(&seg, &catalog, &saved) else {
                return (true, false, false, false);
            };
            let _ = typed.root.to_string();
            let as_of = as_ofs[r.below(as_ofs.len())];
            let target = if r.below(2) == 0 {
                Target::Installations
            } else {
                Target::Persons
            };
            let Ok(plan) = plan_segment(&typed, &sources, &PlanOptions::keys(as_of, target)) else {
                return (true, true, false, false);
            };
            let execute = (i % execute_every) == 0;
            if execute {
                // Errors are fine (a resource limit, a regex the engine rejects); panics are not.
                let _ = rt.block_on(run::count_rows(&ctx, plan));
            }
            (true, true, true, execute)
        }));
        match outcome {
            Ok((p, c, pl, e)) => {
                parsed += p as u64;
                checked += c as u64;
                planned += pl as u64;
                executed += e as u64;
            }
            Err(_) => panic!("input #{i} panicked: {src:?}"),
        }
    }
    eprintln!(
        "pipeline fuzz: {inputs} inputs in {:.1}s: {parsed} parsed, {checked} checked, \
         {planned} planned, {executed} executed, 0 panics",
        started.elapsed().as_secs_f64()
    );
    // The generator must reach every stage, or the pass proves little.
    assert!(checked * 10 >= inputs, "only {checked} of {inputs} checked");
    assert!(planned * 20 >= inputs, "only {planned} of {inputs} planned");
    assert!(executed > 0);
}

/// The front end alone, at volume: parse, print canonically, and parse the canonical form
/// again, which must give the same text.
#[test]
fn the_parser_never_panics_and_its_canonical_form_round_trips() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inputs = env("FUZZ_PARSE_INPUTS", 100_000);
    let mut r = Rng(env("FUZZ_SEED", 0x5eed_1234_abcd).max(1) ^ 0xa5a5);
    let seeds = corpus(root);
    let started = std::time::Instant::now();
    let mut parsed = 0u64;
    for i in 0..inputs {
        let src = match r.below(3) {
            0 => segment(&mut r, 5),
            1 => {
                let seed = &seeds[r.below(seeds.len())];
                mutate(&mut r, seed)
            }
            _ => random_text(&mut r),
        };
        let outcome = catch_unwind(|| match audience::syntax::parse(&src) {
            Ok(seg) => {
                let canonical = seg.to_string();
                let again = audience::syntax::parse(&canonical)
                    .unwrap_or_else(|d| panic!("canonical form does not parse: {d}"));
                assert_eq!(again.to_string(), canonical, "canonical form is not stable");
                true
            }
            Err(_) => false,
        });
        match outcome {
            Ok(ok) => parsed += ok as u64,
            Err(_) => panic!("input #{i} panicked: {src:?}"),
        }
    }
    eprintln!(
        "parser fuzz: {inputs} inputs in {:.1}s: {parsed} parsed, 0 panics",
        started.elapsed().as_secs_f64()
    );
    assert!(parsed > 0);
}
