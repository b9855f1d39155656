//! Executing plans: the session and its resources.

pub mod run;
pub mod session;

pub use session::{open_session, parse_size, SessionOptions};
