//! Cluster parity, systematically: the segments the reference-evaluator property test generates
//! (every construct and their combinations) run on an in-process Ballista cluster, both targets,
//! and must return exactly the local audience, member by member. The cluster forces its shuffle
//! reads remote (`exec::session`), so data crosses Arrow Flight as between real nodes. Cases:
//! PROPTEST_CASES (default 200); AUDIENCE_PRINT_CASES=1 prints each case before it runs (a case
//! the cluster does not finish in 60 s fails, naming the segment).
#![cfg(feature = "cluster")]

mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::exec::{open_session, run, Cluster, SessionOptions};
use audience::plan::{plan_segment, PlanOptions, TableSources, Target};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::collections::BTreeSet;

async fn audience_of(
    ctx: &SessionContext,
    sources: &TableSources,
    typed: &audience::check::typed::TypedSegment,
    as_of: chrono::DateTime<chrono::Utc>,
    target: Target,
) -> Result<BTreeSet<i64>, String> {
    let plan = plan_segment(typed, sources, &PlanOptions::keys(as_of, target))
        .map_err(|e| e.to_string())?;
    let mut stream = run::stream(ctx, plan).await.map_err(|e| e.to_string())?;
    let mut ids = BTreeSet::new();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| e.to_string())?;
        ids.extend(
            b.column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    Ok(ids)
}

#[test]
fn generated_segments_on_a_cluster_equal_local_audiences() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .unwrap();
    let store = common::shared_store();
    let (snapshot, local, local_sources, cluster, cluster_sources) = rt.block_on(async {
        let (snapshot, local, local_sources) = common::open(store).await;
        let opts = SessionOptions {
            threads: Some(2),
            cluster: Cluster::Standalone,
            ..SessionOptions::default()
        };
        let cluster = open_session(&snapshot, &opts).await.unwrap();
        let mut cluster_sources = TableSources::from_session(&cluster, &snapshot.manifest)
            .await
            .unwrap();
        cluster_sources.on_cluster = true;
        (snapshot, local, local_sources, cluster, cluster_sources)
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let as_ofs = [
        snapshot.manifest.as_of,
        snapshot.manifest.as_of - chrono::Duration::hours(30),
    ];
    runner
        .run(
            &(common::segments::segment(), 0usize..2, any::<bool>()),
            |(src, k, persons)| {
                let typed = compile(&src, &Catalog::sample(), &NoSavedSegments)
                    .map_err(|d| TestCaseError::fail(format!("{src}: {d}")))?;
                let target = if persons {
                    Target::Persons
                } else {
                    Target::Installations
                };
                let as_of = as_ofs[k];
                let want = rt
                    .block_on(audience_of(&local, &local_sources, &typed, as_of, target))
                    .map_err(TestCaseError::fail)?;
                if std::env::var_os("AUDIENCE_PRINT_CASES").is_some() {
                    eprintln!("case: {src} ({target:?}, as of {as_of})");
                }
                // A plan the cluster never finishes fails the case instead of hanging CI.
                let got = rt
                    .block_on(async {
                        let run = audience_of(&cluster, &cluster_sources, &typed, as_of, target);
                        tokio::time::timeout(std::time::Duration::from_secs(60), run)
                            .await
                            .unwrap_or_else(|_| Err("did not finish in 60 s".into()))
                    })
                    .map_err(|e| TestCaseError::fail(format!("{src} ({target:?}): {e}")))?;
                prop_assert_eq!(&got, &want, "{} ({:?}, as of {})", src, target, as_of);
                Ok(())
            },
        )
        .unwrap();
}

/// Persons plans that OR an installation attribute with an event aggregate over a range without
/// events never finished on Ballista 55; such counts are now 0 without a scan.
#[test]
fn aggregates_over_ranges_without_events_finish_on_a_cluster() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .unwrap();
    let (snapshot, local, local_sources) = rt.block_on(common::open(common::shared_store()));
    let (cluster, cluster_sources) = rt.block_on(async {
        let opts = SessionOptions {
            threads: Some(2),
            cluster: Cluster::Standalone,
            ..SessionOptions::default()
        };
        let cluster = open_session(&snapshot, &opts).await.unwrap();
        let mut sources = TableSources::from_session(&cluster, &snapshot.manifest)
            .await
            .unwrap();
        sources.on_cluster = true;
        (cluster, sources)
    });
    let as_of = snapshot.manifest.as_of - chrono::Duration::hours(30);
    let before_history = snapshot.manifest.history_start - chrono::Duration::days(30);
    let day = before_history.date_naive();
    for src in [
        format!("platform ends with \"pe\" or did(Purchase between 2020-01-01 and {day})"),
        format!("platform ends with \"pe\" or first(Purchase) before {day}"),
        "not deviceSecure or installation.count(AppLaunch since 2020-01-01) > 0".to_string(),
    ] {
        let typed = compile(&src, &Catalog::sample(), &NoSavedSegments).unwrap();
        for target in [Target::Persons, Target::Installations] {
            let want = rt
                .block_on(audience_of(&local, &local_sources, &typed, as_of, target))
                .unwrap();
            let got = rt.block_on(async {
                let run = audience_of(&cluster, &cluster_sources, &typed, as_of, target);
                tokio::time::timeout(std::time::Duration::from_secs(60), run).await
            });
            let got = got.unwrap_or_else(|_| panic!("{src} ({target:?}): no answer in 60 s"));
            assert_eq!(got.unwrap(), want, "{src} ({target:?})");
        }
    }
}
