//! Cluster parity, systematically: the segments the reference-evaluator property test generates
//! (every construct and their combinations) run on an in-process Ballista cluster, both targets,
//! and must return exactly the local audience, member by member. The cluster forces its shuffle
//! reads remote (`exec::session`), so data crosses Arrow Flight as between real nodes. Cases:
//! PROPTEST_CASES (default 200).
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
        let cluster_sources = TableSources::from_session(&cluster, &snapshot.manifest)
            .await
            .unwrap();
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
                let got = rt
                    .block_on(audience_of(
                        &cluster,
                        &cluster_sources,
                        &typed,
                        as_of,
                        target,
                    ))
                    .map_err(|e| TestCaseError::fail(format!("{src} ({target:?}): {e}")))?;
                prop_assert_eq!(&got, &want, "{} ({:?}, as of {})", src, target, as_of);
                Ok(())
            },
        )
        .unwrap();
}
