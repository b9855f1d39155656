//! `audience serve`: an HTTP API and the web page marketers write segments in, on the same
//! application layer as the command line. One process; a warm workspace (DataFusion session)
//! per snapshot, picked up as new snapshots are published; every query bounded in time, in
//! memory (one pool for the server) and in number (the rest queue briefly, then get 503).
//!
//! Why axum: it is tokio's own HTTP framework (hyper underneath), already built into the binary
//! for Ballista's scheduler, with routing, JSON and graceful shutdown; tower-http adds the panic
//! catcher that turns a panic in one request into a 500 instead of ending the server.

mod api;
mod exports;
mod http;
mod state;

pub use http::ROUTES;
pub use state::ServeOptions;

use crate::error::{Error, IoContext, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The file in a store that holds the server's token when none is given.
pub const TOKEN_FILE: &str = ".serve-token";

/// The token clients must send: the one given, else the store's token file (created with a
/// random token, mode 0600, on first start).
pub fn token(store: &Path, given: Option<String>) -> Result<String> {
    if let Some(t) = given {
        let t = t.trim().to_string();
        if t.len() < 16 {
            return Err(Error::Invalid(
                "the token must be at least 16 characters".into(),
            ));
        }
        return Ok(t);
    }
    let path = store.join(TOKEN_FILE);
    if let Ok(t) = std::fs::read_to_string(&path) {
        if t.trim().len() >= 16 {
            return Ok(t.trim().to_string());
        }
    }
    let t = uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .at(&path)?;
    f.write_all(t.as_bytes()).at(&path)?;
    Ok(t)
}

/// Serves until `shutdown` completes (Ctrl-C or SIGTERM from the command line): in-flight
/// requests finish, running exports are cancelled (their temporary files removed).
/// `ready` receives the bound address once the server listens.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let state = Arc::new(state::AppState::new(opts)?);
    let listener = tokio::net::TcpListener::bind(state.opts.bind)
        .await
        .map_err(|e| Error::Invalid(format!("cannot listen on {}: {e}", state.opts.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("no local address: {e}")))?;
    ready(addr);
    let app = http::router(state.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("the server stopped: {e}")));
    state.jobs.cancel_all();
    result
}
