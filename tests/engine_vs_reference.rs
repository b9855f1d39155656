//! Property test: for generated segments (all operators, windows, aggregates, not/or nesting,
//! missing values; sequences, `then not`, regularity, stopped/restarted, count distinct,
//! first/last properties, anniversaries), DataFusion returns exactly the reference evaluator's
//! audience, for both targets and several as-of times. Cases: PROPTEST_CASES (default 200).

mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::exec::run;
use audience::plan::{plan_segment, PlanOptions, TableSources, Target};
use common::reference::Reference;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::collections::BTreeSet;

async fn engine(
    ctx: &SessionContext,
    sources: &TableSources,
    typed: &audience::check::typed::TypedSegment,
    as_of: chrono::DateTime<chrono::Utc>,
    target: Target,
) -> BTreeSet<i64> {
    let plan = plan_segment(typed, sources, &PlanOptions::keys(as_of, target)).unwrap();
    let mut stream = run::stream(ctx, plan).await.unwrap();
    let mut ids = BTreeSet::new();
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        ids.extend(
            b.column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    ids
}

/// `cases` segments of `segments`, each at one of three as-of times, for both targets: the
/// engine's audience is the reference evaluator's. At least a third of the audiences must be
/// neither empty nor everyone, so that the comparison was about something.
fn matches_reference(segments: impl Strategy<Value = String>, cases: u32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (snapshot, ctx, sources, reference) = rt.block_on(async {
        let (snapshot, ctx, sources) = common::open(common::shared_store()).await;
        let reference = Reference::load(&ctx, &snapshot.manifest.catalog).await;
        (snapshot, ctx, sources, reference)
    });
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let as_ofs = [
        snapshot.manifest.as_of,
        snapshot.manifest.as_of - chrono::Duration::days(9),
        snapshot.manifest.as_of - chrono::Duration::hours(30),
    ];
    let non_trivial = std::cell::Cell::new(0usize);
    let checked = std::cell::Cell::new(0usize);
    runner
        .run(&(segments, 0usize..3), |(src, k)| {
            let typed = compile(&src, &Catalog::sample(), &NoSavedSegments)
                .map_err(|d| TestCaseError::fail(format!("{src}: {d}")))?;
            let as_of = as_ofs[k];
            for (target, persons) in [(Target::Installations, false), (Target::Persons, true)] {
                let got = rt.block_on(engine(&ctx, &sources, &typed, as_of, target));
                let want = reference.audience(&typed, as_of.timestamp_micros(), persons);
                prop_assert_eq!(
                    &got,
                    &want,
                    "{} ({:?}, as of {}): resolved as {}",
                    src,
                    target,
                    as_of,
                    typed.root
                );
                checked.set(checked.get() + 1);
                let everyone = if persons {
                    reference.persons.len()
                } else {
                    reference.installations.len()
                };
                if !want.is_empty() && want.len() < everyone {
                    non_trivial.set(non_trivial.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let (non_trivial, checked) = (non_trivial.get(), checked.get());
    assert!(
        non_trivial * 3 >= checked,
        "only {non_trivial} of {checked} audiences were non-trivial"
    );
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200)
}

#[test]
fn engine_matches_reference_evaluator() {
    matches_reference(common::segments::segment(), cases());
}

/// The second edition's constructs alone (sequences, `then not`, regularity, stopped/restarted,
/// count distinct, first/last properties, anniversaries, `within next`), so that each one's
/// audience is compared unmixed: half as many cases as PROPTEST_CASES.
#[test]
fn patterns_alone_match_reference_evaluator() {
    matches_reference(common::segments::pattern(), cases().div_ceil(2));
}

/// The time tests the planner answers with a windowed `did` (`last(E) within/after`,
/// `first(E) before`) or with the summary's first times (`last(E) before`, `first(E)`, `did(E)`),
/// at day and instant boundaries where an off-by-one would show: every day of a fortnight before
/// the as-of, at as-of times the summary's windows cannot answer.
#[test]
fn first_and_last_time_tests_match_the_reference_at_their_boundaries() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (snapshot, ctx, sources, reference) = rt.block_on(async {
        let (snapshot, ctx, sources) = common::open(common::shared_store()).await;
        let reference = Reference::load(&ctx, &snapshot.manifest.catalog).await;
        (snapshot, ctx, sources, reference)
    });
    let as_of = snapshot.manifest.as_of - chrono::Duration::hours(30);
    let mut non_trivial = 0;
    for back in 1..=14 {
        let day = (as_of - chrono::Duration::days(back)).date_naive();
        let instant = (as_of - chrono::Duration::days(back)).to_rfc3339();
        for src in [
            format!("last(AppLaunch) after {day}"),
            format!("last(AppLaunch) after {instant}"),
            format!("last(AppLaunch) within {back}d"),
            format!("installation.last(AppLaunch) within {back}d"),
            format!("first(AppLaunch) before {day}"),
            format!("first(AppLaunch within 20d) before {back}d ago"),
            format!("last(Purchase where amount > 50 since 30d ago) after {day}"),
            // Answered by the summary's first times and the events from the bound on.
            format!("last(AppLaunch) before {day}"),
            format!("last(AppLaunch) before {instant}"),
            format!("last(AppLaunch) before {back}d ago"),
            format!("not last(Purchase) before {back}d ago"),
            format!("first(AppLaunch) within {back}d"),
            format!("first(Purchase) after {day}"),
            format!("did(Purchase) and not did(AddToCart within {back}d)"),
            format!("not did(AddToCart) or count(Purchase) = {}", back % 2),
        ] {
            let typed = compile(&src, &Catalog::sample(), &NoSavedSegments)
                .unwrap_or_else(|d| panic!("{src}: {d}"));
            for (target, persons) in [(Target::Installations, false), (Target::Persons, true)] {
                let got = rt.block_on(engine(&ctx, &sources, &typed, as_of, target));
                let want = reference.audience(&typed, as_of.timestamp_micros(), persons);
                assert_eq!(got, want, "{src} ({target:?}, as of {as_of})");
                non_trivial += usize::from(!want.is_empty());
            }
        }
    }
    assert!(non_trivial > 150, "only {non_trivial} non-empty audiences");
}
