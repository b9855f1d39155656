//! Snapshots of the optimized logical plans of representative segments, planned against
//! schema-only tables (no Parquet I/O): the shape of the plan is the contract with performance.

use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::plan::{plan_segment, PlanOptions, TableSources, Target};
use audience::store::manifest::Partitioning;
use audience::store::summary::{SummaryColumns, SummaryValues};
use datafusion::prelude::SessionContext;

fn plan(src: &str, target: Target) -> String {
    plan_with(src, target, Activity::None)
}

/// Whether the snapshot has a person activity summary made at the plan's as-of, and where.
#[derive(Clone, Copy, PartialEq)]
enum Activity {
    None,
    /// A file of its own (snapshots written before the summary moved into persons).
    OwnFile,
    /// Columns of the persons table.
    InPersons,
    /// Columns of the persons table, and day counts of AppLaunch and ViewProduct.
    InPersonsWithDays,
}

fn plan_with(src: &str, target: Target, activity: Activity) -> String {
    plan_full(src, target, Catalog::sample(), activity, AS_OF)
}

const AS_OF: &str = "2026-11-01T00:00:00Z";

fn plan_full(
    src: &str,
    target: Target,
    catalog: Catalog,
    activity: Activity,
    as_of: &str,
) -> String {
    plan_at(src, target, catalog, activity, as_of, as_of)
}

/// Planned at `as_of`, with a summary (if any) made at `summary_as_of`.
fn plan_at(
    src: &str,
    target: Target,
    catalog: Catalog,
    activity: Activity,
    summary_as_of: &str,
    as_of: &str,
) -> String {
    let typed = compile(src, &catalog, &NoSavedSegments).unwrap();
    let mut sources = TableSources::from_catalog(&catalog, Partitioning::Day);
    let as_of: chrono::DateTime<chrono::Utc> = as_of.parse().unwrap();
    let micros = summary_as_of
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp_micros();
    // As a snapshot of the sample history records them: the values of Purchase's and
    // ViewProduct's categories (AddToCart's skus have too many to count each).
    let categories: Vec<String> = ["books", "electronics", "fashion", "home"]
        .map(String::from)
        .to_vec();
    let mut values = SummaryValues::new();
    for event in ["Purchase", "ViewProduct"] {
        values
            .entry(event.to_string())
            .or_default()
            .insert("category".to_string(), categories.clone());
    }
    let extra = SummaryColumns { values, months: 12 };
    sources = match activity {
        Activity::None => sources,
        Activity::OwnFile => sources.with_activity(&catalog, micros, &extra),
        Activity::InPersons => sources.with_activity_in_persons(&catalog, micros, &extra),
        Activity::InPersonsWithDays => sources
            .with_activity_in_persons(&catalog, micros, &extra)
            .with_activity_days(&["AppLaunch".into(), "ViewProduct".into()], 120),
    };
    let opts = PlanOptions::keys(as_of, target);
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
fn the_activity_summary_answers_standard_windows_at_the_snapshot_as_of() {
    // AddToCart and Purchase over 7 days and last(AppLaunch) over all history: one column each
    // of person_activity, no event scan.
    insta::assert_snapshot!(plan_with(
        "did(AddToCart within 7d) and not did(Purchase within 7d) and last(AppLaunch) before 14d ago",
        Target::Installations,
        Activity::OwnFile
    ));
}

#[test]
fn a_backtest_reads_day_counts_and_first_times_not_the_history() {
    // 45 days before the summary's as-of: the 14-day AppLaunch count is two day-count columns,
    // last-before is the summary's first time and the day counts of [T, as-of), and
    // first(Install) the summary's first time; only the 7-day Purchase window is read raw.
    insta::assert_snapshot!(plan_at(
        "count(AppLaunch within 14d) >= 3 and last(ViewProduct) before 10d ago \
         and first(Install) within 30d and not did(Purchase within 7d)",
        Target::Persons,
        Catalog::sample(),
        Activity::InPersonsWithDays,
        AS_OF,
        "2026-09-17T00:00:00Z",
    ));
}

#[test]
fn activity_in_persons_is_read_beside_person_attributes_without_a_join() {
    // Persons target: one scan of persons, its `or` over an attribute and a summary column.
    insta::assert_snapshot!(plan_with(
        r#"person.tags has "bargain-hunter" or min(Purchase.amount within 180d) < 5"#,
        Target::Persons,
        Activity::InPersons
    ));
}

#[test]
fn activity_in_persons_rides_the_person_join_of_installations() {
    // Installations with person attributes: the summary column comes with the persons side.
    insta::assert_snapshot!(plan_with(
        "person.custom.loyaltyPoints >= 500 and count(AppLaunch within 7d) >= 1 and primaryDevice",
        Target::Installations,
        Activity::InPersons
    ));
}

#[test]
fn activity_in_persons_is_scanned_alone_for_installation_only_segments() {
    // No person attribute: the summary's columns of the persons file, joined once.
    insta::assert_snapshot!(plan_with(
        "did(AddToCart within 7d) and not did(Purchase within 7d) and pushRegistrationEnabled",
        Target::Installations,
        Activity::InPersons
    ));
}

#[test]
fn the_activity_summary_counts_events_by_string_property_value() {
    // `category = …` and `category in (…)` read the value columns (a sum for two values; a
    // value the history never had adds nothing); `currency` has no value columns here, and
    // `amount >= 50` is not a value test, so Purchase keeps its raw scan in the second case.
    insta::assert_snapshot!(plan_with(
        r#"count(ViewProduct where category = "electronics" within 30d) >= 3 and not did(Purchase where category in ("home", "books", "garden") within 90d)"#,
        Target::Persons,
        Activity::InPersons
    ));
    insta::assert_snapshot!(plan_with(
        r#"did(ViewProduct where category = "electronics" within 7d) and count(Purchase where amount >= 50 and category = "home" within 90d) >= 2"#,
        Target::Persons,
        Activity::InPersons
    ));
}

#[test]
fn the_activity_summary_counts_whole_calendar_months() {
    // January to June at a November 1st as-of: months 10 down to 5, summed; the 90 days are a
    // window of the summary's own.
    insta::assert_snapshot!(plan_with(
        "did(Purchase between 2026-01-01 and 2026-06-30) and not did(Purchase within 90d) and emails is set",
        Target::Persons,
        Activity::InPersons
    ));
}

#[test]
fn the_activity_summary_is_not_used_for_where_filters_or_other_windows() {
    // `where` and a 14-day window need raw events; a group with one such aggregate (Purchase)
    // reads raw events for all of them.
    insta::assert_snapshot!(plan_with(
        r#"count(Purchase where currency = "EUR" within 90d) >= 1 and count(AppLaunch within 14d) >= 3 and sum(Purchase.amount within 30d) > 50"#,
        Target::Persons,
        Activity::OwnFile
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

/// The sample catalog as snapshots written before derived columns have it: no version sort keys,
/// no list lengths, no dictionary strings.
fn older_catalog() -> Catalog {
    let mut catalog = Catalog::sample();
    for a in catalog.person.iter_mut().chain(&mut catalog.installation) {
        a.sort_key = None;
        a.length_column = false;
        a.dictionary = false;
    }
    catalog
}

/// Snapshots made before sort keys were stored: the planner splits the text into numbers.
#[test]
fn versions_without_sort_keys_split_the_text() {
    insta::assert_snapshot!(plan_full(
        r#"osVersion >= "17.2""#,
        Target::Installations,
        older_catalog(),
        Activity::None,
        AS_OF
    ));
}

/// `is set` on a list reads the stored item count (`emails__len`), not the lists.
#[test]
fn lists_are_set_by_their_stored_length() {
    insta::assert_snapshot!(plan(
        r#"emails is set and not phones is set"#,
        Target::Persons
    ));
}

/// Snapshots made before list lengths were stored: the planner measures each list.
#[test]
fn lists_without_stored_lengths_are_measured() {
    insta::assert_snapshot!(plan_full(
        r#"emails is set and not phones is set"#,
        Target::Persons,
        older_catalog(),
        Activity::None,
        AS_OF
    ));
}

/// A window that does not start and end at midnight needs event_time, besides the day
/// partitions it touches; `count(...) < 2` holds without events, so its join stays a left join.
#[test]
fn windows_off_day_boundaries_compare_event_time() {
    insta::assert_snapshot!(plan_full(
        "count(AppLaunch within 7d) < 2",
        Target::Installations,
        Catalog::sample(),
        Activity::None,
        "2026-11-01T12:00:00Z"
    ));
}

/// A two-step sequence: a semi join on the key, each Purchase kept when an AddToCart is strictly
/// earlier and at most the gap before it (the times compared in the join filter).
#[test]
fn a_sequence_is_a_semi_join_of_its_steps_on_the_key() {
    insta::assert_snapshot!(plan(
        "did(AddToCart then Purchase within 1h)",
        Target::Installations
    ));
}

/// Steps with a `where`, a gap and `then not`, in a 30-day window: the `where` narrows its step's
/// scan, the last step keeps only events a whole gap before the as-of time, and `then not` is an
/// anti join against the absent event in the gap after it.
#[test]
fn then_not_is_an_anti_join_after_the_chain_of_steps() {
    insta::assert_snapshot!(plan(
        r#"did(ViewProduct where category = "fashion" then AddToCart within 1d then not Purchase within 1d within 30d)"#,
        Target::Persons
    ));
}

/// Regularity: events bucketed into periods counted back from the as-of time, the periods that
/// pass counted; weeks are exact lengths, months calendar months. With `< 1` an empty period
/// passes, so the join is a left join and a device without events passes all 3.
#[test]
fn regularity_counts_periods_back_from_the_as_of() {
    insta::assert_snapshot!(plan(
        "count(AppLaunch) >= 3 per week in 4 of the last 6 weeks",
        Target::Installations
    ));
    insta::assert_snapshot!(plan(
        "installation.count(Purchase where amount > 20) < 1 per month in 2 of the last 3 months",
        Target::Installations
    ));
}

/// `count distinct(E.p)`: the distinct (key, value) pairs of set values, then a count a key.
#[test]
fn count_distinct_counts_distinct_property_values() {
    insta::assert_snapshot!(plan(
        "count distinct(ViewProduct.category within 30d) >= 3",
        Target::Persons
    ));
}

/// `last(E).p`: the latest time a key, then the largest set value among the events at that time
/// (a set value wins a tie, then the largest).
#[test]
fn the_last_events_property() {
    insta::assert_snapshot!(plan(
        r#"last(Purchase).category = "fashion""#,
        Target::Persons
    ));
}

/// Anniversaries are a test of the attribute's month and day against the window's days (and of
/// its year: the first anniversary is a year after the date): no event scan.
#[test]
fn an_anniversary_is_a_test_of_the_attribute_alone() {
    insta::assert_snapshot!(plan(
        "anniversary of custom.lastPurchaseDate within next 30d or birthday within 7d",
        Target::Persons
    ));
}

/// A preview page whose keys are known (kept matched pairs): only those rows of installations
/// and of their persons, each bounded by a range (row groups pruned at any page size) and the
/// list itself; no event scan.
#[test]
fn a_page_of_known_keys_reads_only_their_rows() {
    use audience::catalog::Entity;
    use audience::plan::{plan_keys, OutputColumn};
    let catalog = Catalog::sample();
    let sources = TableSources::from_catalog(&catalog, Partitioning::Day);
    let mut opts = PlanOptions::keys(AS_OF.parse().unwrap(), Target::Installations);
    opts.columns.push(OutputColumn {
        entity: Entity::Person,
        column: "external_user_id".into(),
        name: "externalUserId".into(),
        derived: None,
    });
    let plan = plan_keys(&[3, 4, 9], &[1, 1, 2], &sources, &opts).unwrap();
    let optimized = SessionContext::new().state().optimize(&plan).unwrap();
    insta::assert_snapshot!(optimized.display_indent().to_string());
}
