//! `audience`: segment expressions over point-in-time snapshots of mobile audience profiles,
//! compiled to Apache DataFusion plans.
//!
//! ```text
//! text ──parse──▶ AST ──check──▶ typed segment ──plan──▶ LogicalPlan ──execute──▶ rows ──export──▶ files
//! ```
//!
//! The modules, lowest first; none uses a module below it in this list (`tests/architecture.rs`):
//! - [`base`]: foundations: byte spans, time, versions and their sort keys, shared literal helpers;
//! - [`catalog`]: what a snapshot declares (attributes, events, types), the name-matching rule;
//! - [`diagnostic`]: segment diagnostics with stable codes, rendered like a compiler or as JSON;
//! - [`error`]: the error kinds (the user's mistake, not supported, data/IO/engine, bug);
//! - [`syntax`]: stage 1, parse a segment's text into an AST with spans;
//! - [`check`]: stage 2, resolve names against the catalog and type-check into the typed segment;
//! - [`store`]: immutable Parquet snapshots, atomic publishing, the activity summary, tables;
//! - [`plan`]: stage 3, compile a typed segment into a DataFusion LogicalPlan;
//! - [`exec`]: stage 4, the DataFusion session (local or Ballista) and running plans;
//! - [`export`]: stage 5, row writers and atomic audience files (CSV, JSON lines, JSON, Parquet);
//! - [`generate`]: realistic synthetic snapshots for samples and benchmarks;
//! - [`import`]: real data (CDP event streams, People exports, plain tables) into snapshots,
//!   with the profiling rules applied;
//! - [`app`]: the application layer the front ends share (open, compile, count, export, …);
//! - [`serve`]: the HTTP API and the web page (`audience serve`);
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
pub mod import;
pub mod plan;
pub mod serve;
pub mod store;
pub mod syntax;
