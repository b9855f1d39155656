//! The same plans on Apache DataFusion Ballista: every valid corpus case returns exactly the
//! local audience (the keys, not just their number) on a standalone cluster (scheduler and
//! executor in this process), for both targets and two as-of times; and a cluster that cannot
//! see the snapshot's files is an error, never an empty audience. One shared plan for the whole
//! corpus (an export job's) gives each case the same audience as its own plan.
#![cfg(feature = "cluster")]

mod common;

use arrow::array::{Array, AsArray};
use audience::catalog::Catalog;
use audience::check::{compile, SegmentDir};
use audience::exec::cluster::{check_cluster_sees, scanned_tables};
use audience::exec::{open_session, run, Cluster, SessionOptions};
use audience::plan::{plan_segment, plan_segments, PlanOptions, TableSources, Target};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::path::Path;

/// How long one case may take on the in-process cluster before it counts as a hang.
const CASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The plan's single key column, sorted.
async fn keys(ctx: &SessionContext, plan: LogicalPlan) -> Vec<String> {
    let mut stream = run::stream(ctx, plan).await.unwrap();
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        let col = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let col = col.as_string::<i32>();
        for i in 0..col.len() {
            out.push(col.value(i).to_string());
        }
    }
    out.sort();
    out
}

async fn standalone(store: &Path) -> (audience::store::Snapshot, SessionContext, TableSources) {
    let snapshot = audience::store::Store::open(store)
        .unwrap()
        .snapshot(None)
        .unwrap();
    let opts = SessionOptions {
        threads: Some(2),
        cluster: Cluster::Standalone,
        ..SessionOptions::default()
    };
    let ctx = open_session(&snapshot, &opts).await.unwrap();
    let m = &snapshot.manifest;
    let mut sources = TableSources::from_session(&ctx, m).await.unwrap();
    sources.on_cluster = true;
    (snapshot, ctx, sources)
}

/// The valid corpus cases, sorted, and the saved segments they may reference.
fn corpus(root: &Path) -> (Vec<std::path::PathBuf>, SegmentDir) {
    let mut cases: Vec<_> = std::fs::read_dir(root.join("tests/segments/valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    (cases, SegmentDir(root.join("tests/segments/saved")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_audiences_on_a_standalone_cluster_equal_local_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("data/sample");
    let (snapshot, local, local_sources) = common::open(&sample).await;
    let (_, cluster, cluster_sources) = standalone(&sample).await;
    let (cases, saved) = corpus(root);
    assert!(cases.len() >= 20, "the corpus went missing");
    let month_earlier = snapshot.manifest.as_of - chrono::Duration::days(30);
    let all_tables = [
        "persons",
        "installations",
        "event_applaunch",
        "event_purchase",
    ];
    check_cluster_sees(
        &cluster,
        &snapshot,
        &Cluster::Standalone,
        &all_tables.iter().map(|t| t.to_string()).collect(),
    )
    .await
    .expect("the in-process cluster sees the whole sample");
    let mut compared = 0;
    let mut nonempty = 0;
    for path in &cases {
        let src = std::fs::read_to_string(path).unwrap();
        let typed = compile(&src, &Catalog::sample(), &saved).unwrap();
        for as_of in [snapshot.manifest.as_of, month_earlier] {
            for target in [Target::Installations, Target::Persons] {
                let opts = PlanOptions::keys(as_of, target);
                let want = keys(&local, plan_segment(&typed, &local_sources, &opts).unwrap()).await;
                let plan = plan_segment(&typed, &cluster_sources, &opts).unwrap();
                // A plan the cluster never finishes fails its case instead of hanging CI.
                let got = tokio::time::timeout(CASE_LIMIT, keys(&cluster, plan))
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "{} ({target:?}, as of {as_of}): the cluster did not finish in {CASE_LIMIT:?}",
                            path.display()
                        )
                    });
                assert_eq!(
                    got.len(),
                    want.len(),
                    "{} ({target:?}, as of {as_of}): cluster and local audience sizes differ",
                    path.display()
                );
                assert!(
                    got == want,
                    "{} ({target:?}, as of {as_of}): same size, different members",
                    path.display()
                );
                compared += 1;
                nonempty += usize::from(!want.is_empty());
            }
        }
    }
    assert_eq!(compared, cases.len() * 4);
    assert!(
        nonempty > compared / 2,
        "too few non-empty audiences to mean anything"
    );
}

/// The keys of each segment in a [`plan_segments`] result (key column, then one flag per
/// segment), sorted.
async fn flagged_keys(ctx: &SessionContext, plan: LogicalPlan, n: usize) -> Vec<Vec<String>> {
    let mut stream = run::stream(ctx, plan).await.unwrap();
    let mut out = vec![Vec::new(); n];
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        let col = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let col = col.as_string::<i32>();
        for (k, keys) in out.iter_mut().enumerate() {
            let flags = batch.column(1 + k).as_boolean();
            keys.extend(
                (0..col.len())
                    .filter(|&i| flags.is_valid(i) && flags.value(i))
                    .map(|i| col.value(i).to_string()),
            );
        }
    }
    out.iter_mut().for_each(|keys| keys.sort());
    out
}

/// A case of the language's first edition (`NN_…` below 30).
fn first_edition(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.get(..2))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n < 30)
}

/// An export job's shared plan: every valid corpus case at once, one flag column each, gives
/// each case exactly the audience its own plan gives, locally and (installations target) on the
/// cluster. A persons job is not sent to a cluster as one plan: Ballista 55 never finishes the
/// persons plan once it holds an installation-scoped aggregate (corpus case 18), so the CLI runs
/// such jobs one segment at a time there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shared_plan_for_the_whole_corpus_equals_each_case_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("data/sample");
    let (snapshot, local, local_sources) = common::open(&sample).await;
    let (_, cluster, cluster_sources) = standalone(&sample).await;
    let (cases, saved) = corpus(root);
    let typed: Vec<_> = cases
        .iter()
        .map(|p| {
            compile(
                &std::fs::read_to_string(p).unwrap(),
                &Catalog::sample(),
                &saved,
            )
            .unwrap()
        })
        .collect();
    let segments: Vec<_> = typed.iter().collect();
    for target in [Target::Installations, Target::Persons] {
        let opts = PlanOptions::keys(snapshot.manifest.as_of, target);
        let shared = plan_segments(&segments, &local_sources, &opts).unwrap();
        let got = flagged_keys(&local, shared, typed.len()).await;
        if target == Target::Installations {
            // The first edition's cases only (01–29): with every second-edition case too, the
            // shared plan nests more joins than Ballista 55's plan decoder accepts (prost's
            // recursion limit of 100); each of those cases is compared on the cluster alone.
            let first: Vec<_> = cases
                .iter()
                .zip(&typed)
                .filter(|(p, _)| first_edition(p))
                .map(|(_, t)| t)
                .collect();
            let shared = plan_segments(&first, &cluster_sources, &opts).unwrap();
            let local_first = plan_segments(&first, &local_sources, &opts).unwrap();
            let got = flagged_keys(&local, local_first, first.len()).await;
            let on_cluster = flagged_keys(&cluster, shared, first.len()).await;
            assert!(on_cluster == got, "the shared plan differs on the cluster");
        }
        let mut nonempty = 0;
        for ((path, t), got) in cases.iter().zip(&typed).zip(&got) {
            let want = keys(&local, plan_segment(t, &local_sources, &opts).unwrap()).await;
            assert!(
                *got == want,
                "{} ({target:?}): shared plan {} keys, alone {}",
                path.display(),
                got.len(),
                want.len()
            );
            nonempty += usize::from(!want.is_empty());
        }
        assert!(nonempty > typed.len() / 2, "too few non-empty audiences");
    }
}

/// Ballista 55 looped forever on a left or anti join whose optional side was empty at run time
/// (not at plan time): an aggregate, a sequence or a `then not` step that nothing matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_with_a_side_empty_at_run_time_finish_on_a_cluster() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("data/sample");
    let (snapshot, local, local_sources) = common::open(&sample).await;
    let (_, cluster, cluster_sources) = standalone(&sample).await;
    let as_of = snapshot.manifest.as_of;
    let segments = [
        "did(ViewProduct within 30d) or did(Purchase where amount > 1000000)",
        "count(AppLaunch within 7d) >= 1 or count(Purchase where amount > 1000000 within 90d) >= 2",
        "did(ViewProduct then Purchase within 30d) or did(Install then Purchase where amount > 1000000)",
        "did(AddToCart then not Purchase where amount > 1000000 within 1d)",
        "installation.did(AddToCart then not Purchase where amount > 1000000)",
    ];
    for src in segments {
        let typed = compile(src, &Catalog::sample(), &audience::check::NoSavedSegments).unwrap();
        for target in [Target::Installations, Target::Persons] {
            let opts = PlanOptions::keys(as_of, target);
            let want = keys(&local, plan_segment(&typed, &local_sources, &opts).unwrap()).await;
            assert!(
                !want.is_empty(),
                "{src} ({target:?}): the case means nothing"
            );
            let plan = plan_segment(&typed, &cluster_sources, &opts).unwrap();
            let got = tokio::time::timeout(CASE_LIMIT, keys(&cluster, plan))
                .await
                .unwrap_or_else(|_| panic!("{src} ({target:?}): the cluster did not finish"));
            assert!(
                got == want,
                "{src} ({target:?}): {} keys, local {}",
                got.len(),
                want.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_cannot_see_the_events_is_an_error_not_an_empty_audience() {
    let (_tmp, store) = common::copy_store(common::shared_store());
    let (snapshot, ctx, sources) = standalone(&store).await;
    // Installation scope: no summary or day count answers it, so the events are scanned.
    let typed = compile(
        "installation.count(AppLaunch within 14d) >= 1",
        &snapshot.manifest.catalog,
        &audience::check::NoSavedSegments,
    )
    .unwrap();
    let opts = PlanOptions::keys(snapshot.manifest.as_of, Target::Installations);
    let plan = plan_segment(&typed, &sources, &opts).unwrap();
    let tables = scanned_tables(&plan);
    assert!(tables.contains("event_applaunch"), "{tables:?}");

    // Hide the AppLaunch history from the cluster (as on a node without the shared store).
    // Before any query: the scheduler caches what it listed.
    let root = snapshot.path(&snapshot.manifest.event_roots[0]);
    let dir = root.join("event=AppLaunch");
    std::fs::rename(&dir, root.join("hidden")).unwrap();
    let err = check_cluster_sees(&ctx, &snapshot, &Cluster::Standalone, &tables)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sees 0 of the") && err.contains("event_applaunch"),
        "{err}"
    );
    assert!(err.contains("same path"), "{err}");
}
