//! Stage 1, parse: segment text → AST with byte spans.

pub mod ast;
mod format;
mod parser;

pub use format::format;
pub use parser::{parse, parse_time, MAX_DEPTH, MAX_SEGMENT_BYTES};
