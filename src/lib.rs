//! `audience`: segment expressions over point-in-time snapshots of mobile audience profiles.
//!
//! The pipeline, one module a stage:
//! - [`catalog`]: what a snapshot declares (attributes, events, types);
//! - [`store`]: immutable Parquet snapshots, atomic publishing, registration in DataFusion;
//! - [`generate`]: realistic synthetic snapshots for samples and benchmarks;
//! - [`exec`]: the DataFusion session plans run in (threads, memory limit, tables);
//! - [`export`]: streaming, atomic audience files (CSV, JSON lines, Parquet);
//! - [`cli`]: the `audience` command.

pub mod catalog;
pub mod cli;
pub mod error;
pub mod exec;
pub mod export;
pub mod generate;
pub mod plan;
pub mod store;
