//! Snapshots of the optimized logical plans of representative segments, planned against
//! schema-only tables (no Parquet I/O): the shape of the plan is the contract with performance.

use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::plan::{plan_segment, OutputColumn, PlanOptions, TableSources, Target};
use audience::store::manifest::Partitioning;
use datafusion::prelude::SessionContext;

fn plan(src: &str, target: Target) -> String {
    let catalog = Catalog::sample();
    let typed = compile(src, &catalog, &NoSavedSegments).unwrap();
    let sources = TableSources::from_catalog(&catalog, Partitioning::Day);
    let columns = vec![OutputColumn::key(target)];
    let opts = PlanOptions {
        as_of: "2026-11-01T00:00:00Z".parse().unwrap(),
        target,
        columns,
        extra: None,
        lists_as_text: false,
    };
    let plan = plan_segment(&typed, &sources, &opts).unwrap();
    let optimized = SessionContext::new().state().optimize(&plan).unwrap();
    format!("{src}\n\n{}", optimized.display_indent())
}

#[test]
fn installation_attributes_scan_installations_only() {
    insta::assert_snapshot!(plan(
        r#"platform = "iOS" and pushRegistrationEnabled and not deviceSecure"#,
        Target::Installations
    ));
}

#[test]
fn person_attributes_join_persons() {
    insta::assert_snapshot!(plan(
        r#"person.country in ("HR", "DE") and primaryDevice and age >= 18"#,
        Target::Installations
    ));
}

#[test]
fn conditions_on_one_event_share_one_grouped_scan() {
    // Three conditions on Purchase: one scan of event_Purchase with FILTER clauses, pruned to the
    // union of the windows.
    insta::assert_snapshot!(plan(
        r#"count(Purchase where currency = "EUR" within 90d) >= 2 and sum(Purchase.amount within 365d) > 500 and max(Purchase.amount within 30d) > 50"#,
        Target::Persons
    ));
}

#[test]
fn did_and_did_not_with_a_window_prune_partitions() {
    insta::assert_snapshot!(plan(
        "did(AddToCart within 7d) and not did(Purchase within 7d)",
        Target::Installations
    ));
}

#[test]
fn installation_scope_groups_by_installation() {
    insta::assert_snapshot!(plan(
        "installation.count(AppLaunch within 30d) >= 10 and count(AppLaunch within 30d) >= 20",
        Target::Installations
    ));
}

#[test]
fn persons_target_with_installation_conditions_uses_a_semi_join() {
    insta::assert_snapshot!(plan(
        r#"platform = "Android" and tags has "vip""#,
        Target::Persons
    ));
}

#[test]
fn versions_compare_numerically() {
    insta::assert_snapshot!(plan(r#"osVersion >= "17.2""#, Target::Installations));
}
