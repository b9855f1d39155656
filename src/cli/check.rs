//! `audience check` and `audience fmt`: the language front end alone.

use super::output::print;
use super::values::OutputFormat;
use super::{absolute_path, Cli, StoreArgs};
use crate::app::{compile_segment, SegmentSource, Segments};
use crate::error::{Error, Result};
use crate::store::Store;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The segment: its text, `@file.seg`, `@-` (stdin), or a saved segment's name.
    segment: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Read the segment from a file.
    #[arg(long, conflicts_with = "segment", value_parser = absolute_path)]
    file: Option<PathBuf>,
    /// Directory of saved segments (`name.seg`) that segment("name") refers to (default: the
    /// store's segments/).
    #[arg(long, value_parser = absolute_path)]
    segments: Option<PathBuf>,
    /// `table`: the resolved segment and warnings as text; `json`: one object for programs.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
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
        None => Segments::of_store(&args.store.dir()?),
    };
    let src = source(&args.segment, &args.file, &segments)?;
    let store = Store::open(args.store.dir()?)?;
    super::output::warnings(store.warnings());
    let snapshot = store.snapshot(args.store.snapshot.as_deref())?;
    let json = args.format == OutputFormat::Json;
    let typed = compile_segment(&snapshot.manifest.catalog, &src, &segments.saved())?;
    if json && cli.deny_warnings && !typed.warnings.is_empty() {
        let d = crate::diagnostic::Diagnostics(typed.warnings.clone());
        return Err(Error::segment(&src.name, &src.text, d));
    }
    let out = if json {
        let warnings = crate::diagnostic::Diagnostics(typed.warnings.clone());
        serde_json::json!({
            "ok": true,
            "resolved": typed.root.to_string(),
            "warnings": warnings.to_json(&src.text)["diagnostics"],
        })
        .to_string()
    } else {
        super::segment::warned(cli, &src, &typed.warnings)?;
        typed.root.to_string()
    };
    print(format!("{out}\n").as_bytes())
}

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// The segment: its text, `@file.seg` or `@-` (stdin).
    segment: Option<String>,
    /// Read the segment from a file.
    #[arg(long, conflicts_with = "segment", value_parser = absolute_path)]
    file: Option<PathBuf>,
    /// Rewrite the file (--file) in canonical form, in place (atomically; unchanged files are
    /// left alone).
    #[arg(long, requires = "file")]
    write: bool,
    /// Break segments longer than this at their top-level `and` / `or`.
    #[arg(long, default_value_t = 100)]
    width: usize,
}

/// `audience fmt`: the canonical form, comments kept (needs no store: it is syntax only).
pub fn run_fmt(args: &FmtArgs) -> Result<()> {
    let src = source(&args.segment, &args.file, &Segments::at(PathBuf::new()))?;
    let formatted = crate::syntax::format(&src.text, args.width)
        .map_err(|d| Error::segment(&src.name, &src.text, d))?;
    match (&args.file, args.write) {
        (Some(path), true) => {
            if formatted != src.text {
                let temp = path.with_extension("seg.fmt.tmp");
                std::fs::write(&temp, &formatted)
                    .and_then(|_| std::fs::rename(&temp, path))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&temp);
                        Error::io(path, e)
                    })?;
            }
            Ok(())
        }
        _ => print(formatted.as_bytes()),
    }
}
