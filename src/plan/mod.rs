//! Planning: a checked segment becomes a DataFusion LogicalPlan over a snapshot's tables.

pub mod assemble;
pub mod derived;
pub mod events;
pub mod predicates;
pub mod sources;

pub use sources::TableSources;
