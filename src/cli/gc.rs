//! `audience gc`: removes what dead writers left behind (staging directories of snapshots never
//! published, temporary files of killed exports), never a live writer's.

use super::absolute_path;
use super::output::print;
use crate::error::Result;
use crate::export::stale_temporaries;
use crate::store::gc::{remove, size_of, staging_leftovers, Leftover};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: super::StoreDir,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also look for temporary files of killed exports in these directories.
    #[arg(long, value_parser = absolute_path)]
    exports: Vec<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let mut found = staging_leftovers(&args.store.dir()?)?;
    for dir in &args.exports {
        found.extend(stale_temporaries(dir).into_iter().map(|path| Leftover {
            bytes: size_of(&path),
            path,
        }));
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let total: u64 = found.iter().map(|l| l.bytes).sum();
    let count = found.len();
    let listed = if args.dry_run { found } else { remove(found)? };
    let mut out = String::new();
    for l in &listed {
        out.push_str(&format!(
            "{verb} {} ({} bytes)\n",
            l.path.display(),
            l.bytes
        ));
    }
    out.push_str(&format!("{verb} {count} leftover(s), {total} bytes\n"));
    print(out.as_bytes())
}
