//! Running plans on an Apache DataFusion Ballista cluster (cargo feature `cluster`).
//!
//! The planner's output does not change: the same LogicalPlan goes to a Ballista scheduler, which
//! plans it into stages for its executors. What this module adds is the session that talks to the
//! scheduler, a check that the cluster sees the snapshot's files (a scheduler that cannot list a
//! directory plans an empty scan, which would be a wrong answer rather than an error), and the
//! scheduler and executor processes embedded in the `audience` binary.

use crate::error::{Error, Result};
use crate::store::Snapshot;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use std::collections::BTreeSet;
use std::fmt;

/// Ballista's default scheduler port.
pub const DEFAULT_PORT: u16 = 50050;

/// Where the scheduler listens: `df://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    pub host: String,
    pub port: u16,
}

impl ClusterUrl {
    pub fn parse(s: &str) -> Result<ClusterUrl, String> {
        let rest = s.strip_prefix("df://").ok_or_else(|| {
            format!(
                "`{s}` is not a cluster address: use df://HOST:PORT (e.g. df://localhost:50050)"
            )
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{s}`: `{p}` is not a port number (1-65535)"))?;
                (h, port)
            }
            None => (rest, DEFAULT_PORT),
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(format!(
                "`{s}` is not a cluster address: use df://HOST:PORT (e.g. df://localhost:50050)"
            ));
        }
        Ok(ClusterUrl {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

/// Where a session runs its plans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cluster {
    /// In this process (the default).
    #[default]
    Local,
    /// On the Ballista scheduler at this address.
    Remote(ClusterUrl),
    /// On a scheduler and one executor started inside this process (tests, plan serialization checks).
    Standalone,
}

/// The error for `--cluster` in a build without the feature.
pub fn not_built() -> Error {
    Error::Unavailable(
        "this audience was built without cluster support: rebuild with \
         `cargo build --release --features cluster`"
            .into(),
    )
}

/// The session for `cluster`, from the local session's config and runtime.
#[cfg(feature = "cluster")]
pub(super) async fn session(
    cluster: &Cluster,
    state: datafusion::execution::SessionState,
) -> Result<datafusion::prelude::SessionContext> {
    use ballista::prelude::SessionContextExt;
    use datafusion::prelude::SessionContext;
    Ok(match cluster {
        Cluster::Local => SessionContext::new_with_state(state),
        Cluster::Remote(url) => {
            reachable(url).await?;
            SessionContext::remote_with_state(&format!("df://{}:{}", url.host, url.port), state)
                .await?
        }
        Cluster::Standalone => SessionContext::standalone_with_state(state).await?,
    })
}

/// Fails fast, with the address, when nothing listens there (Ballista would only say "transport error").
#[cfg(feature = "cluster")]
async fn reachable(url: &ClusterUrl) -> Result<()> {
    let connect = tokio::net::TcpStream::connect((url.host.as_str(), url.port));
    match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Unavailable(format!(
            "cannot reach the Ballista scheduler at {url}: {e} \
             (start one with `audience cluster scheduler`)"
        ))),
        Err(_) => Err(Error::Unavailable(format!(
            "cannot reach the Ballista scheduler at {url}: no answer in 10 s"
        ))),
    }
}

/// The tables a plan scans.
pub fn scanned_tables(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            tables.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("collecting table names cannot fail");
    tables
}

/// Checks that the cluster sees every row the manifest lists for `tables`.
///
/// A small job per table counts its rows (answered from Parquet footers); a scheduler that
/// cannot see the store lists no files and counts 0, and an executor that cannot open a file fails
/// the job. Either way the user learns that the store must be at the same path on every node,
/// instead of getting an empty audience.
pub async fn check_cluster_sees(
    ctx: &datafusion::prelude::SessionContext,
    snapshot: &Snapshot,
    cluster: &Cluster,
    tables: &BTreeSet<String>,
) -> Result<()> {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    let hint = |what: String| {
        Error::Unavailable(format!(
            "the cluster at {} {what} (snapshot {} at {})\n\
             hint: the scheduler and every executor must see the store at the same path \
             (a shared file system, or the same copy on each node)",
            describe(cluster),
            snapshot.id(),
            snapshot.dir().display()
        ))
    };
    // One job a table: Ballista 55 hung on a UNION ALL of four such counts.
    for table in tables {
        let want = snapshot.rows_of(table);
        let sql = format!("SELECT count(*) AS n FROM \"{table}\"");
        let batches = async { ctx.sql(&sql).await?.collect().await }
            .await
            .map_err(|e| hint(format!("could not read table `{table}`: {e};")))?;
        let got: i64 = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
            .sum();
        if got as u64 != want {
            return Err(hint(format!(
                "sees {got} of the {want} rows of table `{table}`"
            )));
        }
    }
    Ok(())
}

fn describe(cluster: &Cluster) -> String {
    match cluster {
        Cluster::Local => "this process".into(),
        Cluster::Remote(url) => url.to_string(),
        Cluster::Standalone => "the in-process cluster".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterUrl;

    #[test]
    fn urls() {
        let u = ClusterUrl::parse("df://localhost:50050").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("localhost", 50050));
        assert_eq!(ClusterUrl::parse("df://10.0.0.7").unwrap().port, 50050);
        assert_eq!(
            ClusterUrl::parse("df://sched:6000/").unwrap().to_string(),
            "df://sched:6000"
        );
        assert!(ClusterUrl::parse("http://x:1")
            .unwrap_err()
            .contains("df://HOST:PORT"));
        assert!(ClusterUrl::parse("df://x:0").unwrap_err().contains("port"));
        assert!(ClusterUrl::parse("df://x:http")
            .unwrap_err()
            .contains("port"));
        assert!(ClusterUrl::parse("df://").is_err());
    }
}
