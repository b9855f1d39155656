//! `audience`: segment expressions over point-in-time snapshots of mobile audience profiles.
//!
//! The pipeline, one module a stage:
//! - [`catalog`]: what a snapshot declares (attributes, events, types);
//! - [`store`]: immutable Parquet snapshots, atomic publishing, registration in DataFusion;
//! - [`syntax`]: parse a segment's text into an AST with spans;
//! - [`check`]: resolve names against the catalog and type-check into the typed segment;
//! - [`plan`]: compile a typed segment into a DataFusion LogicalPlan;
//! - [`diagnostic`]: errors with spans, rendered like a compiler or as JSON;
//! - [`generate`]: realistic synthetic snapshots for samples and benchmarks;
//! - [`exec`]: the DataFusion session plans run in (threads, memory limit, tables);
//! - [`export`]: streaming, atomic audience files (CSV, JSON lines, Parquet);
//! - [`cli`]: the `audience` command.

pub mod app;
pub mod base;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod error;
pub mod exec;
pub mod export;
pub mod generate;
pub mod plan;
pub mod store;
pub mod syntax;
