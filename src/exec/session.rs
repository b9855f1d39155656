//! The DataFusion session a command runs in: threads, memory limit (spilling where DataFusion
//! can), and the snapshot's tables.

use super::cluster::Cluster;
use crate::error::{Error, Result};
use crate::store::{Snapshot, TableFiles};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Worker threads / target partitions (default: all cores).
    pub threads: Option<usize>,
    /// Memory pool size in bytes; operators that can spill do so past it, others fail cleanly.
    /// On a cluster it bounds only this process; executors have their own limit.
    pub memory_limit: Option<usize>,
    /// Where plans run: here, or on a Ballista cluster.
    pub cluster: Cluster,
    /// A runtime (memory pool, metadata cache) shared with other sessions: a server's sessions
    /// share one pool, so `memory_limit` bounds the whole process. Overrides `memory_limit`.
    pub runtime: Option<Arc<datafusion::execution::runtime_env::RuntimeEnv>>,
}

/// A session with the snapshot's tables registered.
pub async fn open_session(snapshot: &Snapshot, opts: &SessionOptions) -> Result<SessionContext> {
    let mut config = SessionConfig::new().with_information_schema(false);
    if let Some(n) = opts.threads {
        if n == 0 {
            return Err(Error::Invalid("threads must be at least 1".into()));
        }
        config = config.with_target_partitions(n);
    }
    // Event aggregates group by person or installation key: in a window there are few rows a
    // key, so the per-partition (partial) aggregate hardly shrinks its input and the final one
    // hashes every row again. DataFusion skips the partial step once its groups reach a ratio
    // of its input rows; deciding after 10K rows at 0.1 (defaults 100K and 0.8) skips it for
    // windows of a few events per key and keeps it for long histories (what it bought:
    // benches/HISTORY.md, "partial aggregation").
    let execution = &mut config.options_mut().execution;
    execution.skip_partial_aggregation_probe_ratio_threshold = 0.1;
    execution.skip_partial_aggregation_probe_rows_threshold = 10_000;
    // Row-level filtering inside the Parquet reader stays off for local runs: on our scans a
    // FilterExec over decoded batches is faster (benches/HISTORY.md, "reader filters").
    // Row-group and page pruning by statistics happen either way. Event scans that only a join's dynamic filter narrows opt back in per table
    // (store::register, plan::events).
    let local = matches!(opts.cluster, Cluster::Local);
    config.options_mut().execution.parquet.pushdown_filters = !local;
    if local {
        // Joins whose build side is estimated under ~1M rows broadcast it (CollectLeft)
        // instead of hash-repartitioning both sides: with few partitions, repartitioning the
        // 0.8-1.5M installation rows a segment probes with costs more than sharing one hash
        // table. Estimates come from file statistics and default filter selectivities, so the
        // bound is loose on purpose (benches/HISTORY.md, "broadcast joins"). A cluster would
        // ship such a build side to every task, so cluster sessions keep DataFusion's defaults.
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_single_partition_threshold_rows = 1 << 20;
        optimizer.hash_join_single_partition_threshold = 64 << 20;
        // A join on one integer key whose build side covers at least 5% of its key range
        // looks keys up in an array over the range instead of hashing them (DataFusion's
        // "perfect hash join"; default 15%). Person and installation ids are dense, so the
        // array is at most 4 bytes per person or installation (4 MB per million), about 84
        // bytes per build row at the bound against ~24 for a hash table, and probing an array
        // is several times cheaper than hashing (benches/HISTORY.md, "array map joins").
        config
            .options_mut()
            .execution
            .perfect_hash_join_min_key_density = 0.05;
    }
    if !local {
        // Cluster sessions keep the reader-side filters: with them off, the in-process
        // (standalone) Ballista 55 cluster never finished the first corpus case, a hang not
        // debugged further (a loopback cluster of processes was fine).
        //
        // A dynamic filter is filled by a join's build side and read by a scan of the same
        // plan. Ballista runs them in different stages, so the scan would wait forever
        // (apache/datafusion-ballista#1375). Ballista turns them off for sessions it upgrades,
        // but an in-process cluster plans with this config as given. The master switch turns
        // the per-operator ones off only through `set`, not by assignment, so each is cleared.
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.enable_dynamic_filter_pushdown = false;
        optimizer.enable_join_dynamic_filter_pushdown = false;
        optimizer.enable_topk_dynamic_filter_pushdown = false;
        optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    }
    #[cfg(feature = "cluster")]
    if opts.cluster == Cluster::Standalone {
        // The in-process cluster has one executor, so every shuffle read would be local; forced
        // remote, its reads take the Arrow Flight path a real cluster's reads take between
        // nodes, so tests see what crosses the wire (issue: Flight turned dictionary columns
        // into plain strings).
        use ballista::prelude::SessionConfigExt;
        config = config
            .upgrade_for_ballista()
            .with_ballista_shuffle_reader_force_remote_read(true);
    }
    let runtime = match &opts.runtime {
        Some(shared) => shared.clone(),
        None => runtime(opts.memory_limit)?,
    };
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    let ctx = match &opts.cluster {
        Cluster::Local => SessionContext::new_with_state(state),
        #[cfg(feature = "cluster")]
        cluster => super::cluster::session(cluster, state).await?,
        #[cfg(not(feature = "cluster"))]
        _ => return Err(super::cluster::not_built()),
    };
    // A cluster plans on its scheduler, from a plan it can serialize: listed tables.
    let table_files = if local {
        TableFiles::Manifest
    } else {
        TableFiles::Listed
    };
    snapshot.register(&ctx, table_files).await?;
    Ok(ctx)
}

/// A runtime whose memory pool holds `memory_limit` bytes (unbounded without one); operators
/// that can spill do so past it.
pub fn runtime(
    memory_limit: Option<usize>,
) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    Ok(runtime.build_arc()?)
}

/// Parses `512MiB`, `2GB`, `1.5G`, `1048576` into bytes (binary and decimal units).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 512MiB, 2GB)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "`{other}` is not a size unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let bytes = value * factor;
    if !(1.0..1e18).contains(&bytes) {
        return Err(format!("`{s}` is not a usable memory size"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("1.5gib").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("5 parsecs").unwrap_err().contains("size unit"));
        assert!(parse_size("0").is_err());
    }
}
