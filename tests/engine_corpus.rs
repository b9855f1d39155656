//! The segment corpus run against the committed sample: every valid case's audience size for both
//! targets (snapshot), at the snapshot's as-of time and a month earlier (backtesting).

mod common;

use audience::catalog::Catalog;
use audience::check::{compile, SegmentDir};
use audience::exec::run;
use audience::plan::{plan_segment, PlanOptions, Target};
use std::path::Path;

#[tokio::test]
async fn corpus_counts_on_the_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (snapshot, ctx, sources) = common::open(&root.join("data/sample")).await;
    let saved = SegmentDir(root.join("tests/segments/saved"));
    let mut dir: Vec<_> = std::fs::read_dir(root.join("tests/segments/valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dir.sort();
    let month_earlier = snapshot.manifest.as_of - chrono::Duration::days(30);
    let mut report = String::new();
    for path in dir {
        let src = std::fs::read_to_string(&path).unwrap();
        let typed = compile(&src, &Catalog::sample(), &saved).unwrap();
        let mut counts = Vec::new();
        for as_of in [snapshot.manifest.as_of, month_earlier] {
            for target in [Target::Installations, Target::Persons] {
                let opts = PlanOptions::keys(as_of, target);
                let plan = plan_segment(&typed, &sources, &opts).unwrap();
                counts.push(
                    run::count_rows(&ctx, plan)
                        .await
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                );
            }
        }
        report.push_str(&format!(
            "{:<28} installations {:>5}  persons {:>5}  | 30 days earlier: {:>5} {:>5}\n",
            path.file_stem().unwrap().to_string_lossy(),
            counts[0],
            counts[1],
            counts[2],
            counts[3]
        ));
    }
    insta::assert_snapshot!(report);
}
