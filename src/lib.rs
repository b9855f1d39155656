//! `audience`: segment expressions over point-in-time snapshots of mobile audience profiles.
//!
//! The pipeline, one module a stage:
//! - [`catalog`]: what a snapshot declares (attributes, events, types);
//! - [`store`]: immutable Parquet snapshots, atomic publishing, registration in DataFusion;
//! - [`generate`]: realistic synthetic snapshots for samples and benchmarks;
//! - [`cli`]: the `audience` command.

pub mod catalog;
pub mod cli;
pub mod error;
pub mod generate;
pub mod store;
