//! `audience check` and `audience fmt`: the language front end alone.

use super::output::print;
use super::values::OutputFormat;
use super::{absolute_path, Cli};
use crate::app::{compile_segment, SegmentSource, Segments};
use crate::error::{Error, Result};
use crate::store::Store;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: Option<String>,
    /// Read the segment from a file.
    #[arg(long, conflicts_with = "segment", value_parser = absolute_path)]
    file: Option<PathBuf>,
    /// Directory of saved segments (`name.seg`) that segment("name") refers to (default: the
    /// store's segments/).
    #[arg(long, value_parser = absolute_path)]
    segments: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

fn source(
    segment: &Option<String>,
    file: &Option<PathBuf>,
    segments: &Segments,
) -> Result<SegmentSource> {
    match (segment, file) {
        (_, Some(f)) => segments.read_arg(&format!("@{}", f.display())),
        (Some(s), None) => segments.read_arg(s),
        (None, None) => Err(Error::Invalid("give a SEGMENT or --file F.seg".into())),
    }
}

/// `audience check`: diagnostics, or the resolved segment with canonical names.
pub fn run_check(cli: &Cli, args: &CheckArgs) -> Result<()> {
    let segments = match &args.segments {
        Some(dir) => Segments::at(dir.clone()),
        None => Segments::of_store(&cli.store_dir()?),
    };
    let src = source(&args.segment, &args.file, &segments)?;
    let store = Store::open(cli.store_dir()?)?;
    super::output::warnings(store.warnings());
    let snapshot = store.snapshot(cli.snapshot.as_deref())?;
    let json = args.format == OutputFormat::Json;
    let typed = compile_segment(&snapshot.manifest.catalog, &src, &segments.saved())?;
    let out = if json {
        serde_json::json!({ "ok": true, "resolved": typed.root.to_string() }).to_string()
    } else {
        typed.root.to_string()
    };
    print(format!("{out}\n").as_bytes())
}

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// The segment: its text, `@file.seg` or `@-` (stdin).
    segment: Option<String>,
    #[arg(long, conflicts_with = "segment", value_parser = absolute_path)]
    file: Option<PathBuf>,
}

/// `audience fmt`: the canonical form (needs no store: it is syntax only).
pub fn run_fmt(args: &FmtArgs) -> Result<()> {
    let src = source(&args.segment, &args.file, &Segments::at(PathBuf::new()))?;
    let seg =
        crate::syntax::parse(&src.text).map_err(|d| Error::segment(&src.name, &src.text, d))?;
    print(format!("{seg}\n").as_bytes())
}
