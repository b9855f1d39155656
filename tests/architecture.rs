//! The layering of `src/`: every top-level module may use only the modules listed before it, so
//! the pipeline reads bottom-up (parse → check → plan → execute → export) with the application
//! layer and its front ends on top, and no module imports from a module above it.

use std::collections::BTreeSet;
use std::path::Path;

/// Top-level modules, lowest first.
const LAYERS: &[&str] = &[
    "base",       // spans, time, versions, DataFusion literal helpers
    "catalog",    // what a snapshot declares; the name-matching rule
    "diagnostic", // segment diagnostics and their codes
    "error",      // the crate's error kinds
    "syntax",     // stage 1: parse
    "check",      // stage 2: resolve and type-check
    "store",      // snapshots on disk
    "plan",       // stage 3: typed segment → DataFusion plan
    "exec",       // stage 4: sessions and running plans
    "export",     // stage 5: audience files
    "generate",   // synthetic snapshots
    "import",     // real data into snapshots
    "app",        // the application layer the front ends share
    "serve",      // the HTTP server and page
    "cli",        // the command line
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The top-level modules a file's code names as `crate::x` (in `use` lines and paths).
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `audience::crate::` cannot occur; skip `$crate::` in macros.
        if i > 0 && text.as_bytes()[i - 1] == b'$' {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        // `use crate::{a, b}` groups.
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let n: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !n.is_empty() {
                    found.insert(n);
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_from_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut violations = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        seen_modules.insert(module.clone());
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "{}: module `{module}` is not in the layer list",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            match rank(&used) {
                Some(r) if r > own => violations.push(format!(
                    "{}: `{module}` uses `{used}`, which is above it",
                    file.display()
                )),
                None => violations.push(format!(
                    "{}: `{module}` uses `crate::{used}`, which is no top-level module",
                    file.display()
                )),
                _ => {}
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert!(
        seen_modules.len() >= 12,
        "the walk found only {seen_modules:?}"
    );
}

#[test]
fn the_checker_catches_an_upward_import() {
    assert!(uses("use crate::plan::events::ts_lit;").contains("plan"));
    assert!(uses("use crate::{catalog, store::summary};").contains("store"));
    assert!(uses("    crate::app::Workspace::open").contains("app"));
    assert!(!uses("$crate::foo").contains("foo"));
}
