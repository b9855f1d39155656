//! Shared fixtures: small generated stores, built once per test binary, segment generators, and
//! `audience serve` in-process.
#![allow(dead_code)]

pub mod http;
pub mod reference;
pub mod segments;
pub mod serve;

use audience::generate::{generate, GenerateOptions};
use audience::store::manifest::Partitioning;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn as_of() -> DateTime<Utc> {
    "2026-11-01T00:00:00Z".parse().unwrap()
}

pub fn options(
    persons: usize,
    days: u32,
    seed: u64,
    partitioning: Partitioning,
) -> GenerateOptions {
    GenerateOptions {
        persons,
        days,
        seed,
        as_of: as_of(),
        threads: 2,
        progress: Default::default(),
        partitioning,
        activity_summary: true,
    }
}

/// A small day-partitioned store shared (read-only) by the tests of one binary.
pub fn shared_store() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        generate(&path, &options(600, 60, 11, Partitioning::Day)).unwrap();
        (dir, path)
    });
    path
}

/// A private copy of a store, for tests that damage it.
pub fn copy_store(from: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("store");
    copy_dir(from, &to);
    (dir, to)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The latest snapshot of `store`, a session with its tables, and the planner's view of them.
pub async fn open(
    store: &Path,
) -> (
    audience::store::Snapshot,
    datafusion::prelude::SessionContext,
    audience::plan::TableSources,
) {
    let snapshot = audience::store::Store::open(store)
        .unwrap()
        .snapshot(None)
        .unwrap();
    let ctx = audience::exec::open_session(&snapshot, &Default::default())
        .await
        .unwrap();
    let m = &snapshot.manifest;
    let sources = audience::plan::TableSources::from_session(&ctx, m)
        .await
        .unwrap();
    (snapshot, ctx, sources)
}
