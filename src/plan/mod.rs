//! Planning: a checked segment becomes a DataFusion LogicalPlan over a snapshot's tables.

pub mod assemble;
pub mod derived;
pub mod events;
pub mod lower;
pub mod optional_side;
pub mod patterns;
pub mod predicates;
pub mod sources;
pub mod summary;

pub use assemble::segment_flag;
pub use assemble::Target;
pub use lower::{plan_keys, plan_segment, plan_segments, DerivedColumn, OutputColumn, PlanOptions};
pub use sources::TableSources;
