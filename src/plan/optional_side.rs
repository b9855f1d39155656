//! The optional side of an outer or anti join, made safe for Ballista.
//!
//! Ballista 55's adaptive planner never finishes a job in which the optional side of a left or
//! anti join turns out empty at run time while the join carries a projection: it replaces that
//! side with an empty plan, cannot drop the join (the projection stops it), plans a new stage
//! for the empty side, and loops (`did(A within 30d) or did(B where …)` with no B matching hung
//! forever). On a cluster every optional side therefore gets one extra row with a NULL key:
//! the side is never empty, and a NULL key joins nothing, so audiences are the same. Local
//! plans are left as they are.

use super::sources::TableSources;
use datafusion::common::Column;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, GroupingSet, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::col;

/// `plan` as the optional side of a join on `key`: unchanged locally; on a cluster, with one
/// never-matching row appended (an alias on top stays on top).
pub fn optional_side(sources: &TableSources, plan: LogicalPlan, key: &str) -> Result<LogicalPlan> {
    if !sources.on_cluster {
        return Ok(plan);
    }
    with_unmatched_row(plan, key)
}

fn with_unmatched_row(plan: LogicalPlan, key: &str) -> Result<LogicalPlan> {
    if let LogicalPlan::SubqueryAlias(alias) = plan {
        let inner = with_unmatched_row(alias.input.as_ref().clone(), key)?;
        return LogicalPlanBuilder::from(inner)
            .alias(alias.alias.clone())?
            .build();
    }
    // Grouping by every column and by nothing keeps the rows (a side's rows are distinct or
    // used only for existence and extremes) and adds the grand-total row, all NULL, which joins
    // nothing, even over no rows. A union with a literal row would be simpler, but Ballista 55
    // cannot account a stage whose tasks run different union branches (their metrics differ).
    if !plan.schema().fields().iter().any(|f| f.name() == key) {
        return Err(DataFusionError::Internal(format!(
            "an optional join side has no column {key}"
        )));
    }
    let columns: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let sets = Expr::GroupingSet(GroupingSet::GroupingSets(vec![columns, vec![]]));
    LogicalPlanBuilder::from(plan)
        .aggregate(vec![sets], Vec::<Expr>::new())?
        .project(names.iter().map(|n| col(Column::from_name(n))))?
        .build()
}
