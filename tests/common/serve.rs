//! `audience serve` started in-process on a private copy of the shared store, and the command
//! line's counts to hold its answers against (the API tests and the browser test share both).

use super::http::{request, Reply};
use audience::serve::{serve, ServeOptions};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TOKEN: &str = "test-token-0123456789";

/// A server on a private copy of the shared store, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub store: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(tune: impl FnOnce(&mut ServeOptions)) -> Server {
        let (dir, store) = super::copy_store(super::shared_store());
        let mut opts = ServeOptions {
            store: store.clone(),
            bind: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.into(),
            read_only: false,
            memory_limit: Some(512 << 20),
            max_queries: 4,
            queue_wait: Duration::from_secs(2),
            query_timeout: Duration::from_secs(30),
            threads: Some(2),
            matched_budget: 64 << 20,
        };
        tune(&mut opts);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                serve(
                    opts,
                    async {
                        let _ = stopped.await;
                    },
                    |addr| tx.send(addr).unwrap(),
                )
                .await
                .unwrap();
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Server {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[String],
    ) -> Reply {
        let mut headers = vec![format!("Authorization: Bearer {TOKEN}")];
        headers.extend_from_slice(extra);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(self.addr, method, path, &headers, body.as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The command line's count of `segment` on `store`.
pub fn cli_count(store: &Path, segment: &str, target: &str) -> u64 {
    let out = assert_cmd::Command::cargo_bin("audience")
        .unwrap()
        .arg("--store")
        .arg(store)
        .args(["count", "--target", target, segment])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
