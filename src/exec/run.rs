//! Running a LogicalPlan: counting, streaming rows, explaining.

use crate::error::Result;
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{displayable, SendableRecordBatchStream};
use datafusion::prelude::lit;
use datafusion::prelude::SessionContext;
use std::time::{Duration, Instant};

/// Number of rows the plan returns (computed by DataFusion, never by collecting the rows).
pub async fn count_rows(ctx: &SessionContext, plan: LogicalPlan) -> Result<u64> {
    Ok(count_rows_timed(ctx, plan).await?.0)
}

/// Where a query's time went after the segment was planned, for `count --timings`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// DataFusion's logical optimizer.
    pub optimize: Duration,
    /// Physical planning: reading footers for statistics, the physical optimizer.
    pub physical: Duration,
    /// Running the physical plan.
    pub execute: Duration,
}

/// [`count_rows`], with the time of each phase. The phases are those of `DataFrame::collect`,
/// run one by one.
pub async fn count_rows_timed(ctx: &SessionContext, plan: LogicalPlan) -> Result<(u64, Phases)> {
    let state = ctx.state();
    let started = Instant::now();
    let optimized = state.optimize(&counted(ctx, plan)?)?;
    let optimized_at = Instant::now();
    // Not `state.create_physical_plan`, which would optimize again.
    let physical = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await?;
    let planned_at = Instant::now();
    let batches = datafusion::physical_plan::collect(physical, ctx.task_ctx()).await?;
    let phases = Phases {
        optimize: optimized_at - started,
        physical: planned_at - optimized_at,
        execute: planned_at.elapsed(),
    };
    let n = batches
        .first()
        .map_or(0, |b| b.column(0).as_primitive::<Int64Type>().value(0)) as u64;
    Ok((n, phases))
}

/// The plan counting `plan`'s rows: one row, `n`.
pub fn counted(ctx: &SessionContext, plan: LogicalPlan) -> Result<LogicalPlan> {
    let df = DataFrame::new(ctx.state(), plan).aggregate(vec![], vec![count(lit(1)).alias("n")])?;
    Ok(df.into_unoptimized_plan())
}

/// The plan's rows as a stream of batches (bounded memory for large audiences).
pub async fn stream(ctx: &SessionContext, plan: LogicalPlan) -> Result<SendableRecordBatchStream> {
    Ok(DataFrame::new(ctx.state(), plan).execute_stream().await?)
}

/// The optimized logical plan and the physical plan, as text; with `analyze`, the physical plan
/// is run and shown with its metrics (rows, time, files and row groups pruned).
pub async fn explain(
    ctx: &SessionContext,
    plan: LogicalPlan,
    analyze: bool,
) -> Result<(String, String)> {
    let state = ctx.state();
    let optimized = state.optimize(&plan)?;
    let physical = state.create_physical_plan(&optimized).await?;
    let logical = optimized.display_indent().to_string();
    let mut out = String::new();
    if analyze {
        let task = ctx.task_ctx();
        let _ = datafusion::physical_plan::collect(physical.clone(), task).await?;
        out.push_str(
            &DisplayableExecutionPlan::with_metrics(physical.as_ref())
                .indent(true)
                .to_string(),
        );
        out.push_str(
            "\n(metrics from running the plan; scans show files, row groups and rows pruned)\n",
        );
    } else {
        out.push_str(&displayable(physical.as_ref()).indent(true).to_string());
    }
    Ok((logical, out))
}
