//! generate → read back: counts, catalog and the invariants of the data model, checked through
//! the same DataFusion tables the engine queries.

mod common;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use audience::catalog::Catalog;
use audience::generate::generate;
use audience::store::manifest::Partitioning;
use audience::store::{Store, TableFiles};
use datafusion::prelude::SessionContext;

async fn session(store: &std::path::Path) -> (SessionContext, audience::store::Snapshot) {
    let snapshot = Store::open(store).unwrap().snapshot(None).unwrap();
    let ctx = SessionContext::new();
    snapshot.register(&ctx, TableFiles::Manifest).await.unwrap();
    (ctx, snapshot)
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap()
}

/// A query returning one Int64 value.
async fn scalar(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = query(ctx, sql).await;
    let col = batches[0].column(0);
    assert_eq!(col.len(), 1, "{sql}");
    col.as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn row_counts_and_catalog_round_trip() {
    let (ctx, snap) = session(common::shared_store()).await;
    let m = &snap.manifest;
    // The catalog is the generator's, plus the value sets the writer recorded.
    let mut declared = m.catalog.clone();
    for a in declared
        .person
        .iter_mut()
        .chain(declared.installation.iter_mut())
    {
        a.values = None;
    }
    for p in declared
        .events
        .iter_mut()
        .flat_map(|e| e.properties.iter_mut())
    {
        p.values = None;
    }
    assert_eq!(declared, Catalog::sample());
    let platform = m
        .catalog
        .attribute(audience::catalog::Entity::Installation, "platform", false)
        .and_then(|a| a.values.clone())
        .expect("platform's values are recorded");
    assert!(platform.complete && platform.contains("iOS"));
    let ios = scalar(
        &ctx,
        "select count(*) from installations where platform = 'iOS'",
    )
    .await as u64;
    assert_eq!(
        platform.top.iter().find(|(v, _)| v == "iOS").unwrap().1,
        ios
    );
    let currency = m
        .catalog
        .event("Purchase")
        .and_then(|e| e.property("currency"))
        .and_then(|p| p.values.clone())
        .expect("currency's values are recorded");
    assert!(currency.complete && currency.contains("EUR"));
    assert_eq!(m.row_counts.persons, 600);
    assert_eq!(
        scalar(&ctx, "select count(*) from persons").await as u64,
        m.row_counts.persons
    );
    assert_eq!(
        scalar(&ctx, "select count(*) from installations").await as u64,
        m.row_counts.installations
    );
    assert_eq!(
        scalar(&ctx, "select count(*) from events").await as u64,
        m.row_counts.events
    );
    let per_event: i64 = {
        let mut total = 0;
        for def in &m.catalog.events {
            total += scalar(&ctx, &format!("select count(*) from event_{}", def.name)).await;
        }
        total
    };
    assert_eq!(per_event as u64, m.row_counts.events);
    // The activity summary is stored beside the persons' attributes, in person order, and
    // replaces the writer's first persons file; a person without events counts 0 of them.
    assert!(m.activity_in_persons());
    assert!(!snap.dir().join("persons.parquet").exists());
    let summary = query(
        &ctx,
        "select count(*) = count(distinct p.person_id), \
                bool_and(p.applaunch__count_all = coalesce(e.n, 0)), \
                bool_and(p.applaunch__last_all is not distinct from e.last) \
         from persons p left join (select person_id, count(*) n, max(event_time) last \
                                   from event_applaunch group by person_id) e \
           on p.person_id = e.person_id",
    )
    .await;
    let row = arrow::util::pretty::pretty_format_batches(&summary)
        .unwrap()
        .to_string();
    assert!(row.matches("true").count() == 3, "{row}");
    let file = std::fs::File::open(snap.path(&m.persons[0].path)).unwrap();
    let ids: Vec<i64> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                let ids = b.column_by_name("person_id").unwrap();
                ids.as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
    assert!(ids.is_sorted(), "persons are not in person order");
    // Realistic proportions, loosely: ~60% identified, more installations than persons.
    let identified = scalar(&ctx, "select count(*) from persons where identified").await;
    assert!(
        (300..=420).contains(&identified),
        "identified persons: {identified}"
    );
    assert!(m.row_counts.installations > m.row_counts.persons);
    // 60 days of history: at least ~10 events a person on average.
    assert!(
        m.row_counts.events > 10 * m.row_counts.persons,
        "history too thin: {}",
        m.row_counts.events
    );
}

#[tokio::test]
async fn one_primary_device_per_person_with_active_devices() {
    let (ctx, _) = session(common::shared_store()).await;
    let bad = scalar(
        &ctx,
        "select count(*) from (
            select person_id,
                   sum(case when primary_device then 1 else 0 end) as primaries,
                   sum(case when state <> 'uninstalled' then 1 else 0 end) as active
            from installations group by person_id)
         where (active > 0 and primaries <> 1) or (active = 0 and primaries <> 0)",
    )
    .await;
    assert_eq!(bad, 0);
    assert_eq!(
        scalar(
            &ctx,
            "select count(*) from installations where state = 'uninstalled' and primary_device"
        )
        .await,
        0
    );
    // The test must be able to fail: there are persons with several active devices.
    let multi = scalar(
        &ctx,
        "select count(*) from (select person_id from installations where state <> 'uninstalled'
         group by person_id having count(*) > 1)",
    )
    .await;
    assert!(multi > 10, "{multi}");
}

#[tokio::test]
async fn installations_link_to_the_right_kind_of_person() {
    let (ctx, _) = session(common::shared_store()).await;
    let orphans = scalar(&ctx, "select count(*) from installations i left join persons p using (person_id) where p.person_id is null").await;
    assert_eq!(orphans, 0);
    let wrong = scalar(
        &ctx,
        "select count(*) from installations i join persons p using (person_id)
         where (i.state in ('anonymous', 'depersonalized') and p.identified)
            or (i.state = 'personalized' and not p.identified)",
    )
    .await;
    assert_eq!(wrong, 0);
    assert!(
        scalar(
            &ctx,
            "select count(*) from installations where state = 'depersonalized'"
        )
        .await
            > 0
    );
    let dup = scalar(
        &ctx,
        "select count(*) - count(distinct push_registration_id) from installations",
    )
    .await;
    assert_eq!(dup, 0);
}

#[tokio::test]
async fn app_launches_are_more_than_30_seconds_apart() {
    let (ctx, _) = session(common::shared_store()).await;
    let batches = query(
        &ctx,
        "select count(*), min(gap) from (
            select arrow_cast(event_time, 'Int64') - lag(arrow_cast(event_time, 'Int64'))
                   over (partition by installation_id order by event_time) as gap
            from event_AppLaunch) where gap is not null",
    )
    .await;
    let pairs = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    let min_gap = batches[0].column(1).as_primitive::<Int64Type>().value(0);
    assert!(pairs > 1000, "{pairs}");
    assert!(
        min_gap > 30_000_000,
        "two AppLaunch events {min_gap} µs apart"
    );
}

#[tokio::test]
async fn events_lie_in_the_history_and_in_their_partition() {
    let (ctx, snap) = session(common::shared_store()).await;
    let m = &snap.manifest;
    let outside = scalar(
        &ctx,
        &format!(
            "select count(*) from events where event_time < timestamp '{}' or event_time >= timestamp '{}'
             or day <> arrow_cast(event_time, 'Date32')",
            m.history_start.to_rfc3339(),
            m.as_of.to_rfc3339()
        ),
    )
    .await;
    assert_eq!(outside, 0);
}

#[tokio::test]
async fn lifecycle_events_match_the_installations() {
    let (ctx, _) = session(common::shared_store()).await;
    // Every installation has exactly one Install event, at installed_at, by a device of its own.
    let bad_installs = scalar(
        &ctx,
        "select count(*) from installations i left join event_Install e using (installation_id)
         where e.event_time is null or e.event_time <> i.installed_at",
    )
    .await;
    assert_eq!(bad_installs, 0);
    assert_eq!(
        scalar(
            &ctx,
            "select count(*) - count(distinct installation_id) from event_Install"
        )
        .await,
        0
    );
    // Uninstalled ⇔ an Uninstall event at uninstalled_at; nothing after it.
    let bad_uninstalls = scalar(
        &ctx,
        "select count(*) from installations i full join event_Uninstall e using (installation_id)
         where i.installation_id is null
            or (i.state = 'uninstalled') <> (e.event_time is not null)
            or e.event_time <> i.uninstalled_at",
    )
    .await;
    assert_eq!(bad_uninstalls, 0);
    assert!(scalar(&ctx, "select count(*) from event_Uninstall").await > 0);
    let after = scalar(
        &ctx,
        "select count(*) from events e join installations i using (installation_id)
         where i.uninstalled_at is not null and e.event_time > i.uninstalled_at",
    )
    .await;
    assert_eq!(after, 0);
    let before_install = scalar(
        &ctx,
        "select count(*) from events e join installations i using (installation_id) where e.event_time < i.installed_at",
    )
    .await;
    assert_eq!(before_install, 0);
    // After a depersonalize, the device's events belong to its new anonymous person; before, to
    // the identified person it left.
    let misfiled = scalar(
        &ctx,
        "select count(*) from events e
           join installations i on i.installation_id = e.installation_id
           join event_Depersonalize d on d.installation_id = e.installation_id
         where (e.event_time > d.event_time and e.person_id <> i.person_id)
            or (e.event_time < d.event_time and e.person_id = i.person_id)",
    )
    .await;
    assert_eq!(misfiled, 0);
}

#[tokio::test]
async fn event_files_are_sorted_by_person_then_time() {
    let snap = Store::open(common::shared_store())
        .unwrap()
        .snapshot(None)
        .unwrap();
    for e in snap
        .manifest
        .events
        .iter()
        .filter(|e| e.event == "AppLaunch")
        .take(20)
    {
        let file = std::fs::File::open(snap.path(&e.file.path)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1 << 20).unwrap();
        let mut previous: Option<(i64, i64)> = None;
        for batch in reader {
            let batch = batch.unwrap();
            let time = batch
                .column(0)
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            let person = batch.column(1).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let key = (person.value(i), time.value(i));
                assert!(
                    previous.is_none_or(|p| p <= key),
                    "{} is not sorted",
                    e.file.path
                );
                previous = Some(key);
            }
        }
    }
}

#[test]
fn generation_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = common::options(150, 20, 5, Partitioning::Month);
    let a = generate(&dir.path().join("a"), &opts).unwrap();
    let b = generate(
        &dir.path().join("b"),
        &GenerateOptions {
            threads: 1,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_ne!(a.snapshot_id, b.snapshot_id);
    let files = |g: &audience::generate::Generated| {
        let m = &g.manifest;
        m.persons
            .iter()
            .chain(&m.installations)
            .chain(m.events.iter().map(|e| &e.file))
            .count()
    };
    assert_eq!(files(&a), files(&b));
    for (fa, fb) in a.manifest.events.iter().zip(&b.manifest.events) {
        assert_eq!(
            (fa.event.as_str(), fa.period, fa.file.rows),
            (fb.event.as_str(), fb.period, fb.file.rows)
        );
    }
    // Persons carry the activity summary, so this also pins the summary's values.
    let persons = a.manifest.persons[0].path.rsplit('/').next().unwrap();
    assert_eq!(
        persons,
        b.manifest.persons[0].path.rsplit('/').next().unwrap()
    );
    for rel in [persons, "installations.parquet"] {
        assert_eq!(
            std::fs::read(a.dir.join(rel)).unwrap(),
            std::fs::read(b.dir.join(rel)).unwrap(),
            "{rel} differs"
        );
    }
    let c = generate(
        &dir.path().join("c"),
        &common::options(150, 20, 6, Partitioning::Month),
    )
    .unwrap();
    assert_ne!(
        std::fs::read(a.dir.join(persons)).unwrap(),
        std::fs::read(c.dir.join(persons)).unwrap()
    );
}

use audience::generate::GenerateOptions;

/// The footer of a snapshot file.
fn footer(
    store: &std::path::Path,
    file: &audience::store::manifest::DataFile,
) -> parquet::file::metadata::ParquetMetaData {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(store.join(&file.path)).unwrap();
    SerializedFileReader::new(file).unwrap().metadata().clone()
}

/// 64-bit integers (keys, times, counts) are written delta-encoded and uncompressed, strings
/// with dictionaries: a dictionary of (nearly) unique keys only fills up, and plain pages of
/// keys decode ten times slower after snappy.
#[test]
fn integers_are_delta_encoded_and_strings_get_dictionaries() {
    use parquet::basic::{Compression, Encoding, Type};
    let store = common::shared_store();
    let snap = Store::open(store).unwrap().snapshot(None).unwrap();
    let m = &snap.manifest;
    let files = [
        &m.persons[0],
        &m.installations[0],
        &m.events[0].file,
        m.person_activity.as_ref().unwrap(),
    ];
    let (mut delta, mut dictionary) = (Vec::new(), Vec::new());
    for file in files {
        let footer = footer(store, file);
        let row_group = footer.row_group(0);
        for chunk in row_group.columns() {
            let name = chunk.column_path().string();
            let has_dictionary = chunk.dictionary_page_offset().is_some();
            if chunk.column_type() == Type::INT64 {
                assert!(
                    chunk
                        .encodings()
                        .any(|e| e == Encoding::DELTA_BINARY_PACKED)
                        && !has_dictionary
                        && chunk.compression() == Compression::UNCOMPRESSED,
                    "{}: {name} is {:?}, {:?}",
                    file.path,
                    chunk.encodings().collect::<Vec<_>>(),
                    chunk.compression()
                );
                delta.push(name);
            } else if chunk.column_type() == Type::BYTE_ARRAY {
                // Booleans and decimal keys never get one.
                assert!(has_dictionary, "{}: {name} has no dictionary", file.path);
                dictionary.push(name);
            }
        }
    }
    for column in ["person_id", "installation_id", "event_time", "installed_at"] {
        assert!(delta.iter().any(|c| c == column), "{column}: {delta:?}");
    }
    assert!(delta.iter().any(|c| c.contains("__count_")), "{delta:?}");
    assert!(dictionary.iter().any(|c| c == "platform"), "{dictionary:?}");
}

/// Every column has row-group statistics and an offset index (pages a scan can skip), and none
/// a bloom filter, but only the sort columns have page statistics: other columns' pages span
/// unordered values, and their column index only cost parsing.
#[test]
fn only_sort_columns_have_page_statistics() {
    let store = common::shared_store();
    let snap = Store::open(store).unwrap().snapshot(None).unwrap();
    let m = &snap.manifest;
    let files = [
        (&m.persons[0], vec!["person_id"]),
        (&m.installations[0], vec!["person_id", "installation_id"]),
        (&m.events[0].file, vec!["person_id", "event_time"]),
    ];
    for (file, sorted) in files {
        let footer = footer(store, file);
        let row_group = footer.row_group(0);
        let sorting: Vec<String> = row_group
            .sorting_columns()
            .expect("files record their order")
            .iter()
            .map(|c| {
                row_group
                    .column(c.column_idx as usize)
                    .column_path()
                    .string()
            })
            .collect();
        assert_eq!(sorting, sorted, "{}", file.path);
        let mut indexed = Vec::new();
        for chunk in row_group.columns() {
            let name = chunk.column_path().string();
            assert!(chunk.statistics().is_some(), "{}: {name}", file.path);
            assert!(
                chunk.offset_index_offset().is_some(),
                "{}: {name}",
                file.path
            );
            if chunk.column_index_offset().is_some() {
                indexed.push(name);
            }
        }
        indexed.sort();
        let mut expected = sorted.clone();
        expected.sort();
        assert_eq!(
            indexed, expected,
            "{}: columns with page statistics",
            file.path
        );
    }
}

/// Event tables built from the manifest prune periods exactly as listed ones do, and their
/// scans name only the files of the periods asked for.
#[tokio::test]
async fn manifest_event_tables_read_what_listed_ones_read() {
    let (manifest_ctx, snap) = session(common::shared_store()).await;
    let listed_ctx = SessionContext::new();
    snap.register(&listed_ctx, TableFiles::Listed)
        .await
        .unwrap();
    let m = &snap.manifest;
    let day = m.partitioning.column();
    let periods: Vec<_> = m
        .events
        .iter()
        .filter(|e| e.event == "AppLaunch")
        .map(|e| e.period)
        .collect();
    let (first, last) = (periods[0], periods[periods.len() - 1]);
    let mid = periods[periods.len() / 2];
    for filter in [
        "true".to_string(),
        format!("{day} >= DATE '{mid}'"),
        format!("{day} >= DATE '{first}' AND {day} < DATE '{mid}' AND person_id % 3 = 0"),
        format!("{day} = DATE '{last}' OR {day} = DATE '{first}'"),
        format!("{day} > DATE '{last}'"),
    ] {
        let sql = format!(
            "select count(*), count(distinct person_id), max(event_time) \
             from event_AppLaunch where {filter}"
        );
        let show = |b: Vec<RecordBatch>| {
            arrow::util::pretty::pretty_format_batches(&b)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            show(query(&manifest_ctx, &sql).await),
            show(query(&listed_ctx, &sql).await),
            "{sql}"
        );
    }
    // Only the files from `mid` on are in the plan.
    let sql = format!("select sum(person_id) from event_AppLaunch where {day} >= DATE '{mid}'");
    let plan = manifest_ctx
        .sql(&sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let mut files = Vec::new();
    let mut stack = vec![plan];
    while let Some(node) = stack.pop() {
        let source = node
            .downcast_ref::<datafusion::datasource::source::DataSourceExec>()
            .and_then(|d| {
                d.data_source()
                    .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
            });
        if let Some(config) = source {
            for group in &config.file_groups {
                files.extend(group.iter().map(|f| f.path().to_string()));
            }
        }
        stack.extend(node.children().into_iter().cloned());
    }
    let mut expected: Vec<String> = m
        .events
        .iter()
        .filter(|e| e.event == "AppLaunch" && e.period >= mid)
        .map(|e| {
            snap.path(&e.file.path)
                .to_string_lossy()
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    files.sort();
    expected.sort();
    assert_eq!(files, expected);
}

/// A session starts with the persons and installations footers the open-time schema check
/// parsed, cached under the file locations and sizes its scans look them up by, so planning
/// does not parse them again.
#[tokio::test]
async fn sessions_start_with_the_footers_opening_read() {
    let (ctx, snap) = session(common::shared_store()).await;
    let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
    let m = &snap.manifest;
    for f in m.persons.iter().chain(&m.installations) {
        let path = common::shared_store().join(&f.path);
        let scanned = datafusion::datasource::listing::PartitionedFile::new(
            path.to_string_lossy().trim_start_matches('/'),
            f.bytes,
        )
        .object_meta;
        let entry = cache
            .get(&scanned.location)
            .unwrap_or_else(|| panic!("{} is not cached", f.path));
        assert!(entry.is_valid_for(&scanned), "{}", f.path);
    }
}

/// Persons and installations scans never load the page index, not even for a predicate on
/// the key that has one (`store::register::parquet_format`); event scans still prune pages.
#[tokio::test]
async fn persons_and_installations_scans_leave_the_page_index_unread() {
    let (ctx, _) = session(common::shared_store()).await;
    assert_eq!(pages_checked(&ctx, "persons").await, 0);
    assert_eq!(pages_checked(&ctx, "installations").await, 0);
    assert!(pages_checked(&ctx, "event_AppLaunch").await > 0);
}

/// Pages a scan of `table` for one person checked against the page index, from its metrics.
async fn pages_checked(ctx: &datafusion::prelude::SessionContext, table: &str) -> u64 {
    let sql = format!("EXPLAIN ANALYZE SELECT count(*) FROM {table} WHERE person_id = 5");
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    let metric = "page_index_pages_pruned=";
    let at = text
        .find(metric)
        .unwrap_or_else(|| panic!("{table}: {text}"));
    let rest = &text[at + metric.len()..];
    rest[..rest.find(' ').unwrap()].parse().unwrap()
}

/// Planning reads footers for statistics but leaves the page index to the scans that can use
/// it: after planning scans whose predicates name columns with a page index, the cached
/// metadata has none.
#[tokio::test]
async fn planning_leaves_the_page_index_unread() {
    use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
    let (ctx, snap) = session(common::shared_store()).await;
    for sql in [
        "SELECT count(*) FROM installations WHERE person_id > 5",
        "SELECT count(*) FROM persons WHERE person_id > 5",
        "SELECT count(*) FROM event_AppLaunch WHERE person_id > 5",
    ] {
        let df = ctx.sql(sql).await.unwrap();
        df.create_physical_plan().await.unwrap();
    }
    let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
    let m = &snap.manifest;
    let launches = m.events.iter().filter(|e| e.event == "AppLaunch");
    let mut checked = 0;
    for f in m
        .persons
        .iter()
        .chain(&m.installations)
        .chain(launches.map(|e| &e.file))
    {
        let path = common::shared_store().join(&f.path);
        let location = datafusion::datasource::listing::PartitionedFile::new(
            path.to_string_lossy().trim_start_matches('/'),
            f.bytes,
        )
        .object_meta
        .location;
        let entry = cache
            .get(&location)
            .unwrap_or_else(|| panic!("{} is not cached", f.path));
        let metadata = entry
            .file_metadata
            .as_any()
            .downcast_ref::<CachedParquetMetaData>()
            .expect("Parquet metadata")
            .parquet_metadata();
        assert!(metadata.column_index().is_none(), "{}", f.path);
        assert!(metadata.offset_index().is_none(), "{}", f.path);
        checked += 1;
    }
    assert!(checked > 2, "{checked} files");
}
