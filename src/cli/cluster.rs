//! `audience cluster scheduler|executor`: a Ballista cluster from the `audience` binary itself, so
//! the nodes run exactly the DataFusion and Ballista versions the client plans with.

use crate::error::{Error, Result};
use crate::exec::ClusterUrl;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start a Ballista scheduler (plans jobs into stages and hands tasks to executors).
    Scheduler(SchedulerArgs),
    /// Start a Ballista executor (runs tasks; needs the store at the path clients use).
    Executor(ExecutorArgs),
}

#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// gRPC port clients (`--cluster df://HOST:PORT`) and executors connect to.
    #[arg(long, default_value_t = crate::exec::cluster::DEFAULT_PORT)]
    port: u16,
    /// Host name executors and clients reach this scheduler by (default: --bind).
    #[arg(long)]
    external_host: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler to register with.
    #[arg(long, value_parser = ClusterUrl::parse, default_value = "df://localhost:50050")]
    scheduler: ClusterUrl,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Host name the scheduler and other executors reach this executor by (default: --bind).
    #[arg(long)]
    external_host: Option<String>,
    /// Arrow Flight port (results and shuffle data are fetched from it).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port the scheduler sends tasks to.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory pool of this executor, shared by its tasks (e.g. 4GiB); past it operators spill.
    #[arg(long, value_parser = crate::exec::parse_size)]
    memory_limit: Option<usize>,
    /// Directory for shuffle files (default: a temporary directory).
    #[arg(long, value_parser = super::absolute_path)]
    work_dir: Option<std::path::PathBuf>,
}

pub fn run(command: &Command) -> Result<()> {
    #[cfg(feature = "cluster")]
    {
        let rt = super::tokio_runtime()?;
        match command {
            Command::Scheduler(args) => rt.block_on(serve::scheduler(args)),
            Command::Executor(args) => rt.block_on(serve::executor(args)),
        }
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = command;
        Err(crate::exec::cluster::not_built())
    }
}

fn ballista_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

#[cfg(feature = "cluster")]
mod serve {
    use super::{ballista_error, ExecutorArgs, SchedulerArgs};
    use crate::error::{Error, Result};
    use ballista_core::registry::BallistaFunctionRegistry;
    use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use ballista_scheduler::scheduler_process::start_server;
    use datafusion::execution::SessionStateBuilder;
    use std::net::{SocketAddr, ToSocketAddrs};
    use std::sync::Arc;

    fn socket(host: &str, port: u16) -> Result<SocketAddr> {
        (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Error::Invalid(format!("--bind: cannot resolve `{host}`")))
    }

    pub async fn scheduler(args: &SchedulerArgs) -> Result<()> {
        let addr = socket(&args.bind, args.port)?;
        let config = SchedulerConfig {
            bind_host: args.bind.clone(),
            bind_port: args.port,
            external_host: args.external_host.clone().unwrap_or(args.bind.clone()),
            ..SchedulerConfig::default()
        };
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| ballista_error("scheduler", e))?;
        eprintln!(
            "audience cluster scheduler {} (DataFusion {}) listening on df://{addr}",
            env!("CARGO_PKG_VERSION"),
            datafusion::DATAFUSION_VERSION
        );
        start_server(cluster, addr, Arc::new(config))
            .await
            .map_err(|e| ballista_error(&format!("scheduler on {addr}"), e))
    }

    pub async fn executor(args: &ExecutorArgs) -> Result<()> {
        if args.threads == Some(0) {
            return Err(Error::Invalid("--threads must be at least 1".into()));
        }
        let defaults = ExecutorProcessConfig::default();
        let config = ExecutorProcessConfig {
            bind_host: args.bind.clone(),
            external_host: args.external_host.clone(),
            port: args.port,
            grpc_port: args.grpc_port,
            scheduler_host: args.scheduler.host.clone(),
            scheduler_port: args.scheduler.port,
            // Retry while a scheduler started alongside comes up, then fail with a clear error.
            scheduler_connect_timeout_seconds: 30,
            vcores: args.threads.unwrap_or(defaults.vcores),
            work_dir: args
                .work_dir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned()),
            memory_pool_size: args.memory_limit.map(|m| m as u64),
            // The functions of a local session. Ballista's default executor registry lacks the
            // nested (list) functions the planner uses for tags, emails and phones (`array_has`).
            override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(
                &SessionStateBuilder::new().with_default_features().build(),
            ))),
            ..defaults
        };
        eprintln!(
            "audience cluster executor {} serving on {}:{} (flight) and :{} (grpc), {} task slots, \
             scheduler {}",
            config.executor_id,
            args.bind,
            args.port,
            args.grpc_port,
            config.vcores,
            args.scheduler
        );
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| ballista_error("executor", e))
    }
}
