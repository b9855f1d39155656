//! Predicate building blocks with the segment language's semantics.
//!
//! Two-valued logic: a comparison on a missing value is false and `not p` is exactly the
//! complement of `p`. In a filter, SQL's three-valued AND/OR already treat unknown like false
//! (they are monotone), so only negation needs care: `not p` becomes `p IS NOT TRUE`.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::functions::expr_fn::regexp_like;
use datafusion::functions_nested::expr_fn::{
    array_has, array_has_all, array_has_any, cardinality, make_array,
};
use datafusion::logical_expr::{Expr, ExprSchemable, Like};
use datafusion::prelude::lit;

/// Two-valued `not`.
pub fn not(p: Expr) -> Expr {
    Expr::IsNotTrue(Box::new(p))
}

/// `p` with every two-valued `not` of an operand that is never null over `schema` written as a
/// plain `NOT`, which DataFusion folds into the comparison (`NOT (state = 'x')` is `state !=
/// 'x'`, `NOT (count > 0)` is `count <= 0`): one kernel instead of two, and a predicate that
/// statistics can prune with. Required attributes (`state`, `platform`) and summary counts read
/// through inner joins are never null.
pub fn definite(p: Expr, schema: &DFSchema) -> Result<Expr> {
    p.transform_up(|e| match e {
        Expr::IsNotTrue(inner) if !inner.nullable(schema).unwrap_or(true) => {
            Ok(Transformed::yes(Expr::Not(inner)))
        }
        e => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

/// `p` with every `IS [NOT] TRUE` written as a `CASE` of literals, for a predicate that becomes a
/// column (an export's or a count report's per-segment flags). DataFusion 55 types `x IS NOT
/// TRUE` as non-null logically but nullable physically; when common-subexpression elimination
/// shares one between flags it becomes a projected column, and physical planning's schema check
/// fails (`field nullability ... __common_expr`). A `CASE` of non-null literals is non-null both
/// ways.
pub fn as_flag(p: Expr) -> Result<Expr> {
    use datafusion::prelude::when;
    p.transform_up(|e| match e {
        Expr::IsNotTrue(inner) => Ok(Transformed::yes(
            when(*inner, lit(false)).otherwise(lit(true))?,
        )),
        Expr::IsTrue(inner) => Ok(Transformed::yes(
            when(*inner, lit(true)).otherwise(lit(false))?,
        )),
        e => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

/// Case-insensitive substring / prefix / suffix match (ILIKE with the pattern's wildcards escaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    Contains,
    StartsWith,
    EndsWith,
}

pub fn string_match(column: Expr, kind: StringMatch, needle: &str) -> Expr {
    let escaped: String = needle
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = match kind {
        StringMatch::Contains => format!("%{escaped}%"),
        StringMatch::StartsWith => format!("{escaped}%"),
        StringMatch::EndsWith => format!("%{escaped}"),
    };
    Expr::Like(Like::new(
        false,
        Box::new(column),
        Box::new(lit(pattern)),
        Some('\\'),
        true,
    ))
}

/// Regular-expression match (Rust regex syntax), case-sensitive unless the pattern says `(?i)`.
pub fn regex_match(column: Expr, pattern: &str) -> Expr {
    regexp_like(column, lit(pattern), None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    Has,
    Any,
    All,
}

pub fn list_has(column: Expr, kind: ListMatch, values: &[String]) -> Expr {
    let array = || make_array(values.iter().map(|v| lit(v.as_str())).collect());
    match kind {
        ListMatch::Has => array_has(column, lit(values[0].as_str())),
        ListMatch::Any => array_has_any(column, array()),
        ListMatch::All => array_has_all(column, array()),
    }
}

/// `is set`: present, and for a list not empty. For a list that is `cardinality > 0` alone: null
/// for a missing list, which filters and the two-valued `not` treat as false. (A separate
/// `IS NOT NULL` conjunct made the scan decode every row's list before the selective filters.)
pub fn is_set(column: Expr, is_list: bool) -> Expr {
    if is_list {
        cardinality(column).gt(lit(0u64))
    } else {
        column.is_not_null()
    }
}
