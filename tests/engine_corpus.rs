//! The segment corpus run against the committed sample: every valid case's audience size for both
//! targets (snapshot), at the snapshot's as-of time and a month earlier (backtesting); and against
//! a snapshot in the older layout (summary in a file of its own, no version keys, list lengths or
//! dictionaries), which must still be read exactly as before.

mod common;

use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments, SegmentDir};
use audience::exec::run;
use audience::plan::{plan_segment, PlanOptions, Target};
use std::path::Path;

#[tokio::test]
async fn corpus_counts_on_the_sample() {
    insta::assert_snapshot!(corpus_counts("data/sample").await);
}

#[tokio::test]
async fn corpus_counts_on_a_snapshot_in_the_older_layout() {
    insta::assert_snapshot!(corpus_counts("tests/fixtures/legacy-sample").await);
}

async fn corpus_counts(store: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (snapshot, ctx, sources) = common::open(&root.join(store)).await;
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
    report
}

/// Which scans filter rows inside the Parquet reader: only event scans left with partition
/// predicates, so that a join's dynamic filter drops rows before they are decoded. Property
/// predicates, and every predicate on the person and installation tables, run in a FilterExec
/// over decoded batches, which measured faster (see `exec::session`). Read from the scans' run
/// metrics: `pushdown_rows_*` count the rows a reader-side filter saw.
#[tokio::test]
async fn only_event_scans_narrowed_by_a_join_filter_rows_in_the_reader() {
    // Day partitions, so that `within 7d` at the midnight as-of is decided by partitions alone.
    let (snapshot, ctx, sources) = common::open(common::shared_store()).await;
    let analyzed = |src: &str| {
        let typed = compile(src, &snapshot.manifest.catalog, &NoSavedSegments).unwrap();
        let opts = PlanOptions::keys(snapshot.manifest.as_of, Target::Installations);
        let plan = plan_segment(&typed, &sources, &opts).unwrap();
        let ctx = ctx.clone();
        async move {
            let plan = ctx.state().create_physical_plan(&plan).await.unwrap();
            datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
                .await
                .unwrap();
            let text = datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                plan.as_ref(),
            )
            .indent(true)
            .to_string();
            text
        }
    };
    // Rows the reader-side filter of `table`'s scan looked at (matched + pruned).
    let reader_filtered = |plan: &str, table: &str| -> u64 {
        let scan = plan
            .lines()
            .find(|l| l.contains("DataSourceExec") && l.contains(table))
            .unwrap_or_else(|| panic!("no scan of {table} in\n{plan}"));
        ["pushdown_rows_matched=", "pushdown_rows_pruned="]
            .iter()
            .map(|m| {
                let v = scan
                    .split(m)
                    .nth(1)
                    .unwrap_or_else(|| panic!("no {m} in {scan}"));
                let v = v.split([',', ']']).next().unwrap().trim();
                // Metrics print as `1.23 K` past a thousand.
                match v.strip_suffix(" K") {
                    Some(k) => (k.parse::<f64>().unwrap() * 1000.0) as u64,
                    None => v.parse().unwrap(),
                }
            })
            .sum()
    };

    // The AppLaunch scan has no predicate of its own: the join's dynamic filter goes into it.
    let plan = analyzed(
        "pushRegistrationEnabled and platform = \"iOS\" \
         and installation.count(AppLaunch within 7d) >= 1",
    )
    .await;
    assert!(reader_filtered(&plan, "event=AppLaunch") > 0, "{plan}");
    assert_eq!(reader_filtered(&plan, "installations.parquet"), 0, "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.contains("FilterExec") && l.contains("platform")),
        "the installation predicates stay in a FilterExec:\n{plan}"
    );

    // A property predicate is evaluated after decoding, and the scan keeps no row filter.
    let plan = analyzed("count(Purchase where amount >= 50 within 90d) >= 2").await;
    assert!(
        plan.lines()
            .any(|l| l.contains("FilterExec") && l.contains("amount")),
        "{plan}"
    );
    assert_eq!(reader_filtered(&plan, "event=Purchase"), 0, "{plan}");
}

/// Strings of few values are stored and scanned as dictionaries, and leave the engine as plain
/// strings: exports and previews do not depend on the storage.
#[tokio::test]
async fn dictionary_strings_are_output_as_plain_strings() {
    use audience::catalog::Entity;
    use audience::plan::OutputColumn;
    let (snapshot, ctx, sources) = common::open(common::shared_store()).await;
    let table = ctx.table("installations").await.unwrap();
    let platform = table
        .schema()
        .field_with_unqualified_name("platform")
        .unwrap();
    assert!(
        matches!(
            platform.data_type(),
            arrow::datatypes::DataType::Dictionary(..)
        ),
        "{platform:?}"
    );
    let typed = compile(
        r#"platform = "iOS" and person.country in ("HR", "DE", "AT", "SI")"#,
        &snapshot.manifest.catalog,
        &NoSavedSegments,
    )
    .unwrap();
    let column = |entity, column: &str, name: &str| OutputColumn {
        entity,
        column: column.into(),
        name: name.into(),
        derived: None,
    };
    let mut opts = PlanOptions::keys(snapshot.manifest.as_of, Target::Installations);
    opts.columns
        .push(column(Entity::Installation, "platform", "platform"));
    opts.columns
        .push(column(Entity::Person, "country", "country"));
    let plan = plan_segment(&typed, &sources, &opts).unwrap();
    let batches = datafusion::prelude::DataFrame::new(ctx.state(), plan)
        .collect()
        .await
        .unwrap();
    let mut rows = 0;
    for batch in &batches {
        use arrow::array::AsArray;
        let platform = batch.column(1).as_string::<i32>();
        let country = batch.column(2).as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert_eq!(platform.value(i), "iOS");
            assert!(["HR", "DE", "AT", "SI"].contains(&country.value(i)));
            rows += 1;
        }
    }
    assert!(rows > 0, "no iOS devices in the core markets");
}

/// Counts compare with whole numbers as integers and with fractions as numbers: both must mean
/// the same audience (`>= 2.5` is `>= 3`, `= 2.5` is nobody).
#[tokio::test]
async fn counts_compare_alike_with_whole_and_fractional_numbers() {
    let (snapshot, ctx, sources) = common::open(common::shared_store()).await;
    let count = |src: &'static str| {
        let typed = compile(src, &snapshot.manifest.catalog, &NoSavedSegments).unwrap();
        let opts = PlanOptions::keys(snapshot.manifest.as_of, Target::Persons);
        let plan = plan_segment(&typed, &sources, &opts).unwrap();
        let ctx = ctx.clone();
        async move { run::count_rows(&ctx, plan).await.unwrap() }
    };
    let whole = count("count(AppLaunch within 30d) >= 3").await;
    assert!(whole > 0);
    assert_eq!(count("count(AppLaunch within 30d) >= 2.5").await, whole);
    assert_eq!(count("count(AppLaunch within 30d) > 2.5").await, whole);
    assert_eq!(count("count(AppLaunch within 30d) = 2.5").await, 0);
    assert_eq!(
        count("count(AppLaunch within 30d) < 3").await + whole,
        count("identified or not identified").await,
        "every person either has 3+ launches or fewer"
    );
}

/// Counts of events by string property value and by calendar month, read from the activity
/// summary, give the audiences the raw events give (the same plans with the summary turned
/// off). The shared store's history runs from September 2 to its as-of, November 1.
#[tokio::test]
async fn value_and_month_counts_of_the_summary_match_raw_events() {
    let (snapshot, ctx, sources) = common::open(common::shared_store()).await;
    let mut raw = sources.clone();
    raw.activity_as_of = None;
    let mut nonempty = 0;
    for src in [
        r#"count(Purchase where currency = "EUR" within 30d) >= 2"#,
        r#"did(ViewProduct where category = "electronics" within 7d) and not did(Purchase where category in ("home", "books", "no-such-category") within 90d)"#,
        r#"count(Purchase where category = "fashion") >= 1 or count(ViewProduct where category in ("toys", "beauty") within 30d) >= 3"#,
        r#"not did(Purchase where currency = "no-such-currency" within 365d) and did(Purchase where currency in ("GBP", "PLN") within 180d)"#,
        "did(Purchase between 2026-09-01 and 2026-09-30) and not did(Purchase since 2026-10-01)",
        "count(AppLaunch between 2026-10-01 and 2026-10-31) >= 20 or count(ViewProduct since 2026-09-01) < 3",
    ] {
        let typed = compile(src, &snapshot.manifest.catalog, &NoSavedSegments).unwrap();
        for target in [Target::Persons, Target::Installations] {
            let opts = PlanOptions::keys(snapshot.manifest.as_of, target);
            let summary = plan_segment(&typed, &sources, &opts).unwrap();
            // Persons plans always read the summary's columns beside the attributes;
            // installation plans may find the raw events cheaper on this small store.
            let text = summary.display_indent().to_string();
            assert!(
                target == Target::Installations
                    || (!text.contains("event_") && text.contains("__count_")),
                "{src}: not answered by the summary\n{text}"
            );
            let from_raw = plan_segment(&typed, &raw, &opts).unwrap();
            let expected = run::count_rows(&ctx, from_raw).await.unwrap();
            assert_eq!(
                run::count_rows(&ctx, summary).await.unwrap(),
                expected,
                "{src} ({target:?})"
            );
            nonempty += usize::from(expected > 0);
        }
    }
    assert!(nonempty >= 9, "too few matching audiences to compare");
}

/// Version comparisons read the stored sort keys of either layout exactly as the texts compare:
/// the shared store's Int64 keys, and the same snapshot rewritten with the Decimal128 keys that
/// snapshots had before (catalog `sort_key: true`), both against the reference evaluator.
#[tokio::test]
async fn version_keys_of_both_layouts_compare_like_the_texts() {
    use arrow::array::{Array, AsArray, Decimal128Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use audience::base::version::{literal_key, parts as version_parts, LiteralKey};
    use audience::catalog::VersionKey;
    use audience::store::{manifest::Manifest, version_key};
    use std::sync::Arc;

    let (_tmp, old) = common::copy_store(common::shared_store());
    let snapshot = audience::store::Store::open(&old)
        .unwrap()
        .snapshot(None)
        .unwrap();
    let mut manifest = snapshot.manifest.clone();
    let file = &mut manifest.installations[0];
    let path = old.join(&file.path);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let decimal = DataType::Decimal128(38, 0);
    let old_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.name().strip_suffix(version_key::SUFFIX) {
                Some(_) => Field::new(f.name(), decimal.clone(), true),
                None => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ));
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        old_schema.clone(),
        None,
    )
    .unwrap();
    for batch in &batches {
        let columns = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| match f.name().strip_suffix(version_key::SUFFIX) {
                Some(base) => {
                    let text = batch
                        .column_by_name(base)
                        .unwrap()
                        .as_string::<i32>()
                        .clone();
                    let keys: Decimal128Array = text
                        .iter()
                        .map(|v| {
                            v.map(
                                |v| match literal_key(VersionKey::Decimal, &version_parts(v)) {
                                    Some(LiteralKey::Decimal(k)) => k,
                                    other => panic!("{v}: {other:?}"),
                                },
                            )
                        })
                        .collect();
                    Arc::new(keys.with_precision_and_scale(38, 0).unwrap()) as Arc<dyn Array>
                }
                None => c.clone(),
            })
            .collect();
        writer
            .write(&RecordBatch::try_new(old_schema.clone(), columns).unwrap())
            .unwrap();
    }
    writer.close().unwrap();
    file.bytes = std::fs::metadata(&path).unwrap().len();
    file.checksums = Some(audience::store::checksum::compute(&path).unwrap());
    let mut versions = 0;
    for a in &mut manifest.catalog.installation {
        if a.sort_key.is_some() {
            a.sort_key = Some(VersionKey::Decimal);
            versions += 1;
        }
    }
    assert_eq!(versions, 3, "osVersion, applicationVersion, sdkVersion");
    let manifest_path = snapshot.dir.join(audience::store::manifest::MANIFEST_FILE);
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let reread = Manifest::read(&manifest_path).unwrap();
    assert!(reread
        .catalog
        .installation
        .iter()
        .any(|a| a.sort_key == Some(VersionKey::Decimal)));

    let segments = [
        r#"osVersion >= "17.2""#,
        r#"osVersion < "14" or appVersion > "5.10""#,
        r#"osVersion = "17" and not sdkVersion = "4.0""#,
        r#"appVersion in ("5.9", "5.10.0", "6") or sdkVersion <= "3.9.1""#,
    ];
    let mut nonempty = 0;
    for store in [common::shared_store(), old.as_path()] {
        let (snapshot, ctx, sources) = common::open(store).await;
        let catalog = &snapshot.manifest.catalog;
        let reference = common::reference::Reference::load(&ctx, catalog).await;
        for src in segments {
            let typed = compile(src, catalog, &NoSavedSegments).unwrap();
            let opts = PlanOptions::keys(snapshot.manifest.as_of, Target::Installations);
            let plan = plan_segment(&typed, &sources, &opts).unwrap();
            let text = plan.display_indent().to_string();
            assert!(
                text.contains("__sort") && !text.contains("split_part"),
                "{text}"
            );
            let expected = reference
                .audience(&typed, snapshot.manifest.as_of.timestamp_micros(), false)
                .len() as u64;
            assert_eq!(
                run::count_rows(&ctx, plan).await.unwrap(),
                expected,
                "{src} on {}",
                store.display()
            );
            nonempty += usize::from(expected > 0);
        }
    }
    assert!(nonempty >= 6, "too few matching audiences to compare");
}

/// The sample opened twice, one workspace keeping matched pairs, and the valid corpus cases.
struct Kept {
    fresh: audience::app::Workspace,
    warm: audience::app::Workspace,
    saved: SegmentDir,
    cases: Vec<std::path::PathBuf>,
}

impl Kept {
    async fn open() -> Kept {
        use audience::app::Workspace;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let store = root.join("data/sample");
        let opts = audience::exec::SessionOptions::default();
        let mut cases: Vec<_> = std::fs::read_dir(root.join("tests/segments/valid"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        cases.sort();
        Kept {
            fresh: Workspace::open(&store, None, &opts).await.unwrap(),
            warm: Workspace::open(&store, None, &opts)
                .await
                .unwrap()
                .keep_matched(64 << 20),
            saved: SegmentDir(root.join("tests/segments/saved")),
            cases,
        }
    }
}

/// The server's count report from cached matched pairs (`Workspace::keep_matched`) equals the
/// report each query answers afresh, for every valid case at two as-of times, whether its
/// conditions are evaluated now or come from the cache (the second pass, in reverse order,
/// finds every condition kept).
#[tokio::test]
async fn count_reports_from_matched_pairs_equal_fresh_ones() {
    use audience::app::{conditions, SegmentSource};
    let k = Kept::open().await;
    let (fresh, warm, saved, cases) = (&k.fresh, &k.warm, k.saved, k.cases.clone());
    let as_of = fresh.snapshot().manifest.as_of;
    let mut reports = Vec::new();
    for path in &cases {
        let src = SegmentSource::text(std::fs::read_to_string(path).unwrap());
        let typed = fresh.compile(&src, &saved).unwrap();
        let alone: Vec<_> = conditions(&src, &typed)
            .into_iter()
            .map(|(_, _, t)| t)
            .collect();
        for at in [as_of, as_of - chrono::Duration::days(30)] {
            let want = fresh.count_report(&typed, &alone, at).await.unwrap();
            reports.push((path.clone(), typed.clone(), alone.clone(), at, want));
        }
    }
    assert!(
        reports
            .iter()
            .any(|r| r.4.persons > 0 && r.4.installations > 0),
        "the corpus matches someone"
    );
    for pass in 0..2 {
        let order: Vec<_> = if pass == 0 {
            reports.iter().collect()
        } else {
            reports.iter().rev().collect()
        };
        for (path, typed, alone, at, want) in order {
            let got = warm.count_report(typed, alone, *at).await.unwrap();
            assert_eq!(
                format!("{got:?}"),
                format!("{want:?}"),
                "{} at {at}, pass {pass}",
                path.display()
            );
        }
    }
}

/// A preview page from kept matched pairs (its keys from the bitmaps, then only their rows read)
/// equals the page the segment's plan gives, in key order, for every valid case, both targets
/// and two pages; and consecutive pages do not overlap.
#[tokio::test]
async fn previews_from_matched_pairs_equal_fresh_ones() {
    use audience::app::SegmentSource;
    let k = Kept::open().await;
    let (fresh, warm, saved, cases) = (&k.fresh, &k.warm, k.saved, k.cases.clone());
    let show = |b: &[arrow::array::RecordBatch]| {
        arrow::util::pretty::pretty_format_batches(b)
            .unwrap()
            .to_string()
    };
    let mut rows_seen = 0;
    for path in &cases {
        let src = SegmentSource::text(std::fs::read_to_string(path).unwrap());
        let typed = fresh.compile(&src, &saved).unwrap();
        for target in [Target::Installations, Target::Persons] {
            let q = fresh.query(None, target);
            let mut pages = Vec::new();
            for offset in [0, 7] {
                let cols = ["externalUserId".to_string()];
                let (want_schema, want) = fresh
                    .preview(&typed, q, &cols, offset, Some(7), false)
                    .await
                    .unwrap();
                let (got_schema, got) = warm
                    .preview(&typed, q, &cols, offset, Some(7), false)
                    .await
                    .unwrap();
                assert_eq!(got_schema, want_schema, "{}", path.display());
                assert_eq!(
                    show(&got),
                    show(&want),
                    "{} {target:?} @{offset}",
                    path.display()
                );
                rows_seen += want.iter().map(|b| b.num_rows()).sum::<usize>();
                pages.push(show(&want));
            }
            if pages[1].lines().count() > 4 {
                assert_ne!(pages[0], pages[1], "{}: pages overlap", path.display());
            }
        }
    }
    assert!(rows_seen > 100, "the corpus shows rows");
}
