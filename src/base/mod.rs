//! Foundations every stage shares, each concept in one place: byte spans of segment text,
//! time (microseconds, days, durations), version ordering and its sort keys, and the DataFusion
//! literal helpers the planner and the snapshot writers both build expressions with.
//! Nothing here depends on another module of the crate.

pub mod exprs;
pub mod process;
pub mod progress;
pub mod span;
pub mod time;
pub mod version;
