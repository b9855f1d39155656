//! Puts a segment's pieces together: the person/installation pairs a segment ranges over, the
//! fused event aggregates joined to them, the predicate, and the target's output.
//!
//! A segment is a predicate over a person together with one of their installations (or none).
//! Only the tables a segment touches are joined: an installation-only segment scans
//! installations alone, a person-only segment persons alone.

use super::events::{AggPlans, EventAggregates, Scope};
use super::sources::TableSources;
use crate::catalog::{INSTALLATION_ID, PERSON_ID};
use crate::store::{INSTALLATIONS_TABLE, PERSONS_TABLE};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, JoinType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

/// Table aliases in the assembled plan.
pub const PERSON_ALIAS: &str = "p";
pub const INSTALLATION_ALIAS: &str = "i";

/// What the segment returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The installations of matching pairs.
    Installations,
    /// Each person with at least one matching pair (persons without installations included).
    Persons,
}

/// Which sides of the pair the predicate reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub person: bool,
    pub installation: bool,
}

pub fn person_col(name: &str) -> Expr {
    Expr::Column(Column::new(Some(PERSON_ALIAS), name))
}

pub fn installation_col(name: &str) -> Expr {
    Expr::Column(Column::new(Some(INSTALLATION_ALIAS), name))
}

fn scan(sources: &TableSources, table: &str, alias: &str) -> Result<LogicalPlanBuilder> {
    LogicalPlanBuilder::scan(table, sources.get(table)?, None)?.alias(alias)
}

/// Builds the plan returning the target's rows with `output` columns (already qualified with the
/// aliases above; person columns are only valid when the target or predicate joins persons).
pub fn assemble(
    sources: &TableSources,
    target: Target,
    mut needs: Needs,
    aggregates: &EventAggregates,
    predicate: Expr,
    output: Vec<Expr>,
) -> Result<LogicalPlan> {
    let AggPlans {
        plans: agg_plans,
        renames,
    } = aggregates.plans(sources)?;
    let predicate = predicate
        .transform(|e| {
            Ok(match &e {
                Expr::Column(c) if renames.contains_key(c) => {
                    Transformed::yes(Expr::Column(renames[c].clone()))
                }
                _ => Transformed::no(e),
            })
        })?
        .data;
    if agg_plans.iter().any(|(s, _, _)| *s == Scope::Installation) {
        needs.installation = true;
    }
    let output_uses = |alias: &str| {
        output.iter().any(|e| {
            e.column_refs()
                .iter()
                .any(|c| c.relation.as_ref().is_some_and(|r| r.table() == alias))
        })
    };
    match target {
        Target::Installations => {
            needs.installation = true;
            needs.person |= output_uses(PERSON_ALIAS);
        }
        Target::Persons => needs.person = true,
    }

    // The pairs.
    let mut pairs = match (needs.person, needs.installation, target) {
        (true, true, Target::Installations) => {
            scan(sources, INSTALLATIONS_TABLE, INSTALLATION_ALIAS)?.join(
                scan(sources, PERSONS_TABLE, PERSON_ALIAS)?.build()?,
                JoinType::Inner,
                (
                    vec![Column::new(Some(INSTALLATION_ALIAS), PERSON_ID)],
                    vec![Column::new(Some(PERSON_ALIAS), PERSON_ID)],
                ),
                None,
            )?
        }
        (true, true, Target::Persons) => scan(sources, PERSONS_TABLE, PERSON_ALIAS)?.join(
            scan(sources, INSTALLATIONS_TABLE, INSTALLATION_ALIAS)?.build()?,
            JoinType::Left,
            (
                vec![Column::new(Some(PERSON_ALIAS), PERSON_ID)],
                vec![Column::new(Some(INSTALLATION_ALIAS), PERSON_ID)],
            ),
            None,
        )?,
        (true, false, _) => scan(sources, PERSONS_TABLE, PERSON_ALIAS)?,
        (false, _, _) => scan(sources, INSTALLATIONS_TABLE, INSTALLATION_ALIAS)?,
    };
    let person_key = if needs.person {
        PERSON_ALIAS
    } else {
        INSTALLATION_ALIAS
    };
    for (scope, alias, plan) in agg_plans {
        let left = match scope {
            Scope::Person => Column::new(Some(person_key), PERSON_ID),
            Scope::Installation => Column::new(Some(INSTALLATION_ALIAS), INSTALLATION_ID),
        };
        let right = Column::new(Some(alias.as_str()), scope.key());
        pairs = pairs.join(plan, JoinType::Left, (vec![left], vec![right]), None)?;
    }
    let matching = pairs.filter(predicate)?;

    match target {
        Target::Installations => matching.project(output)?.build(),
        // A person matches once if any of their pairs matches.
        Target::Persons if needs.installation => {
            let keys = matching
                .project(vec![person_col(PERSON_ID).alias("matched_person_id")])?
                .build()?;
            scan(sources, PERSONS_TABLE, PERSON_ALIAS)?
                .join(
                    keys,
                    JoinType::LeftSemi,
                    (
                        vec![Column::new(Some(PERSON_ALIAS), PERSON_ID)],
                        vec![Column::from_name("matched_person_id")],
                    ),
                    None,
                )?
                .project(output)?
                .build()
        }
        Target::Persons => matching.project(output)?.build(),
    }
}
