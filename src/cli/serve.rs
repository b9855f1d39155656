//! `audience serve`: the HTTP API and web page on a store, until Ctrl-C or SIGTERM.

use super::{absolute_path, tokio_runtime};
use crate::error::{Error, Result};
use crate::exec::parse_size;
use crate::serve::{serve, token, ServeOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: super::StoreDir,
    /// Address to listen on (loopback by default; 0.0.0.0:8080 for every interface).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// A file holding the bearer token clients must send (default: $AUDIENCE_TOKEN, else a
    /// random token kept in the store's .serve-token, mode 0600).
    #[arg(long, value_parser = absolute_path, conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The bearer token (prefer --token-file: the environment is safer than argv).
    #[arg(long, env = "AUDIENCE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Refuse writes (saved segments, exports) with 403.
    #[arg(long)]
    read_only: bool,
    /// The memory pool every query shares (e.g. 2GiB); operators spill past it.
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// Queries running at once; more wait up to --queue-wait, then get 503 with Retry-After.
    #[arg(long, default_value_t = 4)]
    max_queries: usize,
    /// Seconds a query waits for a free slot before it is refused (503). A slow answer beats a
    /// refusal for an editor, so the default is long; an overload still ends in 503s, not a pile-up.
    #[arg(long, default_value_t = 15)]
    queue_wait: u64,
    /// Seconds a query may run before it is cancelled (504).
    #[arg(long, default_value_t = 30)]
    query_timeout: u64,
    /// DataFusion's threads per query (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory each warm snapshot may keep of the pairs recent conditions matched, so that a
    /// count after a keystroke evaluates only the condition that changed (0: keep none).
    #[arg(long, value_parser = size_or_zero, default_value = "256MiB")]
    cache_memory: usize,
}

pub fn run(args: &Args) -> Result<()> {
    if args.threads == Some(0) {
        return Err(Error::Invalid("--threads must be at least 1".into()));
    }
    let store = args.store.dir()?;
    let given = match &args.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| Error::io(f, e))?
                .trim()
                .to_string(),
        ),
        None => args.token.clone(),
    };
    // A store that is not one says so, before a token is written into it.
    crate::store::Store::open(&store)?;
    let token = token(&store, given)?;
    let opts = ServeOptions {
        store,
        bind: args.bind,
        token: token.clone(),
        read_only: args.read_only,
        memory_limit: args.memory_limit,
        max_queries: args.max_queries,
        queue_wait: Duration::from_secs(args.queue_wait),
        query_timeout: Duration::from_secs(args.query_timeout.max(1)),
        threads: args.threads,
        matched_budget: args.cache_memory,
    };
    tokio_runtime()?.block_on(serve(opts, stopped(), |addr| {
        eprintln!("audience serve: listening on {addr}");
        eprintln!("open http://{addr}/#token={token}");
    }))
}

/// A memory size, or 0 for none.
fn size_or_zero(s: &str) -> std::result::Result<usize, String> {
    match s.trim() {
        "0" => Ok(0),
        _ => parse_size(s),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    eprintln!("audience serve: stopping (finishing requests in flight)");
}
