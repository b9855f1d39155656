//! The application layer: what the command line and the server both do with a store, as a
//! library. Opening a snapshot (locally or on a cluster) into a [`Workspace`], reading a
//! segment (its text, a file, stdin, a saved segment's name), and answering it: count, preview,
//! export, explain, with the channel policy and default columns of each; and, for a front end
//! that keeps a workspace warm, the pairs recent conditions matched ([`matched`]). Front ends
//! parse their input, call these, and print or serialize what comes back; none builds plans or
//! typed segments of its own.

pub mod channel;
pub mod columns;
pub mod matched;
pub mod segments;
pub mod workspace;

pub use channel::Channel;
pub use segments::{SegmentSource, Segments};
pub use workspace::{
    compile_segment, conditions, CountReport, Explained, ExportSpec, Query, Timings, Workspace,
};
