//! Front-end latency: parse + check, and planning to an optimized LogicalPlan, for representative
//! segments (target: well under 1 ms each). Planning runs against schema-only tables, so this
//! measures the compiler, not I/O. Run: `cargo bench --bench compile`.

use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::plan::{plan_segment, PlanOptions, TableSources, Target};
use audience::store::manifest::Partitioning;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const SEGMENTS: &[(&str, &str)] = &[
    ("attributes", r#"platform = "iOS" and osVersion >= "17.2" and not deviceSecure"#),
    ("person_join", r#"person.country in ("HR", "DE", "AT") and person.tags has "vip" and age >= 18"#),
    ("event_window", "primaryDevice and pushRegistrationEnabled and count(AppLaunch within 30d) >= 3"),
    ("fused_purchase", r#"count(Purchase where amount > 100 and currency = "EUR" within 90d) >= 2 and sum(Purchase.amount within 365d) > 500 and avg(Purchase.amount) >= 20"#),
    ("did_not_did", "did(AddToCart within 7d) and not did(Purchase within 7d)"),
    ("recency", "last(AppLaunch) before 30d ago and first(Install) within 14d and last(Purchase) is not set"),
];

fn bench(c: &mut Criterion) {
    let catalog = Catalog::sample();
    let sources = TableSources::from_catalog(&catalog, Partitioning::Day);
    let state = datafusion::prelude::SessionContext::new().state();
    let opts = PlanOptions::keys(
        "2026-11-01T00:00:00Z".parse().unwrap(),
        Target::Installations,
    );
    for (name, src) in SEGMENTS {
        c.bench_function(&format!("parse_check/{name}"), |b| {
            b.iter(|| compile(black_box(src), &catalog, &NoSavedSegments).unwrap())
        });
        let typed = compile(src, &catalog, &NoSavedSegments).unwrap();
        c.bench_function(&format!("plan/{name}"), |b| {
            b.iter(|| plan_segment(black_box(&typed), &sources, &opts).unwrap())
        });
        c.bench_function(&format!("plan_optimized/{name}"), |b| {
            b.iter(|| {
                state
                    .optimize(&plan_segment(black_box(&typed), &sources, &opts).unwrap())
                    .unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
