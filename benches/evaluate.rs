//! End-to-end segment evaluation inside one process: check, plan and count on a real store, the
//! snapshot opened once (what `audience count --timings` reports as check + query).
//! Store: $AUDIENCE_BENCH_STORE (e.g. the 1M-person store compare.py generates), else the
//! committed sample. Run: `AUDIENCE_BENCH_STORE=~/.cache/audience-bench/store-1m-seed42 cargo bench
//! --bench evaluate`.

use audience::check::{compile, SegmentDir};
use audience::exec::{open_session, run, SessionOptions};
use audience::plan::{plan_segment, PlanOptions, TableSources, Target};
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let store = std::env::var_os("AUDIENCE_BENCH_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("data/sample"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let snapshot = audience::store::Store::open(&store)
        .unwrap()
        .snapshot(None)
        .unwrap();
    let opts = SessionOptions {
        threads: Some(2),
        ..SessionOptions::default()
    };
    let (ctx, sources) = rt.block_on(async {
        let ctx = open_session(&snapshot, &opts).await.unwrap();
        let sources = TableSources::from_session(&ctx, &snapshot.manifest)
            .await
            .unwrap();
        (ctx, sources)
    });
    let saved = SegmentDir(root.join("benches/segments/saved"));
    let mut group = c.benchmark_group("evaluate");
    group.sample_size(10);
    let mut segments: Vec<_> = std::fs::read_dir(root.join("benches/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    for path in segments {
        let src = std::fs::read_to_string(&path).unwrap();
        let target = if src.starts_with("# target: persons") {
            Target::Persons
        } else {
            Target::Installations
        };
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        group.bench_function(&name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let typed = compile(&src, &snapshot.manifest.catalog, &saved).unwrap();
                    let opts = PlanOptions::keys(snapshot.manifest.as_of, target);
                    let plan = plan_segment(&typed, &sources, &opts).unwrap();
                    run::count_rows(&ctx, plan).await.unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
