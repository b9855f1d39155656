use super::output::print;
use super::values::OutputFormat;
use crate::catalog::{AttributeDef, Entity};
use crate::error::Result;
use crate::store::{Snapshot, Store};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: super::StoreArgs,
    /// `table` for people, `json` for programs.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Also check every file: its content against its checksum, its schema against the catalog
    /// and its row count against the manifest.
    #[arg(long)]
    verify: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let store = Store::open(args.store.dir()?)?;
    super::output::warnings(store.warnings());
    let snapshot = store.snapshot(args.store.snapshot.as_deref())?;
    // Describing a snapshot vouches for all of its files, not only those a query would read.
    snapshot.check_history()?;
    if args.verify {
        let r = snapshot.verify()?;
        let legacy = if r.unchecksummed > 0 {
            format!(
                "; {} file(s) written before checksums: footer, schema and rows only",
                r.unchecksummed
            )
        } else {
            String::new()
        };
        eprintln!(
            "verified {} files ({} bytes, {} rows): {} against their checksums, every footer's \
             schema against the catalog and row count against the manifest{legacy}",
            r.files, r.bytes, r.rows, r.checksummed
        );
    }
    let all = store.snapshot_ids();
    let out = match args.format {
        OutputFormat::Json => format!("{:#}\n", json(&snapshot, all)),
        OutputFormat::Table => text(&snapshot, all),
    };
    print(out.as_bytes())
}

/// The fields segments and output columns compute from the person.
const DERIVED: [(&str, &str); 2] = [
    ("age", "whole years from birthDate to the as-of time"),
    (
        "randomBucket",
        "a stable hash of the person into 0-9999 (holdouts)",
    ),
];

fn event_rows(s: &Snapshot) -> BTreeMap<&str, (u64, usize)> {
    let mut rows = BTreeMap::new();
    for def in &s.manifest.catalog.events {
        rows.insert(def.name.as_str(), (0, 0));
    }
    for e in &s.manifest.events {
        let entry = rows.entry(e.event.as_str()).or_insert((0, 0));
        entry.0 += e.file.rows;
        entry.1 += 1;
    }
    rows
}

fn json(s: &Snapshot, all: &[String]) -> serde_json::Value {
    let m = &s.manifest;
    let events: BTreeMap<_, _> = event_rows(s)
        .into_iter()
        .map(|(k, (rows, files))| (k, serde_json::json!({"rows": rows, "files": files})))
        .collect();
    serde_json::json!({
        "store": s.store,
        "snapshot_id": m.snapshot_id,
        "snapshots_in_store": all,
        "as_of": m.as_of,
        "history_start": m.history_start,
        "created_at": m.created_at,
        "row_counts": m.row_counts,
        "partitioning": m.partitioning,
        "events": events,
        "catalog": m.catalog,
        "derived": DERIVED.iter().map(|(name, what)| serde_json::json!({
            "name": name, "type": "number", "description": what,
        })).collect::<Vec<_>>(),
        "provenance": m.provenance,
    })
}

fn attribute_line(out: &mut String, a: &AttributeDef) {
    let name = if a.custom {
        format!("custom.{}", a.name)
    } else {
        a.name.clone()
    };
    let aliases = if a.aliases.is_empty() {
        String::new()
    } else {
        format!("  (alias {})", a.aliases.join(", "))
    };
    let values = a.values.as_ref().map_or(String::new(), |v| {
        let shown: Vec<String> = v
            .top
            .iter()
            .take(8)
            .map(|(x, n)| format!("{x} ({n})"))
            .collect();
        let more = if v.top.len() > 8 || !v.complete {
            ", …"
        } else {
            ""
        };
        format!("  values: {}{more}", shown.join(", "))
    });
    let _ = writeln!(
        out,
        "  {name:<28} {:<13} {}{aliases}{values}",
        a.ty.to_string(),
        a.column
    );
}

fn text(s: &Snapshot, all: &[String]) -> String {
    let m = &s.manifest;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "snapshot   {} ({} of {} in {})",
        m.snapshot_id,
        all.iter()
            .position(|x| *x == m.snapshot_id)
            .map_or(0, |i| i + 1),
        all.len(),
        s.store.display()
    );
    let _ = writeln!(out, "as of      {}", m.as_of.to_rfc3339());
    let _ = writeln!(
        out,
        "history    {} .. {}, partitioned by event and {}",
        m.history_start.to_rfc3339(),
        m.as_of.to_rfc3339(),
        m.partitioning.column()
    );
    let c = &m.row_counts;
    let _ = writeln!(
        out,
        "rows       {} persons, {} installations, {} events in {} files",
        c.persons,
        c.installations,
        c.events,
        m.events.len()
    );
    for entity in [Entity::Person, Entity::Installation] {
        let _ = writeln!(out, "\n{entity} attributes  (name, type, column)");
        for a in m.catalog.attributes(entity) {
            attribute_line(&mut out, a);
        }
    }
    let _ = writeln!(out, "\nderived  (name, type: what it is)");
    for (name, what) in DERIVED {
        let _ = writeln!(out, "  {name:<28} {:<13} {what}", "number");
    }
    let _ = writeln!(out, "\nevents  (rows, files)");
    let rows = event_rows(s);
    for def in &m.catalog.events {
        let props = def
            .properties
            .iter()
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect::<Vec<_>>()
            .join(", ");
        let sig = if props.is_empty() {
            def.name.clone()
        } else {
            format!("{}({props})", def.name)
        };
        let (r, f) = rows.get(def.name.as_str()).copied().unwrap_or((0, 0));
        let _ = writeln!(out, "  {sig:<62} {r:>12} {f:>6}");
    }
    out
}
