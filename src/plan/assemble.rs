//! Puts a segment's pieces together: the person/installation pairs a segment ranges over, the
//! fused event aggregates joined to them, the predicate, and the target's output.
//!
//! A segment is a predicate over a person together with one of their installations (or none).
//! Only the tables a segment touches are joined: an installation-only segment scans
//! installations alone, a person-only segment persons alone.

use super::events::{AggPlans, EventAggregates, Scope};
use super::optional_side::optional_side;
use super::sources::TableSources;
use crate::catalog::{INSTALLATION_ID, PERSON_ID};
use crate::store::{INSTALLATIONS_TABLE, PERSONS_TABLE};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchemaRef, JoinType, ScalarValue};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::bool_or;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::prelude::{col, lit};
use std::collections::HashSet;

/// Table aliases in the assembled plan.
pub const PERSON_ALIAS: &str = "p";
pub const INSTALLATION_ALIAS: &str = "i";

/// What the segment returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The installations of matching pairs.
    Installations,
    /// Each person with at least one matching pair (persons without installations included).
    Persons,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Installations => "installations",
            Target::Persons => "persons",
        }
    }

    /// The other target.
    pub fn other(self) -> Target {
        match self {
            Target::Installations => Target::Persons,
            Target::Persons => Target::Installations,
        }
    }
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
    needs: Needs,
    aggregates: &EventAggregates,
    predicate: Expr,
    output: Vec<Expr>,
) -> Result<LogicalPlan> {
    let Joined {
        pairs,
        mut predicates,
        needs,
    } = join(sources, target, needs, aggregates, vec![predicate], &output)?;
    let matching = pairs.filter(predicates.remove(0))?;
    match target {
        Target::Installations => matching.project(output)?.build(),
        // A person matches once if any of their pairs matches.
        Target::Persons if needs.installation => {
            let keys = matching
                .project(vec![person_col(PERSON_ID).alias(MATCHED_PERSON)])?
                .build()?;
            persons_of(sources, keys, JoinType::LeftSemi)?
                .project(output)?
                .build()
        }
        Target::Persons => matching.project(output)?.build(),
    }
}

const MATCHED_PERSON: &str = "matched_person_id";

/// The persons table joined with `keys` (a plan with a [`MATCHED_PERSON`] column).
fn persons_of(
    sources: &TableSources,
    keys: LogicalPlan,
    kind: JoinType,
) -> Result<LogicalPlanBuilder> {
    scan(sources, PERSONS_TABLE, PERSON_ALIAS)?.join(
        keys,
        kind,
        (
            vec![Column::new(Some(PERSON_ALIAS), PERSON_ID)],
            vec![Column::from_name(MATCHED_PERSON)],
        ),
        None,
    )
}

/// The name of segment `k`'s column in [`assemble_each`]'s output.
pub fn segment_flag(k: usize) -> String {
    format!("__segment_{k}")
}

/// Like [`assemble`] for several predicates at once (the segments of one export job): one scan of
/// each table and one fused aggregate per event for all of them. Returns `output`, then one
/// boolean column per predicate ([`segment_flag`]) that is true where it matches; rows matching
/// none are dropped.
pub fn assemble_each(
    sources: &TableSources,
    target: Target,
    needs: Needs,
    aggregates: &EventAggregates,
    predicates: Vec<Expr>,
    output: Vec<Expr>,
) -> Result<LogicalPlan> {
    let Joined {
        pairs,
        predicates,
        needs,
    } = join(sources, target, needs, aggregates, predicates, &output)?;
    let names: Vec<Expr> = (0..predicates.len())
        .map(|k| col(segment_flag(k)))
        .collect();
    let any = names.iter().cloned().reduce(Expr::or).unwrap_or(lit(false));
    let predicates = predicates
        .into_iter()
        .map(super::predicates::as_flag)
        .collect::<Result<Vec<_>>>()?;
    let flags = predicates.into_iter().enumerate();
    match target {
        // A person matches a segment if any of their pairs does.
        Target::Persons if needs.installation => {
            let per_person = pairs
                .aggregate(
                    vec![person_col(PERSON_ID).alias(MATCHED_PERSON)],
                    flags
                        // bool_or skips nulls, so `p` needs no `IS TRUE` (which DataFusion 55
                        // types as non-null logically but nullable physically: a shared
                        // `IS TRUE` below an aggregate fails physical planning).
                        .map(|(k, p)| bool_or(p).alias(segment_flag(k)))
                        .collect::<Vec<_>>(),
                )?
                .filter(any)?
                .build()?;
            let mut columns = output;
            columns.extend((0..names.len()).map(|k| {
                let flag = segment_flag(k);
                definitely(col(flag.as_str())).alias(flag)
            }));
            persons_of(sources, per_person, JoinType::Inner)?
                .project(columns)?
                .build()
        }
        _ => {
            let mut columns = output;
            columns.extend(flags.map(|(k, p)| definitely(p).alias(segment_flag(k))));
            pairs.project(columns)?.filter(any)?.build()
        }
    }
}

/// `p` as a flag that is never null (false where `p` is null). Not `p IS TRUE`, which DataFusion
/// 55 types as non-null logically but nullable physically: an aggregate over such a flag fails
/// physical planning's schema check.
fn definitely(p: Expr) -> Expr {
    datafusion::prelude::coalesce(vec![p, lit(false)])
}

/// The pairs a segment ranges over, joined with its event aggregates.
struct Joined {
    pairs: LogicalPlanBuilder,
    /// The predicates, reading the joined columns.
    predicates: Vec<Expr>,
    needs: Needs,
}

fn join(
    sources: &TableSources,
    target: Target,
    mut needs: Needs,
    aggregates: &EventAggregates,
    predicates: Vec<Expr>,
    output: &[Expr],
) -> Result<Joined> {
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
    let AggPlans {
        plans: agg_plans,
        renames,
    } = aggregates.plans(sources, needs.person.then_some(PERSON_ALIAS))?;
    let predicates = predicates
        .into_iter()
        .map(|p| {
            Ok(p.transform(|e| {
                Ok(match &e {
                    Expr::Column(c) if renames.contains_key(c) => {
                        Transformed::yes(renames[c].clone())
                    }
                    _ => Transformed::no(e),
                })
            })?
            .data)
        })
        .collect::<Result<Vec<_>>>()?;
    if agg_plans.iter().any(|(s, _, _)| *s == Scope::Installation) {
        needs.installation = true;
    }

    // The pairs.
    let pairs = match (needs.person, needs.installation, target) {
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
    let join_aggregates = |pairs: LogicalPlanBuilder, inner: &HashSet<String>| {
        agg_plans
            .iter()
            .try_fold(pairs, |pairs, (scope, alias, plan)| {
                let left = match scope {
                    Scope::Person => Column::new(Some(person_key), PERSON_ID),
                    Scope::Installation => Column::new(Some(INSTALLATION_ALIAS), INSTALLATION_ID),
                };
                let right = Column::new(Some(alias.as_str()), scope.key());
                let kind = if inner.contains(alias) {
                    JoinType::Inner
                } else {
                    JoinType::Left
                };
                let plan = match kind {
                    JoinType::Left => optional_side(sources, plan.clone(), scope.key())?,
                    _ => plan.clone(),
                };
                pairs.join(plan, kind, (vec![left], vec![right]), None)
            })
    };
    // Every aggregate is left-joined (a pair without events has defaults), except those no
    // predicate can hold without.
    let all_left = join_aggregates(pairs.clone(), &HashSet::new())?;
    let aliases: Vec<&str> = agg_plans.iter().map(|(_, a, _)| a.as_str()).collect();
    let mut inner: Option<HashSet<String>> = None;
    for p in &predicates {
        let required = required_aggregates(p, all_left.schema(), &aliases)?;
        inner = Some(match inner {
            None => required,
            Some(so_far) => so_far.intersection(&required).cloned().collect(),
        });
    }
    let inner = inner.unwrap_or_default();
    let pairs = if inner.is_empty() {
        all_left
    } else {
        join_aggregates(pairs, &inner)?
    };
    let predicates = predicates
        .into_iter()
        .map(|p| super::predicates::definite(p, pairs.schema()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Joined {
        pairs,
        predicates,
        needs,
    })
}

/// The aggregates (by alias) without which the predicate is never true: some top-level conjunct
/// is false or null when all of that aggregate's columns are null, as they are for a pair whose
/// person (or installation) has no matching events. Joining those inner instead of left drops
/// such pairs early; DataFusion then pushes the conjunct below the join into the aggregate (a
/// HAVING) and builds the join's hash table on the small side. A conjunct like
/// `count(AppLaunch within 30d) >= 3` qualifies; `count(...) < 2` or `not did(...)` do not.
fn required_aggregates(
    predicate: &Expr,
    schema: &DFSchemaRef,
    aliases: &[&str],
) -> Result<HashSet<String>> {
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(schema.clone())
            .build(),
    );
    let mut required = HashSet::new();
    for conjunct in split_conjunction(predicate) {
        for alias in aliases {
            let reads_alias = |c: &Column| c.relation.as_ref().is_some_and(|r| r.table() == *alias);
            if required.contains(*alias) || !conjunct.column_refs().into_iter().any(reads_alias) {
                continue;
            }
            let without = conjunct
                .clone()
                .transform(|e| {
                    Ok(match &e {
                        Expr::Column(c) if reads_alias(c) => {
                            let ty = schema.qualified_field_from_column(c)?.1.data_type();
                            Transformed::yes(Expr::Literal(ScalarValue::try_from(ty)?, None))
                        }
                        _ => Transformed::no(e),
                    })
                })?
                .data;
            // Coerce types first (`count >= 2.0` compares an Int64 with a Float64), so the
            // simplifier can evaluate what is left.
            let without = without
                .rewrite(&mut TypeCoercionRewriter::new(schema))?
                .data;
            if matches!(
                simplifier.simplify(without)?,
                Expr::Literal(
                    ScalarValue::Boolean(None | Some(false)) | ScalarValue::Null,
                    _
                )
            ) {
                required.insert(alias.to_string());
            }
        }
    }
    Ok(required)
}
