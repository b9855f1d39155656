use super::segment_arg::{compile_segment, read_segment, render};
use super::{Cli, Failure, OutputFormat};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The segment: its text, `@file.seg`, or a saved segment's name (with --segments).
    segment: Option<String>,
    /// Read the segment from a file.
    #[arg(long, conflicts_with = "segment")]
    file: Option<std::path::PathBuf>,
    /// Directory of saved segments (`name.seg`) that segment("name") refers to.
    #[arg(long)]
    segments: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

fn source(
    args_segment: &Option<String>,
    file: &Option<std::path::PathBuf>,
    segments: Option<&std::path::PathBuf>,
) -> Result<super::segment_arg::SegmentSource, Failure> {
    match (args_segment, file) {
        (_, Some(f)) => Ok(read_segment(&format!("@{}", f.display()), None)?),
        (Some(s), None) => Ok(read_segment(s, segments)?),
        (None, None) => Err(Failure::Error(crate::error::Error::Usage(
            "give a SEGMENT or --file F.seg".into(),
        ))),
    }
}

/// `audience check`: diagnostics, or the resolved segment with canonical names.
pub fn run_check(cli: &Cli, args: &CheckArgs) -> Result<(), Failure> {
    let src = source(&args.segment, &args.file, args.segments.as_ref())?;
    let snapshot = Store::open(cli.store_dir())?.snapshot(cli.snapshot.as_deref())?;
    let json = args.format == OutputFormat::Json;
    let typed = compile_segment(
        &src,
        &snapshot.manifest.catalog,
        args.segments.as_ref(),
        json,
    )
    .map_err(|e| Failure::Segment(e.rendered))?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": true, "resolved": typed.root.to_string() })
        );
    } else {
        println!("{}", typed.root);
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// The segment: its text or `@file.seg`.
    segment: Option<String>,
    #[arg(long, conflicts_with = "segment")]
    file: Option<std::path::PathBuf>,
}

/// `audience fmt`: the canonical form (needs no store: it is syntax only).
pub fn run_fmt(_cli: &Cli, args: &FmtArgs) -> Result<(), Failure> {
    let src = source(&args.segment, &args.file, None)?;
    match crate::syntax::parse(&src.text) {
        Ok(seg) => {
            println!("{seg}");
            Ok(())
        }
        Err(d) => Err(Failure::Segment(render(&d, &src, false))),
    }
}
