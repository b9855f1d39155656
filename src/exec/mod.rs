//! Executing plans: the session and its resources.

pub mod cluster;
pub mod run;
pub mod session;

pub use cluster::{Cluster, ClusterUrl};
pub use session::{open_session, parse_size, runtime, SessionOptions};
