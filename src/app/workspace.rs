//! A workspace: one snapshot opened in one DataFusion session (local or on a cluster), and the
//! jobs a front end runs on it. The command line opens one per process; the server keeps one
//! warm per snapshot and shares it between requests.

use super::channel::Channel;
use super::columns;
use super::matched::{Matched, MatchedCache, Universe, Warm};
use super::segments::SegmentSource;
use crate::catalog::Catalog;
use crate::check::typed::{TPred, TypedSegment};
use crate::check::{compile, SavedSegments};
use crate::error::{Error, Result};
use crate::exec::cluster::{check_cluster_sees, scanned_tables};
use crate::exec::{open_session, run, Cluster, SessionOptions};
use crate::export::{export_split, export_stream, ExportSummary, Format, Metadata, Progress};
use crate::plan::lower::plan_points;
use crate::plan::{
    plan_keys, plan_segment, plan_segments, OutputColumn, PlanOptions, TableSources, Target,
};
use crate::store::{Snapshot, Store};
use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a segment is evaluated: at which time, returning what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub as_of: DateTime<Utc>,
    pub target: Target,
}

/// Where a count's time went (`count --timings`): planning the segment, then DataFusion's
/// phases.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub plan: Duration,
    pub optimize: Duration,
    pub physical: Duration,
    pub execute: Duration,
}

/// A segment's plans, as `explain` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explained {
    /// The segment with names resolved and saved segments inlined.
    pub resolved: String,
    pub logical: String,
    pub physical: String,
}

/// A segment's audience as the editor shows it: both targets, the reachable audience of each
/// channel, and each top-level condition's audience alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CountReport {
    pub installations: u64,
    pub persons: u64,
    /// Push: installations reachable by push; email, sms: persons with an address.
    pub push: u64,
    pub email: u64,
    pub sms: u64,
    /// (installations, persons) of each condition alone.
    pub conditions: Vec<(u64, u64)>,
}

/// What an export writes besides the segment: its channel, columns and format.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub as_of: DateTime<Utc>,
    pub target: Target,
    pub channel: Option<Channel>,
    /// Output column names (the defaults of the target and channel when empty).
    pub columns: Vec<String>,
    pub format: Format,
}

/// The target of an export for `channel`, checked against the one asked for: a channel fixes
/// its target, so asking for the other is the user's mistake rather than silently ignored.
pub fn export_target(asked: Option<Target>, channel: Option<Channel>) -> Result<Target> {
    match (asked, channel) {
        (Some(t), Some(c)) if t != c.target() => Err(Error::Invalid(format!(
            "the {} channel exports {}, not {}",
            c.name(),
            c.target().name(),
            t.name()
        ))),
        (_, Some(c)) => Ok(c.target()),
        (Some(t), None) => Ok(t),
        (None, None) => Ok(Target::Installations),
    }
}

/// Warnings about running `typed` at `as_of` on a snapshot: an as-of outside its history, and
/// attribute conditions when the snapshot is later than the as-of (its values are not those at
/// the as-of time; a snapshot at or before it serves attributes as they were then).
pub fn as_of_warnings(
    m: &crate::store::manifest::Manifest,
    typed: &TypedSegment,
    as_of: DateTime<Utc>,
    text: &str,
) -> Vec<crate::diagnostic::Diagnostic> {
    use crate::check::typed::Field;
    use crate::diagnostic::{Code, Diagnostic};
    let whole = crate::base::span::Span::new(0, text.len());
    let day = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = Vec::new();
    if as_of > m.as_of {
        out.push(
            Diagnostic::warning(
                Code::AsOfOutsideHistory,
                whole,
                format!(
                    "the as-of time {} is after the snapshot's as-of {}: events after {} are \
                     not in the store",
                    day(as_of),
                    day(m.as_of),
                    day(m.as_of)
                ),
            )
            .with_hint("a later snapshot holds later events (`audience info` lists snapshots)"),
        );
    } else if as_of < m.history_start {
        out.push(Diagnostic::warning(
            Code::AsOfOutsideHistory,
            whole,
            format!(
                "the as-of time {} is before the snapshot's history starts ({}): no event is \
                 that old",
                day(as_of),
                day(m.history_start)
            ),
        ));
    }
    let mut attributes = false;
    typed.root.visit_fields(&mut |f| {
        attributes |= matches!(f, Field::Attribute { .. } | Field::Age);
    });
    // Later than the snapshot, its values are the newest known at the as-of: the rule, no
    // surprise. Earlier, they are values from after the as-of time.
    if attributes && as_of < m.as_of {
        out.push(
            Diagnostic::warning(
                Code::AttributesAtSnapshot,
                whole,
                format!(
                    "attribute conditions use the snapshot's values (as of {}), not the values \
                     at {}; event windows move to {}",
                    day(m.as_of),
                    day(as_of),
                    day(as_of)
                ),
            )
            .with_hint(
                "values at an earlier time come from a snapshot at or before it (`audience \
                 info` lists snapshots; without --snapshot, the newest at or before the as-of \
                 serves)",
            ),
        );
    }
    out
}

/// The top-level `and` conditions of a segment: each one's text, its span in the segment's
/// text, and the condition alone as a typed segment (one item: the whole segment).
pub fn conditions(
    src: &SegmentSource,
    typed: &TypedSegment,
) -> Vec<(String, crate::base::span::Span, TypedSegment)> {
    use crate::check::typed::TPred;
    use crate::syntax::ast::Pred;
    let whole =
        |span: crate::base::span::Span| vec![(src.text.trim().to_string(), span, typed.clone())];
    let Ok(seg) = crate::syntax::parse(&src.text) else {
        return Vec::new();
    };
    let mut root = &seg.root;
    while let Pred::Group(inner, _) = root {
        root = inner;
    }
    match (root, &typed.root) {
        (Pred::And(items), TPred::And(typed_items)) if items.len() == typed_items.len() => items
            .iter()
            .zip(typed_items)
            .map(|(p, t)| {
                let span = p.span();
                let text = src.text.get(span.start..span.end).unwrap_or_default();
                (text.to_string(), span, TypedSegment::of(t.clone()))
            })
            .collect(),
        _ => whole(root.span()),
    }
}

/// Parses and checks a segment against `catalog` (what `check` needs: no session).
pub fn compile_segment(
    catalog: &Catalog,
    src: &SegmentSource,
    saved: &dyn SavedSegments,
) -> Result<TypedSegment> {
    compile(&src.text, catalog, saved).map_err(|d| Error::segment(&src.name, &src.text, d))
}

pub struct Workspace {
    snapshot: Snapshot,
    ctx: SessionContext,
    sources: TableSources,
    cluster: Cluster,
    /// Tables the cluster was shown to see in full (checked once per table, before first use).
    cluster_checked: Mutex<BTreeSet<String>>,
    /// What opening the store noticed (directories skipped), for the front end to show.
    warnings: Vec<String>,
    /// The pairs recent conditions matched, when the front end keeps the workspace warm.
    matched: Option<MatchedCache>,
}

impl Workspace {
    /// Opens snapshot `id` (the latest when `None`) of the store at `store`.
    pub async fn open(store: &Path, id: Option<&str>, opts: &SessionOptions) -> Result<Workspace> {
        Workspace::open_at(store, id, None, opts).await
    }

    /// Opens the snapshot a run at `as_of` reads: `id` when given, else the one serving
    /// `as_of` (the newest at or before it, else the earliest: [`Store::serving_id`]), else
    /// the latest.
    pub async fn open_at(
        store: &Path,
        id: Option<&str>,
        as_of: Option<DateTime<Utc>>,
        opts: &SessionOptions,
    ) -> Result<Workspace> {
        let store = Store::open(store)?;
        let id = match (id, as_of) {
            (Some(id), _) => Some(id.to_string()),
            (None, Some(at)) => Some(store.serving_id(at)?),
            (None, None) => None,
        };
        let mut w = Workspace::new(store.snapshot(id.as_deref())?, opts).await?;
        w.warnings = store.warnings().to_vec();
        Ok(w)
    }

    /// A session over an opened snapshot.
    pub async fn new(snapshot: Snapshot, opts: &SessionOptions) -> Result<Workspace> {
        let ctx = open_session(&snapshot, opts).await?;
        let mut sources = TableSources::from_session(&ctx, &snapshot.manifest).await?;
        sources.on_cluster = opts.cluster != Cluster::Local;
        Ok(Workspace {
            snapshot,
            ctx,
            sources,
            cluster: opts.cluster.clone(),
            cluster_checked: Mutex::default(),
            warnings: Vec::new(),
            matched: None,
        })
    }

    /// Keeps the pairs each condition of a count report matched, up to about `budget` bytes,
    /// so that the next report re-evaluates only the conditions that changed (a server's
    /// editor asks for one a keystroke; see [`crate::app::matched`]). 0 keeps nothing.
    pub fn keep_matched(mut self, budget: usize) -> Workspace {
        self.matched = (budget > 0).then(|| MatchedCache::new(budget));
        self
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The values the snapshot records for an attribute (few-valued strings only).
    pub fn values(&self, entity: crate::catalog::Entity, name: &str) -> Option<&[(String, u64)]> {
        let a = self
            .catalog()
            .attribute(entity, name, false)
            .or_else(|| self.catalog().attribute(entity, name, true))?;
        a.values.as_ref().map(|v| v.top.as_slice())
    }

    /// The values the snapshot records for an event's property.
    pub fn property_values(&self, event: &str, property: &str) -> Option<&[(String, u64)]> {
        let p = self.catalog().event(event)?.property(property)?;
        p.values.as_ref().map(|v| v.top.as_slice())
    }

    /// What opening the store noticed and skipped.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn catalog(&self) -> &Catalog {
        &self.snapshot.manifest.catalog
    }

    /// The session the snapshot's tables are registered in.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// Hand-written SQL over the snapshot's tables (`persons`, `installations`, `events`,
    /// `event_<Name>`), with the session settings segments run with.
    pub async fn sql(&self, text: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(text).await?.collect().await?)
    }

    /// A query at `as_of` (the snapshot's own as-of by default).
    pub fn query(&self, as_of: Option<DateTime<Utc>>, target: Target) -> Query {
        Query {
            as_of: as_of.unwrap_or(self.snapshot.manifest.as_of),
            target,
        }
    }

    /// Parses and checks a segment against this snapshot's catalog.
    pub fn compile(&self, src: &SegmentSource, saved: &dyn SavedSegments) -> Result<TypedSegment> {
        compile_segment(self.catalog(), src, saved)
    }

    /// [`Workspace::compile`] for a run at `as_of` (when one is asked for): the checker's
    /// warnings, and those about the as-of time itself.
    pub fn check(
        &self,
        src: &SegmentSource,
        saved: &dyn SavedSegments,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<TypedSegment> {
        let mut typed = self.compile(src, saved)?;
        if let Some(at) = as_of {
            typed.warnings.extend(as_of_warnings(
                &self.snapshot.manifest,
                &typed,
                at,
                &src.text,
            ));
        }
        Ok(typed)
    }

    /// On a cluster, checks once per table that it sees the snapshot's files for the tables
    /// `plan` reads (a scheduler that cannot list them would plan an empty scan).
    async fn ready(&self, plan: &LogicalPlan) -> Result<()> {
        if self.cluster == Cluster::Local {
            return Ok(());
        }
        let checked = |t: &String| {
            self.cluster_checked
                .lock()
                .map(|c| c.contains(t))
                .unwrap_or(false)
        };
        let tables: BTreeSet<String> = scanned_tables(plan)
            .into_iter()
            .filter(|t| !checked(t))
            .collect();
        check_cluster_sees(&self.ctx, &self.snapshot, &self.cluster, &tables).await?;
        if let Ok(mut c) = self.cluster_checked.lock() {
            c.extend(tables);
        }
        Ok(())
    }

    async fn plan(&self, seg: &TypedSegment, opts: &PlanOptions) -> Result<LogicalPlan> {
        let plan = plan_segment(seg, &self.sources, opts)?;
        self.ready(&plan).await?;
        Ok(plan)
    }

    /// The audience's size.
    pub async fn count(&self, seg: &TypedSegment, q: Query) -> Result<u64> {
        Ok(self.count_timed(seg, q).await?.0)
    }

    /// The audience's size and where the time went.
    pub async fn count_timed(&self, seg: &TypedSegment, q: Query) -> Result<(u64, Timings)> {
        let started = Instant::now();
        let plan = plan_segment(seg, &self.sources, &PlanOptions::keys(q.as_of, q.target))?;
        let planned = started.elapsed();
        self.ready(&plan).await?;
        let (n, phases) = run::count_rows_timed(&self.ctx, plan).await?;
        Ok((
            n,
            Timings {
                plan: planned,
                optimize: phases.optimize,
                physical: phases.physical,
                execute: phases.execute,
            },
        ))
    }

    fn row_options(
        &self,
        q: Query,
        channel: Option<Channel>,
        columns: &[String],
        lists_as_text: bool,
    ) -> Result<PlanOptions> {
        let mut names = columns.to_vec();
        if let Some(c) = channel {
            // A channel's list always carries its address, whatever the columns asked.
            let address = c.address_column();
            if !names.is_empty() && !names.iter().any(|n| n.trim().eq_ignore_ascii_case(address)) {
                names.push(address.to_string());
            }
        }
        Ok(PlanOptions {
            as_of: q.as_of,
            target: q.target,
            columns: columns::resolve(self.catalog(), &names, q.target, channel)?,
            extra: channel.map(|c| c.condition(self.catalog())).transpose()?,
            lists_as_text,
        })
    }

    /// A page of the audience: `limit` rows (all when `None`) after `offset`, with `columns`;
    /// the rows' schema even when there are none. A page is in the order of the target's key,
    /// so pages do not overlap; with matched pairs kept its keys come from them, and only their
    /// rows are read.
    pub async fn preview(
        &self,
        seg: &TypedSegment,
        q: Query,
        columns: &[String],
        offset: usize,
        limit: Option<usize>,
        lists_as_text: bool,
    ) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
        use datafusion::common::Column;
        use datafusion::prelude::Expr;
        let mut opts = self.row_options(q, None, columns, lists_as_text)?;
        let shown = opts.columns.len();
        opts.columns.push(key_column(q.target));
        let in_key_order = || vec![Expr::Column(Column::from_name(PAGE_KEY)).sort(true, false)];
        let plan = match (&self.matched, limit) {
            (Some(cache), Some(limit)) => {
                let (keys, persons) = self.page_keys(cache, seg, q, offset, limit).await?;
                LogicalPlanBuilder::from(plan_keys(&keys, &persons, &self.sources, &opts)?)
                    .sort(in_key_order())?
            }
            (None, Some(limit)) => LogicalPlanBuilder::from(self.plan(seg, &opts).await?)
                .sort(in_key_order())?
                .limit(offset, Some(limit))?,
            // Every row: no order asked for, none paid for.
            (_, None) => {
                LogicalPlanBuilder::from(self.plan(seg, &opts).await?).limit(offset, None)?
            }
        }
        .build()?;
        let shown: Vec<Expr> = plan.schema().fields()[..shown]
            .iter()
            .map(|f| Expr::Column(Column::from_name(f.name())))
            .collect();
        let plan = LogicalPlanBuilder::from(plan).project(shown)?.build()?;
        let stream = run::stream(&self.ctx, plan).await?;
        let schema = stream.schema();
        Ok((schema, stream.try_collect().await?))
    }

    /// The target's keys from `offset`, at most `limit`, in key order, from matched pairs; and
    /// their persons.
    async fn page_keys(
        &self,
        cache: &MatchedCache,
        seg: &TypedSegment,
        q: Query,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        let (parts, _) = report_wants(seg, &[], &[]);
        let warm = cache.warm(|| self.warm_pairs()).await?;
        let found = self.matched_pairs(cache, &warm, &parts, q.as_of).await?;
        let u = &warm.universe;
        let m = u.all_of(&found.iter().map(|m| m.as_ref()).collect::<Vec<_>>());
        Ok(match q.target {
            Target::Installations => m
                .installations
                .ones()
                .skip(offset)
                .take(limit)
                .map(|i| (u.installation_id(i), u.owner_id(i)))
                .unzip(),
            Target::Persons => {
                let keys: Vec<i64> = m
                    .persons
                    .ones()
                    .skip(offset)
                    .take(limit)
                    .map(|p| u.person_id(p))
                    .collect();
                (keys.clone(), keys)
            }
        })
    }

    /// The audience's rows as a stream (bounded memory for any audience size).
    pub async fn rows(
        &self,
        seg: &TypedSegment,
        q: Query,
        channel: Option<Channel>,
        columns: &[String],
        format: Format,
    ) -> Result<SendableRecordBatchStream> {
        let opts = self.row_options(q, channel, columns, format.lists_as_text())?;
        let plan = self.plan(seg, &opts).await?;
        run::stream(&self.ctx, plan).await
    }

    /// Exports each segment to its file. Several segments are one query over shared scans,
    /// split into their files by per-segment flag columns. Dropping the future (an interrupt,
    /// a cancelled job) leaves no file behind.
    pub async fn export(
        &self,
        jobs: &[(TypedSegment, PathBuf)],
        spec: &ExportSpec,
        progress: Option<&Progress>,
    ) -> Result<Vec<ExportSummary>> {
        let jobs: Vec<(TypedSegment, PathBuf, Metadata)> = jobs
            .iter()
            .map(|(t, p)| (t.clone(), p.clone(), Metadata::default()))
            .collect();
        self.export_with(&jobs, spec, progress).await
    }

    /// [`Workspace::export`], each file with its metadata.
    pub async fn export_with(
        &self,
        jobs: &[(TypedSegment, PathBuf, Metadata)],
        spec: &ExportSpec,
        progress: Option<&Progress>,
    ) -> Result<Vec<ExportSummary>> {
        let q = Query {
            as_of: spec.as_of,
            target: spec.target,
        };
        let one_by_one = jobs.len() == 1
            // Ballista 55 never finishes some shared persons plans (per-person flags over an
            // installation-scoped aggregate), so on a cluster those run one by one.
            || (self.cluster != Cluster::Local && spec.target == Target::Persons);
        if one_by_one {
            let mut done = Vec::new();
            for (seg, out, meta) in jobs {
                let stream = self
                    .rows(seg, q, spec.channel, &spec.columns, spec.format)
                    .await?;
                done.push(export_stream(stream, out, spec.format, meta, progress).await?);
            }
            return Ok(done);
        }
        let opts = self.row_options(q, spec.channel, &spec.columns, spec.format.lists_as_text())?;
        let segments: Vec<&TypedSegment> = jobs.iter().map(|(s, ..)| s).collect();
        let plan = plan_segments(&segments, &self.sources, &opts)?;
        self.ready(&plan).await?;
        let stream = run::stream(&self.ctx, plan).await?;
        let outs: Vec<(&Path, &Metadata)> =
            jobs.iter().map(|(_, out, m)| (out.as_path(), m)).collect();
        export_split(stream, &outs, spec.format, progress).await
    }

    /// The audiences of several segments at once, one count each: one query over shared scans
    /// (as an export job), each segment a flag column counted where true.
    pub async fn count_each(&self, segs: &[&TypedSegment], q: Query) -> Result<Vec<u64>> {
        if segs.is_empty() {
            return Ok(Vec::new());
        }
        let plan = plan_segments(segs, &self.sources, &PlanOptions::keys(q.as_of, q.target))?;
        self.ready(&plan).await?;
        self.count_flags(plan, segs.len()).await
    }

    /// How many rows of `plan` have each of its `n` flag columns ([`crate::plan::segment_flag`])
    /// true, in one aggregate.
    async fn count_flags(&self, plan: LogicalPlan, n: usize) -> Result<Vec<u64>> {
        let plan = flags_counted(plan, n)?;
        let batches: Vec<RecordBatch> = run::stream(&self.ctx, plan).await?.try_collect().await?;
        let row = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| Error::Internal("an aggregate returned no row".into()))?;
        (0..n)
            .map(|k| {
                row.column(k)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .map(|a| a.value(0) as u64)
                    .ok_or_else(|| Error::Internal("a count is not an Int64".into()))
            })
            .collect()
    }

    /// The editor's report of a segment at `as_of`: two queries, one per target, each counting
    /// the segment, its conditions alone and its channels' reachable audiences in one pass.
    pub async fn count_report(
        &self,
        seg: &TypedSegment,
        conditions: &[TypedSegment],
        as_of: DateTime<Utc>,
    ) -> Result<CountReport> {
        if let Some(cache) = &self.matched {
            return self.report_matched(cache, seg, conditions, as_of).await;
        }
        let with = |c: Channel| -> Result<TypedSegment> {
            Ok(TypedSegment::of(crate::check::typed::TPred::And(vec![
                seg.root.clone(),
                c.condition(self.catalog())?,
            ])))
        };
        let (push, email, sms) = (
            with(Channel::Push)?,
            with(Channel::Email)?,
            with(Channel::Sms)?,
        );
        let mut installations: Vec<&TypedSegment> = vec![seg, &push];
        installations.extend(conditions);
        let mut persons: Vec<&TypedSegment> = vec![seg, &email, &sms];
        persons.extend(conditions);
        // The two queries run at once: each has phases that keep fewer cores busy than the
        // session has (planning, the final aggregate), which the other fills (benches/HISTORY.md).
        let (i, p) = futures::try_join!(
            self.count_each(
                &installations,
                self.query(Some(as_of), Target::Installations),
            ),
            self.count_each(&persons, self.query(Some(as_of), Target::Persons)),
        )?;
        Ok(CountReport {
            installations: i[0],
            push: i[1],
            persons: p[0],
            email: p[1],
            sms: p[2],
            conditions: i[2..].iter().copied().zip(p[3..].iter().copied()).collect(),
        })
    }

    /// [`Workspace::count_report`] from the pairs each condition matched: the segment's
    /// top-level `and` items, the channels and `conditions`, evaluated where not kept.
    async fn report_matched(
        &self,
        cache: &MatchedCache,
        seg: &TypedSegment,
        conditions: &[TypedSegment],
        as_of: DateTime<Utc>,
    ) -> Result<CountReport> {
        let channels = self.channel_conditions()?;
        let (wanted, parts) = report_wants(seg, conditions, &channels);
        let warm = cache.warm(|| self.warm_pairs()).await?;
        let found = self.matched_pairs(cache, &warm, &wanted, as_of).await?;
        Ok(report_of(&warm.universe, &found, parts))
    }

    /// Builds the snapshot's pairs for kept matched pairs now, rather than in the first count
    /// report (a server does it in the background when it opens a snapshot).
    pub async fn warm_matched(&self) -> Result<()> {
        if let Some(cache) = &self.matched {
            cache.warm(|| self.warm_pairs()).await?;
        }
        Ok(())
    }

    /// [`Workspace::count_report`] when every condition it needs is kept, so no query runs (a
    /// server answers it without waiting for a query slot); `None` when something must be
    /// evaluated, or nothing is kept.
    pub fn kept_report(
        &self,
        seg: &TypedSegment,
        conditions: &[TypedSegment],
        as_of: DateTime<Utc>,
    ) -> Result<Option<CountReport>> {
        let Some((cache, warm)) = self.matched.as_ref().and_then(|c| Some((c, c.warmed()?))) else {
            return Ok(None);
        };
        let channels = self.channel_conditions()?;
        let (wanted, parts) = report_wants(seg, conditions, &channels);
        let at = as_of.timestamp_micros();
        let found: Option<Vec<_>> = wanted
            .iter()
            .map(|p| cache.get(at, &condition_key(p)))
            .collect();
        Ok(found.map(|found| report_of(&warm.universe, &found, parts)))
    }

    fn channel_conditions(&self) -> Result<Vec<TPred>> {
        [Channel::Push, Channel::Email, Channel::Sms]
            .map(|c| c.condition(self.catalog()))
            .into_iter()
            .collect()
    }

    /// The pairs of this snapshot, and its persons without installations as a table of their own.
    async fn warm_pairs(&self) -> Result<Warm> {
        use crate::catalog::{INSTALLATION_ID, PERSON_ID};
        use crate::store::{INSTALLATIONS_TABLE, PERSONS_TABLE};
        let rows = |sql: String| async move { self.ctx.sql(&sql).await?.collect().await };
        let (installations, persons, orphans) = futures::try_join!(
            rows(format!(
                "SELECT {INSTALLATION_ID}, {PERSON_ID} FROM {INSTALLATIONS_TABLE}"
            )),
            rows(format!("SELECT {PERSON_ID} FROM {PERSONS_TABLE}")),
            rows(format!(
                "SELECT * FROM {PERSONS_TABLE} p WHERE NOT EXISTS (SELECT 1 FROM \
                 {INSTALLATIONS_TABLE} i WHERE i.{PERSON_ID} = p.{PERSON_ID})"
            )),
        )?;
        let universe = Universe::build(&installations, &persons)?;
        let schema = self.ctx.table_provider(PERSONS_TABLE).await?.schema();
        let orphans = datafusion::datasource::MemTable::try_new(schema, vec![orphans])?;
        let orphan_sources = self.sources.clone().with_table(
            PERSONS_TABLE,
            datafusion::datasource::provider_as_source(std::sync::Arc::new(orphans)),
        );
        Ok(Warm {
            universe,
            orphan_sources,
        })
    }

    /// The pairs each of `preds` matches at `as_of`: from the cache, else evaluated (all the
    /// missing ones in one query per side) and kept.
    async fn matched_pairs(
        &self,
        cache: &MatchedCache,
        warm: &Warm,
        preds: &[&TPred],
        as_of: DateTime<Utc>,
    ) -> Result<Vec<std::sync::Arc<Matched>>> {
        use std::sync::Arc;
        let at = as_of.timestamp_micros();
        let keys: Vec<String> = preds.iter().map(|p| condition_key(p)).collect();
        let mut found: Vec<Option<Arc<Matched>>> = keys.iter().map(|k| cache.get(at, k)).collect();
        let mut per_person: Vec<(String, TypedSegment)> = Vec::new();
        let mut per_pair: Vec<(String, TypedSegment)> = Vec::new();
        for ((k, p), hit) in keys.iter().zip(preds).zip(&found) {
            let seen = |v: &Vec<(String, TypedSegment)>| v.iter().any(|(s, _)| s == k);
            if hit.is_some() || seen(&per_person) || seen(&per_pair) {
                continue;
            }
            let seg = TypedSegment::of((*p).clone());
            if crate::plan::lower::reads_installations(&seg, &self.sources, as_of)? {
                per_pair.push((k.clone(), seg));
            } else {
                per_person.push((k.clone(), seg));
            }
        }
        let u = &warm.universe;
        let none: Vec<(String, TypedSegment)> = Vec::new();
        let (persons, installations, orphans) = futures::try_join!(
            self.flag_rows(&self.sources, &per_person, Target::Persons, as_of),
            self.flag_rows(&self.sources, &per_pair, Target::Installations, as_of),
            self.flag_rows(
                &warm.orphan_sources,
                if u.has_orphans() { &per_pair } else { &none },
                Target::Persons,
                as_of
            ),
        )?;
        let mut computed: Vec<(String, Arc<Matched>)> = Vec::new();
        for ((k, _), p) in per_person
            .iter()
            .zip(u.person_flags(&persons, per_person.len())?)
        {
            computed.push((k.clone(), Arc::new(u.of_persons(&p))));
        }
        let orphans = if u.has_orphans() {
            u.person_flags(&orphans, per_pair.len())?
        } else {
            vec![u.no_persons(); per_pair.len()]
        };
        for (((k, _), i), o) in per_pair
            .iter()
            .zip(u.installation_flags(&installations, per_pair.len())?)
            .zip(orphans)
        {
            computed.push((k.clone(), Arc::new(u.of_pairs(i, &o))));
        }
        for (k, m) in &computed {
            cache.put(at, k.clone(), m.clone());
        }
        for (slot, k) in found.iter_mut().zip(&keys) {
            if slot.is_none() {
                *slot = computed
                    .iter()
                    .find(|(c, _)| c == k)
                    .map(|(_, m)| m.clone());
            }
        }
        found
            .into_iter()
            .map(|m| m.ok_or_else(|| Error::Internal("a condition was not evaluated".into())))
            .collect()
    }

    /// The target's keys matching any of `segs`, with one flag column a segment.
    async fn flag_rows(
        &self,
        sources: &TableSources,
        segs: &[(String, TypedSegment)],
        target: Target,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<RecordBatch>> {
        if segs.is_empty() {
            return Ok(Vec::new());
        }
        let segs: Vec<&TypedSegment> = segs.iter().map(|(_, s)| s).collect();
        let plan = plan_segments(&segs, sources, &PlanOptions::keys(as_of, target))?;
        self.ready(&plan).await?;
        Ok(run::stream(&self.ctx, plan).await?.try_collect().await?)
    }

    /// The audience's size at each of `points` on this snapshot (a trend), in one query: the
    /// segment lowered once per point into one plan whose event aggregates are fused
    /// ([`plan_points`]), each point's flag counted in one aggregate.
    pub async fn trend(
        &self,
        seg: &TypedSegment,
        target: Target,
        points: &[DateTime<Utc>],
    ) -> Result<Vec<u64>> {
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let plan = self.trend_plan(seg, target, points).await?;
        self.count_flags(plan, points.len()).await
    }

    /// The plans of a trend's query on this snapshot (what [`Workspace::trend`] runs); with
    /// `analyze` run, with metrics.
    pub async fn explain_trend(
        &self,
        seg: &TypedSegment,
        target: Target,
        points: &[DateTime<Utc>],
        analyze: bool,
    ) -> Result<Explained> {
        let plan = self.trend_plan(seg, target, points).await?;
        let plan = flags_counted(plan, points.len())?;
        let (logical, physical) = run::explain(&self.ctx, plan, analyze).await?;
        Ok(Explained {
            resolved: seg.root.to_string(),
            logical,
            physical,
        })
    }

    /// The plan [`Workspace::trend`] counts the flags of: flag `k` holds for the audience at
    /// `points[k]` (what `explain` of a trend shows).
    pub async fn trend_plan(
        &self,
        seg: &TypedSegment,
        target: Target,
        points: &[DateTime<Utc>],
    ) -> Result<LogicalPlan> {
        let at = points
            .first()
            .copied()
            .unwrap_or(self.snapshot.manifest.as_of);
        let plan = plan_points(seg, &self.sources, &PlanOptions::keys(at, target), points)?;
        self.ready(&plan).await?;
        Ok(plan)
    }

    /// The plans of a segment: the one returning the audience's keys, or with `count` the one
    /// `count` runs; with `analyze` run, with metrics.
    pub async fn explain(
        &self,
        seg: &TypedSegment,
        q: Query,
        analyze: bool,
        count: bool,
    ) -> Result<Explained> {
        let mut plan = self
            .plan(seg, &PlanOptions::keys(q.as_of, q.target))
            .await?;
        if count {
            plan = run::counted(&self.ctx, plan)?;
        }
        let (logical, physical) = run::explain(&self.ctx, plan, analyze).await?;
        Ok(Explained {
            resolved: seg.root.to_string(),
            logical,
            physical,
        })
    }
}

/// The conditions a count report reads the matched pairs of: the segment's top-level `and`
/// items (the segment itself when it is no `and`), then the channels, then `conditions`; and
/// how many of the first kind there are.
fn report_wants<'a>(
    seg: &'a TypedSegment,
    conditions: &'a [TypedSegment],
    channels: &'a [TPred],
) -> (Vec<&'a TPred>, usize) {
    let mut wanted: Vec<&TPred> = match &seg.root {
        TPred::And(items) => items.iter().collect(),
        root => vec![root],
    };
    let parts = wanted.len();
    wanted.extend(channels);
    wanted.extend(conditions.iter().map(|c| &c.root));
    (wanted, parts)
}

/// The report from the matched pairs of [`report_wants`]' conditions, in its order.
fn report_of(u: &Universe, found: &[std::sync::Arc<Matched>], parts: usize) -> CountReport {
    let (parts_of, rest) = found.split_at(parts);
    let (channel_of, alone) = rest.split_at(3);
    let matched = u.all_of(&parts_of.iter().map(|m| m.as_ref()).collect::<Vec<_>>());
    let persons_on = |k: usize| u.all_of(&[&matched, &channel_of[k]]).persons.count();
    CountReport {
        installations: matched.installations.count(),
        persons: matched.persons.count(),
        push: matched
            .installations
            .and(&channel_of[0].installations)
            .count(),
        email: persons_on(1),
        sms: persons_on(2),
        conditions: alone
            .iter()
            .map(|m| (m.installations.count(), m.persons.count()))
            .collect(),
    }
}

/// The column a preview orders its page by (the target's key), dropped before it is shown.
const PAGE_KEY: &str = "__page_key";

fn key_column(target: Target) -> OutputColumn {
    OutputColumn {
        name: PAGE_KEY.into(),
        ..OutputColumn::key(target)
    }
}

/// What a condition's matched pairs are kept under. Debug, not Display: it spells out saved
/// segments' bodies and resolved types, so an edited saved segment is a new condition.
fn condition_key(p: &TPred) -> String {
    format!("{p:?}")
}

/// `plan` with its `n` flag columns ([`crate::plan::segment_flag`]) counted where true, in one
/// aggregate: one row, one count a flag. Each count is a sum of the flag as 0 or 1 (flags are
/// never null), not `count(*) FILTER (WHERE flag)`: DataFusion 55 filters the input once per
/// FILTER clause, which made counting a 30-point trend's flags its slowest step.
fn flags_counted(plan: LogicalPlan, n: usize) -> Result<LogicalPlan> {
    use datafusion::functions_aggregate::expr_fn::sum;
    use datafusion::prelude::{cast, coalesce, col, lit};
    let name = |k: usize| format!("n{k}");
    let sums = (0..n)
        .map(|k| {
            sum(cast(
                col(crate::plan::segment_flag(k)),
                arrow::datatypes::DataType::Int64,
            ))
            .alias(name(k))
        })
        .collect::<Vec<_>>();
    // No rows: a sum is null, the count 0.
    let counts = (0..n)
        .map(|k| coalesce(vec![col(name(k)), lit(0i64)]).alias(name(k)))
        .collect::<Vec<_>>();
    Ok(LogicalPlanBuilder::from(plan)
        .aggregate(Vec::<datafusion::prelude::Expr>::new(), sums)?
        .project(counts)?
        .build()?)
}

/// How far apart the as-of points of a trend are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Every {
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "1w")]
    Week,
}

impl Every {
    /// `1d` or `1w`, as the command line and the API write them.
    pub fn parse(text: &str) -> Result<Every> {
        match text.trim() {
            "1d" => Ok(Every::Day),
            "1w" => Ok(Every::Week),
            other => Err(Error::Invalid(format!(
                "every `{other}`: use 1d (daily points) or 1w (weekly points)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Every::Day => "1d",
            Every::Week => "1w",
        }
    }

    fn step(self) -> chrono::Duration {
        match self {
            Every::Day => chrono::Duration::days(1),
            Every::Week => chrono::Duration::weeks(1),
        }
    }
}

/// The most points a trend computes.
pub const MAX_TREND_POINTS: usize = 400;

/// The as-of points of a trend: `from`, then every `every` up to `to` inclusive.
pub fn trend_points(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    every: Every,
) -> Result<Vec<DateTime<Utc>>> {
    let day = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if to < from {
        return Err(Error::Invalid(format!(
            "the trend's `to` ({}) is before its `from` ({})",
            day(to),
            day(from)
        )));
    }
    let step = every.step();
    let n = (to - from).num_seconds() / step.num_seconds() + 1;
    if n > MAX_TREND_POINTS as i64 {
        return Err(Error::Invalid(format!(
            "a trend has at most {MAX_TREND_POINTS} points; from {} to {} every {} is {n}",
            day(from),
            day(to),
            every.name()
        )));
    }
    Ok((0..n as i32).map(|k| from + step * k).collect())
}

/// One point of a trend: the audience's size at an as-of time, and the snapshot that served it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrendPoint {
    pub as_of: DateTime<Utc>,
    pub count: u64,
    pub snapshot_id: String,
}

/// A trend's points, oldest first, and the warnings checking the segment at them raised.
#[derive(Debug, Clone)]
pub struct Trend {
    pub points: Vec<TrendPoint>,
    pub warnings: Vec<crate::diagnostic::Diagnostic>,
}

/// The snapshots serving a trend's points, each with the indexes of its points (in order): the
/// snapshot `id` for every point when one is given, else for each point the one serving it
/// (the newest at or before it, else the earliest: [`Store::serving_id`]).
pub fn trend_snapshots(
    store: &Store,
    id: Option<&str>,
    points: &[DateTime<Utc>],
) -> Result<Vec<(String, Vec<usize>)>> {
    if let Some(id) = id {
        return Ok(vec![(id.to_string(), (0..points.len()).collect())]);
    }
    let times = store.snapshot_times()?;
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (k, &at) in points.iter().enumerate() {
        let i = crate::store::serving(&times, at)
            .ok_or_else(|| Error::data(store.root(), "the store has no snapshots"))?;
        let id = &times[i].0;
        match groups.iter_mut().find(|(g, _)| g == id) {
            Some((_, members)) => members.push(k),
            None => groups.push((id.clone(), vec![k])),
        }
    }
    Ok(groups)
}

/// The trend of a segment: its audience at each of `points`, each point on the snapshot
/// `groups` assigns it ([`trend_snapshots`]), opened with `open`. One query per snapshot: the
/// segment is checked against that snapshot's catalog and all its points are counted at once
/// ([`Workspace::trend`]). The command line and the server both answer trends with this.
pub async fn trend<W, F, Fut>(
    groups: &[(String, Vec<usize>)],
    points: &[DateTime<Utc>],
    src: &SegmentSource,
    saved: &(dyn SavedSegments + Sync),
    target: Target,
    mut open: F,
) -> Result<Trend>
where
    W: std::ops::Deref<Target = Workspace>,
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<W>>,
{
    let mut counts: Vec<Option<(u64, String)>> = vec![None; points.len()];
    let mut warnings: Vec<crate::diagnostic::Diagnostic> = Vec::new();
    for (id, members) in groups {
        let w = open(id.clone()).await?;
        let mut typed = w.compile(src, saved)?;
        let at: Vec<DateTime<Utc>> = members.iter().map(|&k| points[k]).collect();
        // Each as-of warning once per snapshot, for the first point that raises it: the same
        // message but for the point's time is said already.
        let mut said: Vec<(crate::diagnostic::Code, String)> = Vec::new();
        for &t in &at {
            let time = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            for d in as_of_warnings(&w.snapshot().manifest, &typed, t, &src.text) {
                let key = (d.code, d.message.replace(&time, ""));
                if !said.contains(&key) {
                    said.push(key);
                    typed.warnings.push(d);
                }
            }
        }
        for d in typed.warnings.drain(..) {
            if !warnings.contains(&d) {
                warnings.push(d);
            }
        }
        let n = w.trend(&typed, target, &at).await?;
        for (&k, n) in members.iter().zip(n) {
            counts[k] = Some((n, w.snapshot().id().to_string()));
        }
    }
    let points = points
        .iter()
        .zip(counts)
        .map(|(&as_of, c)| {
            let (count, snapshot_id) =
                c.ok_or_else(|| Error::Internal("a trend point no snapshot served".into()))?;
            Ok(TrendPoint {
                as_of,
                count,
                snapshot_id,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Trend { points, warnings })
}
